#include "core/log.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cctype>
#include <string>
#include <string_view>

namespace rs::core {
namespace {

// "2026-11-26T12:00:00.123Z": digits where digits go, separators where they go. (Not std::regex:
// GCC 12 reports false maybe-uninitialized warnings inside <regex> under the sanitizers.)
bool is_timestamp(std::string_view s) {
  constexpr std::string_view kShape = "dddd-dd-ddTdd:dd:dd.dddZ";
  if (s.size() != kShape.size()) {
    return false;
  }
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool ok =
        kShape[i] == 'd' ? std::isdigit(static_cast<unsigned char>(s[i])) != 0 : s[i] == kShape[i];
    if (!ok) {
      return false;
    }
  }
  return true;
}

// Splits a line "TIMESTAMP rest\n" and checks the timestamp; returns rest with its newline.
std::string_view after_timestamp(std::string_view line) {
  if (line.size() < 25 || !is_timestamp(line.substr(0, 24)) || line[24] != ' ') {
    return "<bad>";
  }
  return line.substr(25);
}

// Points the log at a pipe for the test's duration and restores level and fd afterwards.
class LogTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::pipe2(fds_, O_CLOEXEC | O_NONBLOCK), 0);
    saved_fd_ = log_fd();
    saved_level_ = log_level();
    set_log_fd(fds_[1]);
  }
  void TearDown() override {
    set_log_fd(saved_fd_);
    set_log_level(saved_level_);
    ::close(fds_[0]);
    ::close(fds_[1]);
  }

  // Everything written so far; the writes are complete before log_*() returns.
  std::string drain() {
    std::string out;
    char buf[4096];
    for (;;) {
      const ssize_t n = ::read(fds_[0], buf, sizeof buf);
      if (n <= 0) {
        break;
      }
      out.append(buf, static_cast<std::size_t>(n));
    }
    return out;
  }

  int fds_[2] = {-1, -1};
  int saved_fd_ = 2;
  LogLevel saved_level_ = LogLevel::kInfo;
};

TEST_F(LogTest, WritesOneFormattedLine) {
  set_log_level(LogLevel::kInfo);
  log_info("listening on {}:{}", "0.0.0.0", 8080);
  const std::string line = drain();
  EXPECT_EQ(after_timestamp(line), "info  listening on 0.0.0.0:8080\n") << line;
}

TEST_F(LogTest, LevelNamesLineUp) {
  set_log_level(LogLevel::kDebug);
  log_debug("d");
  log_info("i");
  log_warn("w");
  log_error("e");
  const std::string out = drain();
  constexpr std::size_t kLine = 25 + 6 + 2;  // timestamp and space, level and space, "x\n"
  ASSERT_EQ(out.size(), 4 * kLine) << out;
  const std::string_view view(out);
  EXPECT_EQ(after_timestamp(view.substr(0 * kLine, kLine)), "debug d\n");
  EXPECT_EQ(after_timestamp(view.substr(1 * kLine, kLine)), "info  i\n");
  EXPECT_EQ(after_timestamp(view.substr(2 * kLine, kLine)), "warn  w\n");
  EXPECT_EQ(after_timestamp(view.substr(3 * kLine, kLine)), "error e\n");
}

TEST_F(LogTest, SuppressesLinesBelowTheLevel) {
  set_log_level(LogLevel::kWarn);
  EXPECT_FALSE(log_enabled(LogLevel::kInfo));
  EXPECT_TRUE(log_enabled(LogLevel::kError));
  log_debug("no");
  log_info("no");
  log_warn("yes {}", 1);
  const std::string out = drain();
  EXPECT_EQ(out.find("no"), std::string::npos) << out;
  EXPECT_NE(out.find("warn  yes 1\n"), std::string::npos) << out;
}

TEST_F(LogTest, LongLineIsWrittenWhole) {
  const std::string big(10000, 'x');
  log_error("{}", big);
  const std::string out = drain();
  ASSERT_EQ(out.size(), 25 + 6 + big.size() + 1);
  EXPECT_EQ(out.substr(31), big + "\n");
}

TEST(LogFormat, TimestampIsUtcWithMilliseconds) {
  fmt::memory_buffer out;
  constexpr std::uint64_t kMs = 1'795'694'400'123;  // 2026-11-26T12:00:00.123Z
  const int value = 42;
  detail::format_log_line(out, LogLevel::kInfo, kMs, "message {}", fmt::make_format_args(value));
  EXPECT_EQ(fmt::to_string(out), "2026-11-26T12:00:00.123Z info  message 42\n");
  out.clear();
  detail::format_log_line(out, LogLevel::kWarn, 7, "x", fmt::format_args());
  EXPECT_EQ(fmt::to_string(out), "1970-01-01T00:00:00.007Z warn  x\n");
}

}  // namespace
}  // namespace rs::core
