// Request line: method, request-target forms, version, leading empty lines, line limit.
#include <gtest/gtest.h>

#include <string>

#include "tests/http/parser_checks.hpp"

namespace rs::http::test {
namespace {

constexpr std::string_view kHost = "Host: example.com\r\n";

std::string get(std::string_view target, std::string_view version = "HTTP/1.1") {
  return "GET " + std::string(target) + " " + std::string(version) + "\r\n" + std::string(kHost) +
         "\r\n";
}

TEST(ParserRequestLine, ParsesOriginFormIntoPathAndQuery) {
  const Message m = parse(get("/a/b%20c?x=1&y=/?")).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.method, "GET");
  EXPECT_EQ(m.target, "/a/b%20c?x=1&y=/?");
  EXPECT_EQ(m.form, TargetForm::kOrigin);
  EXPECT_EQ(m.path, "/a/b%20c");
  EXPECT_EQ(m.query, "x=1&y=/?");
  EXPECT_EQ(m.version_major, 1);
  EXPECT_EQ(m.version_minor, 1);
  EXPECT_EQ(m.host, "example.com");
}

TEST(ParserRequestLine, AnyTokenIsAMethod) {
  for (const std::string_view method : {"BREW", "M-SEARCH", "x!#$%&'*+-.^_`|~9", "get"}) {
    const Message m = parse(std::string(method) + " / HTTP/1.1\r\nHost: h\r\n\r\n").first();
    ASSERT_EQ(m.verdict, Verdict::kComplete) << method;
    EXPECT_EQ(m.method, method);
  }
}

TEST(ParserRequestLine, EmptyOrNonTokenMethodIs400) {
  EXPECT_TRUE(rejects(" / HTTP/1.1\r\n\r\n", ParseError::kBadRequestLine, 400));
  EXPECT_TRUE(rejects("G(T / HTTP/1.1\r\n\r\n", ParseError::kBadRequestLine, 400));
  EXPECT_TRUE(rejects("G\tT / HTTP/1.1\r\n\r\n", ParseError::kBadRequestLine, 400));
}

TEST(ParserRequestLine, MoreThanOneSpaceBetweenPartsIs400) {
  EXPECT_TRUE(rejects("GET  / HTTP/1.1\r\n\r\n", ParseError::kBadRequestLine, 400));
  EXPECT_TRUE(rejects("GET /  HTTP/1.1\r\n\r\n", ParseError::kBadVersion, 400));
}

TEST(ParserRequestLine, MissingVersionIs400) {
  EXPECT_TRUE(rejects("GET /\r\n\r\n", ParseError::kBadRequestLine, 400));
}

TEST(ParserRequestLine, AbsoluteFormTakesHostFromTheTarget) {
  const Message m =
      parse("GET http://example.com:8080/p?q HTTP/1.1\r\nHost: other\r\n\r\n").first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.form, TargetForm::kAbsolute);
  EXPECT_EQ(m.host, "example.com:8080");
  EXPECT_EQ(m.path, "/p");
  EXPECT_EQ(m.query, "q");
}

TEST(ParserRequestLine, AbsoluteFormWithEmptyPathMeansSlash) {
  const Message m = parse(get("HTTPS://[::1]:443?a=b")).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.host, "[::1]:443");
  EXPECT_EQ(m.path, "/");
  EXPECT_EQ(m.query, "a=b");
}

TEST(ParserRequestLine, AbsoluteFormStillNeedsHostInHttp11) {
  EXPECT_TRUE(rejects("GET http://example.com/ HTTP/1.1\r\n\r\n", ParseError::kBadHost, 400));
}

TEST(ParserRequestLine, AbsoluteFormWithUserinfoIs400) {
  EXPECT_TRUE(rejects(get("http://user:pw@example.com/"), ParseError::kBadTarget, 400));
}

TEST(ParserRequestLine, AbsoluteFormWithEmptyHostIs400) {
  EXPECT_TRUE(rejects(get("http:///x"), ParseError::kBadTarget, 400));
  EXPECT_TRUE(rejects(get("http://:80/x"), ParseError::kBadTarget, 400));
}

TEST(ParserRequestLine, AbsoluteFormWithOtherSchemeIs400) {
  EXPECT_TRUE(rejects(get("ftp://example.com/"), ParseError::kBadTarget, 400));
  EXPECT_TRUE(rejects(get("example.com:80"), ParseError::kBadTarget, 400));
  EXPECT_TRUE(rejects(get("http:/x"), ParseError::kBadTarget, 400));
}

TEST(ParserRequestLine, AsteriskFormIsAcceptedForOptions) {
  const Message m = parse("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n").first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.form, TargetForm::kAsterisk);
  EXPECT_EQ(m.path, "*");
}

TEST(ParserRequestLine, AsteriskFormWithOtherMethodsIs400) {
  EXPECT_TRUE(rejects(get("*"), ParseError::kBadTarget, 400));
  EXPECT_TRUE(rejects("OPTIONS *x HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadTarget, 400));
}

TEST(ParserRequestLine, ConnectIs501) {
  EXPECT_TRUE(rejects("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
                      ParseError::kConnectUnsupported, 501));
}

TEST(ParserRequestLine, InvalidTargetBytesAre400) {
  for (const std::string_view target :
       {"/a#frag", "/\"q\"", "/\xc3\xa9", "/a\x7f", "/a%zz", "/a%4", "/[x]", "/a\tb", "/a\\b"}) {
    EXPECT_TRUE(rejects(get(target), ParseError::kBadTarget, 400)) << target;
  }
}

TEST(ParserRequestLine, LeadingEmptyLinesAreSkippedAndCounted) {
  const std::string raw = "\r\n\r\n" + get("/");
  const Message m = parse(raw).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.head_bytes, raw.size());
}

TEST(ParserRequestLine, EndlessLeadingEmptyLinesAre400) {
  Limits limits;
  limits.max_request_line_bytes = 16;
  std::string raw;
  for (int i = 0; i < 8; ++i) {
    raw += "\r\n";
  }
  EXPECT_TRUE(accepts(raw + get("/"), limits));
  EXPECT_TRUE(rejects(raw + "\r\n" + get("/"), ParseError::kBadRequestLine, 400, limits));
}

TEST(ParserRequestLine, BareLfIs400) {
  EXPECT_TRUE(rejects("GET / HTTP/1.1\nHost: h\n\n", ParseError::kBadLineEnding, 400));
  EXPECT_TRUE(rejects("\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadLineEnding, 400));
  EXPECT_TRUE(rejects("\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", ParseError::kBadLineEnding, 400));
}

TEST(ParserRequestLine, BareCrAfterVersionIs400) {
  EXPECT_TRUE(rejects("GET / HTTP/1.1\rHost: h\r\n\r\n", ParseError::kBadLineEnding, 400));
}

TEST(ParserRequestLine, MalformedVersionIs400) {
  for (const std::string_view version : {"HTTP/1.1 ", "HTTP/01.1", "HTTP/1.01", "HTTP/11.1",
                                         "http/1.1", "HTTP/1", "HTTP/1.x", "HTP/1.1", "ICE/1.0"}) {
    EXPECT_TRUE(rejects(get("/", version), ParseError::kBadVersion, 400)) << version;
  }
}

TEST(ParserRequestLine, MajorVersionOtherThanOneIs505) {
  for (const std::string_view version : {"HTTP/2.0", "HTTP/0.9", "HTTP/3.0", "HTTP/9.9"}) {
    EXPECT_TRUE(rejects(get("/", version), ParseError::kVersionNotSupported, 505)) << version;
  }
}

TEST(ParserRequestLine, HigherMinorVersionIsTreatedAsHttp11) {
  const Message m = parse(get("/", "HTTP/1.7")).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.version_minor, 7);
  EXPECT_TRUE(m.keep_alive);
  EXPECT_TRUE(rejects("GET / HTTP/1.7\r\n\r\n", ParseError::kBadHost, 400));
}

TEST(ParserRequestLine, Http10NeedsNoHost) {
  const Message m = parse("GET / HTTP/1.0\r\n\r\n").first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.host, "");
}

TEST(ParserRequestLine, RequestLineAtTheLimitIsAccepted) {
  Limits limits;
  limits.max_request_line_bytes = 64;
  const std::string target = "/" + std::string(64 - 4 - 9 - 1, 'a');  // "GET " + " HTTP/1.1"
  ASSERT_EQ(("GET " + target + " HTTP/1.1").size(), 64U);
  EXPECT_TRUE(accepts(get(target), limits));
}

TEST(ParserRequestLine, RequestLineOverTheLimitIs414) {
  Limits limits;
  limits.max_request_line_bytes = 64;
  const std::string target = "/" + std::string(64 - 4 - 9, 'a');
  EXPECT_TRUE(rejects(get(target), ParseError::kLineTooLong, 414, limits));
}

TEST(ParserRequestLine, DefaultLimitIs8KiB) {
  const std::string at_limit = "/" + std::string(8192 - 14, 'a');
  EXPECT_TRUE(accepts(get(at_limit)));
  EXPECT_TRUE(rejects(get(at_limit + "a"), ParseError::kLineTooLong, 414));
}

TEST(ParserRequestLine, LineEndingRightAtTheLimitIsJudgedByItsContent) {
  Limits limits;
  limits.max_request_line_bytes = 16;
  // Found by the fuzzer: a method or target that fills the limit exactly, then CR, used to stall.
  EXPECT_TRUE(rejects(std::string(16, 'G') + "\r\n", ParseError::kBadRequestLine, 400, limits));
  EXPECT_TRUE(
      rejects("GET /" + std::string(11, 'a') + "\r\n", ParseError::kBadRequestLine, 400, limits));
  EXPECT_TRUE(rejects("GET /" + std::string(11, 'a') + " ", ParseError::kLineTooLong, 414, limits));
}

TEST(ParserRequestLine, LongLineIsRejectedBeforeItEnds) {
  Limits limits;
  limits.max_request_line_bytes = 32;
  // No CRLF ever arrives: the parser must not wait for one.
  EXPECT_TRUE(rejects("GET /" + std::string(100, 'a'), ParseError::kLineTooLong, 414, limits));
  EXPECT_TRUE(rejects(std::string(100, 'G'), ParseError::kLineTooLong, 414, limits));
}

}  // namespace
}  // namespace rs::http::test
