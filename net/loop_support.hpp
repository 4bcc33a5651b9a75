// Small pieces every event loop (ring, epoll) shares, so the loops differ only in how they
// wait for the kernel.
#pragma once

#include <cstdint>

#include "net/loop_config.hpp"
#include "net/loop_counters.hpp"

namespace rs::net {

// SIGINT/SIGTERM stop the server, SIGHUP reopens the access logs; others are ignored.
void handle_loop_signal(const LoopContext& context, std::uint32_t signo);

// Counts a connection that was just admitted (open gauge, peak).
inline void note_connection_opened(LoopCounters& counters) {
  counters.accepted.add();
  counters.connections_open.inc();
  if (counters.connections_open.get() > counters.connections_peak.get()) {
    counters.connections_peak.set(counters.connections_open.get());
  }
}

inline void note_connection_closed(LoopCounters& counters, ConnectionCap& cap) {
  counters.closed.add();
  counters.connections_open.dec();
  cap.release();
}

// At a stop: every connection's protocol finishes what is in flight and closes; queued output
// drains until the grace timer. The iterator moves on first: shutting one down may unlink it.
template <class Connections>
void shut_down_all(Connections& all) {
  for (auto it = all.begin(); it != all.end();) {
    auto& conn = *it;
    ++it;
    conn.shutdown();
  }
}

// When the grace period ends: whatever is still open is cut.
template <class Connections>
void abort_all(Connections& all) {
  for (auto& conn : all) {
    if (!conn.closed()) conn.abort();
  }
}

}  // namespace rs::net
