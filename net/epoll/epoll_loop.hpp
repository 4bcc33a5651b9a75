// One epoll thread: the readiness-model twin of uring::RingLoop, serving the same protocols
// through the same net::Connection. A turn is: redeliver resumed input, settle and send what
// the turn produced (one sendmsg per connection), write the access log, free closed
// connections, then one epoll_wait whose timeout is the next timer, then run the ready
// descriptors' handlers (one recv per readable socket), fire timers and hand over file results.
// Other threads reach the loop only through its eventfd.
#pragma once

#include <sys/epoll.h>
#include <sys/signalfd.h>

#include <array>
#include <cstdint>
#include <memory>

#include "core/buffer.hpp"
#include "core/intrusive_list.hpp"
#include "core/slab_pool.hpp"
#include "core/timer_wheel.hpp"
#include "net/epoll/epoll_connection.hpp"
#include "net/epoll/epoll_files.hpp"
#include "net/epoll/epoll_log.hpp"
#include "net/epoll/recv_buffers.hpp"
#include "net/epoll/watch.hpp"
#include "net/loop_config.hpp"
#include "net/loop_counters.hpp"
#include "net/work_lists.hpp"

namespace rs::net::epoll {

class EpollLoop final : public LoopServices, private ConnectionEvents {
 public:
  EpollLoop(const LoopConfig& config, LoopContext& context);
  ~EpollLoop();
  EpollLoop(const EpollLoop&) = delete;
  EpollLoop& operator=(const EpollLoop&) = delete;

  void run();

  // LoopServices
  core::TimerWheel& timers() override { return timers_; }
  core::ChunkPool& chunks() override { return chunks_; }
  std::uint64_t now_ms() const override { return now_ms_; }
  LogSink* access_log() override { return log_.enabled() ? &log_ : nullptr; }
  FileService& files() override { return files_; }

  // For EpollConnection.
  RecvBuffers& buffers() { return buffers_; }
  LoopCounters& counters() { return counters_; }
  ResponseSlotPool& response_slots() { return slots_; }
  const ConnectionLimits& limits() const { return config_.limits; }
  ConnectionEvents& events() { return *this; }
  // Adds fd to the epoll set or changes its interest; false (logged, counted) when it fails.
  bool watch(int fd, Watch& watch, std::uint32_t events, bool modify);
  WorkLists<EpollConnection>& work() { return work_; }
  void retire(EpollConnection& conn);            // free at the end of this turn
  void interest_changed(EpollConnection& conn);  // apply at the end of this turn

 private:
  static constexpr int kMaxEvents = 256;
  // accept4 calls per readiness report of the listener: enough to take a burst of clients in
  // one turn, few enough that serving the connections already open is never starved.
  static constexpr int kAcceptBatch = 32;

  void on_input_paused() override { counters_.input_pauses.add(); }
  void on_stash_overflow() override { counters_.stash_overflows.add(); }

  bool has_work() const;
  void end_of_turn();
  void release_retired();
  void update_gauges();
  void on_listener_ready(std::uint32_t events);
  void pause_accepting();
  void resume_accepting();
  void on_wake_ready(std::uint32_t events);
  void on_signal_ready(std::uint32_t events);
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
  RecvBuffers buffers_;
  core::SlabPool<EpollConnection> connections_;
  core::IntrusiveList<EpollConnection, &EpollConnection::all_node> all_;
  WorkLists<EpollConnection> work_;
  core::IntrusiveList<EpollConnection, &EpollConnection::retired_node> retired_;
  core::IntrusiveList<EpollConnection, &EpollConnection::interest_node> interest_;
  core::Timer accept_retry_timer_;
  core::Timer grace_timer_;
  int epoll_fd_ = -1;
  int listen_fd_ = -1;
  Watch listen_watch_;
  Watch wake_watch_;
  Watch signal_watch_;
  bool accepting_ = false;
  bool paused_for_cap_ = false;
  bool stopping_ = false;
  bool watch_error_reported_ = false;
  std::uint64_t next_connection_id_ = 1;
  std::array<epoll_event, kMaxEvents> events_{};
  EpollLog log_;
  EpollFiles files_;
  // Last, so destroyed first: whatever a protocol factory holds goes back while the pools
  // still exist.
  std::unique_ptr<ProtocolFactory> protocols_;
};

}  // namespace rs::net::epoll
