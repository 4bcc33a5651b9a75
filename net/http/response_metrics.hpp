// What /metrics says of the responses a loop wrote: a count per status code and the request
// duration histogram per route kind. Fixed arrays of single-writer counters, so counting a
// response is a table load, a short scan of the bucket bounds and three adds: no allocation,
// no lock, no atomic read-modify-write (core/counters.hpp).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "core/counters.hpp"

namespace rs::http {

// The route label of ringserve_http_request_duration_seconds. kOther: OPTIONS *, and requests
// rejected before their head was parsed.
enum class RouteKind : std::uint8_t {
  kStatic,
  kMetrics,
  kPlaintext,
  kJson,
  kEcho,
  kDelay,
  kNotFound,
  kOther,
};
inline constexpr std::size_t kRouteKinds = 8;
inline constexpr std::array<std::string_view, kRouteKinds> kRouteKindNames = {
    "static", "metrics", "plaintext", "json", "echo", "delay", "not_found", "other"};

// Every status code the server sends (net/http/response.cpp reason_phrase); a code outside the
// table is counted under its class with status="other".
inline constexpr std::array<int, 21> kStatusCodes = {100, 200, 204, 206, 301, 304, 400,
                                                     403, 404, 405, 408, 412, 413, 414,
                                                     416, 417, 431, 500, 501, 503, 505};
// Slots: one per code of the table, then "other" for each class 1xx..5xx.
inline constexpr std::size_t kStatusSlots = kStatusCodes.size() + 5;

namespace detail {
// Status 100..599 -> slot; built at compile time so that the lookup is one load.
constexpr std::array<std::uint8_t, 500> make_status_slots() {
  std::array<std::uint8_t, 500> slots{};
  for (std::size_t status = 100; status < 600; ++status)
    slots[status - 100] = static_cast<std::uint8_t>(kStatusCodes.size() + status / 100 - 1);
  for (std::size_t i = 0; i < kStatusCodes.size(); ++i)
    slots[static_cast<std::size_t>(kStatusCodes[i]) - 100] = static_cast<std::uint8_t>(i);
  return slots;
}
inline constexpr std::array<std::uint8_t, 500> kStatusSlot = make_status_slots();
}  // namespace detail

// The slot that counts `status` (a status outside 100..599, which the server never sends,
// counts as another 5xx).
constexpr std::size_t status_slot(int status) {
  if (status < 100 || status > 599) return kStatusSlots - 1;
  return detail::kStatusSlot[static_cast<std::size_t>(status - 100)];
}
// The class digit of a slot ('2' for 200 and for another 2xx).
constexpr char status_class(std::size_t slot) {
  if (slot < kStatusCodes.size()) return static_cast<char>('0' + kStatusCodes[slot] / 100);
  return static_cast<char>('1' + (slot - kStatusCodes.size()));
}

// Upper bounds of the duration buckets, in microseconds (shown in seconds): from 100 us, where
// a loopback request served from memory lands, to 10 s (GET /delay, large files to slow
// clients). A bucket is counted per request; /metrics makes them cumulative.
inline constexpr std::array<std::uint64_t, 16> kDurationBoundsUs = {
    100,   250,    500,    1000,   2500,    5000,    10000,   25000,
    50000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000};

struct DurationHistogram {
  // buckets[i]: durations in (bound i-1, bound i]; the last: above every bound (+Inf).
  std::array<core::Counter, kDurationBoundsUs.size() + 1> buckets;
  core::Counter sum_us;

  void observe(std::uint64_t us) {
    std::size_t i = 0;
    while (i < kDurationBoundsUs.size() && us > kDurationBoundsUs[i])
      ++i;
    buckets[i].add();
    sum_us.add(us);
  }
};

// Per loop (single writer: the loop).
struct ResponseMetrics {
  std::array<core::Counter, kStatusSlots> by_status;
  std::array<DurationHistogram, kRouteKinds> durations;

  // Every response, interim ones (100 Continue) included.
  void count_status(int status) { by_status[status_slot(status)].add(); }
  // A final response: its status, and how long its request took.
  void count(RouteKind route, int status, std::uint64_t duration_us) {
    count_status(status);
    durations[static_cast<std::size_t>(route)].observe(duration_us);
  }
  // Adds what `from` counted (single writer: whoever holds this).
  void add(const ResponseMetrics& from) {
    for (std::size_t i = 0; i < by_status.size(); ++i)
      by_status[i].add(from.by_status[i].get());
    for (std::size_t r = 0; r < durations.size(); ++r) {
      for (std::size_t i = 0; i < durations[r].buckets.size(); ++i)
        durations[r].buckets[i].add(from.durations[r].buckets[i].get());
      durations[r].sum_us.add(from.durations[r].sum_us.get());
    }
  }
};

}  // namespace rs::http
