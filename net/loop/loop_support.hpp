// Small pieces every loop shares (the event loop of every poller, and the threads backend's
// acceptor and workers).
#pragma once

#include <cstdint>

#include "core/buffer.hpp"
#include "net/connection.hpp"
#include "net/loop/loop_config.hpp"
#include "net/loop_counters.hpp"

namespace rs::net {

// SIGINT/SIGTERM stop the server, SIGHUP reopens the access logs; others are ignored.
void handle_loop_signal(const LoopContext& context, std::uint32_t signo);

// Takes the loop_message bits other threads left. Senders set their bits before writing the
// eventfd, and the eventfd was read before the bits are taken, so no message is lost: one set
// after this exchange wakes the loop again.
inline std::uint32_t take_messages(LoopContext& context) {
  return context.messages.exchange(0, std::memory_order_acquire);
}

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

// The first steps of a turn, the same on every backend. Redelivered input may produce output,
// so it goes before the sends. Then one send per connection, and its one settle. Send first:
// settling a connection whose output is queued with no send under way would put it on the list
// again, and the next turn would spend a wait that cannot block on it (TurnListsTest and
// TurnOrderTest catch that order). A pass takes only the connections listed when it starts:
// what it adds (a protocol that pauses and resumes itself, output produced as output drains)
// waits for the next turn, which then does not block. The lists stay the live ones, so a
// connection that leaves them meanwhile (TurnLists::forget) leaves them for good.
// send(conn) hands the output to the kernel and says whether the connection heard
// output_sent() (and so has settled already).
template <class Send>
void redeliver_and_flush(TurnLists& turn, Send&& send) {
  for (std::size_t n = turn.resumed.size(); n > 0 && !turn.resumed.empty(); --n)
    turn.resumed.pop_front()->redeliver();
  for (std::size_t n = turn.flush.size(); n > 0 && !turn.flush.empty(); --n) {
    DrivenConnection& conn = *turn.flush.pop_front();
    if (!send(conn)) conn.turn_done();
  }
}

// At a stop: every connection's protocol finishes what is in flight and closes; queued output
// drains until the grace timer. The iterator moves on first: shutting one down may unlink it.
inline void shut_down_all(ConnectionList& open) {
  for (auto it = open.begin(); it != open.end();) {
    DrivenConnection& conn = *it;
    ++it;
    conn.shut_down();
  }
}

// When the grace period ends: whatever is still open is cut (which may unlink it).
inline void abort_all(ConnectionList& open) {
  for (auto it = open.begin(); it != open.end();) {
    DrivenConnection& conn = *it;
    ++it;
    if (!conn.closed()) conn.abort();
  }
}

}  // namespace rs::net
