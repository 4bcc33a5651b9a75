// Blocking and polled TCP clients for tests on loopback. Every wait has a deadline; nothing
// sleeps a fixed time hoping the server is ready.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

namespace rs::test {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Polls pred every millisecond until it holds or the timeout passes; returns whether it held.
bool wait_until(const std::function<bool()>& pred, milliseconds timeout = milliseconds(10000));

// A connected IPv4 socket to 127.0.0.1:port (blocking), or -1. With receive_buffer_bytes > 0
// its receive buffer is that small, so the server meets a slow reader at once. With
// max_segment > 0 the connection's segments are that small, as on a real network; loopback's
// 64 KiB segments do not fit a small window, so the server's side would send only at the pace
// of its persist timer (backing off to seconds) once the window has closed.
int connect_to(std::uint16_t port, int receive_buffer_bytes = 0, int max_segment = 0);
void set_nonblocking(int fd);
// A blocking recv on fd returns (with EAGAIN) after timeout: a lost answer fails the test
// instead of hanging it.
void bound_receives(int fd, milliseconds timeout = milliseconds(10000));

bool send_all(int fd, std::span<const std::byte> bytes, milliseconds timeout = milliseconds(10000));
bool send_all(int fd, std::string_view text, milliseconds timeout = milliseconds(10000));
// Reads exactly out.size() bytes; false on EOF, error or timeout.
bool recv_exact(int fd, std::span<std::byte> out, milliseconds timeout = milliseconds(10000));
std::string recv_string(int fd, std::size_t n, milliseconds timeout = milliseconds(10000));
// True when the peer closed (EOF or reset) within the timeout; data before it is discarded.
bool wait_closed(int fd, milliseconds timeout = milliseconds(10000));

// Deterministic test bytes: client `seed`, position i.
std::vector<std::byte> pattern(std::size_t size, std::uint32_t seed);

// Many clients echoing at once from one thread with poll(): each sends its payload in
// fragments of `fragment` bytes (the last one shorter) while reading the echo back.
struct EchoJob {
  int fd = -1;
  std::vector<std::byte> payload;
  std::size_t sent = 0;
  std::size_t received = 0;
  bool mismatch = false;
  bool failed = false;  // EOF or error before everything came back
};
// Returns true when every job got its whole payload back, byte for byte, before the timeout.
bool run_echo_jobs(std::vector<EchoJob>& jobs, std::size_t fragment,
                   milliseconds timeout = milliseconds(30000));

}  // namespace rs::test
