// A load connection's socket and the operations it has in flight, as both load generators keep
// them: a connect, or a send and a receive, each embedded in the connection (its address is the
// SQE's user_data, so nothing is allocated per operation) and pointing back at it. A client's
// connection type derives from LoadSocket; the descriptor closes only once the last completion
// naming it has arrived.
#pragma once

#include <cstdint>

#include "perf/load_ring.hpp"

namespace rs::perf {

enum class LoadOpKind : std::uint8_t { kConnect, kSend, kRecv };

struct LoadSocket;
struct LoadOp {
  LoadSocket* socket;
  LoadOpKind kind;
};

struct LoadSocket {
  LoadSocket() = default;
  // The operations point back at their socket: it never moves once made.
  LoadSocket(const LoadSocket&) = delete;
  LoadSocket& operator=(const LoadSocket&) = delete;
  // Closes a descriptor still open (after a run that stopped with operations stuck, once the
  // ring has gone: its owner keeps the ring as its last member).
  ~LoadSocket();

  int fd = -1;
  bool connect_busy = false;
  bool send_busy = false;
  bool recv_busy = false;
  std::uint64_t connect_ns = 0;  // when the connect was submitted
  LoadOp connect_op{this, LoadOpKind::kConnect};
  LoadOp send_op{this, LoadOpKind::kSend};
  LoadOp recv_op{this, LoadOpKind::kRecv};
  bool idle() const { return !connect_busy && !send_busy && !recv_busy; }
};

// Opens a socket for `address` and submits its connect; the error (a negative errno) when no
// socket could be had.
int start_connect(LoadRing& ring, LoadSocket& socket, const ServerAddress& address,
                  std::uint64_t now_ns);

// Ends what the socket has in flight: a shutdown completes its send and receive, a cancel its
// connect. Their completions still arrive; close_when_idle closes after the last.
void end_operations(LoadRing& ring, LoadSocket& socket);

// Closes the descriptor when no operation can name it any more; true when it did.
bool close_when_idle(LoadSocket& socket);

// Hands a completion to handler.on_connect, on_send or on_recv(Conn&, res), with that
// operation's busy flag cleared. Completions of no operation (cancels) go nowhere.
template <typename Conn, typename Handler>
void route_completion(const LoadCompletion& completion, Handler& handler) {
  auto* op = static_cast<LoadOp*>(completion.data);
  if (op == nullptr) return;
  auto& conn = static_cast<Conn&>(*op->socket);
  switch (op->kind) {
    case LoadOpKind::kConnect:
      conn.connect_busy = false;
      handler.on_connect(conn, completion.res);
      break;
    case LoadOpKind::kSend:
      conn.send_busy = false;
      handler.on_send(conn, completion.res);
      break;
    case LoadOpKind::kRecv:
      conn.recv_busy = false;
      handler.on_recv(conn, completion.res);
      break;
  }
}

// One turn of a load run: the ring's turn (submit, wait until deadline_ns at most, reap) with
// every completion routed to the run's handlers, then run.scan_for_stuck() when it is due; it
// returns whether any operation in flight is owed a completion, and while none is, the ring's
// quiet time does not count towards a stall. False when the run should end here: operations
// owed a completion are in flight that nothing brings back.
template <typename Conn, typename Run>
bool run_turn(LoadRing& ring, LoadTimeline& time, std::uint64_t deadline_ns, Run& run) {
  ring.turn(time.now_ns, deadline_ns,
            [&run](const LoadCompletion& completion) { route_completion<Conn>(completion, run); });
  if (time.scan_due() && !run.scan_for_stuck()) ring.nothing_owed(time.now_ns);
  return !ring.stalled(time.now_ns, time.stall_ns());
}

}  // namespace rs::perf
