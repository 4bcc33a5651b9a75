// The process side of a load generator: how SIGINT/SIGTERM stop it gracefully, and a
// descriptor limit large enough for its connections.
#pragma once

#include <atomic>
#include <cstdio>
#include <exception>
#include <optional>

namespace rs::perf {

// The first SIGINT or SIGTERM sets the returned flag (the run stops issuing and lets what is in
// flight come back, so its report still adds up); a second one ends the process the usual way.
// SIGPIPE is ignored: a peer's close shows as a send error, not a signal.
const std::atomic<bool>& install_stop_signals();

// Every connection is a descriptor: raise the soft limit toward the hard one when it is short,
// so 10,000 connections work where the shell's default soft limit is 1024.
void raise_fd_limit(unsigned connections);

// A load tool's run, as both mains start it: the stop signals wired to config.stop, the
// descriptor limit raised for config.connections, then run(config). Its result, or nothing
// when it could not start (the address did not resolve, io_uring refused...), after saying why
// on stderr as "TOOL: what".
template <typename Config, typename Result>
std::optional<Result> start_load(const char* tool, Config& config, Result (*run)(const Config&)) {
  config.stop = &install_stop_signals();
  raise_fd_limit(config.connections);
  try {
    return run(config);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return std::nullopt;
  }
}

}  // namespace rs::perf
