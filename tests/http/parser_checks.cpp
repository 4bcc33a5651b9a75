#include "tests/http/parser_checks.hpp"

#include <string>
#include <vector>

namespace rs::http::test {

namespace {

// Every split point is O(n) work each, so exhaustive splitting is kept to modest inputs.
constexpr size_t kExhaustiveSplitMax = 4096;
constexpr size_t kBytewiseMax = 20000;

std::vector<size_t> split_points(size_t n) {
  std::vector<size_t> points;
  if (n <= kExhaustiveSplitMax) {
    for (size_t i = 1; i < n; ++i) {
      points.push_back(i);
    }
    return points;
  }
  for (size_t i = 1; i < 64; ++i) {
    points.push_back(i);
    points.push_back(n - i);
  }
  for (size_t i = 64; i < n - 64; i += n / 256 + 1) {
    points.push_back(i);
  }
  return points;
}

}  // namespace

::testing::AssertionResult split_invariant(std::string_view raw, const Limits& limits,
                                           size_t max_messages) {
  const Replay whole = replay_whole(raw, limits, max_messages);
  for (const ParserIsa isa : supported_parser_isas()) {
    const Replay scanned = replay_whole(raw, limits, max_messages, isa);
    if (scanned != whole) {
      return ::testing::AssertionFailure()
             << "whole with the " << to_string(isa) << " head scan differs for \"" << escape(raw)
             << "\"\n  default: " << describe(whole) << "\n  " << to_string(isa) << ": "
             << describe(scanned);
    }
  }
  for (const size_t cut : split_points(raw.size())) {
    const size_t cuts[] = {cut};
    const Replay split = replay(raw, cuts, limits, max_messages);
    if (split != whole) {
      return ::testing::AssertionFailure()
             << "split at " << cut << " differs for \"" << escape(raw)
             << "\"\n  whole: " << describe(whole) << "\n  split: " << describe(split);
    }
  }
  if (raw.size() <= kBytewiseMax) {
    const Replay bytewise = replay_bytewise(raw, limits, max_messages);
    if (bytewise != whole) {
      return ::testing::AssertionFailure()
             << "byte-by-byte differs for \"" << escape(raw) << "\"\n  whole: " << describe(whole)
             << "\n  bytes: " << describe(bytewise);
    }
  }
  return ::testing::AssertionSuccess();
}

Replay parse(std::string_view raw, const Limits& limits, size_t max_messages) {
  EXPECT_TRUE(split_invariant(raw, limits, max_messages));
  return replay_whole(raw, limits, max_messages);
}

::testing::AssertionResult rejects(std::string_view raw, ParseError kind, int status,
                                   const Limits& limits) {
  const ::testing::AssertionResult invariant = split_invariant(raw, limits);
  if (!invariant) {
    return invariant;
  }
  const Replay result = replay_whole(raw, limits);
  const Message& m = result.first();
  if (m.verdict != Verdict::kError || m.error != kind || status_for(m.error) != status) {
    return ::testing::AssertionFailure()
           << "expected " << to_string(kind) << " " << status << " for \"" << escape(raw)
           << "\", got " << describe(result);
  }
  return ::testing::AssertionSuccess();
}

::testing::AssertionResult accepts(std::string_view raw, const Limits& limits) {
  const ::testing::AssertionResult invariant = split_invariant(raw, limits);
  if (!invariant) {
    return invariant;
  }
  const Replay result = replay_whole(raw, limits);
  if (result.first().verdict != Verdict::kComplete) {
    return ::testing::AssertionFailure()
           << "expected complete for \"" << escape(raw) << "\", got " << describe(result);
  }
  return ::testing::AssertionSuccess();
}

}  // namespace rs::http::test
