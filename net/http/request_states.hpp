// The state of a request while it is read: the parser (its field spans, the head, the body
// decoder) and what the server keeps of the request. It is about 8 KB, so a session holds one
// only from a request's first byte until the session is idle again: an idle keep-alive
// connection holds none, and a loop needs as many as it has requests being read at once.
#pragma once

#include <algorithm>
#include <cstddef>

#include "core/buffer.hpp"
#include "core/counters.hpp"
#include "core/slab_pool.hpp"
#include "net/http/limits.hpp"
#include "net/http/parser.hpp"
#include "net/http/request.hpp"

namespace rs::http {

struct RequestState {
  RequestState(const Limits& limits, core::ChunkPool& chunks) : parser(limits), body(chunks) {}
  RequestParser parser;
  Request request;
  core::Chunk* head_buffer = nullptr;  // only while a head arrives in pieces
  core::BufferChain body;              // the body, when the route keeps it
  std::uint64_t body_reserved = 0;     // of the process's body memory, for `body`
  std::uint64_t first_byte_us = 0;     // the loop's turn clock when the first byte was taken
  // Connection::server_paused_ms() when the header or body deadline was set or last moved on,
  // and how far it has been moved on since it was set (at most the send timeout).
  std::uint64_t paused_mark_ms = 0;
  std::uint64_t extended_ms = 0;
  RequestState* next_free = nullptr;
};

// One loop's request states. A state given back stays constructed on a free list, so taking
// one is a pop: a new RequestParser would clear its 5 KB of spans and head every time. Those a
// load stops needing are destroyed a second later (release_idle), their pages given back. States
// are made in slabs (of 16 on an event loop, of one for a worker of the threads backend) as the
// number read at once grows (counted in grows()). The gauges (single writer: the loop) tell
// /metrics how many are in use and how many were made.
class RequestStates {
 public:
  RequestStates(const Limits& limits, core::ChunkPool& chunks, core::Gauge& in_use,
                core::Gauge& made, std::size_t per_slab = 16)
      : limits_(limits),
        chunks_(chunks),
        pool_(per_slab),
        in_use_gauge_(in_use),
        made_gauge_(made) {}
  ~RequestStates() {
    while (RequestState* s = free_) {
      free_ = s->next_free;
      pool_.destroy(s);
    }
  }
  RequestStates(const RequestStates&) = delete;
  RequestStates& operator=(const RequestStates&) = delete;

  RequestState* take() {
    RequestState* s = free_;
    if (s != nullptr) {
      free_ = s->next_free;
      free_low_ = std::min(free_low_, --free_count_);
    } else {
      s = pool_.make(limits_, chunks_);
      made_gauge_.set(static_cast<std::int64_t>(pool_.outstanding()));
    }
    in_use_gauge_.set(static_cast<std::int64_t>(++in_use_));
    return s;
  }
  // The parser is reset here, so that a state taken is always ready for a request's first byte.
  // The owner has given back its head buffer and body first.
  void give_back(RequestState* s) {
    in_use_gauge_.set(static_cast<std::int64_t>(--in_use_));
    s->parser.reset();
    s->next_free = free_;
    free_ = s;
    ++free_count_;
  }

  // Gives memory back after a load has passed: of the states that stayed free all the time
  // since the last call (what the load did not need), up to `max` are destroyed and their pages
  // returned to the kernel; taking one again constructs it anew. Returns how many. Bounded work:
  // one system call each.
  std::size_t release_idle(std::size_t max) {
    const std::size_t n = std::min(free_low_, max);
    for (std::size_t i = 0; i < n; ++i) {
      RequestState* s = free_;
      free_ = s->next_free;
      pool_.destroy_and_release(s);
    }
    free_count_ -= n;
    free_low_ = free_count_;  // the next period starts
    made_gauge_.set(static_cast<std::int64_t>(pool_.outstanding()));
    return n;
  }
  // Free states: a later release_idle() may find some to give back.
  std::size_t free_held() const { return free_count_; }

  // Room for n states now (a slab's memory, not yet written), so taking them does not reach
  // the heap.
  void reserve(std::size_t n) { pool_.reserve(n); }

  std::size_t in_use() const { return in_use_; }
  // States made so far, in use or free: what the pool holds.
  std::size_t made() const { return pool_.outstanding(); }
  std::size_t grows() const { return pool_.grows(); }

 private:
  Limits limits_;
  core::ChunkPool& chunks_;
  core::SlabPool<RequestState> pool_;
  RequestState* free_ = nullptr;  // constructed, ready (the latest given back on top)
  std::size_t free_count_ = 0;
  std::size_t free_low_ = 0;  // the fewest free_ held since the last release_idle()
  std::size_t in_use_ = 0;
  core::Gauge& in_use_gauge_;
  core::Gauge& made_gauge_;
};

}  // namespace rs::http
