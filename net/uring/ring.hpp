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
#include "net/uring/ring_options.hpp"

namespace rs::net::uring {

enum class SetupMode : std::uint8_t { kDeferTaskrun, kCoopTaskrun, kPlain };
const char* to_string(SetupMode mode);

struct Completion {
  void* user_data;  // Operation::dispatch takes it back to its operation and tag
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

  // A free SQE, never null: a full SQ is flushed to the kernel first. Its completion goes to op,
  // with the tag.
  io_uring_sqe* sqe(Operation& op, unsigned tag = 0);

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
  // Every SQE prepared so far has been handed to the kernel.
  bool sq_empty() const { return io_uring_sq_ready(&ring_) == 0; }
  // The buffer ring is incremental: bundles go off (see ring.cpp).
  void refuse_recv_bundle_beside_incremental();
  unsigned send_zc_min_bytes() const { return send_zc_min_bytes_; }
  // Whether multishot receives carry a limit on the bytes they read (kernel_abi.hpp); on until
  // the kernel refuses one.
  bool recv_limit() const { return recv_limit_; }
  void refuse_recv_limit() { recv_limit_ = false; }
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
  bool recv_limit_ = true;
};

}  // namespace rs::net::uring
