// How many of the whole pages inside [at, at + bytes) are resident, asked of the kernel
// (mincore): what a test of memory given back (madvise MADV_DONTNEED) checks.
#pragma once

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace rs::test {

inline std::size_t resident_pages(const void* at, std::size_t bytes) {
  const auto page = static_cast<std::uintptr_t>(::sysconf(_SC_PAGESIZE));
  const auto from = reinterpret_cast<std::uintptr_t>(at);
  const std::uintptr_t first = (from + page - 1) / page * page;
  const std::uintptr_t last = (from + bytes) / page * page;
  if (first >= last) return 0;
  std::vector<unsigned char> in_core((last - first) / page);
  if (::mincore(static_cast<unsigned char*>(const_cast<void*>(at)) + (first - from), last - first,
                in_core.data()) != 0) {
    ADD_FAILURE() << "mincore: " << std::strerror(errno);
    return in_core.size();  // as if resident: a check that memory went back fails
  }
  return static_cast<std::size_t>(
      std::count_if(in_core.begin(), in_core.end(), [](unsigned char v) { return (v & 1) != 0; }));
}

}  // namespace rs::test
