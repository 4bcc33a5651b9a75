// Connection handling: keep-alive decision, pipelining with exact byte accounting, reset and
// error stickiness, and the incremental (resumable, relocatable block) head contract.
#include <gtest/gtest.h>

#include <string>

#include "tests/http/parser_checks.hpp"

namespace rs::http::test {
namespace {

bool keep_alive(std::string_view version, std::string_view connection_fields) {
  const std::string raw =
      "GET / " + std::string(version) + "\r\nHost: h\r\n" + std::string(connection_fields) + "\r\n";
  const Message m = parse(raw).first();
  EXPECT_EQ(m.verdict, Verdict::kComplete) << raw;
  return m.keep_alive;
}

TEST(ParserConnection, Http11DefaultsToKeepAlive) {
  EXPECT_TRUE(keep_alive("HTTP/1.1", ""));
  EXPECT_TRUE(keep_alive("HTTP/1.1", "Connection: keep-alive\r\n"));
  EXPECT_TRUE(keep_alive("HTTP/1.1", "Connection: upgrade, te\r\n"));
}

TEST(ParserConnection, Http11ClosesOnCloseToken) {
  EXPECT_FALSE(keep_alive("HTTP/1.1", "Connection: close\r\n"));
  EXPECT_FALSE(keep_alive("HTTP/1.1", "Connection: CLOSE\r\n"));
  EXPECT_FALSE(keep_alive("HTTP/1.1", "Connection: te, Close ,x\r\n"));
  EXPECT_FALSE(keep_alive("HTTP/1.1", "Connection: keep-alive\r\nConnection: close\r\n"));
}

TEST(ParserConnection, Http10DefaultsToClose) {
  EXPECT_FALSE(keep_alive("HTTP/1.0", ""));
  EXPECT_FALSE(keep_alive("HTTP/1.0", "Connection: te\r\n"));
}

TEST(ParserConnection, Http10KeepsAliveOnlyWithKeepAliveToken) {
  EXPECT_TRUE(keep_alive("HTTP/1.0", "Connection: Keep-Alive\r\n"));
  EXPECT_TRUE(keep_alive("HTTP/1.0", "Connection: foo,keep-alive\r\n"));
  EXPECT_FALSE(keep_alive("HTTP/1.0", "Connection: keep-alive, close\r\n"));
}

TEST(ParserConnection, ConnectionTokensMatchWholeElementsOnly) {
  EXPECT_TRUE(keep_alive("HTTP/1.1", "Connection: closed\r\n"));
  EXPECT_TRUE(keep_alive("HTTP/1.1", "Connection: \"close\"\r\n"));
  EXPECT_FALSE(keep_alive("HTTP/1.0", "Connection: keep-alive-ish\r\n"));
}

TEST(ParserConnection, PipelinedRequestsConsumeExactlyTheirBytes) {
  const std::string first = "POST /a HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabc";
  const std::string second =
      "POST /b HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nxy\r\n0\r\nT: "
      "1\r\n\r\n";
  const std::string third = "GET /c HTTP/1.1\r\nHost: h\r\n\r\n";
  const Replay r = parse(first + second + third, {}, 3);
  ASSERT_EQ(r.messages.size(), 3U) << describe(r);
  EXPECT_EQ(r.messages[0].message_bytes, first.size());
  EXPECT_EQ(r.messages[0].body, "abc");
  EXPECT_EQ(r.messages[1].message_bytes, second.size());
  EXPECT_EQ(r.messages[1].body, "xy");
  EXPECT_EQ(r.messages[2].message_bytes, third.size());
  EXPECT_EQ(r.messages[2].path, "/c");
  EXPECT_EQ(r.rest, "");
}

TEST(ParserConnection, BytesAfterTheRequestAreLeftUntouched) {
  const std::string request = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nok";
  const std::string after = "GARBAGE \x01\x02 that is not parsed";
  const Replay r = parse(request + after);
  EXPECT_EQ(r.first().message_bytes, request.size());
  EXPECT_EQ(r.rest, after);
}

TEST(ParserConnection, ParsingStopsAfterConnectionClose) {
  const std::string request = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
  const std::string after = "GET /next HTTP/1.1\r\nHost: h\r\n\r\n";
  const Replay r = parse(request + after, {}, 8);
  ASSERT_EQ(r.messages.size(), 1U);
  EXPECT_FALSE(r.first().keep_alive);
  EXPECT_EQ(r.rest, after);
}

TEST(ParserConnection, EmptyLineBetweenPipelinedRequestsIsSkipped) {
  const std::string first = "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\n\r\nx";
  const std::string second = "\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
  const Replay r = parse(first + second, {}, 2);
  ASSERT_EQ(r.messages.size(), 2U);
  EXPECT_EQ(r.messages[1].verdict, Verdict::kComplete);
  EXPECT_EQ(r.messages[1].message_bytes, second.size());
}

TEST(ParserConnection, ResetReadiesTheParserForTheNextRequest) {
  RequestParser parser;
  const std::string first = "PUT /1 HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nX: y\r\n\r\n";
  ASSERT_EQ(parser.parse_head(first), ParseStatus::kComplete);
  EXPECT_TRUE(parser.parse_body("z").done);
  parser.reset();
  const std::string second = "GET /2 HTTP/1.0\r\n\r\n";
  ASSERT_EQ(parser.parse_head(second), ParseStatus::kComplete);
  const RequestHead& head = parser.head();
  EXPECT_EQ(head.target, "/2");
  EXPECT_EQ(head.header_count, 0U);
  EXPECT_EQ(head.content_length, std::nullopt);
  EXPECT_EQ(head.host, "");
  EXPECT_FALSE(head.keep_alive);
  EXPECT_TRUE(parser.body_done());
  EXPECT_EQ(parser.message_bytes(), second.size());
}

TEST(ParserConnection, ErrorsAreSticky) {
  RequestParser parser;
  ASSERT_EQ(parser.parse_head("GET / HTTP/2.0\r\n"), ParseStatus::kError);
  EXPECT_EQ(parser.error(), ParseError::kVersionNotSupported);
  EXPECT_EQ(parser.parse_head("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), ParseStatus::kError);
  const BodyResult body = parser.parse_body("x");
  EXPECT_EQ(body.error, ParseError::kVersionNotSupported);
  EXPECT_EQ(body.consumed, 0U);
  parser.reset();
  EXPECT_EQ(parser.parse_head("GET / HTTP/1.1\r\nHost: h\r\n\r\n"), ParseStatus::kComplete);
}

TEST(ParserConnection, HeadResumesInAMovedBlock) {
  const std::string_view raw = "GET /moved HTTP/1.1\r\nHost: example.com\r\nX-Long: value\r\n\r\n";
  RequestParser parser;
  std::string first(raw.substr(0, 30));
  ASSERT_EQ(parser.parse_head(first), ParseStatus::kIncomplete);
  first.assign(64, '#');  // the old bytes are gone; only offsets may have been kept
  const std::string second(raw);
  ASSERT_EQ(parser.parse_head(second), ParseStatus::kComplete);
  const RequestHead& head = parser.head();
  EXPECT_EQ(head.path, "/moved");
  EXPECT_EQ(head.host, "example.com");
  EXPECT_EQ(head.header_value("x-long"), "value");
  EXPECT_EQ(head.method.data(), second.data());
}

TEST(ParserConnection, LargestAcceptableHeadIsMaxHeadBytes) {
  Limits limits;
  limits.max_request_line_bytes = 32;
  limits.max_header_bytes = 48;
  std::string raw;
  for (int i = 0; i < 16; ++i) {
    raw += "\r\n";
  }
  raw += "GET /" + std::string(32 - 14, 'a') + " HTTP/1.1\r\n";
  raw += "Host: h\r\nX: " + std::string(48 - 9 - 5 - 2, 'v') + "\r\n\r\n";
  const Message m = parse(raw, limits).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete) << describe(parse(raw, limits));
  EXPECT_EQ(m.head_bytes, max_head_bytes(limits));
}

TEST(ParserConnection, CompleteHeadIsStableOnRepeatedCalls) {
  const std::string raw = "GET / HTTP/1.1\r\nHost: h\r\n\r\nbody";
  RequestParser parser;
  ASSERT_EQ(parser.parse_head(raw), ParseStatus::kComplete);
  EXPECT_EQ(parser.parse_head(raw), ParseStatus::kComplete);
  EXPECT_EQ(parser.head_bytes(), raw.size() - 4);
}

TEST(ParserConnection, ErrorNamesAndStatusesAreStable) {
  EXPECT_STREQ(to_string(ParseError::kNone), "none");
  EXPECT_STREQ(to_string(ParseError::kTeClConflict), "te_cl_conflict");
  EXPECT_STREQ(to_string(ParseError::kBadChunk), "bad_chunk");
  EXPECT_STREQ(to_string(ParseError::kHeaderTooLarge), "header_too_large");
  EXPECT_STREQ(to_string(ParseError::kLineTooLong), "line_too_long");
  EXPECT_STREQ(to_string(ParseError::kBodyTooLarge), "body_too_large");
  EXPECT_STREQ(to_string(ParseError::kUnsupportedTe), "unsupported_te");
  EXPECT_EQ(status_for(ParseError::kNone), 0);
  EXPECT_EQ(status_for(ParseError::kBadHost), 400);
  EXPECT_EQ(status_for(ParseError::kVersionNotSupported), 505);
  EXPECT_EQ(status_for(ParseError::kConnectUnsupported), 501);
}

}  // namespace
}  // namespace rs::http::test
