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
  EXPECT_EQ(kHead.substr(out.target_begin, out.target_len), "/plaintext");
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
  const std::string_view target = std::string_view(head).substr(out.target_begin, out.target_len);
  EXPECT_EQ(target, "/a%20b/c?x=%2F&y=/?z");
  EXPECT_EQ(target.substr(0, out.path_len), "/a%20b/c");
  EXPECT_EQ(out.version_minor, 0);
  ASSERT_EQ(out.field_count, 4U);
  EXPECT_EQ(headers_[1].value, "Mozilla/5.0 (X11; Linux x86_64) \xc3\xa9");
  EXPECT_EQ(headers_[2].value, cookie);
  EXPECT_EQ(headers_[3].value, "");
  EXPECT_EQ(out.head_bytes, head.size() - 4);
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
