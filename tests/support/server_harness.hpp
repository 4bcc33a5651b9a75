// Servers for tests: in process on port 0 (parameterised by backend and loop count), or a
// built binary started as a child process.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "net/server.hpp"

namespace rs::test {

struct BackendParam {
  net::Backend backend;
  unsigned loops;
  // uring: the ring knobs of apply_tuned_ring_options: the behaviour must not depend on them.
  bool tuned = false;
  // uring: receive bundles over 4 KiB buffers (a request often spans several).
  bool bundles = false;
  // uring: the output chunks registered as fixed buffers (--uring-registered-buffers): file
  // reads and zero-copy sends name them.
  bool registered_buffers = false;
};
std::string backend_name(const BackendParam& param);
inline void PrintTo(const BackendParam& param, std::ostream* os) {
  *os << backend_name(param);
}
// Every backend and loop count the behaviour tests run on.
std::vector<BackendParam> all_backends();
// The same, for behaviour only one backend has (its tests say so in their suite name).
std::vector<BackendParam> backends_of(net::Backend backend);

class InProcessServer {
 public:
  InProcessServer(net::ServerConfig config, net::ProtocolFactoryMaker make);
  ~InProcessServer();
  std::uint16_t port() const { return server_.port(); }
  std::int64_t counter(std::string_view name) const { return server_.counters().get(name); }
  net::Server& server() { return server_; }
  // Whether the start-up line names this setting as in force ("recv bundles on", ...).
  bool in_force(std::string_view setting) const {
    return server_.setup_mode().find(setting) != std::string::npos;
  }
  // Stops and joins; true when every loop returned within the timeout.
  bool stop_and_wait(std::chrono::milliseconds timeout);

 private:
  net::Server server_;
  bool stopped_ = false;
};

// "Every pool came back": no connection open and nothing a connection held still out of its
// pool (connections, output chunks, response slots, open files, held receive buffers). Waits
// for it up to the timeout, since closes finish on the server's loops; each pool still out
// then fails the test by name. Returns whether all came back, for callers that must stop.
bool expect_pools_returned(const InProcessServer& server,
                           std::chrono::milliseconds timeout = std::chrono::milliseconds(10000));

net::ServerConfig test_config(const BackendParam& param);
// The knobs of a tuned uring run: batched wait, a file table smaller than some tests' connection
// counts (so both the slot and the plain-descriptor paths serve), incremental 4 KiB buffers
// (requests span buffers, and connections share one). Where the kernel lacks a feature it is
// off, as the server's start-up line says. Receive bundles have their own parameter (the ring
// refuses them beside incremental buffers); SEND_ZC has its own tests in echo_test.cpp and
// http_session_test.cpp (it ties a connection's life to the peer's reading on loopback).
void apply_tuned_ring_options(net::ServerConfig& config);

// A built executable from build/bin, run as a child with stdout and stderr captured.
class ChildProcess {
 public:
  ChildProcess(const std::string& name, const std::vector<std::string>& args);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Waits for a stdout line containing needle; returns it.
  std::optional<std::string> wait_for_line(std::string_view needle,
                                           std::chrono::milliseconds timeout);
  void signal(int sig);
  // The exit status (or 128 + signal) once the child has exited within the timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  const std::string& out() const { return out_; }
  const std::string& err() const { return err_; }
  pid_t pid() const { return pid_; }

 private:
  void pump(int timeout_ms);

  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_;
  std::string err_;
  std::optional<int> status_;
};

// The port from a start-up line "... listening on ADDRESS port N: ...".
std::uint16_t port_from_startup_line(const std::string& line);

}  // namespace rs::test
