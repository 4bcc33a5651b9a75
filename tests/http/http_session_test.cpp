// The HTTP session layer in process, over raw loopback sockets: deadlines (header, idle, body,
// send), graceful closes that linger, shutdown while requests are in flight, pipelining past
// the pending cap, 100-continue, head buffers and start-up checks of the settings.
#include <gtest/gtest.h>

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>
#include <thread>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "net/http/head_buffers.hpp"
#include "net/http/request_states.hpp"
#include "tests/support/metrics_text.hpp"
#include "tests/support/resident.hpp"
#include "tests/support/server_fixture.hpp"

namespace rs::test {
namespace {

using Response = HttpResponse;
using Reader = HttpReader;

class HttpSessionTest : public ServerFixture {};

std::string delay(int ms) {
  return "GET /delay?ms=" + std::to_string(ms) + " HTTP/1.1\r\nHost: t\r\n\r\n";
}

std::string echo_head(std::size_t length, std::string_view extra = {}) {
  return "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: " + std::to_string(length) + "\r\n" +
         std::string(extra) + "\r\n";
}

// Reads until the server's side ends: 0 for a clean end (its FIN), the errno of a reset or
// other error, or ETIMEDOUT when neither came within the timeout. What was read goes to `out`.
int read_to_close(int fd, std::string* out, milliseconds timeout = milliseconds(10000)) {
  const auto deadline = Clock::now() + timeout;
  char buffer[16384];
  for (;;) {
    const ssize_t n = ::recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT);
    if (n == 0) return 0;
    if (n > 0) {
      if (out != nullptr) out->append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    if (errno != EAGAIN && errno != EINTR) return errno;
    const auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return ETIMEDOUT;
    pollfd p{fd, POLLIN, 0};
    ::poll(&p, 1, static_cast<int>(left));
  }
}

// Waits until the server has sent something (without reading it).
bool readable(int fd, milliseconds timeout = milliseconds(10000)) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, static_cast<int>(timeout.count())) == 1;
}

// --- send timeout ---

TEST_P(HttpSessionTest, SendTimeoutIgnoresAnswersStillBeingPrepared) {
  start([](http::HttpConfig& c) { c.send_timeout_ms = 100; });
  const int fd = connect();
  // The plaintext answer is ready at once but waits behind the /delay: the server's wait, not
  // a peer that stopped reading.
  ASSERT_TRUE(send_all(fd, delay(400) + kGetPlaintext));
  Reader reader(fd);
  const Response late = reader.next();
  EXPECT_EQ(late.status, 200);
  EXPECT_EQ(late.body, "400 ms\n");
  EXPECT_EQ(reader.next().body, "Hello, World!");
  EXPECT_EQ(http_counter(&http::HttpCounters::send_timeouts), 0u);
}

TEST_P(HttpSessionTest, SendTimeoutClosesAConnectionWhosePeerStopsReading) {
  start([](http::HttpConfig& c) {
    c.send_timeout_ms = 200;
    c.limits.max_body_bytes = 8 << 20;
  });
  const int fd = connect_small_window();
  // An answer of 8 MiB to a client that reads none of it: far more than the kernel buffers.
  const std::string body(8 << 20, 'x');
  const auto begin = Clock::now();
  ASSERT_TRUE(send_all(fd, echo_head(body.size()) + body));
  ASSERT_TRUE(wait_until([&] { return http_counter(&http::HttpCounters::send_timeouts) == 1; },
                         milliseconds(5000)));
  EXPECT_GE(Clock::now() - begin, milliseconds(190));
  EXPECT_TRUE(wait_until([&] { return counter("connections_open") == 0; }));
  EXPECT_TRUE(wait_closed(fd));  // what reached the kernel, then the end
  EXPECT_EQ(counter("send_errors"), 0) << "a timeout is not also a failed send";
}

// The send timeout counts from the last progress: a send that completes just after the deadline
// was set must not stretch it to twice the timeout (the ring's sends complete a turn later).
// The answer stops moving once the kernel buffers are full, a few milliseconds after the
// upload; the tolerance above the timeout leaves room for a slow, loaded machine.
TEST_P(HttpSessionTest, SendTimeoutFiresATimeoutAfterTheLastProgressNotTwice) {
  constexpr auto kTimeout = milliseconds(1000);
  start([&](http::HttpConfig& c) {
    c.send_timeout_ms = kTimeout.count();
    c.limits.max_body_bytes = 8 << 20;
  });
  const int fd = connect_small_window();
  const std::string body(8 << 20, 'x');
  ASSERT_TRUE(send_all(fd, echo_head(body.size()) + body));
  const auto uploaded = Clock::now();
  ASSERT_TRUE(wait_until([&] { return http_counter(&http::HttpCounters::send_timeouts) == 1; },
                         milliseconds(5000)));
  const auto elapsed = Clock::now() - uploaded;
  EXPECT_GE(elapsed, kTimeout - milliseconds(100));
  EXPECT_LT(elapsed, kTimeout * 17 / 10) << "the timeout ran twice (or the machine stalled)";
}

// --- body timeout, lingering closes ---

TEST_P(HttpSessionTest, BodyThatStallsGets408AfterTheBodyTimeout) {
  start([](http::HttpConfig& c) { c.body_timeout_ms = 150; });
  const int fd = connect();
  const auto begin = Clock::now();
  ASSERT_TRUE(send_all(fd, echo_head(10) + "abc"));
  Reader reader(fd);
  const Response r = reader.next(milliseconds(5000));
  EXPECT_EQ(r.status, 408);
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_GE(Clock::now() - begin, milliseconds(140));
  EXPECT_TRUE(reader.closed());
  EXPECT_EQ(http_counter(&http::HttpCounters::body_timeouts), 1u);
  EXPECT_EQ(shared_->body_memory(), 0u);
}

TEST_P(HttpSessionTest, RejectedBodyIsDrainedSoTheClientReadsTheStatus) {
  start([](http::HttpConfig& c) { c.limits.max_body_bytes = 1000; });
  const int fd = connect();
  // The client sends its body without waiting for an answer, as most clients do, and goes on
  // sending after the 413 has arrived.
  const std::string body(512 << 10, 'b');
  ASSERT_TRUE(send_all(fd, echo_head(body.size()) + body.substr(0, 64 << 10)));
  ASSERT_TRUE(readable(fd));
  EXPECT_TRUE(send_all(fd, std::string_view(body).substr(64 << 10))) << "reset while sending";
  Reader reader(fd);
  const Response r = reader.next();
  EXPECT_EQ(r.status, 413);
  EXPECT_EQ(r.header("Connection"), "close");
  std::string rest;
  EXPECT_EQ(read_to_close(fd, &rest), 0) << "a reset instead of a clean end";
  EXPECT_TRUE(rest.empty());
}

TEST_P(HttpSessionTest, ConnectionCloseLingersSoAClientStillSendingReadsTheAnswer) {
  start();
  const int fd = connect();
  // More pipelined requests follow the one that asks to close; the server answers none of
  // them, but must not reset the connection under the client's feet.
  std::string more;
  while (more.size() < (256 << 10))
    more += kGetPlaintext;
  ASSERT_TRUE(send_all(fd, echo_head(5, "Connection: close\r\n") + "hello" + more));
  ASSERT_TRUE(readable(fd));
  EXPECT_TRUE(send_all(fd, more)) << "reset while sending";
  Reader reader(fd);
  const Response r = reader.next();
  EXPECT_EQ(r.body, "hello");
  EXPECT_EQ(r.header("Connection"), "close");
  std::string rest;
  EXPECT_EQ(read_to_close(fd, &rest), 0) << "a reset instead of a clean end";
  EXPECT_TRUE(rest.empty()) << "answered past Connection: close";
}

// --- pipelining ---

TEST_P(HttpSessionTest, PipelinedRequestRightAfterABodyIsServed) {
  start();
  const int fd = connect();
  const std::string batch = echo_head(5) + "hello" + kGetPlaintext +
                            "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
                            "3\r\nabc\r\n0\r\n\r\n" +
                            kGetPlaintext;
  Reader reader(fd);
  // All in one write, then in small pieces that split heads, bodies and chunk lines.
  for (const std::size_t piece : {batch.size(), std::size_t{7}}) {
    for (std::size_t at = 0; at < batch.size(); at += piece)
      ASSERT_TRUE(send_all(fd, batch.substr(at, piece)));
    EXPECT_EQ(reader.next().body, "hello") << piece;
    EXPECT_EQ(reader.next().body, "Hello, World!") << piece;
    EXPECT_EQ(reader.next().body, "abc") << piece;
    EXPECT_EQ(reader.next().body, "Hello, World!") << piece;
  }
}

TEST_P(HttpSessionTest, PipeliningPastThePendingCapAnswersEveryRequestInOrder) {
  start([](http::HttpConfig& c) { c.max_pending_requests = 64; });
  const int fd = connect();
  // 150 requests in one write, half of them answered later (and the earlier ones later still),
  // so reading pauses at 64 pending and resumes as they drain.
  constexpr int kRequests = 150;
  std::string batch;
  std::vector<std::string> expected;
  for (int i = 0; i < kRequests; ++i) {
    if (i % 2 == 0) {
      const int ms = (kRequests - i) % 40;
      batch += delay(ms);
      expected.push_back(std::to_string(ms) + " ms\n");
    } else {
      expected.push_back(std::to_string(i));
      batch += echo_head(expected.back().size()) + expected.back();
    }
  }
  ASSERT_TRUE(send_all(fd, batch));
  Reader reader(fd);
  for (int i = 0; i < kRequests; ++i) {
    const Response r = reader.next();
    ASSERT_TRUE(r.ok) << i;
    ASSERT_EQ(r.body, expected[i]) << i;
  }
  EXPECT_GE(http_counter(&http::HttpCounters::pipeline_pauses), 1u);
}

// --- idle and header deadlines ---

TEST_P(HttpSessionTest, NewConnectionThatSendsNothingGetsTheHeaderTimeout) {
  start([](http::HttpConfig& c) {
    c.header_timeout_ms = 100;
    c.idle_timeout_ms = 30000;
  });
  const auto begin = Clock::now();
  const int fd = connect();
  std::string rest;
  EXPECT_EQ(read_to_close(fd, &rest, milliseconds(5000)), 0);
  EXPECT_TRUE(rest.empty()) << "closed silently: no request was started";
  EXPECT_GE(Clock::now() - begin, milliseconds(90));
}

TEST_P(HttpSessionTest, EmptyLinesWhileIdleDoNotStartTheHeaderDeadline) {
  start([](http::HttpConfig& c) { c.header_timeout_ms = 100; });
  const int fd = connect();
  Reader reader(fd);
  ASSERT_TRUE(send_all(fd, kGetPlaintext));
  ASSERT_EQ(reader.next().status, 200);
  // RFC 9112 2.2: empty lines before a request line are ignored; they start no request.
  ASSERT_TRUE(send_all(fd, "\r\n\r\n"));
  EXPECT_FALSE(readable(fd, milliseconds(300))) << "three header deadlines passed: no 408";
  ASSERT_TRUE(send_all(fd, std::string("\r\n") + kGetPlaintext));
  EXPECT_EQ(reader.next().status, 200);
  EXPECT_EQ(http_counter(&http::HttpCounters::header_timeouts), 0u);
}

TEST_P(HttpSessionTest, IdleDeadlineWaitsForASlowReaderOfPipelinedAnswers) {
  start([](http::HttpConfig& c) {
    c.idle_timeout_ms = 100;
    c.max_queued_output_bytes = 16 << 10;
  });
  const int fd = connect_small_window();
  // Small requests, large answers (several KiB each, some 8 MiB in all): more than the kernel
  // buffers of both sides hold, so output queues in the server and reading pauses.
  constexpr int kRequests = 1000;
  std::string batch;
  for (int i = 0; i < kRequests; ++i)
    batch += "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n";
  ASSERT_TRUE(send_all(fd, batch));
  // The client is busy for a while, reading nothing. It is owed answers: that is not idleness.
  ASSERT_TRUE(wait_until([&] { return http_counter(&http::HttpCounters::pipeline_pauses) > 0; }));
  EXPECT_FALSE(wait_until([&] { return http_counter(&http::HttpCounters::idle_timeouts) > 0; },
                          milliseconds(300)));
  Reader reader(fd);
  for (int i = 0; i < kRequests; ++i) {
    const Response r = reader.next();
    ASSERT_TRUE(r.ok) << i;
    ASSERT_EQ(r.status, 200) << i;
  }
  // Once everything has been sent the idle deadline runs again.
  EXPECT_EQ(read_to_close(fd, nullptr, milliseconds(5000)), 0);
  EXPECT_EQ(http_counter(&http::HttpCounters::idle_timeouts), 1u);
}

// --- shutdown ---

TEST_P(HttpSessionTest, ShutdownWhileABodyIsArrivingAnswersItWithConnectionClose) {
  start();
  const int fd = connect();
  const std::string head = echo_head(10);
  ASSERT_TRUE(send_all(fd, head + "hello"));
  ASSERT_TRUE(wait_until(
      [&] { return counter("bytes_in") >= static_cast<std::int64_t>(head.size() + 5); }));
  server_->server().stop();
  ASSERT_TRUE(wait_until([&] { return !accepting(); }));
  ASSERT_TRUE(send_all(fd, "world"));
  Reader reader(fd);
  const Response r = reader.next();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "helloworld");
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_TRUE(reader.closed(milliseconds(3000))) << "closed before the grace period ended";
  close_client(fd);
  EXPECT_TRUE(server_->stop_and_wait(milliseconds(10000)));
}

TEST_P(HttpSessionTest, ShutdownPutsConnectionCloseOnTheLastAnswerInRequestOrder) {
  start();
  // Two pending answers that complete in the reverse of request order.
  const int a = connect();
  const std::string to_a = delay(600) + delay(300);
  ASSERT_TRUE(send_all(a, to_a));
  // A pending answer followed by an immediate one, written before the stop.
  const int b = connect();
  const std::string to_b = delay(600) + kGetPlaintext;
  ASSERT_TRUE(send_all(b, to_b));
  ASSERT_TRUE(wait_until(
      [&] { return counter("bytes_in") >= static_cast<std::int64_t>(to_a.size() + to_b.size()); }));
  server_->server().stop();
  // Each client reads two answers, the first without Connection: close (an answer follows
  // it), then the close. b's second answer was written before the stop, so only a's second
  // can say close.
  const auto expect_two_answers_then_close = [](int fd, const char* first, const char* second,
                                                const char* second_connection) {
    Reader reader(fd);
    const Response r1 = reader.next();
    const Response r2 = reader.next();
    EXPECT_EQ(r1.body, first);
    EXPECT_EQ(r1.header("Connection"), "") << "an answer follows it";
    EXPECT_EQ(r2.body, second);
    EXPECT_EQ(r2.header("Connection"), second_connection);
    EXPECT_TRUE(reader.closed());
  };
  expect_two_answers_then_close(a, "600 ms\n", "300 ms\n", "close");
  expect_two_answers_then_close(b, "600 ms\n", "Hello, World!", "");
  close_client(a);
  close_client(b);
  EXPECT_TRUE(server_->stop_and_wait(milliseconds(10000)));
}

// --- 100-continue ---

TEST_P(HttpSessionTest, ExpectContinueGetsTheFinalStatusAtOnceWhenTheHeadDecidesIt) {
  start([](http::HttpConfig& c) { c.limits.max_body_bytes = 1000; });
  const struct {
    const char* request;
    int status;
  } cases[] = {
      {"POST /json HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 405},
      {"PUT /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n", 501},
      {"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
       413},
  };
  for (const auto& c : cases) {
    const int fd = connect();
    ASSERT_TRUE(send_all(fd, c.request));
    Reader reader(fd);
    const Response r = reader.next();
    EXPECT_EQ(r.status, c.status) << c.request;
    EXPECT_EQ(r.header("Connection"), "close") << c.request;
    EXPECT_TRUE(reader.closed()) << c.request;
  }
  EXPECT_EQ(http_counter(&http::HttpCounters::requests), 2u);
}

TEST_P(HttpSessionTest, ExpectContinueForABodyThatCannotBeBufferedGets503AtOnce) {
  start([](http::HttpConfig& c) {
    c.limits.max_body_bytes = 1000;
    c.max_body_memory_bytes = 1000;
  });
  const int holder = connect();
  ASSERT_TRUE(send_all(holder, echo_head(1000) + std::string(600, 'h')));
  ASSERT_TRUE(wait_until([&] { return shared_->body_memory() == 600; }));
  const int fd = connect();
  ASSERT_TRUE(send_all(fd, echo_head(500, "Expect: 100-continue\r\n")));
  Reader reader(fd);
  const Response r = reader.next();
  EXPECT_EQ(r.status, 503);
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_TRUE(reader.closed());
  ASSERT_TRUE(send_all(holder, std::string(400, 'h')));
  EXPECT_EQ(Reader(holder).next().body, std::string(600, 'h') + std::string(400, 'h'));
}

TEST_P(HttpSessionTest, ExpectContinueBodyDeadlineStartsWhenTheInterimAnswerIsSent) {
  start([](http::HttpConfig& c) { c.body_timeout_ms = 100; });
  const int fd = connect();
  // The 100 waits behind the /delay answer; the client waits for the 100.
  ASSERT_TRUE(send_all(fd, delay(300) + echo_head(4, "Expect: 100-continue\r\n")));
  Reader reader(fd);
  EXPECT_EQ(reader.next().body, "300 ms\n");
  EXPECT_EQ(reader.next().status, 100);
  ASSERT_TRUE(send_all(fd, "data"));
  const Response r = reader.next();
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, "data");
  ASSERT_TRUE(send_all(fd, "GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n"));
  const Response m = reader.next();
  EXPECT_EQ(metric_sum(m.body, "ringserve_http_responses_total", {{"status", "100"}}), 1) << m.body;
}

// --- head buffers ---

// States free through a whole period (what the load did not need) are destroyed and all their
// pages go back; the state the load kept using stays; a released state is taken last, made
// anew, and parses.
TEST(RequestStates, ThoseFreeForAWholePeriodGiveAllTheirPagesBack) {
  core::ChunkPool chunks(16384, 4);
  core::Gauge in_use;
  core::Gauge made;
  http::RequestStates states(http::Limits{}, chunks, in_use, made, 16);
  std::vector<http::RequestState*> taken;
  for (int i = 0; i < 8; ++i)
    taken.push_back(states.take());
  for (auto* s : taken) {
    ASSERT_GE(resident_pages(s, sizeof(http::RequestState)), 1U);
    states.give_back(s);
  }
  EXPECT_EQ(states.release_idle(100), 0U) << "the first call only starts the period";
  states.give_back(states.take());  // the load needed one during the period
  EXPECT_EQ(states.release_idle(100), 7U);
  EXPECT_EQ(made.get(), 1);
  std::size_t resident = 0;
  for (auto* s : taken)
    resident += resident_pages(s, sizeof(http::RequestState));
  EXPECT_LE(resident, 2U) << "only the state in use keeps its pages (" << sizeof(http::RequestState)
                          << " bytes each)";
  EXPECT_EQ(states.release_idle(1), 1U) << "at most `max` a call";
  for (int i = 0; i < 8; ++i)
    taken[i] = states.take();
  http::RequestState* s = taken.back();
  EXPECT_EQ(s->parser.parse_head("GET /x HTTP/1.1\r\nHost: t\r\n\r\n"),
            http::ParseStatus::kComplete);
  EXPECT_EQ(s->parser.head().path, "/x");
  EXPECT_EQ(made.get(), 8);
  for (auto* t : taken)
    states.give_back(t);
}

TEST(HeadBuffers, StartSmallAndGrowUpToTheLimitKeepingTheirBytes) {
  http::HeadBuffers buffers(32770);
  EXPECT_EQ(buffers.max_bytes(), 32770u);
  core::Chunk* b = buffers.get(10);
  EXPECT_EQ(b->capacity, http::HeadBuffers::kFirstBytes);
  std::memcpy(b->data(), "GET /", 5);
  b->end = 5;
  EXPECT_EQ(buffers.grow(b, 2000), b) << "it still fits";
  b = buffers.grow(b, 3000);
  EXPECT_EQ(b->capacity, 4096u);
  EXPECT_EQ(b->end, 5u);
  EXPECT_EQ(std::memcmp(b->data(), "GET /", 5), 0);
  b = buffers.grow(b, 100000);
  EXPECT_EQ(b->capacity, 32770u) << "never beyond the largest head";
  EXPECT_EQ(std::memcmp(b->data(), "GET /", 5), 0);
  EXPECT_EQ(buffers.grow(b, 40000), b);
  EXPECT_EQ(buffers.outstanding(), 1u);
  buffers.put(b);
  EXPECT_EQ(buffers.outstanding(), 0u);
  http::HeadBuffers tiny(100);
  core::Chunk* t = tiny.get(10);
  EXPECT_EQ(t->capacity, 100u);
  tiny.put(t);
}

TEST_P(HttpSessionTest, HeadArrivingInPiecesIsReadAcrossBufferGrowthUpToTheLimit) {
  start();
  const int fd = connect();
  Reader reader(fd);
  // Each piece waits until the server has received the one before, so that the head arrives
  // in many receives and is gathered in a head buffer that has to grow.
  const auto send_in_pieces = [&](const std::string& head) {
    const std::int64_t base = counter("bytes_in");
    for (std::size_t at = 0; at < head.size(); at += 1000) {
      const std::string piece = head.substr(at, 1000);
      if (!send_all(fd, piece)) return false;
      const auto want = base + static_cast<std::int64_t>(at + piece.size());
      if (!wait_until([&] { return counter("bytes_in") >= want; })) return false;
    }
    return true;
  };
  ASSERT_TRUE(send_in_pieces(
      "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(12000, 'p') + "\r\n\r\n"));
  const Response ok = reader.next();
  EXPECT_EQ(ok.status, 200);
  EXPECT_EQ(ok.body, "Hello, World!");
  ASSERT_TRUE(send_in_pieces(
      "GET /plaintext HTTP/1.1\r\nHost: t\r\nX-Pad: " + std::string(20000, 'p') + "\r\n\r\n"));
  EXPECT_EQ(reader.next().status, 431);
}

// A burst of requests read at once takes a request state each (8 KB); once it has passed, the
// states the next seconds do not need are destroyed and their pages given back, so the pool
// comes back to what the steady load uses. A worker of the threads backend keeps its one
// state until the worker is reaped (--thread-idle-timeout-ms).
TEST_P(HttpSessionTest, RequestStatesOfABurstGoBackOnceItHasPassed) {
  if (GetParam().backend == net::Backend::kThreads) {
    GTEST_SKIP() << "a worker keeps its one request state for its life";
  }
  start();
  constexpr std::int64_t kClients = 40;
  std::vector<int> clients;
  for (int i = 0; i < kClients; ++i) {
    clients.push_back(connect());
    ASSERT_TRUE(send_all(clients.back(), "GET /plaintext HTTP/1.1\r\nHost: t\r\n"));
  }
  const auto made = [&] { return http_gauge(&http::HttpCounters::request_states_made); };
  ASSERT_TRUE(wait_until([&] {
    return http_gauge(&http::HttpCounters::request_states_in_use) == kClients;
  })) << "each half-sent head holds a state";
  EXPECT_GE(made(), kClients);
  for (int fd : clients)
    close_client(fd);
  ASSERT_TRUE(expect_pools_returned());
  // One client goes on: a steady load of one request at a time keeps a state (or two).
  const int fd = connect();
  Reader reader(fd);
  const bool released = wait_until(
      [&] {
        if (!send_all(fd, kGetPlaintext) || reader.next(milliseconds(5000)).status != 200) {
          return false;
        }
        return made() <= 2;
      },
      milliseconds(10000));
  EXPECT_TRUE(released) << made() << " request states still made, " << kClients << " at the peak";
}

// --- settings ---

TEST(HttpConfigCheck, ZeroTimeoutsAndLimitsAreRefusedNamingTheFlag) {
  const struct {
    const char* flag;
    void (*zero)(http::HttpConfig&);
  } cases[] = {
      {"--header-timeout-ms", [](http::HttpConfig& c) { c.header_timeout_ms = 0; }},
      {"--idle-timeout-ms", [](http::HttpConfig& c) { c.idle_timeout_ms = 0; }},
      {"--body-timeout-ms", [](http::HttpConfig& c) { c.body_timeout_ms = 0; }},
      {"--send-timeout-ms", [](http::HttpConfig& c) { c.send_timeout_ms = 0; }},
      {"--max-request-line-bytes",
       [](http::HttpConfig& c) { c.limits.max_request_line_bytes = 0; }},
      {"--max-header-bytes", [](http::HttpConfig& c) { c.limits.max_header_bytes = 0; }},
      {"--max-body-bytes", [](http::HttpConfig& c) { c.limits.max_body_bytes = 0; }},
      {"--max-pending-requests", [](http::HttpConfig& c) { c.max_pending_requests = 0; }},
      {"--max-queued-output-bytes", [](http::HttpConfig& c) { c.max_queued_output_bytes = 0; }},
  };
  EXPECT_NO_THROW(http::check_config(http::HttpConfig{}));
  for (const auto& c : cases) {
    http::HttpConfig config;
    c.zero(config);
    try {
      http::HttpShared shared(config);
      ADD_FAILURE() << c.flag << " 0 was accepted";
    } catch (const std::runtime_error& e) {
      const std::string message = e.what();
      EXPECT_TRUE(message.starts_with(std::string(c.flag) + " 0:")) << message;
      EXPECT_NE(message.find("give a positive number"), std::string::npos) << message;
    }
  }
  http::HttpConfig small_memory;
  small_memory.max_body_memory_bytes = small_memory.limits.max_body_bytes - 1;
  try {
    http::check_config(small_memory);
    ADD_FAILURE() << "a body memory budget below the largest body was accepted";
  } catch (const std::runtime_error& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("raise --max-body-memory-bytes to at least 1048576"), std::string::npos)
        << message;
  }
}

// Timers armed because of input count from the input's arrival, however long the loop (or a
// worker thread, blocked in recv) waited before it: an idle keep-alive connection and then a
// head in two pieces is served, not timed out, and a /delay takes at least its delay.
TEST_P(HttpSessionTest, TimersArmedByInputCountFromItsArrival) {
  start([](http::HttpConfig& c) { c.header_timeout_ms = 200; });
  const int fd = connect();
  Reader reader(fd);
  ASSERT_TRUE(send_all(fd, kGetPlaintext));
  ASSERT_EQ(reader.next(milliseconds(5000)).status, 200);
  // Idle for longer than the header timeout: the stimulus, not a wait for the server.
  std::this_thread::sleep_for(milliseconds(300));
  ASSERT_TRUE(send_all(fd, "GET /plaintext HTTP/1.1\r\n"));
  std::this_thread::sleep_for(milliseconds(50));
  ASSERT_TRUE(send_all(fd, "Host: t\r\n\r\n"));
  EXPECT_EQ(reader.next(milliseconds(5000)).status, 200);
  std::this_thread::sleep_for(milliseconds(300));
  const auto begin = Clock::now();
  ASSERT_TRUE(send_all(fd, "GET /delay?ms=150 HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(reader.next(milliseconds(5000)).status, 200);
  EXPECT_GE(Clock::now() - begin, milliseconds(150));
}

// The readiness loop's cost per keep-alive request: one epoll_wait, one recv, one sendmsg.
// A loop that needed a second turn per response (an epoll_wait(0)) shows up here as two.
class EpollHttpTest : public ServerFixture {};

TEST_P(EpollHttpTest, OneLoopTurnPerKeepAliveRequest) {
  start();
  const int fd = connect();
  Reader reader(fd);
  ASSERT_TRUE(send_all(fd, kGetPlaintext));
  ASSERT_EQ(reader.next(milliseconds(5000)).status, 200);
  constexpr int kRequests = 300;
  const std::int64_t turns_before = counter("wait_calls");
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_TRUE(send_all(fd, kGetPlaintext));
    ASSERT_EQ(reader.next(milliseconds(5000)).status, 200);
  }
  const std::int64_t turns = counter("wait_calls") - turns_before;
  EXPECT_GE(turns, kRequests);
  EXPECT_LE(turns, kRequests + kRequests / 10) << "epoll_wait calls for " << kRequests;
}

// --uring-send-zc: an answer sent zero-copy to a peer that stops reading is cut by the send
// timeout. The kernel still holds pages of it (unsent in the socket), and their notifications
// would come only when the peer takes the data: the cut resets the connection instead, so it
// and its chunks are freed at once, and the loop goes on serving.
class UringHttpTest : public ServerFixture {};

TEST_P(UringHttpTest, ZeroCopyAnswerToAPeerThatStopsReadingIsResetAndFreed) {
  start(
      [](http::HttpConfig& c) {
        c.send_timeout_ms = 200;
        c.limits.max_body_bytes = 8 << 20;
      },
      [](net::ServerConfig& s) {
        s.threads = 1;  // the second client must meet the same loop
        s.ring.send_zc_min_bytes = 4096;
      });
  if (!server_->in_force("send zc >= 4096 B")) {
    GTEST_SKIP() << "no zero-copy sends with usage reports (Linux 6.2+): "
                 << server_->server().setup_mode();
  }
  const int fd = connect_small_window();
  const std::string body(8 << 20, 'x');
  ASSERT_TRUE(send_all(fd, echo_head(body.size()) + body));
  ASSERT_TRUE(wait_until([&] { return http_counter(&http::HttpCounters::send_timeouts) == 1; },
                         milliseconds(5000)));
  EXPECT_GT(counter("send_zc"), 0);
  expect_pools_returned();
  EXPECT_EQ(read_to_close(fd, nullptr), ECONNRESET);
  const int other = connect();
  ASSERT_TRUE(send_all(other, echo_head(100000) + std::string(100000, 'y')));
  Reader reader(other);
  const Response answer = reader.next();
  EXPECT_EQ(answer.status, 200);
  EXPECT_EQ(answer.body, std::string(100000, 'y'));
}

INSTANTIATE_TEST_SUITE_P(Backends, HttpSessionTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

INSTANTIATE_TEST_SUITE_P(Uring, UringHttpTest,
                         ::testing::ValuesIn(backends_of(net::Backend::kUring)),
                         [](const auto& info) { return backend_name(info.param); });
INSTANTIATE_TEST_SUITE_P(Epoll, EpollHttpTest,
                         ::testing::ValuesIn(backends_of(net::Backend::kEpoll)),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
