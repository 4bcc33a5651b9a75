#include "tests/support/server_harness.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstring>
#include <string_view>
#include <thread>

#include "tests/support/net_client.hpp"

#ifndef RS_BIN_DIR
#error "RS_BIN_DIR must name the directory of the built executables"
#endif

namespace rs::test {

std::string backend_name(const BackendParam& param) {
  return std::string(net::to_string(param.backend)) + "_" + std::to_string(param.loops) + "loop" +
         (param.tuned ? "_tuned" : "") + (param.bundles ? "_bundles" : "") +
         (param.registered_buffers ? "_regbufs" : "");
}

std::vector<BackendParam> all_backends() {
  return {{net::Backend::kUring, 1},
          // Two loops, with receive bundles: a completion may carry several buffers.
          {net::Backend::kUring, 2, false, true},
          // The ring knobs on: the behaviour must not depend on how a loop waits, names its
          // sockets or takes its buffers.
          {net::Backend::kUring, 1, true},
          // The output chunks registered with the ring: file reads and zero-copy sends name
          // them, and the behaviour must not change.
          {net::Backend::kUring, 1, false, false, true},
          {net::Backend::kEpoll, 1},
          {net::Backend::kEpoll, 2},
          {net::Backend::kThreads, 1}};
}

std::vector<BackendParam> backends_of(net::Backend backend) {
  std::vector<BackendParam> out;
  for (const BackendParam& param : all_backends()) {
    if (param.backend == backend) out.push_back(param);
  }
  return out;
}

net::ServerConfig test_config(const BackendParam& param) {
  net::ServerConfig config;
  config.address = "127.0.0.1";
  config.port = 0;
  config.backend = param.backend;
  config.threads = param.loops;
  config.loop.grace_ms = 5000;
  if (param.tuned) apply_tuned_ring_options(config);
  if (param.registered_buffers) config.ring.registered_buffers = true;
  if (param.bundles) {
    config.ring.recv_bundle = true;
    config.loop.buffer_size = 4096;
  }
  return config;
}

void apply_tuned_ring_options(net::ServerConfig& config) {
  config.ring.wait_batch = 8;
  config.ring.wait_min_usec = 100;
  config.ring.fixed_files = 8;
  config.ring.incremental_buffers = true;
  config.loop.buffer_size = 4096;
}

InProcessServer::InProcessServer(net::ServerConfig config, net::ProtocolFactoryMaker make)
    : server_(std::move(config), std::move(make)) {
  server_.start();
}

InProcessServer::~InProcessServer() {
  stop_and_wait(std::chrono::milliseconds(30000));
}

bool InProcessServer::stop_and_wait(std::chrono::milliseconds timeout) {
  if (stopped_) return true;
  stopped_ = true;
  server_.stop();
  // Joining cannot time out, so watch it from a helper thread.
  std::atomic<bool> joined{false};
  std::thread joiner([&] {
    server_.wait();
    joined = true;
  });
  const bool ok = wait_until([&] { return joined.load(); }, timeout);
  if (!ok) {
    // A server that does not stop would hang the whole suite: fail loudly instead.
    std::fprintf(stderr, "server did not stop within %lld ms\n",
                 static_cast<long long>(timeout.count()));
    std::abort();
  }
  joiner.join();
  return ok;
}

bool expect_pools_returned(const InProcessServer& server, std::chrono::milliseconds timeout) {
  static constexpr std::array<std::string_view, 6> kPools = {
      "connections_open",    "pool_connections", "pool_chunks",
      "pool_response_slots", "pool_files",       "buffers_held"};
  // The values of the last look, so what is reported is what the wait saw.
  std::array<std::int64_t, kPools.size()> left{};
  const bool back = wait_until(
      [&] {
        bool all = true;
        for (std::size_t i = 0; i < kPools.size(); ++i) {
          left[i] = server.counter(kPools[i]);
          all = all && left[i] == 0;
        }
        return all;
      },
      timeout);
  for (std::size_t i = 0; i < kPools.size(); ++i) {
    EXPECT_EQ(left[i], 0) << kPools[i] << " still not 0 after " << timeout.count() << " ms";
  }
  return back;
}

ChildProcess::ChildProcess(const std::string& name, const std::vector<std::string>& args) {
  int out_pipe[2];
  int err_pipe[2];
  if (::pipe2(out_pipe, O_CLOEXEC) != 0 || ::pipe2(err_pipe, O_CLOEXEC) != 0) return;
  const std::string path = std::string(RS_BIN_DIR) + "/" + name;
  std::vector<std::string> argv_storage{path};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  argv.reserve(argv_storage.size() + 1);
  for (auto& a : argv_storage)
    argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ == 0) {
    ::dup2(out_pipe[1], 1);
    ::dup2(err_pipe[1], 2);
    // The test process may have signals blocked (servers in process); the child starts clean.
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    ::execv(path.c_str(), argv.data());
    std::fprintf(stderr, "exec %s: %s\n", path.c_str(), std::strerror(errno));
    ::_exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  out_fd_ = out_pipe[0];
  err_fd_ = err_pipe[0];
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && !status_) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (out_fd_ >= 0) ::close(out_fd_);
  if (err_fd_ >= 0) ::close(err_fd_);
}

void ChildProcess::pump(int timeout_ms) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (::poll(fds, 2, timeout_ms) <= 0) return;
  char buf[4096];
  for (int i = 0; i < 2; ++i) {
    if ((fds[i].revents & (POLLIN | POLLHUP)) == 0) continue;
    const ssize_t n = ::read(fds[i].fd, buf, sizeof(buf));
    if (n > 0) (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
    if (n == 0) {
      ::close(fds[i].fd);
      (i == 0 ? out_fd_ : err_fd_) = -1;
    }
  }
}

std::optional<std::string> ChildProcess::wait_for_line(std::string_view needle,
                                                       std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  for (;;) {
    std::size_t start = 0;
    while (true) {
      const std::size_t end = out_.find('\n', start);
      if (end == std::string::npos) break;
      std::string line = out_.substr(start, end - start);
      if (line.find(needle) != std::string::npos) return line;
      start = end + 1;
    }
    if (Clock::now() >= deadline || (out_fd_ < 0 && err_fd_ < 0)) return std::nullopt;
    pump(10);
  }
}

void ChildProcess::signal(int sig) {
  if (pid_ > 0 && !status_) ::kill(pid_, sig);
}

std::optional<int> ChildProcess::wait_exit(std::chrono::milliseconds timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!status_) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (Clock::now() >= deadline) return std::nullopt;
    pump(5);
  }
  while (out_fd_ >= 0 || err_fd_ >= 0)
    pump(100);  // the child is gone: drain to EOF
  return status_;
}

std::uint16_t port_from_startup_line(const std::string& line) {
  const std::size_t at = line.find("listening on ");
  if (at == std::string::npos) return 0;
  const std::size_t port_at = line.find(" port ", at);
  if (port_at == std::string::npos) return 0;
  return static_cast<std::uint16_t>(std::strtoul(line.c_str() + port_at + 6, nullptr, 10));
}

}  // namespace rs::test
