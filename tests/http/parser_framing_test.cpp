// Message framing: Content-Length and Transfer-Encoding, where request smuggling lives.
#include <gtest/gtest.h>

#include <string>

#include "tests/http/parser_checks.hpp"

namespace rs::http::test {
namespace {

std::string post(std::string_view fields, std::string_view body = "",
                 std::string_view version = "HTTP/1.1") {
  return "POST /upload " + std::string(version) + "\r\nHost: example.com\r\n" +
         std::string(fields) + "\r\n" + std::string(body);
}

TEST(ParserFraming, ContentLengthWithTransferEncodingIs400) {
  EXPECT_TRUE(rejects(post("Content-Length: 5\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
                      ParseError::kTeClConflict, 400));
  EXPECT_TRUE(rejects(post("Transfer-Encoding: chunked\r\nContent-Length: 5\r\n", "0\r\n\r\n"),
                      ParseError::kTeClConflict, 400));
  EXPECT_TRUE(rejects(post("Transfer-Encoding: gzip\r\nContent-Length: 0\r\n"),
                      ParseError::kTeClConflict, 400));
}

TEST(ParserFraming, DifferingContentLengthsAre400) {
  EXPECT_TRUE(rejects(post("Content-Length: 5\r\nContent-Length: 6\r\n", "hello!"),
                      ParseError::kBadContentLength, 400));
  EXPECT_TRUE(
      rejects(post("Content-Length: 5, 6\r\n", "hello!"), ParseError::kBadContentLength, 400));
  EXPECT_TRUE(rejects(post("Content-Length: 0\r\nContent-Length: 1\r\n", "x"),
                      ParseError::kBadContentLength, 400));
}

TEST(ParserFraming, IdenticalContentLengthsAreAccepted) {
  for (const std::string_view fields :
       {"Content-Length: 5, 5\r\n", "Content-Length: 5\r\nContent-Length: 5\r\n",
        "Content-Length: 5,5 , 005\r\n"}) {
    const Message m = parse(post(fields, "hello")).first();
    ASSERT_EQ(m.verdict, Verdict::kComplete) << fields;
    EXPECT_EQ(m.content_length, 5U);
    EXPECT_EQ(m.body, "hello");
  }
}

TEST(ParserFraming, MalformedContentLengthIs400) {
  for (const std::string_view value :
       {"+5", "-5", "0x5", "5a", "4 2", "", "5,", ",5", "5, ,5", "\"5\"", "1.0",
        "18446744073709551616", "99999999999999999999999"}) {
    const std::string fields = "Content-Length: " + std::string(value) + "\r\n";
    EXPECT_TRUE(rejects(post(fields, "hello"), ParseError::kBadContentLength, 400)) << value;
  }
}

TEST(ParserFraming, ContentLengthMayHaveSurroundingWhitespace) {
  const Message m = parse(post("Content-Length: \t 5 \t\r\n", "hello")).first();
  ASSERT_EQ(m.verdict, Verdict::kComplete);
  EXPECT_EQ(m.body, "hello");
}

TEST(ParserFraming, ContentLengthOverTheBodyLimitIs413BeforeTheHeadEnds) {
  // The head never ends here: the limit must be enforced at the field line itself.
  EXPECT_TRUE(
      rejects("POST / HTTP/1.1\r\nContent-Length: 1048577\r\n", ParseError::kBodyTooLarge, 413));
  EXPECT_TRUE(
      rejects(post("Content-Length: 18446744073709551615\r\n"), ParseError::kBodyTooLarge, 413));
}

TEST(ParserFraming, ContentLengthAtTheBodyLimitIsAccepted) {
  Limits limits;
  limits.max_body_bytes = 8;
  EXPECT_TRUE(accepts(post("Content-Length: 8\r\n", "12345678"), limits));
  EXPECT_TRUE(
      rejects(post("Content-Length: 9\r\n", "123456789"), ParseError::kBodyTooLarge, 413, limits));
}

TEST(ParserFraming, TransferEncodingWhoseFinalCodingIsNotChunkedIs400) {
  for (const std::string_view value : {"gzip", "chunked, gzip", "identity", "chunked;x=1"}) {
    const std::string fields = "Transfer-Encoding: " + std::string(value) + "\r\n";
    EXPECT_TRUE(rejects(post(fields), ParseError::kBadTransferEncoding, 400)) << value;
  }
}

TEST(ParserFraming, ChunkedTwiceIs400) {
  EXPECT_TRUE(rejects(post("Transfer-Encoding: chunked, chunked\r\n", "0\r\n\r\n"),
                      ParseError::kBadTransferEncoding, 400));
  EXPECT_TRUE(
      rejects(post("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
              ParseError::kBadTransferEncoding, 400));
  EXPECT_TRUE(rejects(post("Transfer-Encoding: chunked, gzip, chunked\r\n", "0\r\n\r\n"),
                      ParseError::kBadTransferEncoding, 400));
}

TEST(ParserFraming, CodingBeforeChunkedIs501) {
  EXPECT_TRUE(rejects(post("Transfer-Encoding: gzip, chunked\r\n", "0\r\n\r\n"),
                      ParseError::kUnsupportedTe, 501));
  EXPECT_TRUE(
      rejects(post("Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n", "0\r\n\r\n"),
              ParseError::kUnsupportedTe, 501));
  EXPECT_TRUE(rejects(post("Transfer-Encoding: x;q=\"a,b\", chunked\r\n", "0\r\n\r\n"),
                      ParseError::kUnsupportedTe, 501));
}

TEST(ParserFraming, MalformedTransferEncodingIs400) {
  for (const std::string_view value :
       {"", ",", "chun ked", "chunked;", "@, chunked", "x;q=\"open, chunked", "x;=1, chunked"}) {
    const std::string fields = "Transfer-Encoding: " + std::string(value) + "\r\n";
    EXPECT_TRUE(rejects(post(fields, "0\r\n\r\n"), ParseError::kBadTransferEncoding, 400)) << value;
  }
}

TEST(ParserFraming, TransferEncodingInHttp10Is400) {
  EXPECT_TRUE(rejects(post("Transfer-Encoding: chunked\r\n", "0\r\n\r\n", "HTTP/1.0"),
                      ParseError::kBadTransferEncoding, 400));
}

TEST(ParserFraming, ChunkedIsCaseInsensitiveAndIgnoresEmptyListElements) {
  for (const std::string_view value : {"Chunked", "CHUNKED", ", chunked", "chunked ,"}) {
    const std::string fields = "Transfer-Encoding: " + std::string(value) + "\r\n";
    const Message m = parse(post(fields, "3\r\nabc\r\n0\r\n\r\n")).first();
    ASSERT_EQ(m.verdict, Verdict::kComplete) << value;
    EXPECT_TRUE(m.chunked);
    EXPECT_EQ(m.body, "abc");
  }
}

TEST(ParserFraming, NoFramingFieldsMeansNoBody) {
  const Replay r = parse(post("") + "GET / HTTP/1.1\r\nHost: h\r\n\r\n", {}, 2);
  ASSERT_EQ(r.messages.size(), 2U);
  EXPECT_EQ(r.messages[0].body, "");
  EXPECT_EQ(r.messages[1].verdict, Verdict::kComplete);
}

}  // namespace
}  // namespace rs::http::test
