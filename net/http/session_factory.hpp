// The HTTP server's state on one loop: its pools (sessions, deferred requests, head buffers),
// counters and Date cache. It is the loop's ProtocolFactory: it opens a session per connection.
#pragma once

#include <memory>
#include <optional>

#include "core/buffer.hpp"
#include "core/slab_pool.hpp"
#include "net/http/access_log.hpp"
#include "net/http/head_buffers.hpp"
#include "net/http/http_config.hpp"
#include "net/http/http_date.hpp"
#include "net/http/request.hpp"
#include "net/http/request_states.hpp"
#include "net/http/response.hpp"
#include "net/http/session.hpp"
#include "net/transport.hpp"

namespace rs::http {

class SessionFactory final : public net::ProtocolFactory {
 public:
  SessionFactory(HttpShared& shared, net::LoopServices& services);
  ~SessionFactory() override;

  net::Protocol* open(net::Connection& conn) override;
  void release(HttpSession* session);

  const HttpConfig& config() const { return shared_.config(); }
  HttpShared& shared() { return shared_; }
  HttpCounters& counters() { return counters_; }
  net::LoopServices& services() { return services_; }
  // Contiguous room for request heads that arrive in pieces, grown as they grow.
  HeadBuffers& head_buffers() { return head_buffers_; }
  core::SlabPool<Pending>& pendings() { return pendings_; }
  // The state of each request being read (its parser and what is kept of it).
  RequestStates& request_states() { return request_states_; }
  void give_back_request_state(RequestState* state) {
    request_states_.give_back(state);
    if (trims_ && !trim_timer_.armed()) services_.timers().arm(trim_timer_, kTrimPeriodMs);
  }
  RequestState* take_request_state() {
    const std::size_t made = request_states_.made();
    RequestState* state = request_states_.take();
    if (request_states_.made() != made) note_pool_growth();
    return state;
  }
  // The Date of this loop turn, and the start of a 200 head with it.
  const ResponseStamp& stamp() {
    stamp_.set_time(static_cast<std::time_t>(services_.wall_clock_s()));
    return stamp_;
  }
  // After any of the pools above may have grown: the pool_grows counter follows (a few loads; only
  // where a pool hands out an object, and the request state pool only when it makes one).
  void note_pool_growth() {
    const std::uint64_t grows =
        sessions_.grows() + pendings_.grows() + head_buffers_.grows() + request_states_.grows();
    counters_.pool_grows.add(grows - grows_counted_);
    grows_counted_ = grows;
  }
  // nullptr when the loop has no access log.
  AccessLog* access_log() { return access_log_ ? &*access_log_ : nullptr; }

  // Request states and head buffers that a load needed and the next second did not go back to
  // the kernel, a bounded number a second (as the loop's output chunks do), so that RSS returns
  // near its baseline after a burst of requests read at once. Ones in steady use are kept.
  static constexpr std::uint64_t kTrimPeriodMs = 1000;
  static constexpr std::size_t kTrimPerPeriod = 1024;  // of each: 8 MiB of states at most

 private:
  static void on_trim(core::Timer& timer);

  HttpShared& shared_;
  net::LoopServices& services_;
  HttpCounters counters_;
  HeadBuffers head_buffers_;
  core::SlabPool<Pending> pendings_;
  RequestStates request_states_;
  core::SlabPool<HttpSession> sessions_;
  ResponseStamp stamp_;
  std::optional<AccessLog> access_log_;
  std::uint64_t grows_counted_ = 0;  // pool growth already added to counters_.pool_grows
  // Armed while free states or head buffers may be released. Not on a worker of the threads
  // backend: it keeps its one state and first head buffer for its life (a timer would wake it
  // in recv), and its pools go when it is reaped (--thread-idle-timeout-ms).
  bool trims_ = true;
  core::Timer trim_timer_;
};

// The transport stops reading a connection near --max-queued-output-bytes too (and reads again
// once a quarter of it is left), so that queued output plus read-ahead stay near it for a peer
// that does not read. For the server's ConnectionLimits, before it starts.
inline void follow_output_limit(net::ConnectionLimits& limits, const HttpConfig& http) {
  // A file's read-ahead stops at the mark and may pass it by one read (16 KiB): the transport's
  // mark is that much higher, so a download does not pause reading the connection.
  limits.output_high_water_bytes = http.max_queued_output_bytes + (16u << 10);
  limits.output_low_water_bytes = http.max_queued_output_bytes / 4;
}

// The factory maker a net::Server takes.
inline net::ProtocolFactoryMaker make_http_factory(HttpShared& shared) {
  return [&shared](net::LoopServices& services) {
    return std::make_unique<SessionFactory>(shared, services);
  };
}

}  // namespace rs::http
