#include "core/process_stats.hpp"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace rs::core {

namespace {

std::string read_text(const char* path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// The fields of /proc/self/stat after the command name, which is in parentheses and may hold
// spaces: [0] is field 3 (state) of proc(5).
std::vector<std::string> stat_fields() {
  const std::string text = read_text("/proc/self/stat");
  const std::size_t close = text.rfind(')');
  std::vector<std::string> fields;
  if (close == std::string::npos) return fields;
  std::istringstream rest(text.substr(close + 1));
  for (std::string field; rest >> field;)
    fields.push_back(field);
  return fields;
}

// "btime" of /proc/stat: when the system booted, in seconds since the epoch.
std::uint64_t boot_time_s() {
  std::istringstream lines(read_text("/proc/stat"));
  for (std::string line; std::getline(lines, line);) {
    if (line.rfind("btime ", 0) == 0) return std::strtoull(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

std::uint64_t count_open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (dir == nullptr) return 0;
  std::uint64_t n = 0;
  while (const dirent* entry = ::readdir(dir)) {
    // Not ".", "..", nor the descriptor this listing holds itself.
    if (entry->d_name[0] == '.') continue;
    if (std::atoi(entry->d_name) == ::dirfd(dir)) continue;
    ++n;
  }
  ::closedir(dir);
  return n;
}

}  // namespace

ProcessStats read_process_stats() {
  ProcessStats stats;
  const std::vector<std::string> f = stat_fields();
  // proc(5) numbers fields from 1: utime 14, stime 15, starttime 22, vsize 23, rss 24.
  constexpr std::size_t kUtime = 14 - 3, kStime = 15 - 3, kStart = 22 - 3, kVsize = 23 - 3,
                        kRss = 24 - 3;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  if (f.size() > kRss && ticks > 0 && page > 0) {
    const auto number = [&](std::size_t i) { return std::strtoull(f[i].c_str(), nullptr, 10); };
    stats.cpu_seconds =
        static_cast<double>(number(kUtime) + number(kStime)) / static_cast<double>(ticks);
    stats.start_time_seconds = static_cast<double>(boot_time_s()) +
                               static_cast<double>(number(kStart)) / static_cast<double>(ticks);
    stats.virtual_bytes = number(kVsize);
    stats.resident_bytes = number(kRss) * static_cast<std::uint64_t>(page);
  }
  stats.open_fds = count_open_fds();
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) stats.max_fds = limit.rlim_cur;
  return stats;
}

}  // namespace rs::core
