// When an open-loop load generator means to send each request: at a fixed rate, evenly spaced
// (uniform) or as a Poisson process (exponential gaps from a seeded generator, so a run can be
// repeated exactly). Two schedules made alike give the same times, which lets one count the
// requests that are due while the other hands them out, with nothing stored per request.
#pragma once

#include <cmath>
#include <cstdint>

namespace rs::perf {

enum class ScheduleKind : std::uint8_t { kUniform, kPoisson };

class RequestSchedule {
 public:
  RequestSchedule(ScheduleKind kind, double rate_per_s, std::uint64_t seed)
      : kind_(kind), gap_ns_(1e9 / rate_per_s), state_(seed) {}

  // The intended send time of the next request, in nanoseconds after the start. Uniform times
  // are k * gap from k itself, so rounding never accumulates into a drift of the rate.
  std::uint64_t next_ns() {
    if (kind_ == ScheduleKind::kUniform) return to_ns(static_cast<double>(count_++) * gap_ns_);
    // -ln(u) for u uniform in (0, 1] is exponential with mean 1.
    at_ns_ += -std::log(uniform()) * gap_ns_;
    return to_ns(at_ns_);
  }

 private:
  // splitmix64: small, fast, and every seed (0 included) gives a full-period sequence.
  std::uint64_t next_random() {
    std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  // At most 2^62 ns (146 years): however low the rate, the time converts and a clock reading
  // plus it does not wrap.
  static std::uint64_t to_ns(double ns) {
    return static_cast<std::uint64_t>(std::fmin(ns, 0x1p62));
  }
  // The top 53 bits, shifted into (0, 1]: never 0, whose logarithm is infinite.
  double uniform() { return static_cast<double>((next_random() >> 11) + 1) * 0x1.0p-53; }

  ScheduleKind kind_;
  double gap_ns_;
  std::uint64_t state_;
  std::uint64_t count_ = 0;
  double at_ns_ = 0;
};

}  // namespace rs::perf
