#pragma once

// Hashed timer wheel: O(1) arm and cancel, firing cost proportional to the timers that are due.
// A timer lives in slot ceil(deadline / tick) mod slots; a deadline more than one revolution out
// stays in its slot carrying its absolute expiry and is skipped until its round comes. Timers fire
// on the first advance() whose time has reached their deadline, never earlier and never later.
// Not thread-safe: one event loop owns a wheel and its timers.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <vector>

#include "core/intrusive_list.hpp"

namespace rs::core {

class TimerWheel;

// Embed a Timer in its owner; the callback gets the Timer back and recovers the owner from
// context() (or from the member offset). A timer that is destroyed while armed cancels itself.
class Timer {
 public:
  using Fn = void (*)(Timer&);

  Timer() = default;
  Timer(Fn fn, void* context) : fn_(fn), context_(context) {}
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void set(Fn fn, void* context) {
    fn_ = fn;
    context_ = context;
  }

  // True from arm until the callback starts or cancel(); re-arming from the callback sets it again.
  bool armed() const { return where_ != kUnarmed; }
  void* context() const { return context_; }
  std::uint64_t expiry_ms() const { return expiry_ms_; }  // deadline of the last arm

 private:
  friend class TimerWheel;

  // Which wheel list holds the timer: a slot index, or one of these.
  static constexpr std::uint32_t kUnarmed = std::numeric_limits<std::uint32_t>::max();
  static constexpr std::uint32_t kInDue = kUnarmed - 1;
  static constexpr std::uint32_t kInFiring = kUnarmed - 2;

  ListNode node_;
  Fn fn_ = nullptr;
  void* context_ = nullptr;
  TimerWheel* wheel_ = nullptr;
  std::uint64_t expiry_ms_ = 0;
  std::uint32_t where_ = kUnarmed;
};

class TimerWheel {
 public:
  // slots is rounded up to a power of two; tick_ms is the slot width.
  explicit TimerWheel(std::uint64_t now_ms, std::size_t slots = 1024, std::uint64_t tick_ms = 1);
  ~TimerWheel();  // leaves every still-armed timer unarmed
  TimerWheel(const TimerWheel&) = delete;
  TimerWheel& operator=(const TimerWheel&) = delete;

  // Fires at now_ms() + delay_ms; re-arms (moves) a timer that is already armed, even on another
  // wheel. A deadline at or before now_ms(), delay 0 included, fires on the next advance(), so a
  // callback that re-arms itself with delay 0 does not loop inside one advance().
  void arm(Timer& t, std::uint64_t delay_ms);
  void arm_at(Timer& t, std::uint64_t deadline_ms);
  void cancel(Timer& t);  // no-op if not armed

  // Fires every timer whose deadline is <= now_ms, earlier deadlines first. Callbacks may arm,
  // cancel or destroy any timer, themselves included, but must not call advance() or throw. Time
  // never goes backwards: an earlier now_ms is treated as now_ms(). Returns the number fired.
  std::size_t advance(std::uint64_t now_ms);
  // Moves the clock that arm() counts from, firing nothing. An event loop calls it after a wait
  // and advance() after handling what the wait brought, so a timer armed by new input counts
  // from its arrival, and input that has arrived is handled before a deadline it beat (a loop
  // that was slow to run must not time out a client whose bytes were already there).
  void set_now(std::uint64_t now_ms) { now_ms_ = std::max(now_ms_, now_ms); }

  // A time at or before the earliest pending deadline (exact unless timers were cancelled since
  // their slot was last visited); may be earlier than now_ms() when something is already due.
  // Walks the occupied-slot bitmap and stops at the first slot that cannot beat the best so far,
  // so it usually looks at a handful of slots. nullopt when nothing is armed.
  std::optional<std::uint64_t> next_expiry_ms() const;

  std::size_t armed_count() const { return armed_count_; }
  std::uint64_t now_ms() const { return now_ms_; }
  std::uint64_t tick_ms() const { return tick_ms_; }
  std::size_t slot_count() const { return slot_mask_ + 1; }

 private:
  using TimerList = IntrusiveList<Timer, &Timer::node_>;
  static constexpr std::uint64_t kNever = std::numeric_limits<std::uint64_t>::max();

  // The first tick whose processing finds this deadline reached (a ceiling division).
  std::uint64_t due_tick(std::uint64_t deadline_ms) const {
    return deadline_ms / tick_ms_ + (deadline_ms % tick_ms_ != 0 ? 1 : 0);
  }
  TimerList& list_of(const Timer& t);
  void unlink(Timer& t);
  void insert_slot(Timer& t, std::size_t slot);
  void process_slot(std::size_t slot, std::uint64_t limit_ms);
  std::size_t fire_pending();
  std::uint64_t ticks_before_earliest_slotted() const;
  std::size_t find_occupied(std::size_t from) const;  // first occupied slot >= from, or slots
  std::size_t next_occupied_cyclic(std::size_t from) const;
  bool occupied(std::size_t slot) const { return (occupied_[slot / 64] >> (slot % 64)) & 1U; }
  void set_occupied(std::size_t slot) { occupied_[slot / 64] |= std::uint64_t{1} << (slot % 64); }
  void clear_occupied(std::size_t slot) {
    occupied_[slot / 64] &= ~(std::uint64_t{1} << (slot % 64));
  }

  std::uint64_t tick_ms_;
  std::size_t slot_mask_;
  std::uint64_t now_ms_;
  std::uint64_t current_tick_;  // every slot up to and including this tick has been processed
  std::unique_ptr<TimerList[]> slots_;
  std::vector<std::uint64_t> slot_min_ms_;  // lower bound of the deadlines in each slot
  std::vector<std::uint64_t> occupied_;     // bit per non-empty slot
  TimerList due_;                           // deadline already reached when armed
  TimerList firing_;                        // taken out of due_ or a slot, about to fire
  std::uint64_t pending_min_ms_ = kNever;   // lower bound of deadlines in due_ and firing_
  std::size_t slotted_count_ = 0;
  std::size_t armed_count_ = 0;
  bool advancing_ = false;
};

inline Timer::~Timer() {
  if (armed()) {
    wheel_->cancel(*this);
  }
}

}  // namespace rs::core
