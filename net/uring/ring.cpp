#include "net/uring/ring.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>

#include <fmt/format.h>

#include "net/uring/kernel_abi.hpp"

namespace rs::net::uring {

const char* to_string(SetupMode mode) {
  switch (mode) {
    case SetupMode::kDeferTaskrun:
      return "SINGLE_ISSUER|DEFER_TASKRUN";
    case SetupMode::kCoopTaskrun:
      return "COOP_TASKRUN";
    case SetupMode::kPlain:
      return "plain";
  }
  return "?";
}

namespace {

// The general timeout of a batched wait when no timer is due.
constexpr std::uint64_t kIdleWaitNs = 3600ULL * 1000000000ULL;

__kernel_timespec to_timespec(std::uint64_t ns) {
  __kernel_timespec ts{};
  ts.tv_sec = static_cast<long long>(ns / 1000000000ULL);
  ts.tv_nsec = static_cast<long long>(ns % 1000000000ULL);
  return ts;
}

int try_setup(io_uring& ring, const RingOptions& options, unsigned flags) {
  io_uring_params params{};
  params.flags = flags | IORING_SETUP_CQSIZE;
  params.cq_entries = options.cq_entries;
  return io_uring_queue_init_params(options.sq_entries, &ring, &params);
}

std::string unavailable_message(int err) {
  std::string why;
  if (err == EPERM || err == EACCES) {
    why =
        "io_uring is disabled for this process (kernel.io_uring_disabled, a seccomp profile or "
        "a container runtime refuses io_uring_setup)";
  } else if (err == ENOSYS) {
    why = "this kernel has no io_uring (CONFIG_IO_URING off or a kernel older than 5.1)";
  } else if (err == ENOMEM) {
    why = "the ring could not be allocated (RLIMIT_MEMLOCK too low on kernels before 5.12)";
  } else {
    why = "io_uring_setup failed";
  }
  return fmt::format("{}: {}; start with --backend epoll", why, std::strerror(err));
}

}  // namespace

Ring::Ring(const RingOptions& options, LoopCounters& counters) : counters_(counters) {
  // Best first: completions run only when this thread asks for them (DEFER_TASKRUN, 6.1+),
  // then cooperative task running (5.19+), then whatever the kernel offers.
  int rc = options.defer_taskrun
               ? try_setup(ring_, options,
                           IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
                               IORING_SETUP_SUBMIT_ALL)
               : -EINVAL;
  if (rc == 0) {
    mode_ = SetupMode::kDeferTaskrun;
    mode_reason_ = "kernel supports it";
  } else {
    const int defer_error = -rc;
    if (!options.defer_taskrun) mode_reason_ = "DEFER_TASKRUN switched off";
    rc = try_setup(ring_, options, IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
    if (rc == 0) {
      mode_ = SetupMode::kCoopTaskrun;
      if (options.defer_taskrun) {
        mode_reason_ = fmt::format("DEFER_TASKRUN refused: {}", std::strerror(defer_error));
      }
    } else {
      const int coop_error = -rc;
      rc = try_setup(ring_, options, 0);
      if (rc != 0) {
        throw std::system_error(-rc, std::generic_category(), unavailable_message(-rc));
      }
      mode_ = SetupMode::kPlain;
      mode_reason_ = fmt::format("DEFER_TASKRUN refused: {}; COOP_TASKRUN refused: {}",
                                 std::strerror(defer_error), std::strerror(coop_error));
    }
  }
  require_features();
  if (options.wait_batch > 1 && options.wait_min_usec > 0 &&
      (ring_.features & abi::kFeatMinTimeout) != 0) {
    wait_batch_ = options.wait_batch;
    wait_min_usec_ = options.wait_min_usec;
  }
  recv_bundle_asked_ = options.recv_bundle;
  recv_bundle_ = options.recv_bundle && (ring_.features & abi::kFeatRecvSendBundle) != 0;
  send_zc_min_bytes_ = options.send_zc_min_bytes;
  if (send_zc_min_bytes_ > 0) {
    // SEND_ZC itself is required above; SENDMSG_ZC came a release later. The usage report
    // (Linux 6.2) cannot be probed: a kernel refusing it answers EINVAL, and the first
    // connection to meet that switches zero copy off (refuse_send_zc).
    io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
    if (probe == nullptr || io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC) == 0) {
      refuse_send_zc();
    }
    if (probe != nullptr) io_uring_free_probe(probe);
  }
  if (options.fixed_files > 0) register_fixed_files(options.fixed_files);
}

// A sparse table: every slot empty until a connection is installed in it. The kernel refuses
// more slots than RLIMIT_NOFILE allows, so the table is cut to that.
void Ring::register_fixed_files(unsigned slots) {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < slots) {
    slots = static_cast<unsigned>(limit.rlim_cur);
  }
  const int rc = io_uring_register_files_sparse(&ring_, slots);
  if (rc != 0) {
    io_uring_queue_exit(&ring_);
    throw std::system_error(-rc, std::generic_category(),
                            fmt::format("--uring-fixed-files {}: registering the file table "
                                        "failed; start without it",
                                        slots));
  }
  fixed_files_ = slots;
  free_fixed_.reserve(slots);
  for (unsigned slot = slots; slot > 0; --slot)
    free_fixed_.push_back(slot - 1);
}

// Not with incremental buffers: kernels before the fix "io_uring/net: inherit
// IORING_CQE_F_BUF_MORE across bundle recv retries" (2026) can report a kept buffer as done on
// a bundle that retried, and no feature bit says which kernels have it. A buffer handed back
// while the kernel still fills it would mix two connections' bytes.
void Ring::refuse_recv_bundle_beside_incremental() {
  if (!recv_bundle_) return;
  recv_bundle_ = false;
  bundle_refused_ = true;
}

void Ring::refuse_send_zc() {
  if (send_zc_min_bytes_ == 0) return;
  send_zc_min_bytes_ = 0;
  send_zc_refused_ = true;
}

int Ring::install_fixed(int fd) {
  if (free_fixed_.empty()) return -1;
  const unsigned slot = free_fixed_.back();
  if (io_uring_register_files_update(&ring_, slot, &fd, 1) != 1) return -1;
  free_fixed_.pop_back();
  return static_cast<int>(slot);
}

std::string Ring::knobs() const {
  return fmt::format("fixed files {}, recv bundles {}, send zc {}",
                     fixed_files_ > 0 ? fmt::format("{} slots", fixed_files_) : std::string("off"),
                     recv_bundle_          ? "on"
                     : !recv_bundle_asked_ ? "off"
                     : bundle_refused_     ? "off (not with incremental buffers)"
                                           : "unsupported",
                     send_zc_min_bytes_ > 0 ? fmt::format(">= {} B", send_zc_min_bytes_)
                     : send_zc_refused_     ? std::string("unsupported")
                                            : std::string("off"));
}

std::string Ring::wait_mode() const {
  if (wait_batch_ <= 1) return "off";
  return fmt::format("{} completions or {} us", wait_batch_, wait_min_usec_);
}

Ring::~Ring() {
  io_uring_queue_exit(&ring_);
}

// Multishot receive and accept, provided buffer rings and socket shutdown all arrived by
// kernel 6.0; SEND_ZC arrived in the same release and is an opcode the probe can name.
// Without them every connection would fail one by one, so refuse to start instead.
void Ring::require_features() {
  io_uring_probe* probe = io_uring_get_probe_ring(&ring_);
  const bool ok = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SEND_ZC) != 0 &&
                  io_uring_opcode_supported(probe, IORING_OP_SHUTDOWN) != 0;
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!ok) {
    io_uring_queue_exit(&ring_);
    throw std::system_error(ENOSYS, std::generic_category(),
                            "this kernel's io_uring lacks multishot receive (Linux 6.0 or newer "
                            "is needed); start with --backend epoll");
  }
}

io_uring_sqe* Ring::sqe(Operation& op, unsigned tag) {
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (sqe == nullptr) {
    // A full SQ is not an error: hand what we have to the kernel and carry on.
    counters_.sq_full_flushes.add();
    counters_.wait_calls.add();
    const int submitted = io_uring_submit(&ring_);
    if (submitted > 0) counters_.sqes_submitted.add(static_cast<std::uint64_t>(submitted));
    sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) {
      throw std::system_error(submitted < 0 ? -submitted : EBUSY, std::generic_category(),
                              "io_uring submission queue stays full");
    }
  }
  io_uring_sqe_set_data64(sqe, op.user_data(tag));
  return sqe;
}

void Ring::submit_and_wait(std::optional<std::uint64_t> timeout_ns) {
  const unsigned to_submit = io_uring_sq_ready(&ring_);
  counters_.sqes_submitted.add(to_submit);
  io_uring_cqe* cqe = nullptr;
  // The kernel ends the whole wait at the batch time when there is no general timeout, so an
  // idle loop without timers gets a long one instead of waking every wait_min_usec. The batch
  // time never reaches past the next timer (the kernel would let it), so timers stay on time.
  const std::uint64_t ns = timeout_ns.value_or(kIdleWaitNs);
  const auto min_wait_usec =
      static_cast<unsigned>(std::min<std::uint64_t>(wait_min_usec_, ns / 1000));
  if (wait_batch_ > 1 && min_wait_usec > 0) {
    counters_.wait_calls.add();
    check_enter(submit_and_wait_batch(to_timespec(ns), min_wait_usec));
  } else if (timeout_ns) {
    // With a timeout liburing skips the kernel when a completion is already waiting and
    // nothing is queued; without one it always enters.
    if (to_submit > 0 || io_uring_cq_ready(&ring_) == 0) counters_.wait_calls.add();
    __kernel_timespec ts = to_timespec(*timeout_ns);
    check_enter(io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr));
  } else {
    counters_.wait_calls.add();
    check_enter(io_uring_submit_and_wait(&ring_, 1));
  }
  check_overflow();
}

// -ETIME and -EINTR only mean nothing arrived; -EAGAIN, -EBUSY and -ENOMEM that the kernel is
// short of room or memory for now (the next turn retries); -EBADR that completions were dropped
// (check_overflow counts them). Anything else would repeat every turn: the loop stops with the
// reason.
void Ring::check_enter(int rc) {
  if (rc >= 0 || rc == -ETIME || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY || rc == -ENOMEM ||
      rc == -EBADR) {
    return;
  }
  throw std::system_error(-rc, std::generic_category(), "io_uring_enter");
}

// liburing 2.3 predates io_uring_submit_and_wait_min_timeout: publish the prepared SQEs
// (what its internal flush does for a ring without SQPOLL) and enter with the extended
// argument, whose pad field is min_wait_usec since Linux 6.12.
int Ring::submit_and_wait_batch(const __kernel_timespec& timeout, unsigned min_wait_usec) {
  // Without SQPOLL (never set here) publishing the tail is all a flush does.
  assert((ring_.flags & IORING_SETUP_SQPOLL) == 0);
  io_uring_sq& sq = ring_.sq;
  const unsigned tail = sq.sqe_tail;
  if (sq.sqe_head != tail) {
    sq.sqe_head = tail;
    io_uring_smp_store_release(sq.ktail, tail);
  }
  const unsigned to_submit = tail - IO_URING_READ_ONCE(*sq.khead);
  io_uring_getevents_arg arg{};
  arg.sigmask_sz = _NSIG / 8;
  arg.pad = min_wait_usec;
  arg.ts = reinterpret_cast<std::uint64_t>(&timeout);
  return io_uring_enter2(static_cast<unsigned>(ring_.ring_fd), to_submit, wait_batch_,
                         IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG,
                         reinterpret_cast<sigset_t*>(&arg), sizeof(arg));
}

std::size_t Ring::reap(std::span<Completion> out) {
  unsigned head = 0;
  io_uring_cqe* cqe = nullptr;
  std::size_t n = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    if (n == out.size()) break;
    out[n++] = Completion{io_uring_cqe_get_data(cqe), cqe->res, cqe->flags};
  }
  if (n > 0) {
    io_uring_cq_advance(&ring_, static_cast<unsigned>(n));
    counters_.cqes_reaped.add(n);
  }
  return n;
}

void Ring::check_overflow() {
  // The kernel buffers CQEs it could not post (IORING_FEAT_NODROP) and says so with this flag;
  // it drops them only when that buffering fails, counted in koverflow.
  if ((IO_URING_READ_ONCE(*ring_.sq.kflags) & IORING_SQ_CQ_OVERFLOW) != 0) {
    counters_.cq_overflow_buffered.add();
  }
  const std::uint32_t koverflow = IO_URING_READ_ONCE(*ring_.cq.koverflow);
  if (koverflow != last_koverflow_) {
    counters_.cq_overflow_dropped.add(koverflow - last_koverflow_);
    last_koverflow_ = koverflow;
  }
}

}  // namespace rs::net::uring
