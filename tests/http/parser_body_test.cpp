// Bodies: Content-Length and chunked decoding, extensions, trailers, limits, 100-continue.
#include <gtest/gtest.h>

#include <string>

#include "tests/http/parser_checks.hpp"

namespace rs::http::test {
namespace {

std::string chunked(std::string_view body, std::string_view extra_fields = "") {
  return "POST /up HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n" +
         std::string(extra_fields) + "\r\n" + std::string(body);
}

TEST(ParserBody, ContentLengthBodyIsDeliveredAndCounted) {
  const std::string raw = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 11\r\n\r\nhello world";
  const Message m = parse(raw).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.body, "hello world");
  EXPECT_EQ(m.message_bytes, raw.size());
  EXPECT_EQ(m.head_bytes, raw.size() - 11);
}

TEST(ParserBody, ContentLengthBodyIsIncompleteUntilItsLastByte) {
  const Message m = parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhell").first();
  EXPECT_EQ(m.verdict, Verdict::kIncomplete);
  EXPECT_EQ(m.body, "hell");
}

TEST(ParserBody, ChunkedBodyIsDecoded) {
  const std::string raw = chunked("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  const Message m = parse(raw).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_TRUE(m.chunked);
  EXPECT_EQ(m.content_length, std::nullopt);
  EXPECT_EQ(m.body, "hello world");
  EXPECT_EQ(m.message_bytes, raw.size());
}

TEST(ParserBody, ChunkSizesAreHexWithLeadingZerosAllowed) {
  const Message m = parse(chunked("00A\r\n0123456789\r\n000\r\n\r\n")).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.body, "0123456789");
}

TEST(ParserBody, ChunkExtensionsAreValidatedAndIgnored) {
  const Message m = parse(chunked("5;a\r\nhello\r\n"
                                  "1 ; b = c ;d=\"q \\\" ; x\"\r\n!\r\n"
                                  "1;e=\"\"\r\n?\r\n"
                                  "0;last=yes\r\n\r\n"))
                        .first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.body, "hello!?");
}

TEST(ParserBody, MalformedChunkExtensionIs400) {
  for (const std::string_view line :
       {"5;\r\n", "5; \r\n", "5;a=\r\n", "5;a=\"x\r\n", "5;a b\r\n", "5;a=b c\r\n", "5;@\r\n",
        "5;a=\"\x01\"\r\n", "5;a=\"x\"y\r\n", "5 \r\n", "5 a\r\n", "5;a \r\n"}) {
    EXPECT_TRUE(
        rejects(chunked(std::string(line) + "hello\r\n0\r\n\r\n"), ParseError::kBadChunk, 400))
        << line;
  }
}

TEST(ParserBody, TrailersAreValidatedAndDiscarded) {
  const std::string raw = chunked("3\r\nabc\r\n0\r\nX-Sum: 1\r\nContent-Length: 99\r\n\r\n");
  const Message m = parse(raw).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.body, "abc");
  EXPECT_EQ(m.content_length, std::nullopt);  // a trailer never changes framing
  EXPECT_EQ(m.message_bytes, raw.size());
}

TEST(ParserBody, MalformedTrailerIs400) {
  for (const std::string_view trailer : {"X : 1\r\n", " X: 1\r\n", "X: 1\r\n folded\r\n",
                                         "X: a\x01\r\n", "X: 1\n", "X\r\n", "X: 1\rY"}) {
    EXPECT_TRUE(
        rejects(chunked("0\r\n" + std::string(trailer) + "\r\n"), ParseError::kBadTrailer, 400))
        << trailer;
  }
}

TEST(ParserBody, TrailerSectionOverTheHeaderLimitIs431) {
  Limits limits;
  limits.max_header_bytes = 64;
  const std::string big = "X: " + std::string(80, 'v') + "\r\n";
  EXPECT_TRUE(rejects(chunked("0\r\n" + big + "\r\n"), ParseError::kHeaderTooLarge, 431, limits));
}

TEST(ParserBody, TooManyTrailerFieldsIs431) {
  Limits limits;
  limits.max_header_fields = 4;
  EXPECT_TRUE(rejects(chunked("0\r\nA: 1\r\nB: 1\r\nC: 1\r\nD: 1\r\nE: 1\r\n\r\n"),
                      ParseError::kTooManyHeaders, 431, limits));
}

TEST(ParserBody, MalformedChunkSizeIs400) {
  for (const std::string_view body :
       {"\r\n", "g\r\n", "-1\r\n", "0x5\r\n", "+5\r\n", " 5\r\n", "5\n", "5\r\r\n"}) {
    EXPECT_TRUE(rejects(chunked(body), ParseError::kBadChunk, 400)) << body;
  }
}

TEST(ParserBody, MissingCrlfAfterChunkDataIs400) {
  EXPECT_TRUE(rejects(chunked("5\r\nhelloX\r\n0\r\n\r\n"), ParseError::kBadChunk, 400));
  EXPECT_TRUE(rejects(chunked("5\r\nhello\n0\r\n\r\n"), ParseError::kBadChunk, 400));
  EXPECT_TRUE(rejects(chunked("5\r\nhello\r\n0\r\n\n"), ParseError::kBadTrailer, 400));
  EXPECT_TRUE(rejects(chunked("5\r\nhello\r\n0\r\n\rX"), ParseError::kBadChunk, 400));
}

TEST(ParserBody, ChunkSizeOverflowIs400) {
  Limits limits;
  limits.max_body_bytes = UINT64_MAX;
  EXPECT_TRUE(rejects(chunked("10000000000000000\r\n"), ParseError::kBadChunk, 400, limits));
}

TEST(ParserBody, ChunkedTotalOverTheLimitIs413WhenItPassesTheLimit) {
  Limits limits;
  limits.max_body_bytes = 10;
  // The first chunk is delivered; the second is refused from its size line alone.
  const Replay r = parse(chunked("5\r\nhello\r\n6\r\n"), limits);
  EXPECT_EQ(r.first().verdict, Verdict::kError);
  EXPECT_EQ(r.first().error, ParseError::kBodyTooLarge);
  EXPECT_EQ(r.first().body, "hello");
  EXPECT_TRUE(accepts(chunked("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), limits));
}

TEST(ParserBody, DefaultChunkedLimitIs1MiB) {
  EXPECT_TRUE(rejects(chunked("100001\r\n"), ParseError::kBodyTooLarge, 413));
  EXPECT_TRUE(rejects(chunked("FFFFFFFFFFFFFFFFFFFFFFFF\r\n"), ParseError::kBodyTooLarge, 413));
}

TEST(ParserBody, LongChunkSizeLineIs400) {
  Limits limits;
  limits.max_chunk_line_bytes = 16;
  EXPECT_TRUE(accepts(chunked("1;abcdefghijklmn\r\nx\r\n0\r\n\r\n"), limits));
  EXPECT_TRUE(
      rejects(chunked("1;abcdefghijklmno\r\nx\r\n0\r\n\r\n"), ParseError::kBadChunk, 400, limits));
  EXPECT_TRUE(rejects(chunked(std::string(17, '0')), ParseError::kBadChunk, 400, limits));
}

TEST(ParserBody, ExpectContinueIsReportedForHttp11) {
  const Message m =
      parse("PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\nContent-Length: 2\r\n\r\nhi")
          .first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_TRUE(m.expect_continue);
}

TEST(ParserBody, ExpectContinueIsIgnoredForHttp10) {
  const Message m =
      parse("PUT /f HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi").first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_FALSE(m.expect_continue);
}

TEST(ParserBody, OtherExpectationsAreNotContinue) {
  const Message m = parse("GET / HTTP/1.1\r\nHost: h\r\nExpect: 200-ok\r\n\r\n").first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_FALSE(m.expect_continue);
}

TEST(ParserBody, ExpectContinueIsKnownBeforeAnyBodyByte) {
  const std::string head =
      "PUT /f HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n"
      "Content-Length: 5\r\n\r\n";
  RequestParser parser;
  ASSERT_EQ(parser.parse_head(head), ParseStatus::kComplete);
  EXPECT_TRUE(parser.head().expect_continue);
  EXPECT_FALSE(parser.body_done());
  const BodyResult body = parser.parse_body("hello");
  EXPECT_TRUE(body.done);
  EXPECT_EQ(body.data, "hello");
}

TEST(ParserBody, BodilessRequestIsDoneWhenTheHeadIs) {
  RequestParser parser;
  ASSERT_EQ(parser.parse_head("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseStatus::kComplete);
  EXPECT_TRUE(parser.body_done());
  const BodyResult body = parser.parse_body("GET /next");
  EXPECT_TRUE(body.done);
  EXPECT_EQ(body.consumed, 0U);
}

TEST(ParserBody, ChunkedDataIsAViewIntoTheInput) {
  RequestParser parser;
  ASSERT_EQ(parser.parse_head(chunked("")), ParseStatus::kComplete);
  const std::string input = "5\r\nhello\r\n0\r\n\r\n";
  BodyResult r = parser.parse_body(input);
  EXPECT_EQ(r.data, "hello");
  EXPECT_EQ(r.data.data(), input.data() + 3);
  EXPECT_EQ(r.consumed, 8U);
  EXPECT_FALSE(r.done);
  r = parser.parse_body(std::string_view(input).substr(8));
  EXPECT_TRUE(r.done);
  EXPECT_EQ(r.data, "");
  EXPECT_EQ(r.consumed, input.size() - 8);
}

}  // namespace
}  // namespace rs::http::test
