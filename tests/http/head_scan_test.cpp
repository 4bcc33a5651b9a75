// The one-pass head scan on every instruction set this CPU has: it must take the common heads
// itself (or it would be dead weight), and on any byte at any position of any part of a head it
// must give the state machine's result: every byte value is tried at offsets that land in the
// 32-byte loop, the 16-byte loop and the scalar tail.
#include <gtest/gtest.h>

#include <array>
#include <string>
#include <string_view>

#include "net/http/head_scan.hpp"
#include "net/http/parser.hpp"
#include "tests/http/conformance_vectors.hpp"
#include "tests/http/replay.hpp"

namespace rs::http::test {
namespace {

std::vector<ParserIsa> scanning_isas() {
  std::vector<ParserIsa> isas;
  for (const ParserIsa isa : supported_parser_isas()) {
    if (isa != ParserIsa::kIncremental) {
      isas.push_back(isa);
    }
  }
  return isas;
}

class HeadScan : public ::testing::TestWithParam<ParserIsa> {
 protected:
  bool scan(std::string_view block, ScannedHead& out, const Limits& limits = {}) {
    return head_scan(GetParam())(block, limits, headers_.data(), out);
  }
  std::array<Header, kMaxHeaderFields> headers_{};
};

TEST_P(HeadScan, TakesWrksRequestWhole) {
  constexpr std::string_view kHead = "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
  ScannedHead out;
  ASSERT_TRUE(scan(kHead, out));
  EXPECT_EQ(out.method_len, 3U);
  EXPECT_EQ(kHead.substr(out.method_len + 1, out.target_len), "/plaintext");
  EXPECT_EQ(out.path_len, out.target_len);
  EXPECT_EQ(out.version_minor, 1);
  ASSERT_EQ(out.field_count, 1U);
  EXPECT_EQ(headers_[0].name, "Host");
  EXPECT_EQ(headers_[0].value, "127.0.0.1:8080");
  EXPECT_EQ(out.head_bytes, kHead.size());
}

TEST_P(HeadScan, TakesLongFieldsQueriesAndPercentEncoding) {
  const std::string cookie(300, 'c');
  const std::string head =
      "POST /a%20b/c?x=%2F&y=/?z HTTP/1.0\r\nHost: example.com\r\n"
      "User-Agent:\tMozilla/5.0 (X11; Linux x86_64) \xc3\xa9\t \r\n"
      "Cookie: " +
      cookie + "\r\nX-Empty:\r\n\r\nBODY";
  ScannedHead out;
  ASSERT_TRUE(scan(head, out));
  const std::string_view target = std::string_view(head).substr(out.method_len + 1, out.target_len);
  EXPECT_EQ(target, "/a%20b/c?x=%2F&y=/?z");
  EXPECT_EQ(target.substr(0, out.path_len), "/a%20b/c");
  EXPECT_EQ(out.version_minor, 0);
  ASSERT_EQ(out.field_count, 4U);
  EXPECT_EQ(headers_[1].value, "Mozilla/5.0 (X11; Linux x86_64) \xc3\xa9");
  EXPECT_EQ(headers_[2].value, cookie);
  EXPECT_EQ(headers_[3].value, "");
  EXPECT_EQ(out.head_bytes, head.size() - 4);
}

// The scan's bounds are the state machine's: it takes a head at exactly each limit and leaves
// one a byte over it (which the state machine then rejects).
TEST_P(HeadScan, TakesHeadsAtExactlyTheLimits) {
  constexpr std::string_view kHead = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
  Limits exact;
  exact.max_request_line_bytes = 14;  // "GET / HTTP/1.1"
  exact.max_header_bytes = 11;        // "Host: a\r\n\r\n"
  exact.max_header_fields = 1;
  ScannedHead out;
  EXPECT_TRUE(scan(kHead, out, exact));
  EXPECT_EQ(replay_whole(kHead, exact, 1, GetParam()).first().verdict, Verdict::kComplete);
  Limits line = exact;
  line.max_request_line_bytes -= 1;
  Limits fields = exact;
  fields.max_header_bytes -= 1;
  Limits count = exact;
  count.max_header_fields -= 1;
  for (const Limits& under : {line, fields, count}) {
    EXPECT_FALSE(scan(kHead, out, under));
    const Replay expected = replay_whole(kHead, under, 1, ParserIsa::kIncremental);
    EXPECT_EQ(expected.first().verdict, Verdict::kError);
    EXPECT_EQ(replay_whole(kHead, under, 1, GetParam()), expected);
  }
}

// A scan that declined everything would pass every comparison with the state machine: it must
// take most of the conformance heads that the state machine completes (the rest are unusual:
// absolute-form, a leading empty line, HTTP/1.2, ...).
TEST_P(HeadScan, TakesMostCompleteConformanceHeads) {
  size_t complete = 0;
  size_t taken = 0;
  for (const ConformanceVector& v : conformance_vectors()) {
    const Replay r = replay_whole(v.raw, {}, 1, ParserIsa::kIncremental);
    if (r.first().verdict != Verdict::kComplete) {
      continue;
    }
    ++complete;
    ScannedHead out;
    taken += scan(v.raw, out) ? 1 : 0;
  }
  ASSERT_GT(complete, 20U);
  EXPECT_GT(taken * 10, complete * 6) << taken << " of " << complete;
}

TEST_P(HeadScan, LeavesIncompleteAndUnusualHeadsToTheStateMachine) {
  ScannedHead out;
  for (const std::string_view head : {
           "GET / HTTP/1.1\r\nHost: a\r\n",          // not arrived yet
           "GET / HTTP/1.1\r\nHost: a\r\n\r",        // nor this
           "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n",  // a leading empty line
           "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
           "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n",
           "CONNECT /x HTTP/1.1\r\nHost: a\r\n\r\n",
           "GET / HTTP/1.2\r\nHost: a\r\n\r\n",
           "GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n",
           "GET / HTTP/1.1\nHost: a\r\n\r\n",
       }) {
    EXPECT_FALSE(scan(head, out)) << escape(head);
  }
  Limits limits;
  limits.max_header_fields = 1;
  EXPECT_FALSE(scan("GET / HTTP/1.1\r\nHost: a\r\nA: b\r\n\r\n", out, limits));
}

// Each part of a head with a run of filler before the byte under test, so that the byte falls
// at every lane of a 32-byte and a 16-byte step and in the scalar tail.
std::string head_with(char part, std::string_view filler, char byte) {
  std::string b(filler);
  b += byte;
  b += "z";
  switch (part) {
    case 'm':
      return b + " /p HTTP/1.1\r\nHost: h\r\n\r\n";
    case 't':
      return "GET /" + b + " HTTP/1.1\r\nHost: h\r\n\r\n";
    case 'q':
      return "GET /p?" + b + " HTTP/1.1\r\nHost: h\r\n\r\n";
    case 'n':
      return "GET /p HTTP/1.1\r\nHost: h\r\n" + b + ": v\r\n\r\n";
    default:
      return "GET /p HTTP/1.1\r\nHost: h\r\nX: " + b + "\r\n\r\n";
  }
}

TEST_P(HeadScan, EveryByteAtEveryLaneGivesTheStateMachinesResult) {
  for (const char part : {'m', 't', 'q', 'n', 'v'}) {
    for (size_t run = 0; run <= 40; ++run) {
      const std::string filler(run, 'a');
      for (int byte = 0; byte < 256; ++byte) {
        const std::string head = head_with(part, filler, static_cast<char>(byte));
        const Replay expected = replay_whole(head, {}, 1, ParserIsa::kIncremental);
        ASSERT_EQ(replay_whole(head, {}, 1, GetParam()), expected)
            << "part " << part << ", byte " << byte << ", offset " << run << ": " << escape(head)
            << "\n  " << describe(expected);
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Isas, HeadScan, ::testing::ValuesIn(scanning_isas()),
                         [](const ::testing::TestParamInfo<ParserIsa>& info) {
                           std::string name = to_string(info.param);
                           return name == "sse4.2" ? std::string("sse42") : name;
                         });

}  // namespace
}  // namespace rs::http::test
