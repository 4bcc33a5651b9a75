// The built ringserve-http with --access-log, run as a child process: log rotation by rename and
// SIGHUP, and an unopenable path refused at start-up. Waits are on the file or the child, each
// with a deadline.
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"
#include "tests/support/text_file.hpp"

namespace rs::test {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kTimeout{10000};

// The n of "GET /plaintext?n=N HTTP/1.1" in a log line, or -1.
int request_number(const std::string& line) {
  const auto at = line.find("\"GET /plaintext?n=");
  return at == std::string::npos ? -1 : std::atoi(line.c_str() + at + 18);
}

// A value from the "name=value" counters the server prints when it exits.
std::string final_counter(const std::string& out, const std::string& name) {
  const auto at = out.find(" " + name + "=");
  if (at == std::string::npos) return {};
  const auto begin = at + name.size() + 2;
  return out.substr(begin, out.find_first_of(" \n", begin) - begin);
}

// Sends GET /plaintext?n=N (with `pad` bytes of padding in the target) and reads its whole
// answer (13-byte body).
bool request(int fd, int n, std::size_t pad = 0) {
  const std::string text = "GET /plaintext?n=" + std::to_string(n) +
                           (pad > 0 ? "&pad=" + std::string(pad, 'x') : "") +
                           " HTTP/1.1\r\nHost: t\r\n\r\n";
  if (!send_all(fd, text)) return false;
  std::string got;
  const auto deadline = Clock::now() + kTimeout;
  while (got.find("\r\n\r\nHello, World!") == std::string::npos) {
    pollfd p{fd, POLLIN, 0};
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return false;
    char chunk[4096];
    const ssize_t r = ::recv(fd, chunk, sizeof(chunk), 0);
    if (r <= 0) return false;
    got.append(chunk, static_cast<std::size_t>(r));
  }
  return true;
}

class AccessLogApp : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base != nullptr ? base : "/tmp") + "/rs-alog-app-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    log_ = dir_ + "/access.log";
    rotated_ = dir_ + "/access.log.1";
  }
  void TearDown() override {
    std::remove(log_.c_str());
    std::remove(rotated_.c_str());
    ::rmdir(dir_.c_str());
  }

  std::string dir_;
  std::string log_;
  std::string rotated_;
};

TEST_F(AccessLogApp, SighupReopensTheLogAfterItWasRenamed) {
  ChildProcess server("ringserve-http",
                      {"--port", "0", "--address", "127.0.0.1", "--access-log", log_});
  const auto line = server.wait_for_line("listening on", kTimeout);
  ASSERT_TRUE(line) << server.err();
  const int fd = connect_to(port_from_startup_line(*line));
  ASSERT_GE(fd, 0);

  int next = 0;
  ASSERT_TRUE(request(fd, next++));
  ASSERT_TRUE(wait_until([&] { return read_lines(log_).size() == 1; }, kTimeout));

  // Rotate: rename, then SIGHUP. Until the loop has reopened, lines still go to the renamed
  // file; keep asking until one lands in the new access.log.
  ASSERT_EQ(std::rename(log_.c_str(), rotated_.c_str()), 0);
  server.signal(SIGHUP);
  const auto deadline = Clock::now() + kTimeout;
  do {
    ASSERT_LT(Clock::now(), deadline) << "no line reached the reopened file";
    ASSERT_TRUE(request(fd, next++));
  } while (!wait_until([&] { return !read_lines(log_).empty(); }, milliseconds(20)));

  server.signal(SIGTERM);
  EXPECT_TRUE(wait_closed(fd, kTimeout));
  ::close(fd);
  ASSERT_EQ(server.wait_exit(kTimeout), 0) << server.err();

  // Every request exactly once, in order: a prefix in the old file, the rest in the new one.
  const auto old_lines = read_lines(rotated_);
  const auto new_lines = read_lines(log_);
  ASSERT_GE(old_lines.size(), 1u);
  ASSERT_GE(new_lines.size(), 1u);
  int expected = 0;
  for (const auto* lines : {&old_lines, &new_lines}) {
    for (const std::string& l : *lines) {
      EXPECT_EQ(request_number(l), expected++) << l;
      EXPECT_NE(l.find("\" 200 13 \"-\" \"-\""), std::string::npos) << l;
    }
  }
  EXPECT_EQ(expected, next);
  EXPECT_EQ(request_number(old_lines.front()), 0);
  EXPECT_EQ(final_counter(server.out(), "access_log_reopens"), "1") << server.out();
  EXPECT_EQ(final_counter(server.out(), "access_log_dropped"), "0") << server.out();
}

off_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

// Whether any descriptor of the process names this path (a deleted file shows as "PATH (deleted)").
bool holds_open(pid_t pid, const std::string& path) {
  std::error_code ec;
  for (const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec)) {
    const auto target = std::filesystem::read_symlink(entry.path(), ec);
    if (!ec && target.string().rfind(path, 0) == 0) return true;
  }
  return false;
}

class AccessLogFullDisk : public AccessLogApp, public ::testing::WithParamInterface<const char*> {};

// The disk fills while a line is half written; the operator moves and deletes the log and sends
// SIGHUP. The rest of that line can never be written to the old file, so it is dropped and
// counted, the old file is closed (its space is freed) and the new file takes the next lines.
// A file-size limit (RLIMIT_FSIZE) stands in for the full disk: a write past it is cut short,
// then fails with EFBIG, as one on a full disk is cut short, then fails with ENOSPC.
TEST_P(AccessLogFullDisk, RotationCompletesAfterTheDiskFilledMidLine) {
  constexpr off_t kLimit = 64 << 10;
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_FSIZE, &saved), 0);
  if (saved.rlim_max != RLIM_INFINITY && saved.rlim_max < static_cast<rlim_t>(kLimit)) {
    GTEST_SKIP() << "the hard file-size limit is below " << kLimit;
  }
  rlimit low = saved;
  low.rlim_cur = kLimit;
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &low), 0);
  ChildProcess server("ringserve-http", {"--backend", GetParam(), "--port", "0", "--address",
                                         "127.0.0.1", "--access-log", log_});
  ASSERT_EQ(::setrlimit(RLIMIT_FSIZE, &saved), 0);  // the child keeps the low limit
  const auto line = server.wait_for_line("listening on", kTimeout);
  ASSERT_TRUE(line) << server.err();
  const int fd = connect_to(port_from_startup_line(*line));
  ASSERT_GE(fd, 0);

  // Lines of about 1 KB: 64 KiB is no multiple of them, so the file fills mid-line.
  constexpr std::size_t kPad = 997;
  int next = 0;
  const auto deadline = Clock::now() + kTimeout;
  while (file_size(log_) < kLimit) {
    ASSERT_LT(Clock::now(), deadline) << "the log never reached the limit";
    ASSERT_TRUE(request(fd, next++, kPad));
  }
  std::ifstream full(log_, std::ios::binary);
  full.seekg(-1, std::ios::end);
  if (full.get() == '\n') GTEST_SKIP() << "the file filled at a line end: nothing to drop";

  ASSERT_EQ(std::rename(log_.c_str(), rotated_.c_str()), 0);
  ASSERT_EQ(std::remove(rotated_.c_str()), 0);
  server.signal(SIGHUP);
  // Lines reach the new file and the deleted one is no longer held open (its space is freed).
  ASSERT_TRUE(wait_until(
      [&] {
        return request(fd, next++) && !read_lines(log_).empty() &&
               !holds_open(server.pid(), rotated_);
      },
      kTimeout))
      << "rotation did not complete";

  server.signal(SIGTERM);
  EXPECT_TRUE(wait_closed(fd, kTimeout));
  ::close(fd);
  ASSERT_EQ(server.wait_exit(kTimeout), 0) << server.err();
  // The new file holds whole lines only, in order, none of them the one cut short.
  const auto lines = read_lines(log_);
  ASSERT_FALSE(lines.empty());
  int last = -1;
  for (const std::string& l : lines) {
    const int n = request_number(l);
    EXPECT_GT(n, last) << l;
    last = n;
    EXPECT_NE(l.find("\" 200 13 \"-\" \"-\""), std::string::npos) << l;
  }
  EXPECT_EQ(last, next - 1);
  EXPECT_EQ(final_counter(server.out(), "access_log_reopens"), "1") << server.out();
  EXPECT_NE(final_counter(server.out(), "access_log_dropped"), "0") << server.out();
  EXPECT_NE(final_counter(server.out(), "access_log_write_errors"), "0") << server.out();
}

INSTANTIATE_TEST_SUITE_P(Backends, AccessLogFullDisk,
                         ::testing::Values("uring", "epoll", "threads"));

TEST_F(AccessLogApp, UnopenableLogIsAStartupErrorThatSaysWhatToDo) {
  const std::string path = dir_ + "/missing/access.log";
  ChildProcess server("ringserve-http", {"--port", "0", "--access-log", path});
  EXPECT_EQ(server.wait_exit(kTimeout), 1);
  EXPECT_NE(server.err().find(path), std::string::npos) << server.err();
  EXPECT_NE(server.err().find("--access-log"), std::string::npos) << server.err();
}

TEST_F(AccessLogApp, HelpListsTheAccessLogFlag) {
  ChildProcess help("ringserve-http", {"--help"});
  EXPECT_EQ(help.wait_exit(kTimeout), 0);
  EXPECT_NE(help.out().find("--access-log"), std::string::npos) << help.out();
}

}  // namespace
}  // namespace rs::test
