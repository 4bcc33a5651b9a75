#include "perf/load_ring.hpp"

#include <netdb.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include <fmt/format.h>

namespace rs::perf {
namespace {

constexpr std::size_t kReapBatch = 1024;

}  // namespace

ServerAddress resolve_server(const std::string& host, std::uint16_t port) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  const std::string service = std::to_string(port);
  const int rc = ::getaddrinfo(host.c_str(), service.c_str(), &hints, &found);
  if (rc != 0 || found == nullptr) {
    throw std::runtime_error(fmt::format("cannot resolve --host {}: {}", host,
                                         rc != 0 ? ::gai_strerror(rc) : "no address"));
  }
  ServerAddress address;
  std::memcpy(&address.addr, found->ai_addr, found->ai_addrlen);
  address.len = found->ai_addrlen;
  ::freeaddrinfo(found);
  return address;
}

LoadRing::LoadRing(unsigned max_in_flight) {
  const unsigned sq_entries = std::bit_ceil(std::clamp(max_in_flight, 64U, 4096U));
  const unsigned cq_entries = std::bit_ceil(std::clamp(max_in_flight + 64, 256U, 1U << 20));
  // The cheapest mode the kernel accepts: one issuer and task work run only when we wait.
  const struct {
    unsigned flags;
    const char* name;
  } modes[] = {
      {IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN, "SINGLE_ISSUER|DEFER_TASKRUN"},
      {IORING_SETUP_COOP_TASKRUN, "COOP_TASKRUN"},
      {0, "plain"},
  };
  int rc = 0;
  for (const auto& mode : modes) {
    io_uring_params params{};
    params.flags = mode.flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
    params.cq_entries = cq_entries;
    rc = io_uring_queue_init_params(sq_entries, &ring_, &params);
    if (rc == 0) {
      mode_ = mode.name;
      batch_.resize(kReapBatch);
      return;
    }
  }
  throw std::runtime_error(fmt::format(
      "io_uring_setup failed: {} (io_uring disabled by kernel.io_uring_disabled, a seccomp "
      "profile or the container runtime?)",
      std::strerror(-rc)));
}

// Exiting the ring cancels anything still in flight (only after a stuck run).
LoadRing::~LoadRing() {
  io_uring_queue_exit(&ring_);
}

io_uring_sqe* LoadRing::sqe(void* data) {
  io_uring_sqe* s = io_uring_get_sqe(&ring_);
  if (s == nullptr) {
    io_uring_submit(&ring_);
    s = io_uring_get_sqe(&ring_);
    if (s == nullptr) throw std::runtime_error("io_uring submission queue stays full");
  }
  io_uring_sqe_set_data(s, data);
  if (data != nullptr) ++in_flight_;
  return s;
}

void LoadRing::submit_and_wait(std::uint64_t deadline_ns) {
  int rc = 0;
  if (deadline_ns == UINT64_MAX) {
    rc = io_uring_submit_and_wait(&ring_, 1);
  } else {
    // The clock now, not the turn's: the handlers and the sends since it took time, and a
    // wait measured from it would oversleep the next request's time by that much.
    const std::uint64_t now_ns = core::monotonic_ns();
    const std::uint64_t wait_ns = deadline_ns > now_ns ? deadline_ns - now_ns : 0;
    __kernel_timespec ts{};
    ts.tv_sec = static_cast<long long>(wait_ns / kNsPerS);
    ts.tv_nsec = static_cast<long long>(wait_ns % kNsPerS);
    io_uring_cqe* cqe = nullptr;
    rc = io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
  }
  // ETIME and EINTR mean only that nothing arrived; EBUSY/EAGAIN clear once we reap.
  if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EBUSY && rc != -EAGAIN) {
    throw std::runtime_error(fmt::format("io_uring_enter: {}", std::strerror(-rc)));
  }
}

std::size_t LoadRing::copy_out() {
  unsigned head = 0;
  std::size_t n = 0;
  io_uring_cqe* cqe = nullptr;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (n == batch_.size()) break;
    void* data = cqe->user_data == LIBURING_UDATA_TIMEOUT ? nullptr : io_uring_cqe_get_data(cqe);
    batch_[n++] = {data, cqe->res};
    if (data != nullptr) --in_flight_;
  }
  if (n > 0) io_uring_cq_advance(&ring_, static_cast<unsigned>(n));
  return n;
}

}  // namespace rs::perf
