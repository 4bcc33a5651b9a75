// One ring thread: owns the ring, the provided-buffer ring, the acceptor, the connections and
// their pools, and the timer wheel. A turn is: publish returned buffers, send what the last
// turn produced, one submit-and-wait, reap completions in batches, run continuations, fire
// timers. Other threads reach the loop only through its eventfd.
#pragma once

#include <sys/signalfd.h>

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "core/buffer.hpp"
#include "core/intrusive_list.hpp"
#include "core/slab_pool.hpp"
#include "core/timer_wheel.hpp"
#include "net/loop_config.hpp"
#include "net/loop_counters.hpp"
#include "net/uring/acceptor.hpp"
#include "net/uring/buffer_ring.hpp"
#include "net/uring/ring.hpp"
#include "net/uring/ring_connection.hpp"
#include "net/uring/ring_files.hpp"
#include "net/uring/ring_log.hpp"
#include "net/work_lists.hpp"

namespace rs::net::uring {

class RingLoop final : public LoopServices, private AcceptHandler, private ConnectionEvents {
 public:
  // Must run on the thread that will call run(): the ring is bound to its creator.
  RingLoop(const LoopConfig& config, LoopContext& context);
  ~RingLoop();
  RingLoop(const RingLoop&) = delete;
  RingLoop& operator=(const RingLoop&) = delete;

  void run();

  SetupMode setup_mode() const { return ring_.mode(); }
  const std::string& setup_reason() const { return ring_.mode_reason(); }
  std::string ring_wait_mode() const { return ring_.wait_mode(); }
  // Fixed files, bundles, SEND_ZC and the buffer ring's mode, as in force.
  std::string ring_knobs() const;

  // LoopServices
  core::TimerWheel& timers() override { return timers_; }
  core::ChunkPool& chunks() override { return chunks_; }
  std::uint64_t now_ms() const override { return now_ms_; }
  LogSink* access_log() override { return log_.enabled() ? &log_ : nullptr; }
  FileService& files() override { return files_; }

  // For RingConnection.
  Ring& ring() { return ring_; }
  BufferRing& buffers() { return buffers_; }
  LoopCounters& counters() { return counters_; }
  ResponseSlotPool& response_slots() { return slots_; }
  const ConnectionLimits& limits() const { return config_.limits; }
  ConnectionEvents& events() { return *this; }
  WorkLists<RingConnection>& work() { return work_; }
  void release(RingConnection& conn);                    // the last completion arrived: free it
  bool grace_expired() const { return grace_expired_; }  // a stop is cutting what is left
  std::uint64_t zc_close_wait_ms() const { return config_.ring.send_zc_close_wait_ms; }

 private:
  static constexpr std::size_t kBatch = 256;
  static constexpr std::size_t kMaxParked = 64;

  void on_accepted(int fd) override;
  void open_connection(int fd);
  void admit_parked();
  void on_accept_exhausted(int error) override;
  void on_input_paused() override { counters_.input_pauses.add(); }
  void on_stash_overflow() override { counters_.stash_overflows.add(); }

  void end_of_turn();
  void update_gauges();
  void dispatch_completions();
  void arm_wake();
  void arm_signal();
  void on_wake(std::int32_t res, std::uint32_t flags);
  void on_signal(std::int32_t res, std::uint32_t flags);
  void begin_stop();
  bool finished() const;
  static void on_accept_retry(core::Timer& timer);
  static void on_grace_expired(core::Timer& timer);

  const LoopConfig& config_;
  LoopContext& context_;
  LoopCounters& counters_;
  std::uint64_t now_ms_;
  core::TimerWheel timers_;
  core::ChunkPool chunks_;
  ResponseSlotPool slots_;
  core::SlabPool<RingConnection> connections_;
  core::IntrusiveList<RingConnection, &RingConnection::all_node> all_;
  WorkLists<RingConnection> work_;
  core::Timer accept_retry_timer_;
  core::Timer grace_timer_;
  Operation wake_op_;
  Operation signal_op_;
  std::uint64_t wake_value_ = 0;
  signalfd_siginfo siginfo_{};
  std::uint64_t next_connection_id_ = 1;
  bool stopping_ = false;
  bool accept_paused_for_cap_ = false;
  bool grace_expired_ = false;
  std::vector<int> parked_;  // accepted over the cap, waiting for a place (reserved up front)
  std::array<Completion, kBatch> batch_{};
  // The access log: its writes and opens are operations, so it is declared before ring_.
  RingLog log_;
  RingFiles files_;  // static files: their operations live in pooled files, so before ring_
  // Declared after everything the kernel may write to (operations, wake and signal buffers,
  // connections) so the ring is torn down before they are; the buffer ring and the acceptor
  // need the ring and go just before it.
  Ring ring_;
  BufferRing buffers_;
  Acceptor acceptor_;
  // Last, so destroyed first: whatever a protocol factory holds goes back while the pools, the
  // buffer ring and the ring still exist.
  std::unique_ptr<ProtocolFactory> protocols_;
};

}  // namespace rs::net::uring
