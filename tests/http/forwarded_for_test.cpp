// X-Forwarded-For as the access log reads it: the walk from the right past trusted proxies, the
// fields joined in order, the bounds, and malformed lists, on parsed heads.
#include <arpa/inet.h>
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "net/http/forwarded_for.hpp"
#include "net/http/request_head.hpp"

namespace rs::http {
namespace {

class ForwardedForTest : public ::testing::Test {
 protected:
  void SetUp() override {
    trusted_.add("10.0.0.0/8");
    trusted_.add("2001:db8::/32");
  }
  // The head's fields: name, value pairs.
  ForwardedFor find(std::initializer_list<std::pair<std::string_view, std::string_view>> fields) {
    RequestHead head;
    for (const auto& [name, value] : fields)
      head.headers[head.header_count++] = Header{name, value};
    client_ = {};
    return find_forwarded_client(head, trusted_, client_);
  }
  std::string client() const {
    char out[64] = {};
    ::inet_ntop(client_.family == net::IpAddress::kV4 ? AF_INET : AF_INET6, client_.bytes, out,
                sizeof(out));
    return out;
  }

  net::IpRanges trusted_;
  net::IpAddress client_;
};

TEST_F(ForwardedForTest, RightmostUntrustedAddressIsTheClient) {
  ASSERT_EQ(find({{"X-Forwarded-For", "203.0.113.9, 198.51.100.2, 10.0.0.1"}}),
            ForwardedFor::kFound);
  EXPECT_EQ(client(), "198.51.100.2") << "the spoofable left part is not believed";
  ASSERT_EQ(find({{"x-forwarded-for", "  2001:db8::7 ,\t2001:db9::1 , 2001:db8::1"}}),
            ForwardedFor::kFound);
  EXPECT_EQ(client(), "2001:db9::1");
  ASSERT_EQ(find({{"X-Forwarded-For", "192.0.2.1"}}), ForwardedFor::kFound);
  EXPECT_EQ(client(), "192.0.2.1");
}

TEST_F(ForwardedForTest, AllTrustedGivesTheLeftmost) {
  ASSERT_EQ(find({{"X-Forwarded-For", "10.1.1.1, 10.2.2.2"}}), ForwardedFor::kFound);
  EXPECT_EQ(client(), "10.1.1.1");
}

TEST_F(ForwardedForTest, SeveralFieldsAreOneListInOrder) {
  ASSERT_EQ(find({{"X-Forwarded-For", "192.0.2.1, 10.0.0.3"},
                  {"Host", "h"},
                  {"X-Forwarded-For", "10.0.0.2"}}),
            ForwardedFor::kFound);
  EXPECT_EQ(client(), "192.0.2.1");
  ASSERT_EQ(find({{"X-Forwarded-For", "192.0.2.1"}, {"X-Forwarded-For", "192.0.2.2"}}),
            ForwardedFor::kFound);
  EXPECT_EQ(client(), "192.0.2.2");
}

TEST_F(ForwardedForTest, AbsentOrEmptyNamesNobody) {
  EXPECT_EQ(find({{"Host", "h"}}), ForwardedFor::kAbsent);
  EXPECT_EQ(find({{"X-Forwarded-For", ""}}), ForwardedFor::kAbsent);
  EXPECT_EQ(find({{"X-Forwarded-For", " , ,"}}), ForwardedFor::kAbsent);
  EXPECT_EQ(find({{"X-Forwarded-Host", "192.0.2.1"}}), ForwardedFor::kAbsent);
}

TEST_F(ForwardedForTest, MalformedEntriesNameNobody) {
  for (const char* value : {"unknown", "192.0.2.1:443", "[2001:db9::1]", "192.0.2", "_hidden",
                            "192.0.2.1 10.0.0.1", "10.0.0.1, garbage, 10.0.0.2"}) {
    EXPECT_EQ(find({{"X-Forwarded-For", value}}), ForwardedFor::kMalformed) << value;
  }
  // A malformed entry left of the client is never read.
  ASSERT_EQ(find({{"X-Forwarded-For", "garbage, 192.0.2.1, 10.0.0.1"}}), ForwardedFor::kFound);
  EXPECT_EQ(client(), "192.0.2.1");
}

TEST_F(ForwardedForTest, AtMostSixteenEntriesAreExamined) {
  std::string sixteen;
  for (std::size_t i = 0; i < kMaxForwardedForEntries; ++i)
    sixteen += (i == 0 ? "" : ", ") + std::string("10.0.0.") + std::to_string(i + 1);
  ASSERT_EQ(find({{"X-Forwarded-For", sixteen}}), ForwardedFor::kFound);
  EXPECT_EQ(client(), "10.0.0.1");
  const std::string seventeen = "10.9.9.9, " + sixteen;
  EXPECT_EQ(find({{"X-Forwarded-For", seventeen}}), ForwardedFor::kMalformed);
  // Past the bound only if the walk gets there: an untrusted address ends it first.
  ASSERT_EQ(find({{"X-Forwarded-For", seventeen + ", 192.0.2.1"}}), ForwardedFor::kFound);
  EXPECT_EQ(client(), "192.0.2.1");
}

}  // namespace
}  // namespace rs::http
