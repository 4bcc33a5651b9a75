// The echo load itself: one io_uring on the calling thread drives every connection. Each
// connection keeps `depth` fixed-size messages in flight, checks every echoed byte and times
// each message from the loop turn that issued it to the turn that saw its last byte.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>

#include "perf/latency_histogram.hpp"

namespace rs::perf {

struct LoadConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 9000;
  unsigned connections = 64;
  double connect_rate = 10000;  // connections opened per second; 0 opens them all at once
  std::uint32_t size = 128;     // bytes per message
  unsigned depth = 1;           // messages in flight per connection
  double duration_s = 10;       // how long messages are issued after warm-up (when count == 0)
  std::uint64_t count = 0;      // messages issued after warm-up; 0 runs for duration_s instead
  double warmup_s = 0;          // messages issued before this are echoed and checked, not counted
  double timeout_s = 10;        // a connect or message outstanding this long is an error
  const std::atomic<bool>* stop = nullptr;  // set (from a signal handler) to stop issuing
};

struct LoadErrors {
  std::uint64_t connect = 0;   // connect failed or timed out (one per connection)
  std::uint64_t reset = 0;     // EOF, reset or another receive/send error with messages pending
  std::uint64_t mismatch = 0;  // an echoed byte differed from the one sent, or extra bytes came
  std::uint64_t timeout = 0;   // a message waited longer than timeout_s for its echo
  std::uint64_t total() const { return connect + reset + mismatch + timeout; }
};

struct LoadResult {
  std::uint64_t messages = 0;        // measured: issued after warm-up, echoed back whole
  std::uint64_t total_messages = 0;  // every message echoed back whole, warm-up included
  double elapsed_s = 0;              // warm-up end to the last measured echo
  unsigned connected = 0;            // connections that were established
  LoadErrors errors;
  std::string first_error;  // what went wrong first, for the human summary
  std::string ring_mode;    // the io_uring setup flags the kernel accepted
  LatencyHistogram latency;
};

// Runs the load to completion. Throws std::runtime_error when it cannot start (the address
// does not resolve, io_uring is unavailable); failures of the traffic itself are counted.
LoadResult run_echo_load(const LoadConfig& config);

}  // namespace rs::perf
