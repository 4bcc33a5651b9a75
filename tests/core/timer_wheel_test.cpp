#include "core/timer_wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <vector>

namespace rs::core {
namespace {

// A timer's owner: counts firings and remembers when the last one happened.
struct Probe {
  explicit Probe(TimerWheel& w, int id_in = 0) : wheel(&w), id(id_in) {
    timer.set(&Probe::on_fire, this);
  }
  static void on_fire(Timer& t) {
    auto* self = static_cast<Probe*>(t.context());
    ++self->fired;
    self->fired_at_ms = self->wheel->now_ms();
    if (self->order != nullptr) {
      self->order->push_back(self->id);
    }
    if (self->then) {
      self->then(*self);
    }
  }

  TimerWheel* wheel;
  int id;
  Timer timer;
  int fired = 0;
  std::uint64_t fired_at_ms = 0;
  std::vector<int>* order = nullptr;
  void (*then)(Probe&) = nullptr;
  Probe* other = nullptr;
};

TEST(TimerWheel, FiresAtDeadlineAndNotBefore) {
  TimerWheel wheel(1000);
  Probe p(wheel);
  wheel.arm(p.timer, 50);
  EXPECT_TRUE(p.timer.armed());
  EXPECT_EQ(p.timer.expiry_ms(), 1050U);
  for (std::uint64_t now = 1001; now < 1050; ++now) {
    EXPECT_EQ(wheel.advance(now), 0U);
    ASSERT_EQ(p.fired, 0) << "fired early at " << now;
  }
  EXPECT_EQ(wheel.advance(1050), 1U);
  EXPECT_EQ(p.fired, 1);
  EXPECT_EQ(p.fired_at_ms, 1050U);
  EXPECT_FALSE(p.timer.armed());
  EXPECT_EQ(wheel.armed_count(), 0U);
  wheel.advance(5000);
  EXPECT_EQ(p.fired, 1);
}

// set_now() moves the clock arm() counts from and fires nothing: the loops call it after a
// wait, handle what arrived (which may cancel a due timer), then advance().
TEST(TimerWheel, SetNowMovesTheArmingClockWithoutFiring) {
  TimerWheel wheel(1000);
  Probe overdue(wheel, 1);
  Probe cancelled(wheel, 2);
  wheel.arm(overdue.timer, 10);
  wheel.arm(cancelled.timer, 20);
  wheel.set_now(3000);  // two revolutions of the 1024-slot wheel later
  EXPECT_EQ(wheel.now_ms(), 3000U);
  EXPECT_EQ(overdue.fired, 0);
  wheel.cancel(cancelled.timer);  // the input that beat its deadline
  Probe fresh(wheel, 3);
  wheel.arm(fresh.timer, 10);
  EXPECT_EQ(fresh.timer.expiry_ms(), 3010U) << "counts from the new clock";
  EXPECT_EQ(wheel.advance(3000), 1U);
  EXPECT_EQ(overdue.fired, 1);
  EXPECT_EQ(cancelled.fired, 0);
  EXPECT_EQ(wheel.advance(3009), 0U);
  EXPECT_EQ(wheel.advance(3010), 1U);
  EXPECT_EQ(fresh.fired, 1);
  wheel.set_now(2000);  // never backwards
  EXPECT_EQ(wheel.now_ms(), 3010U);
}

TEST(TimerWheel, CoarseTicksStillFireAtDeadlineAndNotBefore) {
  TimerWheel wheel(1003, 16, 10);
  std::vector<std::unique_ptr<Probe>> probes;
  for (std::uint64_t delay = 0; delay < 400; delay += 3) {
    probes.push_back(std::make_unique<Probe>(wheel));
    wheel.arm(probes.back()->timer, delay);
  }
  for (std::uint64_t now = 1003; now <= 1003 + 400; now += 1) {
    wheel.advance(now);
    for (const auto& p : probes) {
      const bool due = p->timer.expiry_ms() <= now;
      ASSERT_EQ(p->fired, due ? 1 : 0) << "deadline " << p->timer.expiry_ms() << " now " << now;
      if (due) {
        ASSERT_EQ(p->fired_at_ms, std::max<std::uint64_t>(p->timer.expiry_ms(), 1003));
      }
    }
  }
}

TEST(TimerWheel, CancelPreventsFiring) {
  TimerWheel wheel(0);
  Probe p(wheel);
  wheel.arm(p.timer, 10);
  wheel.cancel(p.timer);
  EXPECT_FALSE(p.timer.armed());
  EXPECT_EQ(wheel.armed_count(), 0U);
  EXPECT_EQ(wheel.advance(100), 0U);
  EXPECT_EQ(p.fired, 0);
}

TEST(TimerWheel, CancelOfUnarmedTimerIsNoop) {
  TimerWheel wheel(0);
  Probe p(wheel);
  wheel.cancel(p.timer);
  wheel.arm(p.timer, 5);
  wheel.cancel(p.timer);
  wheel.cancel(p.timer);
  EXPECT_EQ(wheel.armed_count(), 0U);
}

TEST(TimerWheel, RearmMovesTheDeadline) {
  TimerWheel wheel(0);
  Probe sooner(wheel);
  Probe later(wheel);
  wheel.arm(sooner.timer, 100);
  wheel.arm(sooner.timer, 30);
  wheel.arm(later.timer, 30);
  wheel.arm(later.timer, 100);
  EXPECT_EQ(wheel.armed_count(), 2U);
  wheel.advance(30);
  EXPECT_EQ(sooner.fired, 1);
  EXPECT_EQ(later.fired, 0);
  wheel.advance(99);
  EXPECT_EQ(later.fired, 0);
  wheel.advance(100);
  EXPECT_EQ(sooner.fired, 1);
  EXPECT_EQ(later.fired, 1);
}

TEST(TimerWheel, FarFutureTimerFiresOnceAfterSeveralRevolutions) {
  constexpr std::uint64_t kRevolution = 64;
  TimerWheel wheel(0, kRevolution);
  Probe odd(wheel);
  Probe same_slot(wheel);  // a whole number of revolutions: lands in the current slot
  wheel.arm(odd.timer, kRevolution * 5 + 7);
  wheel.arm(same_slot.timer, kRevolution * 3);
  for (std::uint64_t now = 1; now <= kRevolution * 8; ++now) {
    wheel.advance(now);
    ASSERT_EQ(odd.fired, now >= kRevolution * 5 + 7 ? 1 : 0) << now;
    ASSERT_EQ(same_slot.fired, now >= kRevolution * 3 ? 1 : 0) << now;
  }
  EXPECT_EQ(odd.fired_at_ms, kRevolution * 5 + 7);
  EXPECT_EQ(same_slot.fired_at_ms, kRevolution * 3);
}

TEST(TimerWheel, JumpOverManyRevolutionsFiresEachDueTimerOnceInDeadlineOrder) {
  TimerWheel wheel(0, 16);
  std::vector<int> order;
  std::vector<std::unique_ptr<Probe>> probes;
  std::mt19937 rng(7);
  for (int i = 0; i < 200; ++i) {
    probes.push_back(std::make_unique<Probe>(wheel, i));
    probes.back()->order = &order;
    wheel.arm(probes.back()->timer, std::uniform_int_distribution<std::uint64_t>(1, 1000)(rng));
  }
  EXPECT_EQ(wheel.advance(600),
            static_cast<std::size_t>(std::count_if(probes.begin(), probes.end(), [](const auto& p) {
              return p->timer.expiry_ms() <= 600;
            })));
  wheel.advance(100000);
  ASSERT_EQ(order.size(), 200U);
  for (const auto& p : probes) {
    EXPECT_EQ(p->fired, 1);
  }
  for (std::size_t i = 1; i < order.size(); ++i) {
    EXPECT_LE(probes[order[i - 1]]->timer.expiry_ms(), probes[order[i]]->timer.expiry_ms());
  }
}

TEST(TimerWheel, HugeJumpPastSparseFarTimersFiresThemInOrder) {
  // A million revolutions: walking them slot by slot would take seconds.
  TimerWheel wheel(0, 1024);
  std::vector<int> order;
  Probe near(wheel, 0);
  Probe far(wheel, 1);
  Probe farther(wheel, 2);
  Probe beyond(wheel, 3);
  for (Probe* p : {&near, &far, &farther, &beyond})
    p->order = &order;
  wheel.arm(near.timer, 5);
  wheel.arm(far.timer, 500'000'000);
  wheel.arm(farther.timer, 1'000'000'007);
  wheel.arm(beyond.timer, 3'000'000'000);
  EXPECT_EQ(wheel.advance(2'000'000'000), 3U);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_TRUE(beyond.timer.armed());
  EXPECT_EQ(wheel.next_expiry_ms(), 3'000'000'000U);
  EXPECT_EQ(wheel.advance(2'999'999'999), 0U);
  EXPECT_EQ(wheel.advance(3'000'000'000), 1U);
}

TEST(TimerWheel, CallbackCanCancelAnotherTimerInTheSameSlot) {
  TimerWheel wheel(0);
  Probe first(wheel);
  Probe second(wheel);
  first.other = &second;
  first.then = [](Probe& self) { self.wheel->cancel(self.other->timer); };
  wheel.arm(first.timer, 10);
  wheel.arm(second.timer, 10);
  EXPECT_EQ(wheel.advance(10), 1U);
  EXPECT_EQ(first.fired, 1);
  EXPECT_EQ(second.fired, 0);
  EXPECT_EQ(wheel.armed_count(), 0U);
}

TEST(TimerWheel, CallbackCanArmAnotherTimer) {
  TimerWheel wheel(0);
  Probe first(wheel);
  Probe second(wheel);
  first.other = &second;
  first.then = [](Probe& self) { self.wheel->arm(self.other->timer, 5); };
  wheel.arm(first.timer, 10);
  wheel.advance(10);
  EXPECT_TRUE(second.timer.armed());
  EXPECT_EQ(second.timer.expiry_ms(), 15U);
  wheel.advance(14);
  EXPECT_EQ(second.fired, 0);
  wheel.advance(15);
  EXPECT_EQ(second.fired, 1);
}

TEST(TimerWheel, CallbackCanMoveAnotherDueTimerLater) {
  TimerWheel wheel(0);
  Probe first(wheel);
  Probe second(wheel);
  first.other = &second;
  first.then = [](Probe& self) { self.wheel->arm(self.other->timer, 20); };
  wheel.arm(first.timer, 10);
  wheel.arm(second.timer, 10);  // already queued to fire when first's callback moves it
  EXPECT_EQ(wheel.advance(10), 1U);
  EXPECT_EQ(second.fired, 0);
  wheel.advance(30);
  EXPECT_EQ(second.fired, 1);
}

TEST(TimerWheel, TimerArmedInCallbackFiresOnNextAdvance) {
  TimerWheel wheel(0);
  Probe p(wheel);
  p.then = [](Probe& self) { self.wheel->arm(self.timer, 0); };
  wheel.arm(p.timer, 0);
  EXPECT_EQ(wheel.advance(0), 1U);
  EXPECT_TRUE(p.timer.armed());
  EXPECT_EQ(wheel.advance(0), 1U);
  EXPECT_EQ(wheel.advance(1), 1U);
  EXPECT_EQ(p.fired, 3);
}

TEST(TimerWheel, SelfRearmingTimerFiresOncePerAdvanceAfterALongGap) {
  TimerWheel wheel(0);
  Probe p(wheel);
  p.then = [](Probe& self) { self.wheel->arm(self.timer, 10); };
  wheel.arm(p.timer, 10);
  EXPECT_EQ(wheel.advance(1000), 1U) << "a period restarts from now, it does not catch up";
  EXPECT_EQ(p.timer.expiry_ms(), 1010U);
}

TEST(TimerWheel, CallbackMayDestroyItsOwnerAndOtherPendingOwners) {
  TimerWheel wheel(0);
  auto* first = new Probe(wheel);
  auto* second = new Probe(wheel);
  auto survivor = std::make_unique<Probe>(wheel);
  first->other = second;
  first->then = [](Probe& self) {
    delete self.other;  // its armed timer cancels itself
    delete &self;
  };
  wheel.arm(first->timer, 5);
  wheel.arm(second->timer, 5);
  wheel.arm(survivor->timer, 5);
  EXPECT_EQ(wheel.advance(5), 2U);
  EXPECT_EQ(survivor->fired, 1);
  EXPECT_EQ(wheel.armed_count(), 0U);
}

TEST(TimerWheel, ArmAtPastDeadlineFiresOnNextAdvance) {
  TimerWheel wheel(500);
  Probe p(wheel);
  wheel.arm_at(p.timer, 100);
  EXPECT_EQ(wheel.next_expiry_ms(), 100U);
  EXPECT_EQ(wheel.advance(500), 1U);
  EXPECT_EQ(p.fired, 1);
}

TEST(TimerWheel, TimeNeverGoesBackwards) {
  TimerWheel wheel(100);
  Probe p(wheel);
  wheel.arm(p.timer, 10);
  wheel.advance(50);
  EXPECT_EQ(wheel.now_ms(), 100U);
  EXPECT_EQ(p.fired, 0);
  wheel.advance(110);
  EXPECT_EQ(p.fired, 1);
}

TEST(TimerWheel, DestroyingArmedTimerCancelsIt) {
  TimerWheel wheel(0);
  {
    Probe p(wheel);
    wheel.arm(p.timer, 10);
    EXPECT_EQ(wheel.armed_count(), 1U);
  }
  EXPECT_EQ(wheel.armed_count(), 0U);
  EXPECT_EQ(wheel.advance(100), 0U);
}

TEST(TimerWheel, DestroyingWheelLeavesTimersUnarmed) {
  auto wheel = std::make_unique<TimerWheel>(0);
  Probe p(*wheel);
  wheel->arm(p.timer, 10);
  wheel.reset();
  EXPECT_FALSE(p.timer.armed());  // and p's destructor must not touch the dead wheel
}

TEST(TimerWheel, ArmingOnAnotherWheelMovesTheTimer) {
  TimerWheel a(0);
  TimerWheel b(0);
  Probe p(a);
  a.arm(p.timer, 10);
  b.arm(p.timer, 20);
  EXPECT_EQ(a.armed_count(), 0U);
  EXPECT_EQ(b.armed_count(), 1U);
  EXPECT_EQ(a.advance(50), 0U);
  EXPECT_EQ(b.advance(50), 1U);
}

TEST(TimerWheel, NextExpiryIsNulloptWhenNothingArmed) {
  TimerWheel wheel(0);
  EXPECT_EQ(wheel.next_expiry_ms(), std::nullopt);
  Probe p(wheel);
  wheel.arm(p.timer, 10);
  wheel.cancel(p.timer);
  EXPECT_EQ(wheel.next_expiry_ms(), std::nullopt);
}

TEST(TimerWheel, NextExpiryIsExactWithinOneRevolution) {
  TimerWheel wheel(1000, 256);
  Probe a(wheel);
  Probe b(wheel);
  wheel.arm(a.timer, 40);
  wheel.arm(b.timer, 25);
  EXPECT_EQ(wheel.next_expiry_ms(), 1025U);
  wheel.advance(1025);
  EXPECT_EQ(wheel.next_expiry_ms(), 1040U);
}

TEST(TimerWheel, NextExpiryLooksPastSlotsHoldingOnlyLaterRounds) {
  // Idle timeouts many revolutions out fill every slot; the answer must still be the real
  // earliest deadline, not "the next occupied slot", or an idle loop would wake every tick.
  TimerWheel wheel(0, 64);
  std::vector<std::unique_ptr<Probe>> probes;
  for (std::uint64_t i = 0; i < 64; ++i) {
    probes.push_back(std::make_unique<Probe>(wheel));
    wheel.arm(probes.back()->timer, std::uint64_t{64} * 10 + i);
  }
  EXPECT_EQ(wheel.next_expiry_ms(), 640U);
}

TEST(TimerWheel, CoarseTickNextExpiryIsTheDeadline) {
  TimerWheel wheel(0, 64, 10);
  Probe p(wheel);
  wheel.arm(p.timer, 23);
  EXPECT_EQ(wheel.next_expiry_ms(), 23U);
  wheel.advance(23);
  EXPECT_EQ(p.fired, 1) << "waking at next_expiry_ms() must fire the timer";
}

// Random arms, re-arms, cancels and advances against a brute-force model: every timer fires
// exactly once, at the first advance at or after its deadline, and next_expiry_ms() is never
// later than the earliest deadline.
void run_random_model(std::size_t slots, std::uint64_t tick_ms, std::uint32_t seed) {
  constexpr std::uint64_t kStart = 12345;
  TimerWheel wheel(kStart, slots, tick_ms);
  std::vector<std::unique_ptr<Probe>> probes;
  std::vector<std::optional<std::uint64_t>> model;  // deadline per armed probe
  std::vector<int> expected_fired;
  for (int i = 0; i < 100; ++i) {
    probes.push_back(std::make_unique<Probe>(wheel, i));
    model.emplace_back();
    expected_fired.push_back(0);
  }
  std::mt19937 rng(seed);
  auto pick = [&](std::uint64_t lo, std::uint64_t hi) {
    return std::uniform_int_distribution<std::uint64_t>(lo, hi)(rng);
  };
  std::uint64_t now = kStart;
  for (int step = 0; step < 10000; ++step) {
    const std::size_t i = pick(0, probes.size() - 1);
    Probe& p = *probes[i];
    const std::uint64_t op = pick(0, 9);
    if (op < 4) {
      const std::uint64_t delay = pick(0, 1) == 0 ? pick(0, 50) : pick(0, slots * tick_ms * 6);
      wheel.arm(p.timer, delay);
      model[i] = now + delay;
    } else if (op < 5) {
      const std::uint64_t deadline = now + pick(0, 300) - 100;  // sometimes in the past
      wheel.arm_at(p.timer, deadline);
      model[i] = deadline;
    } else if (op < 7) {
      wheel.cancel(p.timer);
      model[i].reset();
    } else {
      now += op == 9 && pick(0, 20) == 0 ? pick(0, slots * tick_ms * 8) : pick(0, 7);
      wheel.advance(now);
      for (std::size_t j = 0; j < probes.size(); ++j) {
        if (model[j] && *model[j] <= now) {
          ++expected_fired[j];
          ASSERT_EQ(probes[j]->fired_at_ms, now) << "timer " << j << " late or early";
          model[j].reset();
        }
        ASSERT_EQ(probes[j]->fired, expected_fired[j]) << "timer " << j << " at " << now;
      }
    }
    std::optional<std::uint64_t> earliest;
    std::size_t armed = 0;
    for (const auto& deadline : model) {
      if (!deadline) {
        continue;
      }
      ++armed;
      earliest = earliest ? std::min(*earliest, *deadline) : *deadline;
    }
    ASSERT_EQ(wheel.armed_count(), armed);
    const std::optional<std::uint64_t> next = wheel.next_expiry_ms();
    ASSERT_EQ(next.has_value(), earliest.has_value());
    if (next) {
      ASSERT_LE(*next, *earliest) << "step " << step;
    }
  }
}

TEST(TimerWheel, RandomOperationsMatchBruteForceModel) {
  run_random_model(64, 1, 1);
}

TEST(TimerWheel, RandomOperationsMatchBruteForceModelWithCoarseTicks) {
  run_random_model(32, 7, 2);
}

TEST(TimerWheel, TenThousandTimersEachFireOnceAtTheirDeadline) {
  TimerWheel wheel(0);
  std::vector<std::unique_ptr<Probe>> probes;
  probes.reserve(10000);
  for (int i = 0; i < 10000; ++i) {
    probes.push_back(std::make_unique<Probe>(wheel, i));
    wheel.arm(probes.back()->timer, static_cast<std::uint64_t>(i) * 7919 % 5000 + 1);
  }
  EXPECT_EQ(wheel.armed_count(), 10000U);
  std::size_t fired = 0;
  for (std::uint64_t now = 1; now <= 5000; ++now) {
    fired += wheel.advance(now);
  }
  EXPECT_EQ(fired, 10000U);
  EXPECT_EQ(wheel.armed_count(), 0U);
  for (const auto& p : probes) {
    ASSERT_EQ(p->fired, 1);
    ASSERT_EQ(p->fired_at_ms, p->timer.expiry_ms());
  }
}

}  // namespace
}  // namespace rs::core
