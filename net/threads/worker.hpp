// One thread of the threads backend and the state of the one connection it serves at a time:
// its own timer wheel, pools and protocol state, and the turn order of the event loops
// (net::redeliver_and_flush) around blocking calls. Its waits are bounded by socket timeouts
// (SO_RCVTIMEO up to the next timer, SO_SNDTIMEO slices), so the header, idle, body and send
// limits hold. The acceptor's stop flags reach it through SIGUSR1, which interrupts a blocked
// recv, send or sleep.
//
// Everything a worker holds is made by the acceptor's thread, before the worker's thread
// starts, and sized for one connection (net::LoopServices::serves_one_connection), so that
// serving a plain request never makes the worker's thread allocate: an allocator (mimalloc)
// gives each thread that allocates a heap of its own, which would cost more than all the rest
// of the connection (about 60 KB, then a page per size class).
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>

#include "core/buffer.hpp"
#include "core/intrusive_list.hpp"
#include "core/timer_wheel.hpp"
#include "net/connection.hpp"
#include "net/loop/loop_state.hpp"
#include "net/loop_counters.hpp"
#include "net/sync/pread_files.hpp"
#include "net/sync/recv_buffers.hpp"
#include "net/threads/shared_log.hpp"
#include "net/threads/thread_connection.hpp"
#include "net/transport.hpp"

namespace rs::net::threads {

class Acceptor;

class Worker final : public LoopServices, private WorkerWake {
 public:
  // On the acceptor's thread (it makes the protocol factory too).
  Worker(Acceptor& owner, LoopCounters& counters, SharedLog& log);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread on its first connection; 0, or the error pthread_create gave.
  int start(ListenSocket accepted);
  void join();
  // Makes a blocked recv, send or sleep return (EINTR) so the worker looks at the flags.
  void interrupt();
  // The owner's notice number this worker has acted on.
  std::uint32_t seen() const { return seen_.load(std::memory_order_acquire); }

  LoopCounters& counters() { return counters_; }

  // Guarded by the owner's mutex.
  std::condition_variable wake;
  ListenSocket next;  // the next connection (fd -1: none yet)
  bool busy = false;
  core::ListNode idle_node;  // in the owner's list of workers waiting for a connection
  // The acceptor's thread only: where the owner keeps this worker.
  std::size_t place = 0;

  // LoopServices
  core::TimerWheel& timers() override { return state_.timers; }
  core::ChunkPool& chunks() override { return state_.chunks; }
  std::uint64_t now_ms() const override { return state_.now_ms; }
  std::uint64_t now_us() const override { return state_.now_us; }
  std::uint64_t wall_clock_s() const override { return state_.wall_clock_s; }
  LogSink* access_log() override { return log_.enabled() ? &log_ : nullptr; }
  FileService& files() override { return files_; }
  bool serves_one_connection() const override { return true; }

 private:
  static void* main(void* self);
  void run();
  void serve(ListenSocket accepted);
  void wait_for_input_or_timer(ThreadConnection& conn);
  void update_gauges();
  void refresh();
  // The clock moves at once; timers fire at the end of the pass, after what the call brought
  // was handled, as on the event loops.
  void on_wake(ThreadConnection& conn) override;
  void move_clock() override;
  void observe_owner(ThreadConnection& conn);

  Acceptor& owner_;
  LoopCounters& counters_;
  LoopState state_;
  WorkerLog log_;  // after state_: its timer is on state_.timers
  sync::RecvBuffers buffers_;
  sync::PreadFiles files_;
  std::unique_ptr<ProtocolFactory> protocols_;
  pthread_t thread_{};
  bool started_ = false;
  ListenSocket first_;
  std::uint64_t next_id_ = 1;
  std::uint32_t tls_generation_ = 0;  // of the TLS context this worker's sessions are made from
  std::int64_t recv_timeout_ms_ = 0;  // SO_RCVTIMEO on the current socket; 0: none
  bool shut_down_ = false;            // the current connection was told of the stop
  bool cut_ = false;                  // the current connection was cut (the grace period ended)
  std::atomic<std::uint32_t> seen_{0};
};

}  // namespace rs::net::threads
