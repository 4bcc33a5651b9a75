#include "core/deadline.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <optional>
#include <utility>

namespace rs::core {
namespace {

struct Owner {
  explicit Owner(TimerWheel& w) : wheel(&w) {}
  static void on_deadline(Timer& timer) {
    auto& self = *static_cast<Owner*>(timer.context());
    if (!self.deadline.reached(*self.wheel)) return;
    ++self.fired;
    self.fired_at_ms = self.wheel->now_ms();
    if (self.again_ms) {
      self.deadline.set(*self.wheel, *self.again_ms);
      self.again_ms.reset();
    }
  }

  TimerWheel* wheel;
  Deadline deadline{&Owner::on_deadline, this};
  int fired = 0;
  std::uint64_t fired_at_ms = 0;
  std::optional<std::uint64_t> again_ms;
};

// Advances to just before `at` (nothing more fires), then to `at` (one more firing, then).
void expect_fires_at(TimerWheel& wheel, const Owner& owner, std::uint64_t at) {
  const int before = owner.fired;
  wheel.advance(at - 1);
  EXPECT_EQ(owner.fired, before) << "fired before " << at;
  wheel.advance(at);
  EXPECT_EQ(owner.fired, before + 1) << "did not fire at " << at;
  EXPECT_EQ(owner.fired_at_ms, at);
}

TEST(Deadline, FiresWhenItPassesAndNotBefore) {
  TimerWheel wheel(1000);
  Owner owner(wheel);
  owner.deadline.set(wheel, 100);
  EXPECT_TRUE(owner.deadline.is_set());
  expect_fires_at(wheel, owner, 1100);
  EXPECT_FALSE(owner.deadline.is_set());
  EXPECT_EQ(wheel.armed_count(), 0U);
}

TEST(Deadline, MovingItLaterLeavesTheTimerWhereItIsAndStillFiresOnTime) {
  TimerWheel wheel(0);
  Owner owner(wheel);
  owner.deadline.set(wheel, 100);
  for (std::uint64_t now = 10; now <= 90; now += 10) {
    wheel.advance(now);
    owner.deadline.clear();          // a request ends...
    owner.deadline.set(wheel, 100);  // ...and the next one starts its own deadline
    EXPECT_EQ(wheel.next_expiry_ms(), 100U) << "the timer was moved at " << now;
  }
  wheel.advance(100);  // the timer fires early, finds the deadline at 190 and re-arms for it
  EXPECT_EQ(owner.fired, 0);
  EXPECT_EQ(wheel.next_expiry_ms(), 190U);
  expect_fires_at(wheel, owner, 190);
}

TEST(Deadline, MovingItEarlierMovesTheTimer) {
  TimerWheel wheel(0);
  Owner owner(wheel);
  owner.deadline.set(wheel, 500);
  owner.deadline.set(wheel, 20);
  EXPECT_EQ(wheel.next_expiry_ms(), 20U);
  wheel.advance(20);
  EXPECT_EQ(owner.fired, 1);
  EXPECT_EQ(wheel.armed_count(), 0U);
}

TEST(Deadline, ClearedDeadlineNeverFires) {
  TimerWheel wheel(0);
  Owner owner(wheel);
  owner.deadline.set(wheel, 50);
  owner.deadline.clear();
  EXPECT_FALSE(owner.deadline.is_set());
  wheel.advance(1000);
  EXPECT_EQ(owner.fired, 0);
  EXPECT_EQ(wheel.armed_count(), 0U) << "the stale timer fired once and stopped";
}

TEST(Deadline, CallbackMaySetItAgain) {
  TimerWheel wheel(0);
  Owner owner(wheel);
  owner.again_ms = 30;
  owner.deadline.set(wheel, 10);
  wheel.advance(10);
  EXPECT_EQ(owner.fired, 1);
  EXPECT_TRUE(owner.deadline.is_set());
  expect_fires_at(wheel, owner, 40);
}

// The session closes (and may free itself) from its deadline's callback.
TEST(Deadline, OwnerMayDestroyItselfInTheCallback) {
  TimerWheel wheel(0);
  struct Self {
    static void on_deadline(Timer& timer) {
      auto* self = static_cast<Self*>(timer.context());
      if (self->deadline.reached(*self->wheel)) delete self;
    }
    TimerWheel* wheel;
    Deadline deadline{&Self::on_deadline, this};
  };
  auto* self = new Self{&wheel};  // NOLINT(cppcoreguidelines-owning-memory): freed by its callback
  self->deadline.set(wheel, 5);
  wheel.advance(5);  // ASan reports any touch of the freed owner
  EXPECT_EQ(wheel.armed_count(), 0U);
}

// Two deadlines due in one advance, the first setting the second (later) while the second's
// timer is already taken out to fire: the second fires at its new time, not now.
TEST(Deadline, ACallbackMayMoveAnotherDeadlineDueInTheSameAdvance) {
  TimerWheel wheel(0);
  Owner a(wheel);
  Owner b(wheel);
  a.deadline.set(wheel, 10);
  b.deadline.set(wheel, 10);
  struct Move {
    static void on_deadline(Timer& timer) {
      auto& owners = *static_cast<std::pair<Owner*, Owner*>*>(timer.context());
      ++owners.first->fired;
      owners.second->deadline.set(*owners.first->wheel, 50);
    }
  };
  std::pair<Owner*, Owner*> both{&a, &b};
  Deadline mover{&Move::on_deadline, &both};
  mover.set(wheel, 5);
  wheel.advance(20);      // a stalled loop: every timer due at once, the mover first
  EXPECT_EQ(a.fired, 2);  // once from the mover, once its own deadline
  EXPECT_EQ(b.fired, 0);
  wheel.advance(24);
  EXPECT_EQ(b.fired, 0);
  expect_fires_at(wheel, b, 70);
}

TEST(Deadline, DestroyedWhileArmedLeavesTheWheelClean) {
  TimerWheel wheel(0);
  {
    Owner owner(wheel);
    owner.deadline.set(wheel, 10);
    EXPECT_EQ(wheel.armed_count(), 1U);
  }
  EXPECT_EQ(wheel.armed_count(), 0U);
  wheel.advance(100);
}

}  // namespace
}  // namespace rs::core
