// What a poller is (the backend half of net::EventLoop, defined in net/loop/event_loop.hpp),
// checked when a loop is compiled, and the name of the loop, so that a poller and its loop can
// name each other.
#pragma once

#include <concepts>
#include <cstdint>
#include <optional>
#include <string>

#include "net/connection.hpp"
#include "net/loop_counters.hpp"

namespace rs::net {

template <class Poller>
class EventLoop;

template <class P>
concept EventPoller = requires(P& poller, const P& idle_poller, typename P::Connection& conn,
                               std::optional<std::uint64_t> timeout_ms, ConnectionList& open,
                               LoopCounters& counters) {
  requires std::derived_from<typename P::Connection, DrivenConnection>;
  typename P::Options;
  poller.start();
  poller.set_accepting(true);
  poller.stop_accepting();
  poller.near_cap();  // a loop neared the connection cap (a no-op where irrelevant)
  poller.adopt(conn);
  { poller.send(conn) } -> std::same_as<bool>;
  poller.readmit(conn);
  { poller.free_receive_buffers() } -> std::convertible_to<unsigned>;
  poller.end_turn();
  { idle_poller.has_work() } -> std::same_as<bool>;
  poller.wait(timeout_ms);
  poller.dispatch();
  { idle_poller.idle() } -> std::same_as<bool>;
  poller.on_grace_expired(open);
  idle_poller.update_gauges(counters);
  { idle_poller.pool_grows() } -> std::convertible_to<std::uint64_t>;  // its own pools' slabs
  poller.log().flush();
  poller.log().reopen();
  poller.log().abandon();
  { idle_poller.log().idle() } -> std::same_as<bool>;
  { idle_poller.files().idle() } -> std::same_as<bool>;
  { idle_poller.files().open_files() } -> std::convertible_to<std::size_t>;
  { idle_poller.describe() } -> std::convertible_to<std::string>;
};

}  // namespace rs::net
