#include "core/timer_wheel.hpp"

#include <algorithm>
#include <bit>
#include <cassert>

namespace rs::core {

TimerWheel::TimerWheel(std::uint64_t now_ms, std::size_t slots, std::uint64_t tick_ms)
    : tick_ms_(std::max<std::uint64_t>(tick_ms, 1)),
      slot_mask_(std::bit_ceil(std::max<std::size_t>(slots, 1)) - 1),
      now_ms_(now_ms),
      current_tick_(now_ms / tick_ms_),
      slots_(std::make_unique<TimerList[]>(slot_mask_ + 1)),
      slot_min_ms_(slot_mask_ + 1, kNever),
      occupied_((slot_mask_ + 1 + 63) / 64, 0) {
  assert(std::has_single_bit(slots) && "slot count must be a power of two");
  assert(slot_mask_ < Timer::kInFiring);
}

TimerWheel::~TimerWheel() {
  auto release = [](TimerList& list) {
    while (Timer* t = list.pop_front()) {
      t->where_ = Timer::kUnarmed;
      t->wheel_ = nullptr;
    }
  };
  for (std::size_t s = 0; s <= slot_mask_; ++s) {
    release(slots_[s]);
  }
  release(due_);
  release(firing_);
}

TimerWheel::TimerList& TimerWheel::list_of(const Timer& t) {
  if (t.where_ == Timer::kInDue) {
    return due_;
  }
  if (t.where_ == Timer::kInFiring) {
    return firing_;
  }
  return slots_[t.where_];
}

void TimerWheel::unlink(Timer& t) {
  list_of(t).remove(t);
  if (t.where_ < Timer::kInFiring) {
    --slotted_count_;
    if (slots_[t.where_].empty()) {
      clear_occupied(t.where_);
      slot_min_ms_[t.where_] = kNever;
    }
  }
  t.where_ = Timer::kUnarmed;
  t.wheel_ = nullptr;
  --armed_count_;
}

void TimerWheel::arm(Timer& t, std::uint64_t delay_ms) {
  const std::uint64_t deadline = delay_ms > kNever - now_ms_ ? kNever : now_ms_ + delay_ms;
  arm_at(t, deadline);
}

void TimerWheel::arm_at(Timer& t, std::uint64_t deadline_ms) {
  assert(t.fn_ != nullptr && "arm a timer only after giving it a callback");
  if (t.armed()) {
    t.wheel_->unlink(t);
  }
  t.expiry_ms_ = deadline_ms;
  t.wheel_ = this;
  ++armed_count_;
  if (deadline_ms <= now_ms_) {
    due_.push_back(t);
    t.where_ = Timer::kInDue;
    pending_min_ms_ = std::min(pending_min_ms_, deadline_ms);
    return;
  }
  // The deadline is after now_ms_, so its due tick is after current_tick_: the slot is ahead.
  insert_slot(t, static_cast<std::size_t>(due_tick(deadline_ms) & slot_mask_));
}

void TimerWheel::cancel(Timer& t) {
  if (t.armed()) {
    t.wheel_->unlink(t);
  }
}

void TimerWheel::insert_slot(Timer& t, std::size_t slot) {
  slots_[slot].push_back(t);
  t.where_ = static_cast<std::uint32_t>(slot);
  ++slotted_count_;
  set_occupied(slot);
  slot_min_ms_[slot] = std::min(slot_min_ms_[slot], t.expiry_ms_);
}

// Moves the timers due by limit_ms out of the slot before running any callback, so callbacks
// can arm into or cancel from this slot freely; later rounds stay and give the slot its new
// exact minimum.
void TimerWheel::process_slot(std::size_t slot, std::uint64_t limit_ms) {
  TimerList& list = slots_[slot];
  std::uint64_t remaining_min = kNever;
  for (auto it = list.begin(); it != list.end();) {
    Timer& t = *it++;
    if (t.expiry_ms_ > limit_ms) {
      remaining_min = std::min(remaining_min, t.expiry_ms_);
      continue;
    }
    list.remove(t);
    --slotted_count_;
    firing_.push_back(t);
    t.where_ = Timer::kInFiring;
    pending_min_ms_ = std::min(pending_min_ms_, t.expiry_ms_);
  }
  slot_min_ms_[slot] = remaining_min;
  if (list.empty()) {
    clear_occupied(slot);
  }
}

// A callback may free the memory of its own timer, so nothing touches t after the call.
std::size_t TimerWheel::fire_pending() {
  std::size_t fired = 0;
  while (Timer* t = firing_.pop_front()) {
    t->where_ = Timer::kUnarmed;
    t->wheel_ = nullptr;
    --armed_count_;
    ++fired;
    assert(t->fn_ != nullptr);
    t->fn_(*t);
  }
  if (due_.empty()) {
    pending_min_ms_ = kNever;
  }
  return fired;
}

std::size_t TimerWheel::advance(std::uint64_t now_ms) {
  assert(!advancing_ && "advance() called from a timer callback");
  advancing_ = true;
  now_ms_ = std::max(now_ms_, now_ms);

  // Snapshot due_: whatever its callbacks arm for "now" waits for the next advance().
  while (Timer* t = due_.pop_front()) {
    firing_.push_back(*t);
    t->where_ = Timer::kInFiring;
  }
  std::size_t fired = fire_pending();

  // Whole ticks, jumping straight to the next occupied slot through the bitmap.
  const std::uint64_t target_tick = now_ms_ / tick_ms_;
  const std::uint64_t slots = slot_mask_ + 1;
  std::uint64_t no_skip_before_tick = 0;
  while (current_tick_ < target_tick) {
    if (slotted_count_ == 0) {
      current_tick_ = target_tick;
      break;
    }
    // Across more than a revolution, walking slot by slot revisits every occupied slot once per
    // revolution. Skipping to the earliest deadline costs one bitmap scan; a scan that saves less
    // than a revolution is not retried for a revolution, so it never costs more than the walk.
    if (target_tick - current_tick_ > slots && current_tick_ >= no_skip_before_tick) {
      const std::uint64_t skip_to = std::min(target_tick, ticks_before_earliest_slotted());
      if (skip_to >= current_tick_ + slots) {
        current_tick_ = skip_to;
        no_skip_before_tick = skip_to + 1;
        continue;
      }
      no_skip_before_tick = current_tick_ + slots;
    }
    const std::size_t start = (current_tick_ + 1) & slot_mask_;
    const std::size_t slot = next_occupied_cyclic(start);
    const std::uint64_t distance = ((slot - start) & slot_mask_) + 1;
    if (distance > target_tick - current_tick_) {
      current_tick_ = target_tick;
      break;
    }
    current_tick_ += distance;
    process_slot(slot, current_tick_ * tick_ms_);
    fired += fire_pending();
  }

  // Between two ticks (tick_ms > 1 only) the next slot may already hold reached deadlines.
  if (now_ms_ % tick_ms_ != 0) {
    const std::size_t slot = (current_tick_ + 1) & slot_mask_;
    if (occupied(slot) && slot_min_ms_[slot] <= now_ms_) {
      process_slot(slot, now_ms_);
      fired += fire_pending();
    }
  }
  advancing_ = false;
  return fired;
}

// The last tick before any slotted timer can be due, from the slot minimums (lower bounds).
std::uint64_t TimerWheel::ticks_before_earliest_slotted() const {
  std::uint64_t earliest_ms = kNever;
  for (std::size_t slot = find_occupied(0); slot <= slot_mask_; slot = find_occupied(slot + 1)) {
    earliest_ms = std::min(earliest_ms, slot_min_ms_[slot]);
  }
  const std::uint64_t earliest_tick = due_tick(earliest_ms);
  return earliest_tick == 0 ? 0 : earliest_tick - 1;
}

std::optional<std::uint64_t> TimerWheel::next_expiry_ms() const {
  if (armed_count_ == 0) {
    return std::nullopt;
  }
  std::uint64_t best = pending_min_ms_;
  if (slotted_count_ == 0) {
    return best;
  }

  // Occupied slots in tick order. The slot `distance` ticks ahead only holds deadlines after
  // (current_tick_ + distance - 1) * tick_ms_, so once that passes the best, nothing later wins.
  const std::size_t slots = slot_mask_ + 1;
  const std::size_t start = (current_tick_ + 1) & slot_mask_;
  std::size_t pos = start;
  bool wrapped = false;
  for (;;) {
    std::size_t slot = find_occupied(pos);
    if (slot == slots) {
      if (wrapped || start == 0) {
        break;
      }
      wrapped = true;
      pos = 0;
      continue;
    }
    if (wrapped && slot >= start) {
      break;
    }
    const std::uint64_t distance = ((slot - start) & slot_mask_) + 1;
    const std::uint64_t after_ms = (current_tick_ + distance - 1) * tick_ms_;
    if (after_ms >= best) {
      break;
    }
    best = std::min(best, slot_min_ms_[slot]);
    pos = slot + 1;
  }
  return best;
}

std::size_t TimerWheel::find_occupied(std::size_t from) const {
  const std::size_t slots = slot_mask_ + 1;
  if (from >= slots) {
    return slots;
  }
  std::size_t word_index = from / 64;
  std::uint64_t word = occupied_[word_index] & (~std::uint64_t{0} << (from % 64));
  for (;;) {
    if (word != 0) {
      return word_index * 64 + static_cast<std::size_t>(std::countr_zero(word));
    }
    if (++word_index == occupied_.size()) {
      return slots;
    }
    word = occupied_[word_index];
  }
}

std::size_t TimerWheel::next_occupied_cyclic(std::size_t from) const {
  const std::size_t slot = find_occupied(from);
  return slot != slot_mask_ + 1 ? slot : find_occupied(0);
}

}  // namespace rs::core
