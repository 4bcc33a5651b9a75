// What every load generator of perf/ needs from io_uring and the socket layer: the server's
// address resolved once, a TCP socket with Nagle off, and one ring on the calling thread whose
// submissions are batched per loop turn and whose completions are copied out in batches (the CQ
// head advanced once per batch) before any of them is handled.
#pragma once

#include <liburing.h>
#include <sys/socket.h>

#include <cstdint>
#include <string>
#include <vector>

namespace rs::perf {

constexpr std::uint64_t kNsPerS = 1'000'000'000;

inline std::uint64_t seconds_to_ns(double s) {
  return static_cast<std::uint64_t>(s * static_cast<double>(kNsPerS));
}
inline double ns_to_seconds(std::uint64_t ns) {
  return static_cast<double>(ns) / static_cast<double>(kNsPerS);
}

struct ServerAddress {
  sockaddr_storage addr{};
  socklen_t len = 0;
  const sockaddr* sockaddr_ptr() const { return reinterpret_cast<const sockaddr*>(&addr); }
};

// The first address getaddrinfo gives for host:port. Throws std::runtime_error naming --host
// when it does not resolve.
ServerAddress resolve_server(const std::string& host, std::uint16_t port);

// A TCP socket for `address`'s family with TCP_NODELAY set (requests and messages leave as soon
// as they are issued; Nagle would hold back every second one); -errno on failure.
int open_client_socket(const ServerAddress& address);

// One completion as copied out of the CQ: `data` is the SQE's user_data, null for the
// completions that carry none (cancels, liburing's own wait timeout on old kernels).
struct LoadCompletion {
  void* data;
  int res;
};

class LoadRing {
 public:
  // Sized so that `max_in_flight` operations never overflow the CQ (the kernel clamps very
  // large requests). Throws std::runtime_error, with a hint, when io_uring cannot be set up.
  explicit LoadRing(unsigned max_in_flight);
  ~LoadRing();
  LoadRing(const LoadRing&) = delete;
  LoadRing& operator=(const LoadRing&) = delete;

  // The setup flags the kernel accepted, for the report.
  const std::string& mode() const { return mode_; }

  // A fresh SQE whose completion will carry `data`. A full SQ is not an error: the batch so
  // far is handed to the kernel and a fresh entry taken.
  io_uring_sqe* sqe(void* data);

  // One system call per turn: submits everything prepared and waits for a completion, or
  // until `deadline_ns` (monotonic; UINT64_MAX waits for a completion only).
  void submit_and_wait(std::uint64_t now_ns, std::uint64_t deadline_ns);

  // Calls handle(const LoadCompletion&) for every completion ready now. Each batch is copied
  // out and the CQ head advanced once before any is handled, so a handler may prepare SQEs.
  template <typename Handle>
  void reap(Handle&& handle) {
    for (;;) {
      const std::size_t n = copy_out();
      for (std::size_t i = 0; i < n; ++i)
        handle(batch_[i]);
      if (n < batch_.size()) return;
    }
  }

 private:
  std::size_t copy_out();

  io_uring ring_{};
  std::string mode_;
  std::vector<LoadCompletion> batch_;
};

}  // namespace rs::perf
