// The process side of a load generator: how SIGINT/SIGTERM stop it gracefully, and a
// descriptor limit large enough for its connections.
#pragma once

#include <atomic>

namespace rs::perf {

// The first SIGINT or SIGTERM sets the returned flag (the run stops issuing and lets what is in
// flight come back, so its report still adds up); a second one ends the process the usual way.
// SIGPIPE is ignored: a peer's close shows as a send error, not a signal.
const std::atomic<bool>& install_stop_signals();

// Every connection is a descriptor: raise the soft limit toward the hard one when it is short,
// so 10,000 connections work where the shell's default soft limit is 1024.
void raise_fd_limit(unsigned connections);

}  // namespace rs::perf
