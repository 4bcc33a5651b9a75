#pragma once

// Doubly linked intrusive list: the links live inside the element (a ListNode member), so
// linking and unlinking never allocate and an element can unlink itself in O(1). An element can
// sit in several lists at once through several ListNode members.

#include <bit>
#include <cassert>
#include <cstddef>
#include <iterator>
#include <type_traits>

namespace rs::core {

struct ListNode {
  ListNode* prev = nullptr;
  ListNode* next = nullptr;

  ListNode() = default;
  // Links describe where this node sits; a copy of an element is not in its lists.
  ListNode(const ListNode& /*other*/) noexcept {}
  // NOLINTNEXTLINE(bugprone-unhandled-self-assignment): keeping our own links is the point
  ListNode& operator=(const ListNode& /*other*/) noexcept { return *this; }
  ~ListNode() = default;

  bool linked() const { return next != nullptr; }
};

// Circular list around a sentinel node. Not copyable or movable: linked nodes point at the
// sentinel. Destroying a list unlinks whatever is still in it.
//
// Removing during traversal: advance the iterator before removing the element it points at,
//   for (auto it = list.begin(); it != list.end();) { T& x = *it++; if (done(x)) list.remove(x); }
template <class T, ListNode T::*Member>
class IntrusiveList {
 public:
  template <bool Const>
  class Iterator {
   public:
    using iterator_category = std::forward_iterator_tag;
    using value_type = T;
    using difference_type = std::ptrdiff_t;
    using pointer = std::conditional_t<Const, const T*, T*>;
    using reference = std::conditional_t<Const, const T&, T&>;

    Iterator() = default;
    reference operator*() const { return *owner_of(node_); }
    pointer operator->() const { return owner_of(node_); }
    Iterator& operator++() {
      node_ = node_->next;
      return *this;
    }
    Iterator operator++(int) {
      Iterator old = *this;
      node_ = node_->next;
      return old;
    }
    friend bool operator==(const Iterator& a, const Iterator& b) { return a.node_ == b.node_; }

   private:
    friend class IntrusiveList;
    explicit Iterator(ListNode* node) : node_(node) {}
    ListNode* node_ = nullptr;
  };
  using iterator = Iterator<false>;
  using const_iterator = Iterator<true>;

  IntrusiveList() { head_.prev = head_.next = &head_; }
  ~IntrusiveList() { clear(); }
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  void push_back(T& x) { link_before(&head_, node_of(x)); }
  void push_front(T& x) { link_before(head_.next, node_of(x)); }

  T* front() { return empty() ? nullptr : owner_of(head_.next); }
  T* back() { return empty() ? nullptr : owner_of(head_.prev); }

  T* pop_front() {
    if (empty()) {
      return nullptr;
    }
    T* x = owner_of(head_.next);
    remove(*x);
    return x;
  }
  T* pop_back() {
    if (empty()) {
      return nullptr;
    }
    T* x = owner_of(head_.prev);
    remove(*x);
    return x;
  }

  // x must be linked in this list; it is left unlinked.
  void remove(T& x) {
    ListNode* n = node_of(x);
    assert(n->linked() && size_ > 0);
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = nullptr;
    --size_;
  }

  // Moves every element of other to our back in O(1), keeping their order.
  void splice_back(IntrusiveList& other) {
    if (&other == this || other.empty()) {
      return;
    }
    ListNode* first = other.head_.next;
    ListNode* last = other.head_.prev;
    first->prev = head_.prev;
    head_.prev->next = first;
    last->next = &head_;
    head_.prev = last;
    size_ += other.size_;
    other.head_.prev = other.head_.next = &other.head_;
    other.size_ = 0;
  }

  // Unlinks every element (O(n)).
  void clear() {
    while (!empty()) {
      pop_front();
    }
  }

  bool empty() const { return size_ == 0; }
  std::size_t size() const { return size_; }

  // Whether x is linked in some list through this member (the list cannot tell which).
  static bool is_linked(const T& x) { return (x.*Member).linked(); }
  bool contains_node(const T& x) const { return is_linked(x); }

  iterator begin() { return iterator(head_.next); }
  iterator end() { return iterator(&head_); }
  const_iterator begin() const { return const_iterator(head_.next); }
  const_iterator end() const { return const_iterator(const_cast<ListNode*>(&head_)); }

 private:
  static ListNode* node_of(T& x) { return &(x.*Member); }

  // The owner sits a fixed offset before its node. Under the Itanium C++ ABI (every Linux
  // compiler) a data member pointer is exactly that byte offset (bit_cast also checks the size);
  // this is the container_of idiom.
  static T* owner_of(ListNode* n) {
    const auto offset = std::bit_cast<std::ptrdiff_t>(Member);
    return reinterpret_cast<T*>(reinterpret_cast<std::byte*>(n) - offset);
  }

  void link_before(ListNode* pos, ListNode* n) {
    assert(!n->linked() && "node is already in a list");
    n->prev = pos->prev;
    n->next = pos;
    pos->prev->next = n;
    pos->prev = n;
    ++size_;
  }

  ListNode head_;
  std::size_t size_ = 0;
};

}  // namespace rs::core
