// The ring backend's access-log writer (net::LogFile). Lines wait in a net::LogBuffer (whole
// lines per write, so writes from several loops, each with its own O_APPEND descriptor on the
// same file, never interleave inside a line; a bound beyond which lines are dropped and counted,
// so a slow disk costs log lines, never memory or loop time). At most one IORING_OP_WRITE is in
// flight; a new one starts at the end of a loop turn.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/timer_wheel.hpp"
#include "net/loop/log_file.hpp"
#include "net/loop_counters.hpp"
#include "net/uring/operation.hpp"
#include "net/uring/ring.hpp"

namespace rs::net::uring {

class RingLog final : public LogFile {
 public:
  // The ring is used only later, so it may still be under construction.
  RingLog(Ring& ring, core::TimerWheel& timers, LoopCounters& counters, std::string path,
          std::size_t max_buffered_bytes);

  // End of a loop turn: start a write of what is buffered unless one is in flight.
  void flush();
  // Log rotation: open the path again through the ring, then switch to the new file between
  // writes; the old descriptor closes once no write is in flight on it.
  void reopen();
  // The grace period is over: drop what is still buffered and start nothing new.
  void abandon();
  // Nothing in flight and nothing left to write: the loop may finish.
  bool idle() const;

 private:
  void start_open();
  void on_write(std::int32_t res, std::uint32_t flags);
  void on_open(std::int32_t res, std::uint32_t flags);

  Ring& ring_;
  Operation write_op_;
  Operation open_op_;
  bool write_in_flight_ = false;  // the buffer's front is in flight
  bool open_in_flight_ = false;
  bool reopen_again_ = false;  // another reopen was asked for while one was in flight
};

}  // namespace rs::net::uring
