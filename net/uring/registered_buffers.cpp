#include "net/uring/registered_buffers.hpp"

#include <sys/resource.h>
#include <sys/uio.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <fmt/format.h>

#include "core/log.hpp"

namespace rs::net::uring {

namespace {

std::string memlock_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_MEMLOCK, &limit) != 0) return "unknown";
  if (limit.rlim_cur == RLIM_INFINITY) return "unlimited";
  return fmt::format("{} KiB", limit.rlim_cur / 1024);
}

std::string refusal_reason(int error) {
  if (error == ENOMEM) return fmt::format("ENOMEM, RLIMIT_MEMLOCK {}", memlock_limit());
  return std::strerror(error);
}

}  // namespace

RegisteredBuffers::RegisteredBuffers(io_uring& ring, core::ChunkPool& chunks,
                                     LoopCounters& counters, bool on)
    : ring_(ring), chunks_(chunks), counters_(counters) {
  if (!on) return;
  // Sparse: every slot empty until a slab is registered in it (Linux 5.19), each with an
  // update of its own slot, so that a growing pool never re-registers the slabs it has.
  const int rc = io_uring_register_buffers_sparse(&ring_, kTableSlots);
  if (rc == 0) {
    state_ = State::kOn;
    table_ = true;
  } else {
    refuse(-rc, 0);  // each slab then counts as left plain
  }
  chunks_.set_registrar(this);
  if (chunks_.capacity() == 0) chunks_.reserve(1);
}

RegisteredBuffers::~RegisteredBuffers() {
  if (state_ == State::kOff) return;
  chunks_.set_registrar(nullptr);
  // Unpinned now (nothing is in flight by the time a loop ends), not by the ring's exit work
  // later: the charge to RLIMIT_MEMLOCK goes back with it.
  if (table_) io_uring_unregister_buffers(&ring_);
}

std::uint32_t RegisteredBuffers::add_slab(std::size_t slab, std::span<std::byte> bytes) {
  if (state_ != State::kOn || slab >= kTableSlots) {
    counters_.registered_buffer_fallbacks.add();
    return core::kNoBufferIndex;
  }
  // The kernel pins the slab's pages now (faulting in those never touched) and charges them to
  // RLIMIT_MEMLOCK unless the process has CAP_IPC_LOCK. A fixed operation's address range must
  // lie within the one buffer it names: a chunk's payload lies within its slab.
  iovec iov{bytes.data(), bytes.size()};
  const int rc =
      io_uring_register_buffers_update_tag(&ring_, static_cast<unsigned>(slab), &iov, nullptr, 1);
  if (rc != 1) {
    refuse(rc < 0 ? -rc : EIO, bytes.size());
    counters_.registered_buffer_fallbacks.add();
    return core::kNoBufferIndex;
  }
  ++registered_;
  counters_.registered_buffers.set(static_cast<std::int64_t>(registered_));
  counters_.registered_buffer_bytes.set(static_cast<std::int64_t>(registered_bytes()));
  return static_cast<std::uint32_t>(slab);
}

// Once per process: every loop meets the same limit.
void RegisteredBuffers::refuse(int error, std::size_t bytes) {
  state_ = State::kRefused;
  refusal_ = error;
  static std::atomic<bool> said{false};
  if (said.exchange(true)) return;
  core::log_warn(
      "registered buffers: the kernel refused to register {} ({}); output chunks use plain "
      "buffers from now on (raise RLIMIT_MEMLOCK, e.g. LimitMEMLOCK= in the service unit, or "
      "start with --uring-registered-buffers false)",
      bytes > 0 ? fmt::format("{} KiB of output chunks", bytes / 1024)
                : std::string("a buffer table"),
      refusal_reason(error));
}

void RegisteredBuffers::refuse_vectored_sends() {
  if (!vectored_sends_) return;
  vectored_sends_ = false;
  core::log_warn(
      "zero-copy sendmsg from registered buffers refused (EINVAL, a kernel before "
      "6.15): sends of several chunks go without them");
}

std::string RegisteredBuffers::describe() const {
  switch (state_) {
    case State::kOff:
      return "off";
    case State::kOn:
      return fmt::format("on ({} x {} KiB)", registered_, chunks_.slab_bytes() / 1024);
    case State::kRefused:
      return fmt::format(
          "off (refused: {}{})", refusal_reason(refusal_),
          registered_ > 0 ? fmt::format(", {} registered before", registered_) : std::string());
  }
  return "?";
}

}  // namespace rs::net::uring
