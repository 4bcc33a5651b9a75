// What the process uses, read from /proc/self at the moment of asking (the process_* families of
// GET /metrics). Reads files and allocates: for a scrape, never for the request path.
#pragma once

#include <cstdint>

namespace rs::core {

struct ProcessStats {
  double cpu_seconds = 0;  // user and system time
  std::uint64_t resident_bytes = 0;
  std::uint64_t virtual_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  std::uint64_t open_fds = 0;
  std::uint64_t max_fds = 0;  // the soft RLIMIT_NOFILE
};

// Fields that cannot be read stay 0.
ProcessStats read_process_stats();

}  // namespace rs::core
