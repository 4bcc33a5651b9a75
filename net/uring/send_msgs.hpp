// Scratch msghdrs for the sendmsg SQEs of a loop turn. The kernel reads a sendmsg's msghdr and
// iovec array when the SQE is submitted (IORING_FEAT_SUBMIT_STABLE, Linux 5.5), not when the
// send runs, so they need to live only until the turn's submit: a connection does not carry a
// 32-entry iovec array for the answer in several pieces, which most connections never send.
#pragma once

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "core/slab_pool.hpp"

namespace rs::net::uring {

class SendMsgs {
 public:
  static constexpr std::size_t kMaxIov = 32;

  SendMsgs() = default;
  ~SendMsgs() { release_all(); }
  SendMsgs(const SendMsgs&) = delete;
  SendMsgs& operator=(const SendMsgs&) = delete;

  // A msghdr over a copy of iov[0, n) (n <= kMaxIov), valid until release_all().
  msghdr* take(const iovec* iov, std::size_t n) {
    Slot* slot = pool_.make();
    std::copy_n(iov, std::min(n, kMaxIov), slot->iov);
    slot->msg.msg_iov = slot->iov;
    slot->msg.msg_iovlen = std::min(n, kMaxIov);
    slot->next_used = used_;
    used_ = slot;
    return &slot->msg;
  }
  // Once every SQE that names one has been submitted (the SQ is empty).
  void release_all() {
    while (Slot* slot = used_) {
      used_ = slot->next_used;
      pool_.destroy(slot);
    }
  }
  // One slab, made now.
  void reserve() { pool_.reserve(pool_.objects_per_slab()); }
  std::uint64_t grows() const { return pool_.grows(); }

 private:
  struct Slot {
    Slot() {}  // NOLINT(modernize-use-equals-default): = default would zero the iovec array
    msghdr msg{};
    iovec iov[kMaxIov];
    Slot* next_used = nullptr;
  };
  core::SlabPool<Slot> pool_{16};
  Slot* used_ = nullptr;
};

}  // namespace rs::net::uring
