// An operation in flight on the ring. It is embedded in its owner (connection, acceptor, loop);
// its address is the SQE's user_data, and its completion is a plain function pointer, so
// submitting allocates nothing and dispatch is one indirect call.
#pragma once

#include <cstdint>

namespace rs::net::uring {

struct Operation {
  using Fn = void (*)(Operation& op, std::int32_t res, std::uint32_t flags);

  Fn complete = nullptr;
  void* owner = nullptr;

  template <class Owner>
  Owner& owner_as() const {
    return *static_cast<Owner*>(owner);
  }
};

// Binds an operation to a member function of its owner: bind<&Conn::on_recv>(op, this).
template <auto Member, class Owner>
void bind(Operation& op, Owner* owner) {
  op.owner = owner;
  op.complete = [](Operation& self, std::int32_t res, std::uint32_t flags) {
    (self.owner_as<Owner>().*Member)(res, flags);
  };
}

}  // namespace rs::net::uring
