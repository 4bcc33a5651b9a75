#include "net/http/http_loop.hpp"

#include "core/clock.hpp"

namespace rs::http {

HttpLoop::HttpLoop(HttpShared& shared, net::LoopServices& services)
    : shared_(shared),
      services_(services),
      // Up to the longest head the limits allow: leading empty lines, request line, fields.
      head_buffers_(max_head_bytes(shared.config().limits)) {
  if (net::LogSink* sink = services.access_log()) access_log_.emplace(*sink);
  shared_.register_counters(&counters_);
}

HttpLoop::~HttpLoop() {
  shared_.unregister_counters(&counters_);
}

net::Protocol* HttpLoop::open(net::Connection& conn) {
  return sessions_.make(*this, conn);
}

std::string_view HttpLoop::date() {
  return date_.get(static_cast<std::time_t>(core::realtime_s()));
}

}  // namespace rs::http
