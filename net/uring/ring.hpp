// RAII over one io_uring instance, created on the thread that drives it (SINGLE_ISSUER binds
// the ring to its creator). One submit-and-wait per loop turn; completions are reaped in
// batches with a single CQ head advance per batch.
#pragma once

#include <liburing.h>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

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
  // Direct descriptors: a registered file table of this many slots; each connection's socket
  // is installed in a free one at accept, so its sends and receives skip the per-operation file
  // lookup and reference count. Connections beyond the table use the plain descriptor. 0: off.
  unsigned fixed_files = 0;
  // Receive bundles (Linux 6.10+): one receive completion may fill several provided buffers.
  // Off where the buffer ring is incremental (Ring::refuse_recv_bundle_beside_incremental).
  bool recv_bundle = false;
  // Incremental buffer consumption (Linux 6.12+): receives fill a provided buffer a piece at a
  // time instead of taking a whole one each.
  bool incremental_buffers = false;
  // Sends of at least this many bytes go as SEND_ZC / SENDMSG_ZC (the kernel sends from our
  // pages and says when it is done with them). 0: off.
  unsigned send_zc_min_bytes = 0;
  // A connection closed while the kernel still holds its zero-copy pages (sent, not yet acked)
  // keeps its socket open this long for the notifications, then resets it: a plain close would
  // leave the pages, and the connection's place, to an orphaned socket for as long as TCP
  // keeps trying a peer that does not read. A stop's grace period ends the wait too.
  std::uint64_t send_zc_close_wait_ms = 30000;
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
  // The ring knobs in force beside the wait (fixed files, bundles, SEND_ZC), for the start-up
  // line; features the kernel lacks read "unsupported".
  std::string knobs() const;
  bool recv_bundle() const { return recv_bundle_; }
  // The buffer ring is incremental: bundles go off (see ring.cpp).
  void refuse_recv_bundle_beside_incremental();
  unsigned send_zc_min_bytes() const { return send_zc_min_bytes_; }
  // The kernel refused a zero-copy send (EINVAL): plain sends from now on, as knobs() says.
  void refuse_send_zc();

  // Installs fd in a free slot of the registered file table: the slot, or -1 when the table
  // is off or full (the connection then uses fd itself). The slot is freed by a close_direct
  // of it, after whose completion free_fixed_slot hands it back.
  int install_fixed(int fd);
  void free_fixed_slot(int slot) { free_fixed_.push_back(static_cast<unsigned>(slot)); }
  std::size_t fixed_files_in_use() const { return fixed_files_ - free_fixed_.size(); }

  io_uring* raw() { return &ring_; }
  unsigned cq_entries() const { return ring_.cq.ring_entries; }

 private:
  void check_overflow();
  void require_features();
  void register_fixed_files(unsigned slots);
  int submit_and_wait_batch(const __kernel_timespec& timeout, unsigned min_wait_usec);
  void check_enter(int rc);

  io_uring ring_{};
  SetupMode mode_ = SetupMode::kPlain;
  std::string mode_reason_;
  LoopCounters& counters_;
  std::uint32_t last_koverflow_ = 0;
  unsigned wait_batch_ = 1;  // > 1: submit_and_wait_batch with wait_min_usec_
  unsigned wait_min_usec_ = 0;
  unsigned fixed_files_ = 0;
  std::vector<unsigned> free_fixed_;  // reserved for the whole table: no allocation later
  bool recv_bundle_ = false;
  bool recv_bundle_asked_ = false;
  bool bundle_refused_ = false;
  unsigned send_zc_min_bytes_ = 0;
  bool send_zc_refused_ = false;
};

}  // namespace rs::net::uring
