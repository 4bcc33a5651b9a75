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

}  // namespace rs::net
