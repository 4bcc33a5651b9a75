#pragma once

// A deadline that moves with every request but seldom touches the timer wheel. The deadline is
// a number; the wheel timer behind it is moved only when the deadline moves earlier than the
// timer. A timer that fires before the deadline re-arms itself for the rest of it, and one that
// fires after clear() does nothing. So a connection that sets a header deadline, clears it and
// sets an idle deadline for every request it serves costs the wheel about one operation per
// timeout period, instead of three per request. The owner hears of it exactly when the deadline
// passes (to the wheel's tick), as if the timer had been moved every time.
//
// It is as small as a timer and one number (64 bytes), because there is one per connection: the
// owner's own timer callback asks reached() first, and acts only when that says so.
// Not thread-safe: one event loop owns the wheel, the deadline and its owner.

#include <cstdint>
#include <limits>

#include "core/timer_wheel.hpp"

namespace rs::core {

class Deadline {
 public:
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

  // fn is the owner's timer callback; it gets the timer back, and context() is `context`.
  Deadline(Timer::Fn fn, void* context) : timer_(fn, context) {}
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;

  // now_ms + delay_ms, saturating below kNever (a huge delay is "very late", not "never").
  static std::uint64_t after(std::uint64_t now_ms, std::uint64_t delay_ms) {
    return delay_ms >= kNever - now_ms ? kNever - 1 : now_ms + delay_ms;
  }

  // The deadline becomes wheel.now_ms() + delay_ms, replacing any earlier one.
  void set(TimerWheel& wheel, std::uint64_t delay_ms) {
    set_at(wheel, after(wheel.now_ms(), delay_ms));
  }
  // The deadline becomes at_ms (kNever: none), replacing any earlier one.
  void set_at(TimerWheel& wheel, std::uint64_t at_ms) {
    at_ms_ = at_ms;
    if (at_ms != kNever && (!timer_.armed() || timer_.expiry_ms() > at_ms)) {
      wheel.arm_at(timer_, at_ms);
    }
  }
  // No deadline until the next set(); the timer, if armed, stays and finds nothing to do.
  void clear() { at_ms_ = kNever; }
  // No deadline, and the timer is taken off the wheel too.
  void cancel(TimerWheel& wheel) {
    at_ms_ = kNever;
    wheel.cancel(timer_);
  }
  bool is_set() const { return at_ms_ != kNever; }
  std::uint64_t at_ms() const { return at_ms_; }

  // The first thing the owner's timer callback asks. True when the deadline has passed: it is
  // cleared, and the owner acts (and may set it again, or destroy itself and this with it).
  // False when the timer fired early (the deadline moved later: the timer is re-armed for the
  // rest) or after clear().
  bool reached(TimerWheel& wheel) {
    if (!is_set()) return false;
    if (wheel.now_ms() < at_ms_) {
      wheel.arm_at(timer_, at_ms_);
      return false;
    }
    at_ms_ = kNever;
    return true;
  }

 private:
  Timer timer_;
  std::uint64_t at_ms_ = kNever;
};

}  // namespace rs::core
