// A descriptor registered with the epoll set. It is embedded in its owner (connection,
// listener, loop); its address is the epoll_event's data.ptr and readiness is dispatched with
// one indirect call, as uring::Operation does for completions.
#pragma once

#include <cstdint>

namespace rs::net::epoll {

struct Watch {
  using Fn = void (*)(Watch& watch, std::uint32_t events);

  Fn ready = nullptr;
  void* owner = nullptr;
};

// Binds a watch to a member function of its owner: watch<&Conn::on_ready>(w, this).
template <auto Member, class Owner>
void bind(Watch& watch, Owner* owner) {
  watch.owner = owner;
  watch.ready = [](Watch& self, std::uint32_t events) {
    (static_cast<Owner*>(self.owner)->*Member)(events);
  };
}

}  // namespace rs::net::epoll
