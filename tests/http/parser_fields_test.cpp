// Header fields: syntax, Host rules, header block limits.
#include <gtest/gtest.h>

#include <string>

#include "tests/http/parser_checks.hpp"

namespace rs::http::test {
namespace {

std::string with_fields(std::string_view fields, std::string_view version = "HTTP/1.1") {
  return "GET / " + std::string(version) + "\r\nHost: example.com\r\n" + std::string(fields) +
         "\r\n";
}

TEST(ParserFields, ValuesAreTrimmedAndNamesKeepTheirCase) {
  const Message m = parse(with_fields("X-A:  a b \t\r\nx-empty:\r\nX-Tab:\tv\r\n")).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  ASSERT_EQ(m.headers.size(), 4U);
  EXPECT_EQ(m.headers[1], (std::pair<std::string, std::string>{"X-A", "a b"}));
  EXPECT_EQ(m.headers[2], (std::pair<std::string, std::string>{"x-empty", ""}));
  EXPECT_EQ(m.headers[3], (std::pair<std::string, std::string>{"X-Tab", "v"}));
}

TEST(ParserFields, FindHeaderIgnoresCaseAndPointsIntoTheBlock) {
  const std::string raw = with_fields("Content-Type: text/plain\r\n");
  RequestParser parser;
  ASSERT_EQ(parser.parse_head(raw), ParseStatus::kComplete);
  const RequestHead& head = parser.head();
  const Header* header = head.find_header("content-TYPE");
  ASSERT_NE(header, nullptr);
  EXPECT_EQ(header->value, "text/plain");
  EXPECT_GE(header->value.data(), raw.data());
  EXPECT_LE(header->value.data() + header->value.size(), raw.data() + raw.size());
  EXPECT_EQ(head.header_value("host"), "example.com");
  EXPECT_EQ(head.header_value("missing"), std::nullopt);
}

TEST(ParserFields, ObsTextInValuesIsAccepted) {
  EXPECT_TRUE(accepts(with_fields("City: D\xc3\xbcsseldorf\r\n")));
}

TEST(ParserFields, ObsFoldIs400) {
  EXPECT_TRUE(rejects(with_fields("X-A: a\r\n b\r\n"), ParseError::kObsFold, 400));
  EXPECT_TRUE(rejects(with_fields("X-A: a\r\n\tb\r\n"), ParseError::kObsFold, 400));
}

TEST(ParserFields, WhitespaceLineAfterRequestLineIs400) {
  EXPECT_TRUE(rejects("GET / HTTP/1.1\r\n Host: h\r\n\r\n", ParseError::kObsFold, 400));
}

TEST(ParserFields, WhitespaceBeforeColonIs400) {
  EXPECT_TRUE(rejects(with_fields("X-A : a\r\n"), ParseError::kBadHeader, 400));
  EXPECT_TRUE(rejects(with_fields("X-A\t: a\r\n"), ParseError::kBadHeader, 400));
}

TEST(ParserFields, InvalidTokenCharacterInNameIs400) {
  for (const std::string_view line :
       {"Fo@: x\r\n", "{: 1\r\n", "a\033b: c\r\n", "a b: c\r\n", ":a\r\n", "X\x80: y\r\n"}) {
    EXPECT_TRUE(rejects(with_fields(line), ParseError::kBadHeader, 400)) << line;
  }
}

TEST(ParserFields, LineWithoutColonIs400) {
  EXPECT_TRUE(rejects(with_fields("NoColon\r\n"), ParseError::kBadHeader, 400));
}

TEST(ParserFields, NulInValueIs400) {
  EXPECT_TRUE(rejects(with_fields(std::string("X-A: a\0b\r\n", 10)), ParseError::kBadHeader, 400));
}

TEST(ParserFields, BareCrInValueIs400) {
  EXPECT_TRUE(rejects(with_fields("X-A: a\rb\r\n"), ParseError::kBadLineEnding, 400));
  EXPECT_TRUE(rejects(with_fields("X-A: a\r\r\n"), ParseError::kBadLineEnding, 400));
}

TEST(ParserFields, BareLfAfterValueIs400) {
  EXPECT_TRUE(rejects(with_fields("X-A: a\nX-B: b\r\n"), ParseError::kBadLineEnding, 400));
  EXPECT_TRUE(rejects("GET / HTTP/1.1\r\nHost: h\r\n\n", ParseError::kBadLineEnding, 400));
}

TEST(ParserFields, ControlCharacterInValueIs400) {
  for (const std::string_view line : {"X-A: a\x01\r\n", "X-A: \x1f\r\n", "X-A: a\x7f\r\n"}) {
    EXPECT_TRUE(rejects(with_fields(line), ParseError::kBadHeader, 400)) << line;
  }
}

TEST(ParserFields, BadByteIsRejectedBeforeTheLineEnds) {
  EXPECT_TRUE(rejects("GET / HTTP/1.1\r\nFo@", ParseError::kBadHeader, 400));
  EXPECT_TRUE(rejects("GET / HTTP/1.1\r\nFoo: B\x02", ParseError::kBadHeader, 400));
}

TEST(ParserFields, MissingHostInHttp11Is400) {
  EXPECT_TRUE(rejects("GET / HTTP/1.1\r\nAccept: */*\r\n\r\n", ParseError::kBadHost, 400));
}

TEST(ParserFields, RepeatedHostIs400InAnyVersion) {
  EXPECT_TRUE(rejects(with_fields("Host: example.com\r\n"), ParseError::kBadHost, 400));
  EXPECT_TRUE(rejects(with_fields("hOsT: other\r\n", "HTTP/1.0"), ParseError::kBadHost, 400));
}

TEST(ParserFields, InvalidHostIs400InAnyVersion) {
  for (const std::string_view host :
       {"exa mple.com", "a/b", "a@b", "[::1", "[::1]x", "h:8o", "[1:2:3:4:5:6:7:8:9]", "[:::1]",
        "[1::2::3]", "[::1.2.3.256]", "%zz", "[v.x]", "a\"b"}) {
    const std::string raw = "GET / HTTP/1.0\r\nHost: " + std::string(host) + "\r\n\r\n";
    EXPECT_TRUE(rejects(raw, ParseError::kBadHost, 400)) << host;
  }
}

TEST(ParserFields, ValidHostFormsAreAccepted) {
  for (const std::string_view host :
       {"example.com", "example.com:8080", "EXAMPLE.com:", "0.0.0.0=5000", "home_0.example",
        "127.0.0.1:80", "[::1]", "[2001:db8::1]:443", "[::ffff:192.0.2.1]", "[1:2:3:4:5:6:7:8]",
        "[v1.fe:x]", "%41bc", ""}) {
    const std::string raw = "GET / HTTP/1.1\r\nHost: " + std::string(host) + "\r\n\r\n";
    const Message m = parse(raw).first();
    ASSERT_EQ(m.verdict, Verdict::kComplete) << host << " " << to_string(m.error);
    EXPECT_EQ(m.host, host);
  }
}

std::string fields_of_total_size(size_t total) {
  // "Host: example.com\r\n" (19) + "X: <pad>\r\n" + final "\r\n" = total.
  return "X: " + std::string(total - 19 - 2 - 5, 'v') + "\r\n";
}

TEST(ParserFields, HeaderBlockAtTheLimitIsAccepted) {
  Limits limits;
  limits.max_header_bytes = 128;
  EXPECT_TRUE(accepts(with_fields(fields_of_total_size(128)), limits));
}

TEST(ParserFields, HeaderBlockOverTheLimitIs431) {
  Limits limits;
  limits.max_header_bytes = 128;
  EXPECT_TRUE(
      rejects(with_fields(fields_of_total_size(129)), ParseError::kHeaderTooLarge, 431, limits));
}

TEST(ParserFields, DefaultHeaderBlockLimitIs16KiB) {
  EXPECT_TRUE(accepts(with_fields(fields_of_total_size(16384))));
  EXPECT_TRUE(rejects(with_fields(fields_of_total_size(16385)), ParseError::kHeaderTooLarge, 431));
}

TEST(ParserFields, HugeHeaderIsRejectedBeforeItEnds) {
  EXPECT_TRUE(
      rejects("GET / HTTP/1.1\r\nX: " + std::string(20000, 'v'), ParseError::kHeaderTooLarge, 431));
}

std::string numbered_fields(int count) {
  std::string fields;
  for (int i = 1; i < count; ++i) {
    fields += "X-" + std::to_string(i) + ": v\r\n";
  }
  return fields;  // plus Host
}

TEST(ParserFields, HundredFieldsAreAccepted) {
  const Message m = parse(with_fields(numbered_fields(100))).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.headers.size(), 100U);
}

TEST(ParserFields, HundredAndOneFieldsIs431) {
  EXPECT_TRUE(rejects(with_fields(numbered_fields(101)), ParseError::kTooManyHeaders, 431));
}

TEST(ParserFields, FieldCountLimitIsConfigurable) {
  Limits limits;
  limits.max_header_fields = 3;
  EXPECT_TRUE(accepts(with_fields(numbered_fields(3)), limits));
  EXPECT_TRUE(rejects(with_fields(numbered_fields(4)), ParseError::kTooManyHeaders, 431, limits));
}

}  // namespace
}  // namespace rs::http::test
