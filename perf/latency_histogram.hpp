// Latencies in nanoseconds, counted in log-spaced buckets like HdrHistogram: every power of two
// is split into 64 equal sub-buckets, so a percentile is known to within 1/64 (1.6 %) of its
// value from 1 us up to the cap of 2^36 ns (68.7 s). Recording is a bit scan and an increment;
// the whole table (about 16 KB) lives inside the object and nothing is allocated.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>

namespace rs::perf {

class LatencyHistogram {
 public:
  static constexpr unsigned kSubBits = 6;
  static constexpr std::uint64_t kSubCount = std::uint64_t{1} << kSubBits;
  static constexpr unsigned kMaxBits = 36;
  static constexpr std::uint64_t kMaxValueNs = (std::uint64_t{1} << kMaxBits) - 1;
  static constexpr std::size_t kBucketCount = (kMaxBits - kSubBits + 1) * kSubCount;

  // Values above the cap are counted at the cap (they are still in max_ns()).
  void record(std::uint64_t value_ns) {
    ++counts_[index_of(std::min(value_ns, kMaxValueNs))];
    ++total_;
    sum_ns_ += value_ns;
    min_ns_ = std::min(min_ns_, value_ns);
    max_ns_ = std::max(max_ns_, value_ns);
  }

  std::uint64_t count() const { return total_; }
  // How many values were counted in bucket `index` (< kBucketCount), for exports.
  std::uint64_t count_in_bucket(std::size_t index) const { return counts_[index]; }
  std::uint64_t min_ns() const { return total_ == 0 ? 0 : min_ns_; }
  std::uint64_t max_ns() const { return max_ns_; }
  double mean_ns() const {
    return total_ == 0 ? 0.0 : static_cast<double>(sum_ns_) / static_cast<double>(total_);
  }

  // The smallest value that at least `percent` % of the recorded values do not exceed, reported
  // as the top of its bucket (never above the largest value seen); 0 when nothing was recorded.
  std::uint64_t value_at_percentile(double percent) const {
    if (total_ == 0) return 0;
    const double wanted =
        std::ceil(std::clamp(percent, 0.0, 100.0) / 100.0 * static_cast<double>(total_));
    const std::uint64_t rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(wanted));
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < kBucketCount; ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::clamp(highest_in_bucket(i), min_ns(), max_ns_);
    }
    return max_ns_;
  }

  // Bucket arithmetic, public so a test can check the precision claim directly.
  static std::size_t index_of(std::uint64_t value_ns) {
    if (value_ns < kSubCount) return static_cast<std::size_t>(value_ns);
    const unsigned shift = static_cast<unsigned>(std::bit_width(value_ns)) - 1 - kSubBits;
    // (value >> shift) is in [kSubCount, 2 * kSubCount): the top kSubBits + 1 bits.
    return static_cast<std::size_t>(shift * kSubCount + (value_ns >> shift));
  }
  static std::uint64_t lowest_in_bucket(std::size_t index) {
    if (index < kSubCount) return index;
    const std::uint64_t shift = index / kSubCount - 1;
    return (index - shift * kSubCount) << shift;
  }
  static std::uint64_t highest_in_bucket(std::size_t index) {
    const std::uint64_t width = index < kSubCount ? 1 : std::uint64_t{1} << (index / kSubCount - 1);
    return lowest_in_bucket(index) + width - 1;
  }

 private:
  std::array<std::uint64_t, kBucketCount> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t sum_ns_ = 0;
  std::uint64_t min_ns_ = UINT64_MAX;
  std::uint64_t max_ns_ = 0;
};

}  // namespace rs::perf
