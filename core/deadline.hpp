#pragma once

// A deadline that moves with every request but seldom touches the timer wheel. The deadline is
// a number; the wheel timer behind it is moved only when the deadline moves earlier than the
// timer. A timer that fires before the deadline re-arms itself for the rest of it, and one that
// fires after clear() does nothing. So a connection that sets a header deadline, clears it and
// sets an idle deadline for every request it serves costs the wheel about one operation per
// timeout period, instead of three per request. The callback runs exactly when the deadline
// passes (to the wheel's tick), as if the timer had been moved every time.
// Not thread-safe: one event loop owns the wheel, the deadline and its owner.

#include <cstdint>
#include <limits>

#include "core/timer_wheel.hpp"

namespace rs::core {

class Deadline {
 public:
  using Fn = void (*)(void* context);

  Deadline(Fn fn, void* context) : timer_(&Deadline::on_timer, this), fn_(fn), context_(context) {}
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // The deadline becomes wheel.now_ms() + delay_ms, replacing any earlier one.
  void set(TimerWheel& wheel, std::uint64_t delay_ms) {
    const std::uint64_t now = wheel.now_ms();
    at_ms_ = delay_ms >= kNone - now ? kNone - 1 : now + delay_ms;
    wheel_ = &wheel;
    if (!timer_.armed() || timer_.expiry_ms() > at_ms_) {
      wheel.arm_at(timer_, at_ms_);
    }
  }
  // No deadline until the next set(); the timer, if armed, stays and finds nothing to do.
  void clear() { at_ms_ = kNone; }
  bool is_set() const { return at_ms_ != kNone; }

 private:
  static constexpr std::uint64_t kNone = std::numeric_limits<std::uint64_t>::max();

  static void on_timer(Timer& timer) {
    auto& self = *static_cast<Deadline*>(timer.context());
    if (!self.is_set()) {
      return;
    }
    if (self.wheel_->now_ms() < self.at_ms_) {
      self.wheel_->arm_at(self.timer_, self.at_ms_);  // fired early: the deadline moved later
      return;
    }
    self.at_ms_ = kNone;
    self.fn_(self.context_);  // may set() again, or destroy the owner and this with it
  }

  Timer timer_;
  Fn fn_;
  void* context_;
  TimerWheel* wheel_ = nullptr;
  std::uint64_t at_ms_ = kNone;
};

}  // namespace rs::core
