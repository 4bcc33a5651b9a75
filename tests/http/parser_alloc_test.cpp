// The parser must not allocate: it runs on the ring thread for every request, and its memory
// is bounded by Limits alone.
#include <gtest/gtest.h>

#include <string>

#include "net/http/parser.hpp"
#include "tests/support/alloc_counter.hpp"

namespace rs::http {
namespace {

TEST(ParserMemory, ParsingAllocatesNothing) {
  const std::string head =
      "POST /a?b=c HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n"
      "Connection: keep-alive\r\nExpect: 100-continue\r\n\r\n";
  const std::string body = "5;x=\"y\"\r\nhello\r\n0\r\nT: 1\r\n\r\n";
  const std::string bad = "GET / HTTP/1.1\r\nContent-Length: 1, 2\r\n\r\n";
  RequestParser parser;
  rs::test::set_alloc_counting(true);
  const std::uint64_t before = rs::test::alloc_count();
  for (size_t cut = 1; cut < head.size(); ++cut) {
    parser.reset();
    ASSERT_EQ(parser.parse_head(std::string_view(head).substr(0, cut)), ParseStatus::kIncomplete);
    ASSERT_EQ(parser.parse_head(head), ParseStatus::kComplete);
    std::string_view input = body;
    while (!input.empty()) {
      const BodyResult r = parser.parse_body(input);
      ASSERT_EQ(r.error, ParseError::kNone);
      input.remove_prefix(r.consumed);
    }
    ASSERT_TRUE(parser.body_done());
  }
  parser.reset();
  ASSERT_EQ(parser.parse_head(bad), ParseStatus::kError);
  const std::uint64_t allocations = rs::test::alloc_count() - before;
  rs::test::set_alloc_counting(false);
  EXPECT_EQ(allocations, 0u);
}

}  // namespace
}  // namespace rs::http
