// Response heads: the cached start of a 200 and the Date it carries, which change only when the
// second does, and the other statuses built field by field with the same Date.
#include "net/http/response.hpp"
#include "net/http/response_metrics.hpp"

#include <gtest/gtest.h>

#include <ctime>
#include <string>

#include "core/buffer.hpp"

namespace rs::http {
namespace {

std::string contents(const core::BufferChain& chain) {
  std::string out;
  chain.for_each_segment([&out](std::span<const std::byte> s) {
    out.append(reinterpret_cast<const char*>(s.data()), s.size());
  });
  return out;
}

constexpr std::time_t kSecond = 784111777;  // Sun, 06 Nov 1994 08:49:37 GMT (RFC 9110 5.6.7)

// Every status the server has a reason phrase for is counted under its own code in /metrics,
// not as its class's "other".
TEST(ResponseMetrics, EveryStatusTheServerSendsHasItsOwnSeries) {
  for (int status = 100; status < 600; ++status) {
    if (reason_phrase(status) == "Unknown") continue;
    EXPECT_LT(status_slot(status), kStatusCodes.size()) << status << " is counted as \"other\"";
  }
  EXPECT_GE(status_slot(299), kStatusCodes.size()) << "a code the server never sends: other";
}

TEST(ResponseStamp, StartsA200WithServerAndTheDateOfItsSecond) {
  ResponseStamp stamp;
  stamp.set_time(kSecond);
  EXPECT_EQ(stamp.date(), "Sun, 06 Nov 1994 08:49:37 GMT");
  EXPECT_EQ(stamp.ok_head(),
            "HTTP/1.1 200 OK\r\nServer: ringserve\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n");
  stamp.set_time(kSecond + 1);
  EXPECT_EQ(stamp.date(), "Sun, 06 Nov 1994 08:49:38 GMT");
  EXPECT_TRUE(stamp.ok_head().ends_with("08:49:38 GMT\r\n"));
}

TEST(ResponseStamp, EveryAnswerHasItsOwnLengthAfterTheSharedStart) {
  core::ChunkPool pool(4096, 4);
  core::BufferChain out(pool);
  ResponseStamp stamp;
  stamp.set_time(kSecond);
  write_response(out, 200, stamp, "text/plain", "Hello, World!", false, Persistence::kKeepAlive);
  write_response(out, 404, stamp, "text/plain", "Not Found\n", false, Persistence::kClose);
  write_response(out, 200, stamp, "", "", true, Persistence::kKeepAliveHttp10);
  EXPECT_EQ(contents(out),
            "HTTP/1.1 200 OK\r\nServer: ringserve\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
            "HTTP/1.1 404 Not Found\r\nServer: ringserve\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Content-Type: text/plain\r\nContent-Length: 10\r\nConnection: close\r\n\r\n"
            "Not Found\n"
            "HTTP/1.1 200 OK\r\nServer: ringserve\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n"
            "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n");
}

}  // namespace
}  // namespace rs::http
