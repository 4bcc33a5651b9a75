#include "net/http/session_factory.hpp"

namespace rs::http {

namespace {

// Objects per slab of an event loop's pools, which serve thousands of connections.
constexpr std::size_t kSessionsPerSlab = 64;
constexpr std::size_t kPendingsPerSlab = 64;
constexpr std::size_t kRequestStatesPerSlab = 16;

}  // namespace

SessionFactory::SessionFactory(HttpShared& shared, net::LoopServices& services)
    : shared_(shared),
      services_(services),
      // Up to the longest head the limits allow: leading empty lines, request line, fields.
      head_buffers_(max_head_bytes(shared.config().limits),
                    services.serves_one_connection() ? 0 : HeadBuffers::kSlabBytes),
      pendings_(services.serves_one_connection() ? 1 : kPendingsPerSlab),
      request_states_(shared.config().limits, services.chunks(), counters_.request_states_in_use,
                      counters_.request_states_made,
                      services.serves_one_connection() ? 1 : kRequestStatesPerSlab),
      sessions_(services.serves_one_connection() ? 1 : kSessionsPerSlab) {
  if (services.serves_one_connection()) {
    // A worker of the threads backend: one connection, one request read at a time. What it
    // needs is made here, before its thread runs, so that a plain request never makes the
    // thread reach the heap (an allocator's state for a thread of its own costs more than the
    // connection). Slab memory is written only when used: untouched room costs no RSS.
    sessions_.reserve(1);
    request_states_.reserve(1);
    pendings_.reserve(1);
    head_buffers_.reserve_first();
    trims_ = false;
  }
  trim_timer_.set(&SessionFactory::on_trim, this);
  if (net::LogSink* sink = services.access_log())
    access_log_.emplace(*sink, config().access_log_format);
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

void SessionFactory::on_trim(core::Timer& timer) {
  auto& self = *static_cast<SessionFactory*>(timer.context());
  self.request_states_.release_idle(kTrimPerPeriod);
  self.head_buffers_.release_idle(kTrimPerPeriod);
  if (self.request_states_.free_held() > 0 || self.head_buffers_.holds_free()) {
    self.services_.timers().arm(timer, kTrimPeriodMs);
  }
}

void SessionFactory::release(HttpSession* session) {
  sessions_.destroy(session);
  counters_.sessions.set(static_cast<std::int64_t>(sessions_.outstanding()));
}

}  // namespace rs::http
