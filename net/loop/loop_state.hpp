// What every loop that serves connections keeps, whatever it waits on: the clock and timer
// wheel, the pools of output chunks and response slots, the turn lists, and the context its
// connections share. net::EventLoop has one; so does each worker of the threads backend, which
// is a loop of one connection.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "core/buffer.hpp"
#include "core/clock.hpp"
#include "core/timer_wheel.hpp"
#include "net/connection.hpp"
#include "net/loop_counters.hpp"
#include "net/tls/tls_session.hpp"
#include "net/transport.hpp"

namespace rs::net {

struct LoopState {
  LoopState(LoopServices& services, const ConnectionLimits& limits, LoopCounters& counters,
            std::size_t chunk_bytes, std::size_t chunks_per_slab = 64,
            std::size_t timer_slots = 1024, std::size_t slots_per_slab = 64)
      : now_us(core::monotonic_ns() / 1000U),
        now_ms(now_us / 1000U),
        wall_clock_s(core::realtime_s()),
        timers(now_ms, timer_slots),
        chunks(chunk_bytes, chunks_per_slab),
        slots(slots_per_slab),
        connection_context{services, slots, limits, counters, turn} {}
  LoopState(const LoopState&) = delete;
  LoopState& operator=(const LoopState&) = delete;

  // Every connection of the loop speaks TLS, with this context until another is given.
  void use_tls(std::shared_ptr<const tls::TlsContext> context, std::size_t sessions_per_slab) {
    if (context == nullptr) return;
    tls.emplace(std::move(context), chunks, sessions_per_slab);
    connection_context.tls = &*tls;
  }

  // The loop's protocols (once its services exist) and the server's PROXY settings, for
  // connections whose protocol opens after their PROXY header.
  void use_protocols(ProtocolFactory& protocols, const ProxyConfig* proxy) {
    connection_context.protocols = &protocols;
    connection_context.proxy = proxy;
  }

  // The clock moves before anything runs that may arm a timer, so the timer counts from now,
  // not from before the wait.
  void move_clock() {
    now_us = core::monotonic_ns() / 1000U;
    now_ms = now_us / 1000U;
    wall_clock_s = core::realtime_s();
    timers.set_now(now_ms);
  }
  // The pool gauges of this loop; other_grows: slab growth of pools beside these.
  void update_gauges(LoopCounters& counters, std::size_t open_files,
                     std::uint64_t other_grows = 0) {
    counters.pool_chunks.set(static_cast<std::int64_t>(chunks.outstanding()));
    counters.pool_chunks_free.set(static_cast<std::int64_t>(chunks.free_held()));
    counters.pool_chunks_released.set(static_cast<std::int64_t>(chunks.released()));
    counters.pool_response_slots.set(static_cast<std::int64_t>(slots.outstanding()));
    counters.pool_files.set(static_cast<std::int64_t>(open_files));
    // A counter: only the growth since the last update is added, so that the set a worker of
    // the threads backend leaves to the next one goes on from where it was.
    const std::uint64_t grows = chunks.grows() + slots.grows() + other_grows;
    counters.pool_grows.add(grows - grows_counted);
    grows_counted = grows;
  }

  std::uint64_t now_us;  // the turn's clock; now_ms is the same read
  std::uint64_t now_ms;
  std::uint64_t wall_clock_s;
  std::uint64_t grows_counted = 0;  // pool growth already added to the pool_grows counter
  core::TimerWheel timers;
  core::ChunkPool chunks;
  ResponseSlotPool slots;
  TurnLists turn;
  std::optional<tls::TlsEndpoint> tls;
  ConnectionContext connection_context;
};

}  // namespace rs::net
