// An operation in flight on the ring. It is embedded in its owner (connection, acceptor, loop);
// its address is the SQE's user_data, and its completion is a plain function pointer, so
// submitting allocates nothing and dispatch is one indirect call.
//
// The low bits of the address are free (an Operation is 8-byte aligned), and carry a tag: an
// owner with several kinds of operation in flight at once (a connection's receive, send,
// cancels and closes) keeps one Operation and tells the completions apart by the tag, instead
// of 16 bytes per kind.
#pragma once

#include <cassert>
#include <cstdint>
#include <type_traits>

namespace rs::net::uring {

struct alignas(8) Operation {
  using Fn = void (*)(Operation& op, std::int32_t res, std::uint32_t flags, unsigned tag);
  static constexpr unsigned kTagMask = 7;

  Fn complete = nullptr;
  void* owner = nullptr;

  template <class Owner>
  Owner& owner_as() const {
    return *static_cast<Owner*>(owner);
  }
  // What the SQE carries (and a cancel names): the address, with the tag in its low bits.
  std::uint64_t user_data(unsigned tag = 0) {
    assert(tag <= kTagMask);
    return reinterpret_cast<std::uint64_t>(this) | tag;
  }
  // A completion's user_data (as a pointer: the operation's address plus the tag, which stays
  // inside the operation) back to its operation and tag.
  static void dispatch(void* user_data, std::int32_t res, std::uint32_t flags) {
    const auto tag = static_cast<unsigned>(reinterpret_cast<std::uintptr_t>(user_data) & kTagMask);
    auto* op = reinterpret_cast<Operation*>(static_cast<char*>(user_data) - tag);
    op->complete(*op, res, flags, tag);
  }
};

static_assert(alignof(Operation) > Operation::kTagMask, "the tag lives in the address's zero bits");

// Binds an operation to a member function of its owner: bind<&Conn::on_recv>(op, this). The
// member takes (res, flags), or (res, flags, tag) where the owner uses tags.
template <auto Member, class Owner>
void bind(Operation& op, Owner* owner) {
  op.owner = owner;
  op.complete = [](Operation& self, std::int32_t res, std::uint32_t flags, unsigned tag) {
    if constexpr (std::is_invocable_v<decltype(Member), Owner&, std::int32_t, std::uint32_t,
                                      unsigned>) {
      (self.owner_as<Owner>().*Member)(res, flags, tag);
    } else {
      (self.owner_as<Owner>().*Member)(res, flags);
    }
  };
}

}  // namespace rs::net::uring
