// The HTTP access log in process: every response leaves exactly one Combined Log Format line,
// in order, escaped, complete once the server has stopped; reopening switches files; a full
// buffer drops lines and counts them. Every wait is on the file or a counter, with a deadline.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "net/http/access_log.hpp"
#include "net/socket.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_fixture.hpp"
#include "tests/support/text_file.hpp"

namespace rs::test {
namespace {

// Several loops writing one file; the threads backend has one loop and a writer per
// connection, which is the same test for it.
unsigned loops_or_workers(const net::ServerConfig& config, unsigned loops) {
  return config.backend == net::Backend::kThreads ? 1 : loops;
}

using std::chrono::milliseconds;

struct LogLine {
  std::string remote, time, request, status, bytes, referer, agent, request_time_us;
};

// Splits a line of the combined format,
//   host - - [dd/Mon/yyyy:hh:mm:ss +0000] "request" status bytes "referer" "user-agent" us
// checking every separator and the shape of each part; nullopt when anything is off.
// (By hand rather than std::regex, which trips GCC 12's maybe-uninitialized under ASan.)
std::optional<LogLine> parse_line(std::string_view line) {
  const auto take_until = [&line](char stop, std::string& out) {
    const auto at = line.find(stop);
    if (at == std::string_view::npos) return false;
    out.assign(line.substr(0, at));
    line.remove_prefix(at);
    return true;
  };
  const auto expect = [&line](std::string_view text) {
    if (!line.starts_with(text)) return false;
    line.remove_prefix(text.size());
    return true;
  };
  const auto all_digits = [](std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
  };
  LogLine e;
  if (!take_until(' ', e.remote) || e.remote.empty() || !expect(" - - [")) return std::nullopt;
  if (!take_until(']', e.time) || !expect("] \"")) return std::nullopt;
  const std::string_view t = e.time;  // dd/Mon/yyyy:hh:mm:ss +0000
  const auto upper = [&t](std::size_t i) { return std::isupper(static_cast<unsigned char>(t[i])); };
  const auto lower = [&t](std::size_t i) { return std::islower(static_cast<unsigned char>(t[i])); };
  if (t.size() != 26 || !all_digits(t.substr(0, 2)) || t[2] != '/' || !upper(3) || !lower(4) ||
      !lower(5) || t[6] != '/' || !all_digits(t.substr(7, 4)) || t[11] != ':' ||
      !all_digits(t.substr(12, 2)) || t[14] != ':' || !all_digits(t.substr(15, 2)) ||
      t[17] != ':' || !all_digits(t.substr(18, 2)) || t.substr(20) != " +0000") {
    return std::nullopt;
  }
  if (!take_until('"', e.request) || !expect("\" ")) return std::nullopt;
  if (!take_until(' ', e.status) || e.status.size() != 3 || !all_digits(e.status)) {
    return std::nullopt;
  }
  if (!expect(" ") || !take_until(' ', e.bytes) || (e.bytes != "-" && !all_digits(e.bytes))) {
    return std::nullopt;
  }
  if (!expect(" \"") || !take_until('"', e.referer) || !expect("\" \"")) return std::nullopt;
  if (!take_until('"', e.agent) || !expect("\" ")) return std::nullopt;
  e.request_time_us = line;
  if (!all_digits(e.request_time_us)) return std::nullopt;
  return e;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

// Waits until the file holds at least n whole lines; returns them.
std::vector<std::string> wait_for_lines(const std::string& path, std::size_t n,
                                        milliseconds timeout = milliseconds(10000)) {
  std::vector<std::string> lines;
  wait_until(
      [&] {
        const std::string text = read_file(path);
        if (static_cast<std::size_t>(std::count(text.begin(), text.end(), '\n')) < n) {
          return false;
        }
        lines = read_lines(path);
        return true;
      },
      timeout);
  return lines;
}

// Reads `count` responses (Content-Length framed; `head_only` for HEAD answers) and returns
// their status codes; an empty vector on timeout or EOF.
std::vector<int> read_statuses(int fd, int count, bool head_only = false) {
  std::vector<int> statuses;
  std::string buffer;
  const auto deadline = Clock::now() + milliseconds(10000);
  while (static_cast<int>(statuses.size()) < count) {
    const std::size_t end = buffer.find("\r\n\r\n");
    if (end != std::string::npos) {
      const std::string head = buffer.substr(0, end + 2);
      const auto at = head.find("\r\nContent-Length: ");
      const std::size_t length =
          head_only || at == std::string::npos ? 0 : std::stoul(head.substr(at + 18));
      if (buffer.size() >= end + 4 + length) {
        statuses.push_back(std::atoi(head.c_str() + 9));
        buffer.erase(0, end + 4 + length);
        continue;
      }
    }
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return {};
    char chunk[65536];
    const ssize_t n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0) return {};
    buffer.append(chunk, static_cast<std::size_t>(n));
  }
  return statuses;
}

class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/rs-alog-XXXXXX";
    path_ = ::mkdtemp(pattern.data()) != nullptr ? pattern : std::string();
  }
  ~TempDir() {
    if (path_.empty()) return;
    for (const char* name : {"access.log", "access.log.1", "access.log.2"}) {
      std::remove((path_ + "/" + name).c_str());
    }
    ::rmdir(path_.c_str());
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// The server stops at TearDown, so its last lines are in before the directory goes.
class AccessLogTest : public ServerFixture {
 protected:
  void SetUp() override {
    ASSERT_FALSE(dir_.path().empty());
    log_path_ = dir_.path() + "/access.log";
  }
  // An HTTP server logging to log_path_.
  void start(const HttpTweak& tweak = {}, const ServerTweak& server_tweak = {}) {
    ServerFixture::start(tweak, [&](net::ServerConfig& config) {
      config.loop.access_log_path = log_path_;
      if (server_tweak) server_tweak(config);
    });
  }
  // Waits for n lines and parses each; a line that is not Combined Log Format fails the test.
  std::vector<LogLine> wait_for_entries(std::size_t n) {
    std::vector<LogLine> entries;
    for (const std::string& line : wait_for_lines(log_path_, n)) {
      const auto parsed = parse_line(line);
      EXPECT_TRUE(parsed) << "not combined log format: " << line;
      if (parsed) entries.push_back(*parsed);
    }
    return entries;
  }

  TempDir dir_;
  std::string log_path_;
};

TEST_P(AccessLogTest, ResponseLogsOneCombinedFormatLine) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /plaintext?a=1 HTTP/1.1\r\nHost: t\r\nReferer: http://r.example/p\r\n"
                       "User-Agent: probe/1.0 (test)\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  const auto entries = wait_for_entries(1);
  ASSERT_EQ(entries.size(), 1u);
  const LogLine& e = entries[0];
  EXPECT_EQ(e.remote, "127.0.0.1");
  EXPECT_EQ(e.request, "GET /plaintext?a=1 HTTP/1.1");
  EXPECT_EQ(e.status, "200");
  EXPECT_EQ(e.bytes, "13");
  EXPECT_EQ(e.referer, "http://r.example/p");
  EXPECT_EQ(e.agent, "probe/1.0 (test)");
  // The time is now, in UTC.
  char expected_day[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(expected_day, sizeof(expected_day), "/%Y:", &tm);
  EXPECT_NE(e.time.find(expected_day), std::string::npos) << e.time;
}

TEST_P(AccessLogTest, AbsentFieldsAndEmptyBodiesLogDashes) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, "HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1, /*head_only=*/true), std::vector<int>{200});
  ASSERT_TRUE(send_all(fd, "OPTIONS * HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  const auto entries = wait_for_entries(2);
  ASSERT_EQ(entries.size(), 2u);
  EXPECT_EQ(entries[0].request, "HEAD /plaintext HTTP/1.1");
  EXPECT_EQ(entries[0].bytes, "-");  // HEAD sends no body bytes
  EXPECT_EQ(entries[0].referer, "-");
  EXPECT_EQ(entries[0].agent, "-");
  EXPECT_EQ(entries[1].request, "OPTIONS * HTTP/1.1");
  EXPECT_EQ(entries[1].bytes, "-");
}

TEST_P(AccessLogTest, LoggedStringsEscapeQuotesAndControlBytes) {
  start();
  const int fd = connect();
  // A quote, a backslash, a tab and an obs-text byte: legal in a field value, unsafe in a log.
  ASSERT_TRUE(send_all(fd,
                       "GET /nope HTTP/1.1\r\nHost: t\r\nUser-Agent: a\"b\\c\td\xff"
                       "e\r\nReferer: \"\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{404});
  const auto lines = wait_for_lines(log_path_, 1);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find(R"("\x22" "a\x22b\x5cc\x09d\xffe")"), std::string::npos) << lines[0];
  EXPECT_TRUE(parse_line(lines[0])) << lines[0];
}

TEST_P(AccessLogTest, PipelinedRequestsLogInOrder) {
  start();
  const int fd = connect();
  std::string batch;
  for (int i = 0; i < 20; ++i) {
    const char* path = i % 3 == 0 ? "/json" : i % 3 == 1 ? "/plaintext" : "/missing";
    batch +=
        "GET " + std::string(path) + "?n=" + std::to_string(i) + " HTTP/1.1\r\nHost: t\r\n\r\n";
  }
  ASSERT_TRUE(send_all(fd, batch));
  ASSERT_EQ(read_statuses(fd, 20).size(), 20u);
  const auto entries = wait_for_entries(20);
  ASSERT_EQ(entries.size(), 20u);
  for (int i = 0; i < 20; ++i) {
    const char* path = i % 3 == 0 ? "/json" : i % 3 == 1 ? "/plaintext" : "/missing";
    EXPECT_EQ(entries[i].request,
              "GET " + std::string(path) + "?n=" + std::to_string(i) + " HTTP/1.1");
    EXPECT_EQ(entries[i].status, i % 3 == 2 ? "404" : "200");
  }
}

TEST_P(AccessLogTest, DeferredAnswerIsLoggedWhenItIsSent) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /delay?ms=30 HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 2), (std::vector<int>{200, 200}));
  const auto entries = wait_for_entries(2);
  ASSERT_EQ(entries.size(), 2u);
  // The plaintext answer was ready first, so it was logged first; both are there.
  EXPECT_EQ(entries[0].request, "GET /plaintext HTTP/1.1");
  EXPECT_EQ(entries[1].request, "GET /delay?ms=30 HTTP/1.1");
  EXPECT_EQ(entries[1].bytes, "6");  // "30 ms\n"
}

TEST_P(AccessLogTest, RejectedRequestLogsItsStatusAndLine) {
  start();
  const int a = connect();
  ASSERT_TRUE(send_all(a, "GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"));
  EXPECT_EQ(read_statuses(a, 1), std::vector<int>{400});
  const int b = connect();
  ASSERT_TRUE(send_all(b, "GET /y HTTP/2.0\r\nHost: a\r\n\r\n"));
  EXPECT_EQ(read_statuses(b, 1), std::vector<int>{505});
  // A rejection in the body phase names the request whose body was bad.
  const int c = connect();
  ASSERT_TRUE(send_all(c,
                       "POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                       "zz\r\n"));
  EXPECT_EQ(read_statuses(c, 1), std::vector<int>{400});
  // Nothing that looks like a request line at all.
  const int d = connect();
  ASSERT_TRUE(send_all(d, "\x01\x02\r\n\r\n"));
  EXPECT_EQ(read_statuses(d, 1), std::vector<int>{400});

  auto entries = wait_for_entries(4);
  ASSERT_EQ(entries.size(), 4u);
  // With several loops each writes its own lines, so the file's order is not the clients'.
  std::sort(entries.begin(), entries.end(),
            [](const auto& x, const auto& y) { return x.request < y.request; });
  EXPECT_EQ(entries[0].request, "GET /x HTTP/1.1");
  EXPECT_EQ(entries[0].status, "400");
  EXPECT_NE(entries[0].bytes, "-");  // the status text went out as the body
  EXPECT_EQ(entries[1].request, "GET /y HTTP/2.0");
  EXPECT_EQ(entries[1].status, "505");
  EXPECT_EQ(entries[2].request, "POST /echo HTTP/1.1");
  EXPECT_EQ(entries[2].status, "400");
  EXPECT_EQ(entries[3].request, R"(\x01\x02)");
  EXPECT_EQ(entries[3].status, "400");
}

TEST_P(AccessLogTest, HeaderTimeoutLogs408WithThePartialLine) {
  start([](http::HttpConfig& http) { http.header_timeout_ms = 50; });
  // An incomplete request line, then silence: 408 once the header timeout passes; the log
  // shows the part of the line that arrived.
  const int slow = connect();
  ASSERT_TRUE(send_all(slow, "GET /slo"));
  EXPECT_EQ(read_statuses(slow, 1), std::vector<int>{408});
  const auto entries = wait_for_entries(1);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].request, "GET /slo");
  EXPECT_EQ(entries[0].status, "408");
}

TEST_P(AccessLogTest, LogIsCompleteOnceTheServerHasStopped) {
  start({}, [](net::ServerConfig& config) { config.threads = loops_or_workers(config, 2); });
  constexpr int kConnections = 8;
  constexpr int kDepth = 50;
  std::string batch;
  for (int i = 0; i < kDepth; ++i)
    batch += kGetPlaintext;
  std::vector<int> fds;
  for (int i = 0; i < kConnections; ++i) {
    fds.push_back(connect());
    ASSERT_TRUE(send_all(fds.back(), batch));
  }
  for (int fd : fds)
    ASSERT_EQ(read_statuses(fd, kDepth).size(), static_cast<std::size_t>(kDepth));
  // No waiting on the file: once stopped and joined, every line must already be there.
  ASSERT_TRUE(server_->stop_and_wait(milliseconds(30000)));
  const auto lines = read_lines(log_path_);
  EXPECT_EQ(lines.size(), static_cast<std::size_t>(kConnections * kDepth));
  for (const std::string& line : lines) {
    const auto e = parse_line(line);
    ASSERT_TRUE(e) << "torn or malformed: " << line;
    EXPECT_EQ(e->request, "GET /plaintext HTTP/1.1");
  }
  EXPECT_EQ(counter("access_log_dropped"), 0);
}

TEST_P(AccessLogTest, AnswersGivenDuringShutdownAreLoggedBeforeTheLoopExits) {
  start();
  constexpr int kConnections = 4;
  std::vector<int> fds(kConnections);
  for (int& fd : fds) {
    fd = connect();
    // One batch: by the time the first answer arrives, the delayed request is pending too.
    ASSERT_TRUE(send_all(fd,
                         "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
                         "GET /delay?ms=100 HTTP/1.1\r\nHost: t\r\n\r\n"));
    ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  }
  // The delayed answers go out during the grace period, and their lines are the last work of
  // each loop: once stopped and joined, they must be in the file.
  ASSERT_TRUE(server_->stop_and_wait(milliseconds(30000)));
  for (int fd : fds)
    EXPECT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  const auto lines = read_lines(log_path_);
  ASSERT_EQ(lines.size(), 2u * kConnections);
  int delayed = 0;
  for (const std::string& line : lines) {
    const auto e = parse_line(line);
    ASSERT_TRUE(e) << line;
    delayed += e->request == "GET /delay?ms=100 HTTP/1.1" ? 1 : 0;
  }
  EXPECT_EQ(delayed, kConnections);
}

TEST_P(AccessLogTest, SeveralLoopsAppendWholeLinesToOneFile) {
  start({}, [](net::ServerConfig& config) { config.threads = loops_or_workers(config, 4); });
  constexpr int kConnections = 32;
  constexpr int kRounds = 20;
  constexpr int kDepth = 16;
  std::vector<int> fds(kConnections);
  for (int& fd : fds)
    fd = connect();
  for (int round = 0; round < kRounds; ++round) {
    for (int i = 0; i < kConnections; ++i) {
      std::string batch;
      for (int k = 0; k < kDepth; ++k) {
        batch += "GET /plaintext?c=" + std::to_string(i) + "&r=" + std::to_string(round) +
                 "&k=" + std::to_string(k) + " HTTP/1.1\r\nHost: t\r\n\r\n";
      }
      ASSERT_TRUE(send_all(fds[i], batch));
    }
    for (int fd : fds)
      ASSERT_EQ(read_statuses(fd, kDepth).size(), static_cast<std::size_t>(kDepth));
  }
  ASSERT_TRUE(server_->stop_and_wait(milliseconds(30000)));
  const auto lines = read_lines(log_path_);
  ASSERT_EQ(lines.size(), static_cast<std::size_t>(kConnections * kRounds * kDepth));
  std::set<std::string> seen;
  for (const std::string& line : lines) {
    const auto e = parse_line(line);
    ASSERT_TRUE(e) << "torn or malformed: " << line;
    seen.insert(e->request);
  }
  EXPECT_EQ(seen.size(), lines.size());  // every request once, none lost or doubled
}

TEST_P(AccessLogTest, ReopenSwitchesToANewFileAndKeepsTheOld) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, "GET /plaintext?before HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  ASSERT_EQ(wait_for_lines(log_path_, 1).size(), 1u);

  const std::string rotated = dir_.path() + "/access.log.1";
  ASSERT_EQ(std::rename(log_path_.c_str(), rotated.c_str()), 0);
  server_->server().reopen_logs();
  // Every loop has its own descriptor on the file, and every loop reopens it.
  const auto loops = static_cast<std::int64_t>(GetParam().loops);
  ASSERT_TRUE(wait_until([&] { return counter("access_log_reopens") == loops; }));

  ASSERT_TRUE(send_all(fd, "GET /plaintext?after HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  const auto fresh = wait_for_lines(log_path_, 1);
  ASSERT_EQ(fresh.size(), 1u);
  EXPECT_NE(fresh[0].find("\"GET /plaintext?after HTTP/1.1\""), std::string::npos) << fresh[0];
  const auto old = read_lines(rotated);
  ASSERT_EQ(old.size(), 1u);
  EXPECT_NE(old[0].find("\"GET /plaintext?before HTTP/1.1\""), std::string::npos) << old[0];

  // Created like the first one: rw-r--r-- less the umask.
  const mode_t umask = ::umask(0);
  ::umask(umask);
  struct stat st {};
  ASSERT_EQ(::stat(log_path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644 & ~umask);
}

TEST_P(AccessLogTest, LinesBeyondTheBufferBoundAreDroppedAndCounted) {
  // Room for about one line: a pipelined batch logged in one turn overflows it.
  start({}, [](net::ServerConfig& config) { config.loop.access_log_max_buffered_bytes = 150; });
  const int fd = connect();
  constexpr int kRequests = 30;
  std::string batch;
  for (int i = 0; i < kRequests; ++i)
    batch += kGetPlaintext;
  ASSERT_TRUE(send_all(fd, batch));
  ASSERT_EQ(read_statuses(fd, kRequests).size(), static_cast<std::size_t>(kRequests));
  ASSERT_TRUE(server_->stop_and_wait(milliseconds(30000)));
  const auto lines = read_lines(log_path_);
  const std::int64_t dropped = counter("access_log_dropped");
  EXPECT_GT(dropped, 0);
  EXPECT_GE(lines.size(), 1u);
  EXPECT_EQ(static_cast<std::int64_t>(lines.size()) + dropped, kRequests);
  for (const std::string& line : lines)
    EXPECT_TRUE(parse_line(line)) << line;
}

std::size_t open_descriptors() {
  const std::filesystem::directory_iterator fds("/proc/self/fd");
  return static_cast<std::size_t>(std::distance(begin(fds), end(fds)));
}

TEST_P(AccessLogTest, UnopenablePathIsAStartupErrorThatNamesIt) {
  net::ServerConfig config = test_config(GetParam());
  config.loop.access_log_path = dir_.path() + "/no/such/dir/access.log";
  http::HttpShared shared{http::HttpConfig{}};
  const std::size_t descriptors = open_descriptors();
  {
    net::Server server(config, http::make_http_factory(shared));
    try {
      server.start();
      FAIL() << "started with an unopenable access log";
    } catch (const net::StartupError& e) {
      EXPECT_NE(std::string(e.what()).find(config.loop.access_log_path), std::string::npos)
          << e.what();
      EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
    }
  }
  // The listeners, rings, epoll sets and eventfds the failed start made are all closed.
  EXPECT_EQ(open_descriptors(), descriptors);
}

TEST_P(AccessLogTest, Ipv6ClientIsLoggedByItsAddress) {
  const int fd = ::socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(fd, 0);
  fds_.push_back(fd);
  sockaddr_in6 addr{};
  addr.sin6_family = AF_INET6;
  addr.sin6_addr = in6addr_loopback;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    GTEST_SKIP() << "no IPv6 loopback here";
  }
  start({}, [](net::ServerConfig& config) { config.address = "::1"; });
  addr.sin6_port = htons(server_->port());
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_TRUE(send_all(fd, kGetPlaintext));
  ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  const auto entries = wait_for_entries(1);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].remote, "::1");
}

INSTANTIATE_TEST_SUITE_P(Backends, AccessLogTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

TEST_P(AccessLogTest, RequestTimeIsLoggedInMicroseconds) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, "GET /delay?ms=20 HTTP/1.1\r\nHost: t\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  const auto entries = wait_for_entries(1);
  ASSERT_EQ(entries.size(), 1u);
  // From the first byte to the answer: the 20 ms the delay waits, and not ten times more.
  const long us = std::stol(entries[0].request_time_us);
  EXPECT_GE(us, 20000);
  EXPECT_LT(us, 200000);
}

TEST_P(AccessLogTest, JsonFormatWritesOneObjectPerLine) {
  start([](http::HttpConfig& http) { http.access_log_format = http::AccessLogFormat::kJson; });
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /plaintext?a=1 HTTP/1.1\r\nHost: t\r\nReferer: http://r.example/p\r\n"
                       "User-Agent: a\"b\\c\td\xff\xc3\xa9\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1), std::vector<int>{200});
  ASSERT_TRUE(send_all(fd, "HEAD /nope HTTP/1.0\r\n\r\n"));
  ASSERT_EQ(read_statuses(fd, 1, /*head_only=*/true), std::vector<int>{404});
  const auto lines = wait_for_lines(log_path_, 2);
  ASSERT_EQ(lines.size(), 2u);
  const std::string_view first = lines[0];
  // The time is now, in UTC, ISO 8601.
  char expected_time[32];
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  std::strftime(expected_time, sizeof(expected_time), "{\"time\":\"%Y-%m-%dT", &tm);
  EXPECT_TRUE(first.starts_with(expected_time)) << first;
  EXPECT_EQ(first.substr(std::strlen(expected_time) + 8, 8), "+00:00\",") << first;
  EXPECT_NE(first.find(R"(","remote_addr":"127.0.0.1","method":"GET","target":"/plaintext?a=1",)"
                       R"("protocol":"HTTP/1.1","status":200,"bytes":13,)"
                       R"("referer":"http://r.example/p","user_agent":"a\"b\\c\td\u00ff)"
                       "\xc3\xa9"
                       R"(",)"
                       R"("request_time_us":)"),
            std::string_view::npos)
      << first;
  EXPECT_TRUE(first.ends_with("}")) << first;
  EXPECT_NE(lines[1].find(R"("method":"HEAD","target":"/nope","protocol":"HTTP/1.0","status":404,)"
                          R"("bytes":0,"referer":"","user_agent":"","request_time_us":)"),
            std::string::npos)
      << lines[1];
}

// The formatting alone.
TEST(AccessLogFormat, LongValuesAreCutWithoutSplittingAnEscape) {
  http::AccessLogFields fields;
  char line[http::kMaxAccessLineBytes];
  const auto request_field = [&] {
    const http::AccessEntry entry{"-", fields, 400, 0, 0};
    const std::string text(line, http::format_combined_line(line, "", entry));
    const std::size_t open = text.find('"');
    return text.substr(open + 1, text.find("\" ", open) - open - 1);
  };
  http::capture_raw_request_line(std::string(600, 'a'), fields);
  EXPECT_EQ(request_field(), std::string(512, 'a'));
  http::capture_raw_request_line(std::string(510, 'a') + "\"\"", fields);
  // 510 + one 4-byte escape does not fit in 512: the cut comes before it.
  EXPECT_EQ(request_field(), std::string(510, 'a'));
  http::capture_raw_request_line("\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n", fields);
  EXPECT_EQ(fields.request_line.view(), "GET / HTTP/1.1");
}

// RFC 8259: '"', '\\' and control bytes escaped (the short forms where there are), well-formed
// UTF-8 as it is, any other byte (stray continuations, overlong forms, surrogates, beyond
// U+10FFFF, a cut sequence) as \u00XX.
TEST(AccessLogFormat, JsonEscapesControlBytesAndInvalidUtf8) {
  http::AccessLogFields fields;
  http::capture_raw_request_line("GET /a HTTP/1.1", fields);
  const auto agent_of = [&](std::string_view agent) {
    EXPECT_LE(agent.size(), sizeof(fields.user_agent.data));
    fields.user_agent.size = 0;
    for (const char c : agent.substr(0, sizeof(fields.user_agent.data)))
      fields.user_agent.data[fields.user_agent.size++] = c;
    char line[http::kMaxAccessLineBytes];
    const std::string text(line, http::format_json_line(line, "2000-10-10T13:55:36+00:00",
                                                        {"::1", fields, 200, 5, 42}));
    const std::string_view key = "\"user_agent\":\"";
    const std::size_t at = text.find(key) + key.size();
    return text.substr(at, text.find("\",\"request_time_us\"") - at);
  };
  EXPECT_EQ(agent_of("q\"b\\n\nr\rt\tb\bf\f"), R"(q\"b\\n\nr\rt\tb\bf\f)");
  EXPECT_EQ(agent_of(std::string("\x01\x1f\x7f\0", 4)), R"(\u0001\u001f\u007f\u0000)");
  EXPECT_EQ(agent_of("\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
            "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  EXPECT_EQ(agent_of("\x80\xff\xc0\x80\xed\xa0\x80\xf4\x90\x80\x80\xe2\x82"),
            R"(\u0080\u00ff\u00c0\u0080\u00ed\u00a0\u0080\u00f4\u0090\u0080\u0080\u00e2\u0082)");
  // Cut to its 256 bytes: never inside an escape or a character.
  EXPECT_EQ(agent_of(std::string(253, 'a') + "\x01"), std::string(253, 'a'));
  EXPECT_EQ(agent_of("\"" + std::string(252, 'a') + "\xe2\x82\xac"),
            "\\\"" + std::string(252, 'a'));

  char line[http::kMaxAccessLineBytes];
  fields.user_agent.size = 0;
  const std::size_t n =
      http::format_json_line(line, "2000-10-10T13:55:36+00:00", {"10.0.0.1", fields, 404, 0, 7});
  EXPECT_EQ(std::string(line, n),
            R"({"time":"2000-10-10T13:55:36+00:00","remote_addr":"10.0.0.1","method":"GET",)"
            R"("target":"/a","protocol":"HTTP/1.1","status":404,"bytes":0,"referer":"",)"
            R"("user_agent":"","request_time_us":7})"
            "\n");
}

// Every field at its longest, in both formats: the line stays within its bound.
TEST(AccessLogFormat, LongestLinesFitTheirBound) {
  http::AccessLogFields fields;
  http::capture_raw_request_line(std::string(600, '\x01'), fields);
  for (auto* text : {&fields.referer, &fields.user_agent}) {
    text->size = sizeof(text->data);
    std::memset(text->data, 0xff, sizeof(text->data));
  }
  const std::string remote(http::PeerAddress::kTextBytes, '"');
  char line[http::kMaxAccessLineBytes];
  const http::AccessEntry entry{remote, fields, 599, UINT64_MAX, UINT64_MAX};
  const std::size_t combined =
      http::format_combined_line(line, "10/Oct/2000:13:55:36 +0000", entry);
  EXPECT_LE(combined, http::kMaxAccessLineBytes);
  EXPECT_EQ(line[combined - 1], '\n');
  const std::size_t json = http::format_json_line(line, "2000-10-10T13:55:36+00:00", entry);
  EXPECT_LE(json, http::kMaxAccessLineBytes);
  EXPECT_EQ(std::string_view(line, json).substr(json - 2), "}\n");
}

TEST(AccessLogFormat, V4MappedAddressesAreLoggedAsV4) {
  sockaddr_storage storage{};
  auto& in6 = reinterpret_cast<sockaddr_in6&>(storage);
  in6.sin6_family = AF_INET6;
  ASSERT_EQ(::inet_pton(AF_INET6, "::ffff:192.0.2.7", &in6.sin6_addr), 1);
  http::PeerAddress address;
  char text[http::PeerAddress::kTextBytes];
  address.assign(storage);
  EXPECT_EQ(address.text(text), "192.0.2.7");
  ASSERT_EQ(::inet_pton(AF_INET6, "2001:db8::7", &in6.sin6_addr), 1);
  address.assign(storage);
  EXPECT_EQ(address.text(text), "2001:db8::7");
  address.assign(sockaddr_storage{});
  EXPECT_EQ(address.text(text), "-");
}

TEST(AccessLogFormat, LineHasEveryPartInPlace) {
  http::AccessLogFields fields;
  http::capture_raw_request_line("GET /a HTTP/1.1", fields);
  char line[http::kMaxAccessLineBytes];
  const std::size_t n = http::format_combined_line(line, "10/Oct/2000:13:55:36 +0000",
                                                   {"10.0.0.1", fields, 404, 0, 1234});
  EXPECT_EQ(std::string(line, n),
            "10.0.0.1 - - [10/Oct/2000:13:55:36 +0000] \"GET /a HTTP/1.1\" 404 - \"-\" \"-\" "
            "1234\n");
}

}  // namespace
}  // namespace rs::test
