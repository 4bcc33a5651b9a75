#include "net/http/http_loop.hpp"

#include "core/clock.hpp"

namespace rs::http {

namespace {
// Room for the longest head the limits allow: leading empty lines, request line, fields.
std::size_t head_buffer_bytes(const Limits& limits) {
  return max_head_bytes(limits);
}
}  // namespace

HttpLoop::HttpLoop(HttpShared& shared, net::LoopServices& services)
    : shared_(shared),
      services_(services),
      head_buffers_(head_buffer_bytes(shared.config().limits), 8) {
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
