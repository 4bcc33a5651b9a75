// A LatencyHistogram as HdrHistogram's percentile distribution text (the .hgrm files that
// HdrHistogram's outputPercentileDistribution writes and its plotter reads), in microseconds:
// the Java library's output with outputValueUnitScalingRatio 1000 from nanoseconds.
#pragma once

#include <string>

#include "perf/latency_histogram.hpp"

namespace rs::perf {

// The header line, one row per percentile step (the steps halve every time the distance to
// 100 % halves, `ticks_per_half_distance` per half, as HdrHistogram's PercentileIterator takes
// them), the last row at 100 %, and the Mean/StdDeviation, Max/Total count and
// Buckets/SubBuckets footer. A row's value is the top of the bucket its percentile falls in
// (never above the largest value seen) and its count the values at or below that bucket.
std::string hgrm_text(const LatencyHistogram& histogram, int ticks_per_half_distance = 5);

}  // namespace rs::perf
