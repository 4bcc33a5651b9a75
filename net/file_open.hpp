// How every backend's file service opens and describes a file, so the rules (stay beneath the
// root, never block on a FIFO, describe exactly the file opened) are written once.
#pragma once

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdint>
#include <string_view>

#include "net/file_service.hpp"

namespace rs::net {

// O_NONBLOCK so that a FIFO or a device below the root cannot block the open; a regular file
// ignores it for reads on most filesystems (the ring backend handles the rest).
// O_NOCTTY so that a terminal below the root never becomes ours.
// RESOLVE_BENEATH: every step of the walk stays below the directory: "..", absolute paths and
// symlinks that leave it fail with EXDEV; /proc-style magic links fail too.
inline open_how beneath_open_how() {
  open_how how{};
  how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY;
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
  return how;
}

inline constexpr unsigned kFileStatxMask =
    STATX_TYPE | STATX_MODE | STATX_SIZE | STATX_MTIME | STATX_INO;

// 0 when the kernel may be asked to open the path, else the errno to answer with.
inline int refused_path_error(std::string_view relative_path) {
  if (relative_path.size() > FileService::kMaxPathBytes) return ENAMETOOLONG;
  if (relative_path.find('\0') != std::string_view::npos) return ENOENT;
  return 0;
}

inline FileInfo file_info_from(int fd, const struct statx& st) {
  FileInfo info;
  info.fd = fd;
  info.size = st.stx_size;
  info.mtime_s = st.stx_mtime.tv_sec;
  info.inode = st.stx_ino;
  info.regular = S_ISREG(st.stx_mode);
  info.directory = S_ISDIR(st.stx_mode);
  return info;
}

}  // namespace rs::net
