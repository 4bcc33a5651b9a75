#include "core/intrusive_list.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace rs::core {
namespace {

struct Item {
  explicit Item(int v) : value(v) {}
  int value;
  ListNode by_age;
  ListNode by_state;
};

using AgeList = IntrusiveList<Item, &Item::by_age>;
using StateList = IntrusiveList<Item, &Item::by_state>;

std::vector<int> values(const AgeList& list) {
  std::vector<int> out;
  for (const Item& item : list) {
    out.push_back(item.value);
  }
  return out;
}

TEST(IntrusiveList, StartsEmpty) {
  AgeList list;
  EXPECT_TRUE(list.empty());
  EXPECT_EQ(list.size(), 0U);
  EXPECT_EQ(list.front(), nullptr);
  EXPECT_EQ(list.back(), nullptr);
  EXPECT_EQ(list.pop_front(), nullptr);
  EXPECT_EQ(list.pop_back(), nullptr);
  EXPECT_EQ(list.begin(), list.end());
}

TEST(IntrusiveList, PushBackAndPopFrontAreFifo) {
  Item a(1), b(2), c(3);
  AgeList list;
  list.push_back(a);
  list.push_back(b);
  list.push_back(c);
  EXPECT_EQ(list.size(), 3U);
  EXPECT_EQ(list.front(), &a);
  EXPECT_EQ(list.back(), &c);
  EXPECT_EQ(list.pop_front(), &a);
  EXPECT_EQ(list.pop_front(), &b);
  EXPECT_EQ(list.pop_front(), &c);
  EXPECT_TRUE(list.empty());
  EXPECT_FALSE(a.by_age.linked());
}

TEST(IntrusiveList, PushFrontPrependsAndPopBackTakesTheLast) {
  Item a(1), b(2), c(3);
  AgeList list;
  list.push_front(a);
  list.push_front(b);
  list.push_back(c);
  EXPECT_EQ(values(list), (std::vector<int>{2, 1, 3}));
  EXPECT_EQ(list.pop_back(), &c);
  EXPECT_EQ(values(list), (std::vector<int>{2, 1}));
  list.clear();
}

TEST(IntrusiveList, RemoveFromMiddleKeepsOrderAndUnlinksNode) {
  Item a(1), b(2), c(3);
  AgeList list;
  list.push_back(a);
  list.push_back(b);
  list.push_back(c);
  EXPECT_TRUE(list.contains_node(b));
  list.remove(b);
  EXPECT_FALSE(AgeList::is_linked(b));
  EXPECT_EQ(b.by_age.prev, nullptr);
  EXPECT_EQ(b.by_age.next, nullptr);
  EXPECT_EQ(values(list), (std::vector<int>{1, 3}));
  list.remove(a);
  list.remove(c);
  EXPECT_TRUE(list.empty());
  list.push_back(b);  // an unlinked node can be linked again
  EXPECT_EQ(values(list), (std::vector<int>{2}));
  list.clear();
}

TEST(IntrusiveList, SizeTracksEveryOperation) {
  std::vector<Item> items;
  items.reserve(10);
  for (int i = 0; i < 10; ++i) {
    items.emplace_back(i);
  }
  AgeList list;
  for (Item& item : items) {
    list.push_back(item);
  }
  EXPECT_EQ(list.size(), 10U);
  list.remove(items[4]);
  list.pop_front();
  list.pop_back();
  EXPECT_EQ(list.size(), 7U);
  list.clear();
  EXPECT_EQ(list.size(), 0U);
  for (const Item& item : items) {
    EXPECT_FALSE(item.by_age.linked());
  }
}

TEST(IntrusiveList, IterationVisitsInOrderAndAllowsMutation) {
  Item a(1), b(2), c(3);
  AgeList list;
  list.push_back(a);
  list.push_back(b);
  list.push_back(c);
  for (Item& item : list) {
    item.value *= 10;
  }
  EXPECT_EQ(values(list), (std::vector<int>{10, 20, 30}));
  EXPECT_EQ(list.begin()->value, 10);
  list.clear();
}

TEST(IntrusiveList, RemovalDuringIterationWithPostIncrement) {
  std::vector<Item> items;
  items.reserve(8);
  for (int i = 0; i < 8; ++i) {
    items.emplace_back(i);
  }
  AgeList list;
  for (Item& item : items) {
    list.push_back(item);
  }
  for (auto it = list.begin(); it != list.end();) {
    Item& item = *it++;
    if (item.value % 2 == 0) {
      list.remove(item);
    }
  }
  EXPECT_EQ(values(list), (std::vector<int>{1, 3, 5, 7}));
  EXPECT_EQ(list.size(), 4U);
  list.clear();
}

TEST(IntrusiveList, ElementCanSitInTwoListsThroughTwoNodes) {
  Item a(1), b(2);
  AgeList ages;
  StateList states;
  ages.push_back(a);
  ages.push_back(b);
  states.push_back(b);
  states.push_back(a);
  EXPECT_EQ(ages.front(), &a);
  EXPECT_EQ(states.front(), &b);
  ages.remove(a);
  EXPECT_TRUE(StateList::is_linked(a));
  EXPECT_EQ(states.back(), &a);
  ages.clear();
  states.clear();
}

TEST(IntrusiveList, SpliceBackMovesAllNodesInOrder) {
  Item a(1), b(2), c(3), d(4);
  AgeList first;
  AgeList second;
  first.push_back(a);
  second.push_back(b);
  second.push_back(c);
  first.splice_back(second);
  EXPECT_TRUE(second.empty());
  EXPECT_EQ(first.size(), 3U);
  EXPECT_EQ(values(first), (std::vector<int>{1, 2, 3}));
  second.push_back(d);  // the emptied list works as before
  first.splice_back(second);
  EXPECT_EQ(values(first), (std::vector<int>{1, 2, 3, 4}));
  AgeList empty;
  first.splice_back(empty);
  EXPECT_EQ(first.size(), 4U);
  empty.splice_back(first);
  EXPECT_EQ(values(empty), (std::vector<int>{1, 2, 3, 4}));
  empty.clear();
}

// Connections and operations have virtual functions; the node need not sit at offset 0.
struct Shape {
  virtual ~Shape() = default;
  virtual int sides() const = 0;
};
struct Square : Shape {
  int sides() const override { return 4; }
  ListNode node;
};

TEST(IntrusiveList, WorksWithPolymorphicElements) {
  Square a, b;
  IntrusiveList<Square, &Square::node> list;
  list.push_back(a);
  list.push_back(b);
  int total = 0;
  for (const Shape& shape : list)
    total += shape.sides();
  EXPECT_EQ(total, 8);
  EXPECT_EQ(list.pop_front(), &a);
  list.clear();
}

TEST(IntrusiveList, CopyOfLinkedElementIsUnlinked) {
  Item a(1);
  AgeList list;
  list.push_back(a);
  Item copy = a;
  EXPECT_FALSE(copy.by_age.linked());
  EXPECT_EQ(copy.value, 1);
  list.clear();
}

TEST(IntrusiveList, DestroyingListUnlinksItsElements) {
  Item a(1);
  {
    AgeList list;
    list.push_back(a);
  }
  EXPECT_FALSE(a.by_age.linked());
}

}  // namespace
}  // namespace rs::core
