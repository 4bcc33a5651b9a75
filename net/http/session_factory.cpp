#include "net/http/session_factory.hpp"

namespace rs::http {

SessionFactory::SessionFactory(HttpShared& shared, net::LoopServices& services)
    : shared_(shared),
      services_(services),
      // Up to the longest head the limits allow: leading empty lines, request line, fields.
      head_buffers_(max_head_bytes(shared.config().limits)),
      request_states_(shared.config().limits, counters_.request_states_in_use,
                      counters_.request_states_made) {
  if (net::LogSink* sink = services.access_log()) access_log_.emplace(*sink);
  shared_.register_counters(&counters_);
}

SessionFactory::~SessionFactory() {
  shared_.unregister_counters(&counters_);
}

net::Protocol* SessionFactory::open(net::Connection& conn) {
  HttpSession* session = sessions_.make(*this, conn);
  counters_.sessions.set(static_cast<std::int64_t>(sessions_.outstanding()));
  note_pool_growth();
  return session;
}

void SessionFactory::release(HttpSession* session) {
  sessions_.destroy(session);
  counters_.sessions.set(static_cast<std::int64_t>(sessions_.outstanding()));
}

}  // namespace rs::http
