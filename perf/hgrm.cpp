#include "perf/hgrm.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include <fmt/format.h>

namespace rs::perf {
namespace {

using H = LatencyHistogram;

constexpr double kNsPerUs = 1000.0;

double us(std::uint64_t ns) {
  return static_cast<double>(ns) / kNsPerUs;
}

// The next percentile level after `level`, as HdrHistogram's PercentileIterator computes it (the
// same double arithmetic, so the rows fall on the same levels as the Java library's).
double next_level(double level, int ticks_per_half_distance) {
  const auto halvings = static_cast<std::int64_t>(std::log(100.0 / (100.0 - level)) / std::log(2));
  const auto ticks = static_cast<double>(ticks_per_half_distance) * std::pow(2.0, halvings + 1);
  return level + 100.0 / ticks;
}

// Around the exact mean, with every value taken at the middle of its bucket (but not outside
// the least and largest values seen, so that one value alone deviates by nothing).
double std_deviation_ns(const H& h) {
  if (h.count() == 0) return 0;
  const double mean = h.mean_ns();
  const auto least = static_cast<double>(h.min_ns());
  const auto most = static_cast<double>(h.max_ns());
  double sum = 0;
  for (std::size_t i = 0; i < H::kBucketCount; ++i) {
    const std::uint64_t n = h.count_in_bucket(i);
    if (n == 0) continue;
    const double middle = std::clamp(
        static_cast<double>(H::lowest_in_bucket(i) + H::highest_in_bucket(i)) / 2, least, most);
    sum += static_cast<double>(n) * (middle - mean) * (middle - mean);
  }
  return std::sqrt(sum / static_cast<double>(h.count()));
}

}  // namespace

std::string hgrm_text(const LatencyHistogram& h, int ticks_per_half_distance) {
  std::string out = fmt::format("{:>12} {:>14} {:>10} {:>14}\n\n", "Value", "Percentile",
                                "TotalCount", "1/(1-Percentile)");
  const std::uint64_t total = h.count();
  double level = 0;
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < H::kBucketCount && seen < total; ++i) {
    const std::uint64_t n = h.count_in_bucket(i);
    if (n == 0) continue;
    seen += n;
    const double value_us = us(std::min(H::highest_in_bucket(i), h.max_ns()));
    const double reached = 100.0 * static_cast<double>(seen) / static_cast<double>(total);
    // A bucket reports every level its cumulative count reaches; the last bucket reports one,
    // then the closing 100 % row (which has no 1/(1-Percentile): it would be infinite).
    while (reached >= level) {
      out += fmt::format("{:12.3f} {:2.12f} {:10d} {:14.2f}\n", value_us, level / 100, seen,
                         1 / (1 - level / 100));
      level = next_level(level, ticks_per_half_distance);
      if (seen == total) {
        out += fmt::format("{:12.3f} {:2.12f} {:10d}\n", value_us, 1.0, seen);
        break;
      }
    }
  }
  out += fmt::format("#[Mean    = {:12.3f}, StdDeviation   = {:12.3f}]\n", h.mean_ns() / kNsPerUs,
                     std_deviation_ns(h) / kNsPerUs);
  out += fmt::format("#[Max     = {:12.3f}, Total count    = {:12d}]\n", us(h.max_ns()), total);
  // In HdrHistogram's terms: a bucket per power of two above the first, each split into
  // 2 * kSubCount sub-buckets of which the upper half is new.
  out += fmt::format("#[Buckets = {:12d}, SubBuckets     = {:12d}]\n", H::kMaxBits - H::kSubBits,
                     2 * H::kSubCount);
  return out;
}

}  // namespace rs::perf
