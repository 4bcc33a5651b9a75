// What the kernel lists of a ring's registered buffers in /proc/self/fdinfo/<ring fd>: the size
// of its buffer table ("UserBufs:", every slot of a sparse table, empty or not) and, for each
// slot holding a buffer, its address and length ("    3: 0x7f.../1052672"; "<none>" for an
// empty slot).
#pragma once

#include <dirent.h>
#include <unistd.h>

#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

namespace rs::test {

struct RingBuffers {
  struct Buffer {
    unsigned slot;
    std::uintptr_t address;
    std::size_t length;
  };
  unsigned table = 0;  // the UserBufs: line
  std::vector<Buffer> registered;
};

// Null when the file cannot be read or has no UserBufs: line.
inline std::optional<RingBuffers> ring_buffers(int ring_fd) {
  std::ifstream in("/proc/self/fdinfo/" + std::to_string(ring_fd));
  std::string line;
  std::optional<RingBuffers> out;
  while (std::getline(in, line)) {
    if (!out) {
      if (line.rfind("UserBufs:", 0) == 0) {
        out.emplace();
        out->table = static_cast<unsigned>(std::strtoul(line.c_str() + 9, nullptr, 10));
      }
      continue;
    }
    // The table's lines follow, indented; the next section is not.
    if (line.empty() || line[0] != ' ') break;
    std::istringstream fields(line);
    RingBuffers::Buffer buffer{};
    char colon = 0;
    std::string rest;
    if (!(fields >> buffer.slot >> colon >> rest) || rest.rfind("0x", 0) != 0) continue;
    const std::size_t slash = rest.find('/');
    if (slash == std::string::npos) continue;
    buffer.address = std::strtoull(rest.substr(2, slash - 2).c_str(), nullptr, 16);
    buffer.length = std::strtoull(rest.c_str() + slash + 1, nullptr, 10);
    // Kernels up to about 6.12 list an empty slot of a sparse table too, as the dummy buffer
    // (0xffffffffffffffff/1): not a registered one.
    if (buffer.length <= 1) continue;
    out->registered.push_back(buffer);
  }
  return out;
}

// The io_uring instances this process holds open (the descriptors whose link names one).
inline std::vector<int> ring_fds() {
  std::vector<int> out;
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return out;
  while (const dirent* entry = ::readdir(dir)) {
    const std::string path = std::string("/proc/self/fd/") + entry->d_name;
    char target[PATH_MAX];
    const ssize_t n = ::readlink(path.c_str(), target, sizeof(target) - 1);
    if (n > 0 && std::string(target, static_cast<std::size_t>(n)) == "anon_inode:[io_uring]") {
      out.push_back(std::atoi(entry->d_name));
    }
  }
  ::closedir(dir);
  return out;
}

}  // namespace rs::test
