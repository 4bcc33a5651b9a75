// The ring backend's knobs, from the command line (--uring-*) through ServerConfig. Plain data:
// no liburing here, so the server's configuration does not pull in the ring.
#pragma once

#include <cstdint>

namespace rs::net::uring {

struct RingOptions {
  unsigned sq_entries = 1024;
  // Multishot receive posts many CQEs per SQE, so the CQ is much deeper than the SQ.
  unsigned cq_entries = 16384;
  // Try SINGLE_ISSUER|DEFER_TASKRUN first (off: start from COOP_TASKRUN), for measuring.
  bool defer_taskrun = true;
  // Batched waiting (IORING_FEAT_MIN_TIMEOUT, Linux 6.12+): a wait returns once wait_batch
  // completions are there, or after wait_min_usec with whatever has come (at least one).
  // Fewer, fuller loop turns under load, at up to wait_min_usec of added latency; an idle
  // loop still sleeps until its next timer. wait_batch 1 or wait_min_usec 0: off.
  unsigned wait_batch = 1;
  unsigned wait_min_usec = 0;
  // Direct descriptors: a registered file table of this many slots; each connection's socket
  // is installed in a free one at accept, so its sends and receives skip the per-operation file
  // lookup and reference count. Connections beyond the table use the plain descriptor. 0: off.
  unsigned fixed_files = 0;
  // Receive bundles (Linux 6.10+): one receive completion may fill several provided buffers.
  // Off where the buffer ring is incremental (Ring::refuse_recv_bundle_beside_incremental).
  bool recv_bundle = false;
  // Incremental buffer consumption (Linux 6.12+): receives fill a provided buffer a piece at a
  // time instead of taking a whole one each.
  bool incremental_buffers = false;
  // The loop's output chunk pool registered with the ring as fixed buffers, slab by slab
  // (net/uring/registered_buffers.hpp): file reads go as READ_FIXED, zero-copy sends name the
  // buffer. The registered memory is pinned (RLIMIT_MEMLOCK) and never given back.
  bool registered_buffers = false;
  // Sends of at least this many bytes go as SEND_ZC / SENDMSG_ZC (the kernel sends from our
  // pages and says when it is done with them). 0: off.
  unsigned send_zc_min_bytes = 0;
  // A connection closed while the kernel still holds its zero-copy pages (sent, not yet acked)
  // keeps its socket open this long for the notifications, then resets it: a plain close would
  // leave the pages, and the connection's place, to an orphaned socket for as long as TCP
  // keeps trying a peer that does not read. A stop's grace period ends the wait too.
  std::uint64_t send_zc_close_wait_ms = 30000;
};

}  // namespace rs::net::uring
