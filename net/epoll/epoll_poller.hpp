// The readiness backend's poller for net::EventLoop: the epoll set (level-triggered), the
// listeners, the wake eventfd and the signalfd as watches, the interest changes of a turn, and
// the synchronous services (recv buffers, pread files, write(2) log). A wait is one epoll_wait;
// dispatch runs each ready descriptor's handler (one recv per readable socket), then hands over
// the file results that the turn posted.
#pragma once

#include <sys/epoll.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/intrusive_list.hpp"
#include "net/connection.hpp"
#include "net/epoll/epoll_connection.hpp"
#include "net/epoll/watch.hpp"
#include "net/loop/loop_config.hpp"
#include "net/loop/poller.hpp"
#include "net/loop_counters.hpp"
#include "net/sync/pread_files.hpp"
#include "net/sync/recv_buffers.hpp"
#include "net/sync/write_log.hpp"

namespace rs::net::epoll {

// epoll has no knobs of its own.
struct EpollOptions {};

class EpollPoller final {
 public:
  using Connection = EpollConnection;
  using Options = EpollOptions;

  EpollPoller(EventLoop<EpollPoller>& loop, const EpollOptions& options,
              std::vector<ListenSocket>& listeners);
  ~EpollPoller();

  // The poller operations net::EventLoop calls (see net/loop/event_loop.hpp).
  void start() { set_accepting(true); }
  void set_accepting(bool on);
  void stop_accepting();
  // epoll accepts one client at a time, checking the cap each time: nothing to change.
  void near_cap() {}
  void adopt(EpollConnection& /*conn*/) {}
  bool send(EpollConnection& conn) { return conn.send_pending(); }
  void readmit(EpollConnection& conn) { conn.buffers_returned(); }
  unsigned free_receive_buffers() { return buffers_.available(); }
  void end_turn();
  // Posted file reads, or interest changes made after end_turn (a parked client admitted when
  // a close freed its place): the kernel must hear of them before a wait that could block.
  bool has_work() const { return files_.has_posted() || !interest_.empty(); }
  void wait(std::optional<std::uint64_t> timeout_ms);
  void dispatch();
  bool idle() const { return true; }
  void on_grace_expired(ConnectionList& /*open*/) {}
  void update_gauges(LoopCounters& counters) const;
  std::uint64_t pool_grows() const { return 0; }
  sync::WriteLog& log() { return log_; }
  const sync::WriteLog& log() const { return log_; }
  sync::PreadFiles& files() { return files_; }
  const sync::PreadFiles& files() const { return files_; }
  std::string describe() const { return "epoll (level-triggered)"; }

  // For EpollConnection.
  sync::RecvBuffers& buffers() { return buffers_; }
  LoopCounters& counters() { return counters_; }
  // Adds fd to the epoll set or changes its interest; false (logged, counted) when it fails.
  bool watch(int fd, Watch& watch, std::uint32_t events, bool modify);
  void interest_changed(EpollConnection& conn);  // applied before the next wait
  void retire(EpollConnection& conn);            // its descriptor is closed

 private:
  static constexpr int kMaxEvents = 256;
  // accept4 calls per readiness report of the listener: enough to take a burst of clients in
  // one turn, few enough that serving the connections already open is never starved.
  static constexpr int kAcceptBatch = 32;

  // A listening socket in the epoll set (one per --listen).
  struct Listener {
    EpollPoller* poller = nullptr;
    ListenSocket socket;
    Watch watch;
    void on_ready(std::uint32_t /*events*/) { poller->on_listener_ready(*this); }
  };
  void on_listener_ready(Listener& listener);
  void on_wake_ready(std::uint32_t events);
  void on_signal_ready(std::uint32_t events);

  EventLoop<EpollPoller>& loop_;
  LoopCounters& counters_;
  int epoll_fd_ = -1;
  // Reserved once: each one's address is its watch's owner.
  std::vector<Listener> listeners_;
  Watch wake_watch_;
  Watch signal_watch_;
  bool accepting_ = false;
  bool watch_error_reported_ = false;
  int ready_ = 0;  // events the last wait returned
  std::array<epoll_event, kMaxEvents> events_{};
  core::IntrusiveList<EpollConnection, &EpollConnection::interest_node> interest_;
  sync::RecvBuffers buffers_;
  sync::WriteLog log_;
  sync::PreadFiles files_;
};

}  // namespace rs::net::epoll
