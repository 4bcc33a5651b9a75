// Runs every conformance vector through the parser. A verdict that differs from upstream must
// be listed, with its RFC citation, in conformance/overrides.json; an override whose case now
// agrees is stale and fails too.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "net/http/chars.hpp"
#include "net/http/head_scan.hpp"
#include "tests/http/conformance_vectors.hpp"
#include "tests/http/parser_checks.hpp"

namespace rs::http::test {
namespace {

class Conformance : public ::testing::TestWithParam<ConformanceVector> {};

bool only_empty_lines(std::string_view rest) {
  while (rest.starts_with("\r\n")) {
    rest.remove_prefix(2);
  }
  return rest.empty();
}

void expect_fields(const ConformanceVector& v, const Replay& replay) {
  const Message& m = replay.first();
  EXPECT_EQ(m.method, v.method);
  EXPECT_EQ(m.target, v.url);
  EXPECT_EQ(m.version_major, v.version_major);
  EXPECT_EQ(m.version_minor, v.version_minor);
  ASSERT_EQ(m.headers.size(), v.headers.size());
  for (size_t i = 0; i < v.headers.size(); ++i) {
    EXPECT_EQ(m.headers[i].first, v.headers[i].name);
    // http-parser sometimes keeps trailing whitespace; the field value proper excludes it.
    EXPECT_EQ(m.headers[i].second, chars::trim_ows(v.headers[i].value));
  }
  EXPECT_EQ(m.body, v.body);
  EXPECT_EQ(m.keep_alive, v.keep_alive);
  EXPECT_EQ(m.content_length.has_value(), v.has_content_length);
  if (v.has_content_length && m.content_length) {
    EXPECT_EQ(*m.content_length, v.content_length);
  }
  // The bytes after the message are the upgrade (tunnel) data, or at most an empty line.
  if (v.has_upgrade) {
    EXPECT_EQ(replay.rest, v.upgrade);
  } else {
    EXPECT_TRUE(only_empty_lines(replay.rest)) << escape(replay.rest);
  }
}

TEST_P(Conformance, VerdictAgreesOrIsOverridden) {
  const ConformanceVector& v = GetParam();
  const Replay replay = replay_whole(v.raw);
  const Message& m = replay.first();
  SCOPED_TRACE(std::string(v.id) + ": " + describe(replay));
  if (v.overridden) {
    EXPECT_NE(v.our_verdict, v.expect) << "override is stale: upstream verdict has the same";
    EXPECT_EQ(m.verdict, v.our_verdict) << "override is stale: " << v.rfc;
    if (m.verdict == Verdict::kError) {
      EXPECT_EQ(to_string(m.error), v.our_kind);
      EXPECT_EQ(status_for(m.error), v.our_status);
    }
    return;
  }
  ASSERT_EQ(m.verdict, v.expect) << "disagrees with " << v.file << " without an override";
  if (!v.expect_kind.empty()) {
    EXPECT_EQ(to_string(m.error), v.expect_kind);
    EXPECT_EQ(status_for(m.error), v.expect_status);
  }
  if (m.verdict == Verdict::kComplete && v.has_fields) {
    expect_fields(v, replay);
  }
}

TEST_P(Conformance, SameResultAtEverySplitPoint) {
  const ConformanceVector& v = GetParam();
  EXPECT_TRUE(split_invariant(v.raw)) << v.id;
  // Also through to the end of any pipelined data, so reset() and the next head are covered.
  EXPECT_TRUE(split_invariant(v.raw, {}, 8)) << v.id;
}

// Limits at this vector's own sizes, and one below each: its request line, its field section
// (through the empty line) and its field count, as the state machine measured them.
std::vector<Limits> limits_at_the_edges(const ConformanceVector& v) {
  std::vector<Limits> out{Limits{}};
  const Replay plain = replay_whole(v.raw, {}, 1, ParserIsa::kIncremental);
  const Message& m = plain.first();
  const size_t line = v.raw.find("\r\n");
  if (!m.head_complete || line == std::string_view::npos || line + 2 > m.head_bytes) {
    return out;
  }
  const size_t fields = m.head_bytes - line - 2;
  for (const size_t under : {0U, 1U}) {
    Limits l;
    l.max_request_line_bytes = line - under;
    l.max_header_bytes = fields - under;
    l.max_header_fields = m.headers.size() - (m.headers.empty() ? 0 : under);
    out.push_back(l);
  }
  return out;
}

// The one-pass head scan must give the state machine's result on every vector, on every
// instruction set this CPU has, with the default limits and with limits at the vector's edges.
TEST_P(Conformance, EveryHeadScanAgreesWithTheStateMachine) {
  const ConformanceVector& v = GetParam();
  for (const Limits& limits : limits_at_the_edges(v)) {
    const Replay expected = replay_whole(v.raw, limits, 8, ParserIsa::kIncremental);
    for (const ParserIsa isa : supported_parser_isas()) {
      if (isa == ParserIsa::kIncremental) {
        continue;
      }
      EXPECT_EQ(replay_whole(v.raw, limits, 8, isa), expected)
          << v.id << " on " << to_string(isa) << " with limits " << limits.max_request_line_bytes
          << "/" << limits.max_header_bytes << "/" << limits.max_header_fields << ": "
          << describe(expected);
    }
  }
}

std::string test_name(const ::testing::TestParamInfo<ConformanceVector>& info) {
  std::string name;
  for (const char c : info.param.id) {
    const bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    name += alnum ? c : '_';
  }
  return name + "_" + std::to_string(info.index);
}

INSTANTIATE_TEST_SUITE_P(Vectors, Conformance, ::testing::ValuesIn(conformance_vectors()),
                         test_name);

}  // namespace
}  // namespace rs::http::test
