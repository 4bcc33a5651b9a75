// The HTTP load itself: one io_uring on the calling thread drives every keep-alive connection.
// Open loop (rate > 0): each request has an intended send time from the schedule and its
// latency runs from that time to the last byte of its response, so time spent waiting for a
// free connection (the client-side backlog) or in the server's queue is in the latency, not
// hidden by it (coordinated omission, corrected as wrk2 does). Closed loop (rate 0): every
// connection keeps `depth` requests in flight and latency runs from the send.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "perf/latency_histogram.hpp"
#include "perf/request_schedule.hpp"

namespace rs::perf {

struct HttpLoadConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 0;
  std::string path = "/plaintext";
  std::vector<std::string> headers;  // "Name: value", sent with every request
  double rate = 1000;                // requests per second overall; 0 runs closed loop
  ScheduleKind schedule = ScheduleKind::kUniform;
  std::uint64_t seed = 1;
  double duration_s = 10;  // measured load after the warm-up
  double warmup_s = 1;     // load at the same rate before, answered and counted, not measured
  unsigned connections = 16;
  unsigned depth = 1;       // requests outstanding per connection at most (pipelining)
  std::uint64_t churn = 0;  // requests per connection before it is replaced; 0 keeps it
  double timeout_s = 10;    // a connect or a response outstanding this long is an error
  const std::atomic<bool>* stop = nullptr;  // set (from a signal handler) to stop issuing
};

// Each counts events (one per connection that failed), not the requests they cost: those are
// in HttpLoadResult::lost.
struct HttpLoadErrors {
  std::uint64_t connect = 0;  // connect failed or timed out (the connection is not replaced)
  std::uint64_t reset = 0;    // reset, send/receive error, or a close with requests outstanding
  std::uint64_t timeout = 0;  // a response outstanding longer than timeout_s
  std::uint64_t bad_response = 0;  // malformed, or a response to no request
  // The run ended early: operations owed a completion (shut down or cancelled after a
  // timeout) brought none back for 2 x timeout_s + 1 s. Once per run at most.
  std::uint64_t stalled = 0;
  std::uint64_t total() const { return connect + reset + timeout + bad_response + stalled; }
};

struct HttpLoadResult {
  std::uint64_t requests = 0;         // measured: intended within the window, answered
  std::uint64_t responses_total = 0;  // every complete response, warm-up included
  std::uint64_t sent = 0;             // requests written, warm-up included
  std::uint64_t lost = 0;             // sent, never answered (their connection failed)
  // Due in the window but never sent: still in the backlog timeout_s after it (or at an
  // interrupt). The measured ones are in `latency` at stop time - intended time, a lower bound.
  std::uint64_t unsent = 0;
  std::uint64_t non_2xx = 0;
  std::uint64_t connections_opened = 0;
  std::uint64_t backlog_max = 0;  // most requests due at once with no connection free to send
  std::uint64_t late_sends = 0;   // measured requests sent more than 1 ms after their time
  // Those of them late through the generator's own delay, not the server's (due while their
  // connection had room, or while the loop slept past their time); an estimate.
  std::uint64_t client_late_sends = 0;
  double client_cpu_busy = 0;  // this thread's CPU time over the run's wall time (1: no slack)
  double elapsed_s = 0;        // warm-up end to the last measured response (drain included)
  HttpLoadErrors errors;
  std::string first_error;   // what went wrong first, for the human summary
  std::string ring_mode;     // the io_uring setup flags the kernel accepted
  LatencyHistogram latency;  // of the measured requests (answered or unsent), in nanoseconds
};

// The request bytes, built once: GET path HTTP/1.1, Host (unless a header gives one), the
// headers, and Connection: close when `close` is set. Throws std::invalid_argument naming the
// flag when --path or a --header cannot go into a request as given.
std::string build_request(const HttpLoadConfig& config, bool close);

// Runs the load to completion. Throws std::runtime_error when it cannot start (the address
// does not resolve, io_uring is unavailable); failures of the traffic itself are counted.
HttpLoadResult run_http_load(const HttpLoadConfig& config);

}  // namespace rs::perf
