// What a poller's header needs of the event loop it plugs into (net/loop/event_loop.hpp defines
// it, and what a poller provides): only its name, so the loop and its poller can name each other.
#pragma once

namespace rs::net {

template <class Poller>
class EventLoop;

}  // namespace rs::net
