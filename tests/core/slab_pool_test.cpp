#include "core/slab_pool.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <set>
#include <stdexcept>
#include <vector>

#include "core/asan.hpp"
#include "tests/support/resident.hpp"

namespace rs::core {
namespace {

struct Point {
  Point(int x_in, int y_in) : x(x_in), y(y_in) {}
  int x;
  int y;
};

TEST(SlabPool, MakeAndDestroyTrackOutstanding) {
  SlabPool<Point> pool(4);
  EXPECT_EQ(pool.outstanding(), 0U);
  Point* a = pool.make(1, 2);
  Point* b = pool.make(3, 4);
  EXPECT_EQ(pool.outstanding(), 2U);
  EXPECT_EQ(a->x, 1);
  EXPECT_EQ(b->y, 4);
  pool.destroy(a);
  EXPECT_EQ(pool.outstanding(), 1U);
  pool.destroy(b);
  EXPECT_EQ(pool.outstanding(), 0U);
}

TEST(SlabPool, DestroyOfNullIsIgnored) {
  SlabPool<Point> pool;
  pool.destroy(nullptr);
  EXPECT_EQ(pool.outstanding(), 0U);
}

TEST(SlabPool, ReusesFreedSlotsWithoutGrowing) {
  SlabPool<Point> pool(8);
  std::vector<Point*> first;
  first.reserve(8);
  for (int i = 0; i < 8; ++i) {
    first.push_back(pool.make(i, i));
  }
  EXPECT_EQ(pool.grows(), 1U);
  const std::set<Point*> slots(first.begin(), first.end());
  for (Point* p : first) {
    pool.destroy(p);
  }
  for (int round = 0; round < 100; ++round) {
    std::vector<Point*> again;
    again.reserve(8);
    for (int i = 0; i < 8; ++i) {
      again.push_back(pool.make(i, -i));
    }
    for (Point* p : again) {
      EXPECT_TRUE(slots.count(p) == 1) << "slot from outside the slab";
    }
    for (Point* p : again) {
      pool.destroy(p);
    }
  }
  EXPECT_EQ(pool.grows(), 1U);
  EXPECT_EQ(pool.capacity(), 8U);
}

TEST(SlabPool, GrowsOneSlabWhenFull) {
  SlabPool<Point> pool(4);
  EXPECT_EQ(pool.capacity(), 0U);
  EXPECT_EQ(pool.grows(), 0U);
  std::vector<Point*> objects;
  objects.reserve(5);
  for (int i = 0; i < 4; ++i) {
    objects.push_back(pool.make(i, i));
  }
  EXPECT_EQ(pool.grows(), 1U);
  objects.push_back(pool.make(4, 4));
  EXPECT_EQ(pool.grows(), 2U);
  EXPECT_EQ(pool.capacity(), 8U);
  for (Point* p : objects) {
    pool.destroy(p);
  }
}

TEST(SlabPool, ReserveGrowsCapacityUpFront) {
  SlabPool<Point> pool(16);
  pool.reserve(40);
  EXPECT_EQ(pool.capacity(), 48U);
  EXPECT_EQ(pool.grows(), 3U);
  std::vector<Point*> objects;
  objects.reserve(48);
  for (int i = 0; i < 48; ++i) {
    objects.push_back(pool.make(i, i));
  }
  EXPECT_EQ(pool.grows(), 3U) << "reserved slots must satisfy make() without growing";
  pool.reserve(10);  // already enough
  EXPECT_EQ(pool.grows(), 3U);
  for (Point* p : objects) {
    pool.destroy(p);
  }
}

struct alignas(64) CacheLine {
  std::uint8_t byte = 0;
};

TEST(SlabPool, AlignsOverAlignedTypes) {
  SlabPool<CacheLine> pool(3);  // odd count so a misaligned stride would show
  std::vector<CacheLine*> objects;
  objects.reserve(10);
  for (int i = 0; i < 10; ++i) {
    objects.push_back(pool.make());
  }
  for (CacheLine* p : objects) {
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(p) % alignof(CacheLine), 0U);
  }
  for (CacheLine* p : objects) {
    pool.destroy(p);
  }
}

TEST(SlabPool, SmallTypesStillHoldTheFreeListLink) {
  SlabPool<std::uint8_t> pool(5);
  std::vector<std::uint8_t*> objects;
  objects.reserve(20);
  for (int i = 0; i < 20; ++i) {
    objects.push_back(pool.make(static_cast<std::uint8_t>(i)));
  }
  for (int i = 0; i < 20; ++i) {
    EXPECT_EQ(*objects[i], i);
  }
  for (std::uint8_t* p : objects) {
    pool.destroy(p);
  }
  EXPECT_EQ(pool.outstanding(), 0U);
}

TEST(SlabPool, ManyObjectsAcrossSlabsKeepTheirValues) {
  SlabPool<Point> pool(32);
  std::vector<Point*> objects;
  objects.reserve(10000);
  for (int i = 0; i < 10000; ++i) {
    objects.push_back(pool.make(i, 2 * i));
  }
  EXPECT_EQ(pool.outstanding(), 10000U);
  EXPECT_EQ(pool.grows(), (10000U + 31) / 32);
  // Free every other object and refill: survivors must be untouched.
  for (std::size_t i = 0; i < objects.size(); i += 2) {
    pool.destroy(objects[i]);
  }
  for (std::size_t i = 0; i < objects.size(); i += 2) {
    objects[i] = pool.make(static_cast<int>(i), 2 * static_cast<int>(i));
  }
  for (std::size_t i = 0; i < objects.size(); ++i) {
    ASSERT_EQ(objects[i]->x, static_cast<int>(i));
    ASSERT_EQ(objects[i]->y, 2 * static_cast<int>(i));
  }
  EXPECT_EQ(std::set<Point*>(objects.begin(), objects.end()).size(), objects.size());
  for (Point* p : objects) {
    pool.destroy(p);
  }
  EXPECT_EQ(pool.outstanding(), 0U);
}

struct CountsLife {
  explicit CountsLife(int* live_in) : live(live_in) { ++*live; }
  ~CountsLife() { --*live; }
  CountsLife(const CountsLife&) = delete;
  CountsLife& operator=(const CountsLife&) = delete;
  int* live;
};

TEST(SlabPool, DestroyRunsDestructor) {
  int live = 0;
  SlabPool<CountsLife> pool;
  CountsLife* a = pool.make(&live);
  CountsLife* b = pool.make(&live);
  EXPECT_EQ(live, 2);
  pool.destroy(a);
  EXPECT_EQ(live, 1);
  pool.destroy(b);
  EXPECT_EQ(live, 0);
}

struct ThrowsOnNegative {
  explicit ThrowsOnNegative(int v) : value(v) {
    if (v < 0) {
      throw std::invalid_argument("negative");
    }
  }
  int value;
};

TEST(SlabPool, ThrowingConstructorGivesTheSlotBack) {
  SlabPool<ThrowsOnNegative> pool(2);
  EXPECT_THROW(pool.make(-1), std::invalid_argument);
  EXPECT_EQ(pool.outstanding(), 0U);
  ThrowsOnNegative* a = pool.make(1);
  ThrowsOnNegative* b = pool.make(2);
  EXPECT_EQ(pool.grows(), 1U) << "the failed slot must be reusable";
  pool.destroy(a);
  pool.destroy(b);
}

#if defined(RS_ASAN_ENABLED)
TEST(SlabPoolDeathTest, TouchingDestroyedObjectIsCaughtByAsan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        SlabPool<Point> pool;
        Point* p = pool.make(1, 2);
        pool.destroy(p);
        volatile int sink = p->y;
        (void)sink;
      },
      "use-after-poison");
}
#endif

}  // namespace
}  // namespace rs::core

namespace rs::core {
namespace {

// Five pages and a bit: its slot is six whole pages, page-aligned.
struct Big {
  explicit Big(char fill) { std::memset(bytes, fill, sizeof bytes); }
  char bytes[5 * 4096 + 100];
};

TEST(SlabPool, DestroyAndReleaseGivesAllOfAPageSizedObjectsMemoryBack) {
  SlabPool<Big> pool(4);
  static_assert(SlabPool<Big>::releases_pages());
  static_assert(!SlabPool<Point>::releases_pages(), "small objects share their pages");
  std::vector<Big*> objects;
  for (char fill : {'a', 'b', 'c'})
    objects.push_back(pool.make(fill));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(objects[1]) % 4096, 0U) << "page-aligned slots";
  ASSERT_GE(test::resident_pages(objects[1], sizeof(Big)), 5U);
  pool.destroy_and_release(objects[1]);
  EXPECT_EQ(pool.outstanding(), 2U);
  EXPECT_EQ(pool.released(), 1U);
  EXPECT_EQ(test::resident_pages(objects[1], sizeof(Big)), 0U) << "every page of it goes back";
  EXPECT_GE(test::resident_pages(objects[2], sizeof(Big)), 5U) << "its neighbours keep theirs";
  // A free slot that kept its pages is taken first; then the released one, constructed anew
  // (whole again); nothing grew.
  pool.destroy(objects[0]);
  EXPECT_EQ(pool.make('y'), objects[0]);
  Big* again = pool.make('z');
  EXPECT_EQ(again, objects[1]);
  EXPECT_EQ(pool.released(), 0U);
  EXPECT_EQ(again->bytes[0], 'z');
  EXPECT_EQ(again->bytes[sizeof(Big) - 1], 'z');
  EXPECT_EQ(objects[2]->bytes[sizeof(Big) - 1], 'c');
  EXPECT_EQ(pool.grows(), 1U);
  pool.destroy_and_release(nullptr);
  for (Big* b : {objects[0], again, objects[2]})
    pool.destroy(b);
}

}  // namespace
}  // namespace rs::core
