// Makes the kernel count pinned memory against RLIMIT_MEMLOCK for rings the calling thread (and
// threads it starts) creates, with a low limit: drops CAP_IPC_LOCK from the thread's effective
// capabilities (root's rings are not counted) and lowers the soft limit. Both come back at the
// end of the scope. For the tests of a registration the kernel refuses (ENOMEM).
#pragma once

#include <fcntl.h>
#include <linux/capability.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cstdint>

namespace rs::test {

class LockedMemoryLimit {
 public:
  explicit LockedMemoryLimit(std::uint64_t bytes) {
    // The kernel charges every process of the user to one count (user->locked_vm): two such
    // tests at once (ctest -j) would see each other's rings. One at a time, across processes.
    lock_fd_ = ::open("/tmp/ringserve-locked-memory-test.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (lock_fd_ >= 0) ::flock(lock_fd_, LOCK_EX);
    if (::getrlimit(RLIMIT_MEMLOCK, &saved_) != 0) return;
    if (capget(caps_) && (caps_[0].effective & ipc_lock_bit()) != 0) {
      __user_cap_data_struct dropped[2] = {caps_[0], caps_[1]};
      dropped[0].effective &= ~ipc_lock_bit();
      if (!capset(dropped)) return;
      restore_caps_ = true;
    }
    rlimit lower = saved_;
    lower.rlim_cur = bytes;
    if (lower.rlim_max != RLIM_INFINITY && lower.rlim_max < bytes) lower.rlim_cur = lower.rlim_max;
    active_ = ::setrlimit(RLIMIT_MEMLOCK, &lower) == 0;
  }
  ~LockedMemoryLimit() {
    if (active_) ::setrlimit(RLIMIT_MEMLOCK, &saved_);
    if (restore_caps_) capset(caps_);
    if (lock_fd_ >= 0) ::close(lock_fd_);  // and the lock with it
  }
  LockedMemoryLimit(const LockedMemoryLimit&) = delete;
  LockedMemoryLimit& operator=(const LockedMemoryLimit&) = delete;

  // Whether the limit is in force for this thread's new rings.
  bool active() const { return active_; }

 private:
  static std::uint32_t ipc_lock_bit() { return 1U << CAP_IPC_LOCK; }
  static bool capget(__user_cap_data_struct (&data)[2]) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capget, &header, data) == 0;
  }
  static bool capset(__user_cap_data_struct (&data)[2]) {
    __user_cap_header_struct header{_LINUX_CAPABILITY_VERSION_3, 0};
    return ::syscall(SYS_capset, &header, data) == 0;
  }

  rlimit saved_{};
  __user_cap_data_struct caps_[2]{};
  bool restore_caps_ = false;
  bool active_ = false;
  int lock_fd_ = -1;
};

}  // namespace rs::test
