#include "tests/apps/tool_process.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace rs::test {

std::string find_tool(std::string_view name) {
  const char* path = std::getenv("PATH");
  std::string_view dirs = path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin";
  while (!dirs.empty()) {
    const auto colon = dirs.find(':');
    const std::string dir(dirs.substr(0, colon));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + std::string(name);
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (colon == std::string_view::npos) break;
    dirs.remove_prefix(colon + 1);
  }
  return {};
}

namespace {

// Reads whatever is ready on the open pipes into out/err; closes a pipe at EOF.
void pump(int (&fds)[2], std::string* sinks[2], int timeout_ms) {
  pollfd p[2];
  nfds_t n = 0;
  int which[2];
  for (int i = 0; i < 2; ++i) {
    if (fds[i] < 0) continue;
    p[n] = {fds[i], POLLIN, 0};
    which[n++] = i;
  }
  if (n == 0 || ::poll(p, n, timeout_ms) <= 0) return;
  char buf[16384];
  for (nfds_t k = 0; k < n; ++k) {
    if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
    const ssize_t got = ::read(p[k].fd, buf, sizeof(buf));
    if (got > 0) {
      sinks[which[k]]->append(buf, static_cast<std::size_t>(got));
    } else if (got == 0 || errno != EINTR) {
      ::close(p[k].fd);
      fds[which[k]] = -1;
    }
  }
}

}  // namespace

ToolResult run_tool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  ToolResult result;
  if (argv.empty()) return result;
  const std::string path = find_tool(argv[0]);
  if (path.empty()) {
    result.err = argv[0] + ": not found on PATH";
    return result;
  }
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0) return result;
  if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
    ::close(out_pipe[0]);
    ::close(out_pipe[1]);
    return result;
  }
  std::vector<std::string> storage = argv;
  std::vector<char*> args;
  args.reserve(storage.size() + 1);
  for (auto& a : storage)
    args.push_back(a.data());
  args.push_back(nullptr);
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null_fd = ::open("/dev/null", O_RDONLY);
    ::dup2(null_fd, 0);
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(path.c_str(), args.data());
    std::fprintf(stderr, "exec %s: %s\n", path.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  int fds[2] = {out_pipe[0], err_pipe[0]};
  std::string* sinks[2] = {&result.out, &result.err};
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    return result;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  for (;;) {
    const pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) break;
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, &status, 0);
      result.timed_out = true;
      break;
    }
    pump(fds, sinks, 5);
  }
  // The tool is gone; its pipes reach EOF unless something it started still holds them.
  const auto drain_until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while ((fds[0] >= 0 || fds[1] >= 0) && std::chrono::steady_clock::now() < drain_until)
    pump(fds, sinks, 100);
  for (int fd : fds) {
    if (fd >= 0) ::close(fd);
  }
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string pattern =
      std::string(base != nullptr && *base != '\0' ? base : "/tmp") + "/ringserve-apps-XXXXXX";
  if (::mkdtemp(pattern.data()) != nullptr) path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

std::string TempDir::write(std::string_view name, std::string_view contents) const {
  std::string file = path_ + "/" + std::string(name);
  std::ofstream(file, std::ios::binary)
      .write(contents.data(), static_cast<std::streamsize>(contents.size()));
  return file;
}

}  // namespace rs::test
