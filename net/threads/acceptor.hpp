// The thread-per-connection model: an acceptor thread hands each connection to a worker thread
// of its own (net/threads/worker.hpp), which serves it with blocking recv and send and sleeps
// while an answer is pending (GET /delay blocks its thread: that is the point of the
// comparison). Workers are kept for the next connection once theirs closes, at most
// --max-connections of them; one that has waited --thread-idle-timeout-ms for a connection
// ends, and the acceptor joins it and frees what it held. The acceptor holds the cap, the stop
// and the grace period; a stop interrupts blocked workers with SIGUSR1.
#pragma once

#include <pthread.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/intrusive_list.hpp"
#include "net/loop/loop_config.hpp"
#include "net/loop_counters.hpp"
#include "net/threads/worker.hpp"

namespace rs::net::threads {

class SharedLog;

class Acceptor {
 public:
  // Not copyable (it holds a mutex and the workers' threads).
  Acceptor(const LoopConfig& config, LoopContext& context);
  ~Acceptor();

  void run();
  std::string describe() const { return "a thread per connection (blocking recv/send)"; }

  // For workers.
  const LoopConfig& config() const { return config_; }
  LoopContext& context() { return context_; }
  bool stopping() const { return stopping_.load(std::memory_order_acquire); }
  bool cut() const { return cut_.load(std::memory_order_acquire); }
  // Bumped whenever stopping() or cut() changes; workers acknowledge the number they acted on.
  std::uint32_t notice() const { return notice_.load(std::memory_order_acquire); }
  // A worker's connection closed: it waits for the next one (false: it should exit, told to
  // or after waiting --thread-idle-timeout-ms).
  bool wait_for_connection(Worker& worker, ListenSocket& accepted);

 private:
  void accept_ready(const ListenSocket& listener);
  // To an idle worker, or to a new one (made without the mutex).
  void hand_over(ListenSocket accepted);
  // Closes a client no worker could be made or started for, and pauses accepting.
  void refuse(int fd);
  // Joins and frees the workers that ended after their idle timeout.
  void collect_ended();
  // Takes a counter set out of the spare ones (those of ended workers), or a new one.
  LoopCounters& counters_for_worker();
  // A set no worker uses any more, for the next new one (never allocates).
  void give_back(LoopCounters& counters);
  void remove_worker(Worker& worker);
  void begin_stop();
  void close_listeners();
  void pause_accepting();  // for accept_retry_ms, after an error
  void interrupt_workers();
  void take_messages();

  // accept4 calls per readiness report of the listener.
  static constexpr int kAcceptBatch = 32;

  const LoopConfig& config_;
  LoopContext& context_;
  LoopCounters& counters_;
  std::vector<ListenSocket> listeners_;  // one per --listen; fd -1 once closed
  int idle_fd_ = -1;  // eventfd: a worker became idle (the cap may have room again)
  std::atomic<bool> stopping_{false};
  std::atomic<bool> cut_{false};  // the grace period is over
  std::atomic<std::uint32_t> notice_{0};
  std::unique_ptr<SharedLog> log_;
  std::mutex mutex_;
  // Every worker whose thread has not been joined. Only the acceptor's thread changes it, under
  // the mutex (which guards the workers' busy flags, read while it is walked); a worker is
  // made before it is added, without the mutex.
  std::vector<std::unique_ptr<Worker>> workers_;
  // Counter sets of ended workers, for the next new ones: a churn of threads does not grow the
  // sets /metrics sums (the acceptor's thread only).
  std::vector<LoopCounters*> spare_counters_;
  std::size_t counter_sets_ = 0;  // made for workers so far
  // Guarded by the mutex: the workers waiting for a connection (the most recent last, taken
  // first, so that the oldest are the ones that time out), and those that timed out and ended,
  // to be joined.
  core::IntrusiveList<Worker, &Worker::idle_node> idle_;
  core::IntrusiveList<Worker, &Worker::idle_node> ended_;
  std::size_t busy_ = 0;
  std::uint64_t accept_paused_until_ = 0;  // monotonic ms; 0: accepting
  bool exit_workers_ = false;
};

}  // namespace rs::net::threads
