// RAII over one io_uring instance, created on the thread that drives it (SINGLE_ISSUER binds
// the ring to its creator). One submit-and-wait per loop turn; completions are reaped in
// batches with a single CQ head advance per batch.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "net/loop_counters.hpp"
#include "net/uring/operation.hpp"

namespace rs::net::uring {

enum class SetupMode : std::uint8_t { kDeferTaskrun, kCoopTaskrun, kPlain };
const char* to_string(SetupMode mode);

struct RingOptions {
  unsigned sq_entries = 1024;
  // Multishot receive posts many CQEs per SQE, so the CQ is much deeper than the SQ.
  unsigned cq_entries = 16384;
  // Try SINGLE_ISSUER|DEFER_TASKRUN first (off: start from COOP_TASKRUN), for measuring.
  bool defer_taskrun = true;
  // Batched waiting (IORING_FEAT_MIN_TIMEOUT, Linux 6.12+): a wait returns once wait_batch
  // completions are there, or after wait_min_usec with whatever has come (at least one).
  // Fewer, fuller loop turns under load, at up to wait_min_usec of added latency; an idle
  // loop still sleeps until its next timer. wait_batch 1 or wait_min_usec 0: off.
  unsigned wait_batch = 1;
  unsigned wait_min_usec = 0;
};

struct Completion {
  Operation* op;
  std::int32_t res;
  std::uint32_t flags;
};

class Ring {
 public:
  // Throws std::system_error whose message says what to do when io_uring is unavailable.
  Ring(const RingOptions& options, LoopCounters& counters);
  ~Ring();
  Ring(const Ring&) = delete;
  Ring& operator=(const Ring&) = delete;

  // A free SQE, never null: a full SQ is flushed to the kernel first.
  io_uring_sqe* sqe(Operation& op);

  // Submits everything prepared and waits for at least one completion or the timeout.
  void submit_and_wait(std::optional<std::uint64_t> timeout_ns);

  // Copies up to out.size() completions, advances the CQ head once, returns the count.
  std::size_t reap(std::span<Completion> out);

  SetupMode mode() const { return mode_; }
  const std::string& mode_reason() const { return mode_reason_; }
  // The batched wait in force ("off" where not asked for or the kernel lacks it).
  std::string wait_mode() const;
  io_uring* raw() { return &ring_; }
  unsigned cq_entries() const { return ring_.cq.ring_entries; }

 private:
  void check_overflow();
  void require_features();
  int submit_and_wait_batch(const __kernel_timespec& timeout, unsigned min_wait_usec);
  void check_enter(int rc);

  io_uring ring_{};
  SetupMode mode_ = SetupMode::kPlain;
  std::string mode_reason_;
  LoopCounters& counters_;
  std::uint32_t last_koverflow_ = 0;
  unsigned wait_batch_ = 1;  // > 1: submit_and_wait_batch with wait_min_usec_
  unsigned wait_min_usec_ = 0;
};

}  // namespace rs::net::uring
