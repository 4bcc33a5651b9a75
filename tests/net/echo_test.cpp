// The echo server over real loopback sockets, on every backend the fixture knows.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/net_client.hpp"
#include "tests/support/server_fixture.hpp"

namespace rs::test {
namespace {

class EchoTest : public ServerFixture {};

std::vector<EchoJob> make_jobs(std::uint16_t port, std::size_t clients, std::size_t bytes) {
  std::vector<EchoJob> jobs(clients);
  for (std::size_t i = 0; i < clients; ++i) {
    jobs[i].fd = connect_to(port);
    jobs[i].payload = pattern(bytes, static_cast<std::uint32_t>(i));
  }
  return jobs;
}

void close_jobs(std::vector<EchoJob>& jobs) {
  for (auto& job : jobs)
    ::close(job.fd);
}

TEST_P(EchoTest, OneClientGetsItsBytesBack) {
  start_echo();
  const int c = connect();
  ASSERT_GE(c, 0);
  ASSERT_TRUE(send_all(c, "hello, ring"));
  EXPECT_EQ(recv_string(c, 11), "hello, ring");
  EXPECT_TRUE(wait_until([&] { return counter("bytes_out") == 11; }));
}

TEST_P(EchoTest, FiveHundredConcurrentClientsEachGetTheirOwnBytes) {
  start_echo();
  auto jobs = make_jobs(port(), 500, 4000);
  for (auto& job : jobs)
    ASSERT_GE(job.fd, 0);
  EXPECT_TRUE(run_echo_jobs(jobs, 333));
  close_jobs(jobs);
  expect_pools_returned();
  EXPECT_EQ(counter("accepted"), 500);
  EXPECT_EQ(counter("bytes_in"), 500 * 4000);
  EXPECT_EQ(counter("bytes_out"), 500 * 4000);
}

TEST_P(EchoTest, MessagesFromOneByteToOneMebibyteInOddFragments) {
  start_echo();
  const std::size_t sizes[] = {1, 2, 7, 4095, 4097, 65537, 1 << 20};
  const std::size_t fragments[] = {1, 3, 17, 1021, 65521};
  for (std::size_t size : sizes) {
    for (std::size_t fragment : fragments) {
      if (fragment == 1 && size > 65537) continue;  // a million one-byte sends adds nothing
      std::vector<EchoJob> jobs = make_jobs(port(), 1, size);
      EXPECT_TRUE(run_echo_jobs(jobs, fragment)) << "size " << size << " fragment " << fragment;
      close_jobs(jobs);
    }
  }
}

TEST_P(EchoTest, HalfClosedClientGetsEverythingThenEof) {
  start_echo();
  const int c = connect();
  const auto payload = pattern(200000, 7);
  ASSERT_TRUE(send_all(c, payload));
  ASSERT_EQ(::shutdown(c, SHUT_WR), 0);
  std::vector<std::byte> back(payload.size());
  ASSERT_TRUE(recv_exact(c, back));
  EXPECT_EQ(back, payload);
  EXPECT_TRUE(wait_closed(c));
  expect_pools_returned();
}

TEST_P(EchoTest, ClientResetWhileServerSendsLeavesOthersServed) {
  start_echo();
  {
    const int c = connect();
    // Send far more than the socket buffers hold without reading, so the server is blocked
    // sending when the reset arrives.
    set_nonblocking(c);
    const auto chunk = pattern(1 << 16, 1);
    std::size_t sent = 0;
    while (sent < (8u << 20)) {
      const ssize_t n = ::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<std::size_t>(n);
    }
    ASSERT_TRUE(wait_until([&] { return counter("bytes_out") > 0; }));
    linger reset{1, 0};
    ::setsockopt(c, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    close_client(c);  // with linger 0: RST
  }
  expect_pools_returned();
  EXPECT_GE(counter("send_errors") + counter("recv_errors"), 1);
  auto jobs = make_jobs(port(), 3, 10000);
  EXPECT_TRUE(run_echo_jobs(jobs, 1000));
  close_jobs(jobs);
}

TEST_P(EchoTest, ClientThatStopsReadingPausesReceiveAndLosesNothing) {
  start_echo();
  const int c = connect();
  set_nonblocking(c);
  const std::size_t total = 32u << 20;
  const auto payload = pattern(total, 3);
  // Write until the server stops taking bytes: its output passed the high-water mark and it
  // stopped receiving, so the socket buffers fill up.
  std::size_t sent = 0;
  ASSERT_TRUE(wait_until(
      [&] {
        const ssize_t n = ::send(c, payload.data() + sent,
                                 std::min<std::size_t>(65536, total - sent), MSG_NOSIGNAL);
        if (n > 0) sent += static_cast<std::size_t>(n);
        return counter("input_pauses") > 0 && n < 0;
      },
      std::chrono::milliseconds(20000)));
  ASSERT_LT(sent, total);
  // Memory stays bounded: the queued output is the high-water mark plus at most what the
  // buffer ring could deliver in the turn that crossed it, not what the client sent.
  const net::ServerConfig defaults;
  const std::int64_t chunk_bytes = 16384;
  const std::int64_t bound =
      static_cast<std::int64_t>(defaults.loop.limits.output_high_water_bytes) +
      static_cast<std::int64_t>(defaults.loop.buffer_count) * defaults.loop.buffer_size;
  EXPECT_LE(counter("pool_chunks") * chunk_bytes, bound);
  EXPECT_LT(bound, static_cast<std::int64_t>(total / 2));
  // Now read everything, sending the rest meanwhile: nothing lost, nothing reordered.
  std::vector<EchoJob> jobs(1);
  jobs[0].fd = c;
  jobs[0].payload = payload;
  jobs[0].sent = sent;
  EXPECT_TRUE(run_echo_jobs(jobs, 65536));
  // A worker thread stops reading by blocking in send: it has no receive to re-arm.
  if (GetParam().backend != net::Backend::kThreads) {
    EXPECT_GE(counter("recv_rearms"), 1);
  }
}

TEST_P(EchoTest, MaxConnectionsMakesTheNextClientWaitItsTurn) {
  start_echo([](net::ServerConfig& config) { config.max_connections = 2; });
  const int a = connect();
  const int b = connect();
  ASSERT_TRUE(send_all(a, "a"));
  ASSERT_TRUE(send_all(b, "b"));
  EXPECT_EQ(recv_string(a, 1), "a");
  EXPECT_EQ(recv_string(b, 1), "b");
  ASSERT_TRUE(wait_until([&] { return counter("accept_pauses") >= 1; }));
  // The third client completes its handshake in the backlog and is served once a place frees.
  const int c = connect();
  ASSERT_GE(c, 0);
  ASSERT_TRUE(send_all(c, "c"));
  close_client(a);
  EXPECT_EQ(recv_string(c, 1), "c");
  // Each loop counts its own peak, so only one loop's peak is the process's.
  if (GetParam().loops == 1) {
    EXPECT_EQ(counter("connections_peak"), 2);
  }
  EXPECT_EQ(counter("rejected_over_cap"), 0);
}

TEST_P(EchoTest, StopWithClientsConnectedClosesThemAndReturns) {
  start_echo();
  std::vector<int> clients;
  for (int i = 0; i < 20; ++i) {
    clients.push_back(connect());
    ASSERT_TRUE(send_all(clients.back(), "x"));
    ASSERT_EQ(recv_string(clients.back(), 1), "x");
  }
  EXPECT_TRUE(server_->stop_and_wait(std::chrono::milliseconds(10000)));
  for (int c : clients)
    EXPECT_TRUE(wait_closed(c));
  EXPECT_EQ(counter("closed"), 20);
  expect_pools_returned();
}

TEST_P(EchoTest, StopLetsQueuedOutputDrainBeforeClosing) {
  start_echo();
  const int c = connect();
  // Below the high-water mark, so the server takes every byte in while the client reads none.
  const auto payload = pattern(512u << 10, 9);
  ASSERT_TRUE(send_all(c, payload));
  ASSERT_TRUE(
      wait_until([&] { return counter("bytes_in") == static_cast<std::int64_t>(payload.size()); }));
  server_->server().stop();
  // Everything the server took in still comes back before it closes.
  std::vector<std::byte> back(payload.size());
  ASSERT_TRUE(recv_exact(c, back));
  EXPECT_EQ(back, payload);
  EXPECT_TRUE(wait_closed(c));
  EXPECT_TRUE(server_->stop_and_wait(std::chrono::milliseconds(10000)));
}

TEST_P(EchoTest, StopWhileTheClientKeepsSendingStillDeliversEverythingTaken) {
  start_echo();
  const int c = connect();
  const auto payload = pattern(256u << 10, 11);
  ASSERT_TRUE(send_all(c, payload));
  ASSERT_TRUE(
      wait_until([&] { return counter("bytes_in") == static_cast<std::int64_t>(payload.size()); }));
  server_->server().stop();
  // Bytes sent after the stop are never answered; they must not turn the close into a reset
  // that destroys the answers still queued in the kernel.
  const auto extra = pattern(64u << 10, 12);
  send_all(c, extra, std::chrono::milliseconds(2000));
  std::vector<std::byte> back(payload.size());
  ASSERT_TRUE(recv_exact(c, back));
  EXPECT_EQ(back, payload);
  EXPECT_TRUE(server_->stop_and_wait(std::chrono::milliseconds(10000)));
}

TEST_P(EchoTest, GraceExpiryCutsAClientThatNeverReads) {
  start_echo([](net::ServerConfig& config) { config.loop.grace_ms = 200; });
  const int c = connect();
  set_nonblocking(c);
  const auto chunk = pattern(1 << 16, 13);
  ASSERT_TRUE(wait_until([&] {
    ::send(c, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    return counter("input_pauses") > 0;
  }));
  const auto begin = Clock::now();
  EXPECT_TRUE(server_->stop_and_wait(std::chrono::milliseconds(10000)));
  EXPECT_GE(Clock::now() - begin, std::chrono::milliseconds(190));
  expect_pools_returned();
}

// The ring's provided buffers and multishot receive: behaviour only the uring backend has.
class UringEchoTest : public EchoTest {};

TEST_P(UringEchoTest, TinyBufferRingRunsDryAndStaysCorrect) {
  start_echo([](net::ServerConfig& config) {
    config.loop.buffer_count = 2;
    config.loop.buffer_size = 64;
  });
  auto jobs = make_jobs(port(), 50, 20000);
  EXPECT_TRUE(run_echo_jobs(jobs, 4096));
  close_jobs(jobs);
  EXPECT_GT(counter("enobufs"), 0);
  expect_pools_returned();
}

TEST_P(UringEchoTest, MultishotReceiveNeedsFarFewerSqesThanMessages) {
  start_echo();
  const int c = connect();
  const std::string message(100, 'm');
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(send_all(c, message));
    ASSERT_EQ(recv_string(c, message.size()), message);
  }
  EXPECT_GE(counter("recv_completions"), 2000);
  EXPECT_LE(counter("recv_sqes"), 10);
}

// --uring-wait-batch: under load a turn takes several completions; an idle loop sleeps (the
// kernel ends a batched wait without a general timeout at the batch time, which would make
// an idle loop wake every wait_min_usec).
TEST_P(UringEchoTest, BatchedWaitFillsTurnsUnderLoadAndSleepsWhenIdle) {
  start_echo([](net::ServerConfig& config) {
    config.ring.wait_batch = 16;
    config.ring.wait_min_usec = 2000;
  });
  if (server_->in_force("batched wait off")) {
    GTEST_SKIP() << "this kernel has no IORING_FEAT_MIN_TIMEOUT (Linux 6.12+): "
                 << server_->server().setup_mode();
  }
  auto jobs = make_jobs(port(), 32, std::size_t{64} * 1024);
  EXPECT_TRUE(run_echo_jobs(jobs, 512));
  close_jobs(jobs);
  ASSERT_TRUE(expect_pools_returned());
  const std::int64_t turns = counter("loop_turns");
  EXPECT_GT(counter("cqes_reaped"), 3 * turns) << "turns should carry several completions";
  // Idle for a while: a loop waking every 2 ms would turn ~100 times; timers tick once a
  // second at most.
  EXPECT_FALSE(wait_until([&] { return counter("loop_turns") > turns + 20; },
                          std::chrono::milliseconds(200)));
  // One message on one connection still gets its echo: the batch time bounds the wait.
  const int c = connect();
  ASSERT_TRUE(send_all(c, "ping"));
  EXPECT_EQ(recv_string(c, 4), "ping");
}

// Filled slots of the file tables of this process's rings, as the kernel lists them in the
// ring's fdinfo: after "UserFiles:", one "N: NAME" line per slot up to "UserBufs:" (empty slots
// read "<none>" on kernels before 6.14, which list every slot). -1 when no ring lists its table.
// Only a cross-check of the server's own fixed_files_in_use gauge: a kernel that cannot take
// the ring's lock prints the header without the slots.
int slots_in_ring_file_tables() {
  int total = -1;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    const auto target = std::filesystem::read_symlink(entry.path(), error);
    if (error || target.string() != "anon_inode:[io_uring]") continue;
    std::ifstream info("/proc/self/fdinfo/" + entry.path().filename().string());
    std::string line;
    bool in_table = false;
    bool listed = false;
    int filled = 0;
    while (std::getline(info, line)) {
      if (line.starts_with("UserFiles:")) {
        in_table = listed = true;
      } else if (line.starts_with("UserBufs:")) {
        in_table = false;
      } else if (in_table) {
        const auto colon = line.find(": ");
        if (colon != std::string::npos && line.find("<none>") == std::string::npos) ++filled;
      }
    }
    if (listed) total = std::max(total, 0) + filled;
  }
  return total;
}

// --uring-fixed-files: connections in the table and the one beyond it are all served, the
// table holds the sockets while they are open, and a closed connection's slot is emptied and
// takes the next client.
TEST_P(UringEchoTest, FixedFileTableServesBeyondItsSizeAndReusesSlots) {
  start_echo([](net::ServerConfig& config) {
    config.threads = 1;  // one loop, one table
    config.ring.fixed_files = 2;
  });
  ASSERT_TRUE(server_->in_force("fixed files 2 slots")) << server_->server().setup_mode();
  {
    auto jobs = make_jobs(port(), 3, 50000);
    EXPECT_TRUE(run_echo_jobs(jobs, 4096));
    EXPECT_TRUE(wait_until([&] { return counter("fixed_files_in_use") == 2; }));
    // The kernel's own listing agrees where it can be read.
    if (slots_in_ring_file_tables() >= 0) {
      EXPECT_TRUE(wait_until([] { return slots_in_ring_file_tables() == 2; }))
          << slots_in_ring_file_tables();
    }
    close_jobs(jobs);
  }
  EXPECT_EQ(counter("fixed_file_misses"), 1);
  ASSERT_TRUE(expect_pools_returned());
  EXPECT_TRUE(wait_until([&] { return counter("fixed_files_in_use") == 0; }));
  auto again = make_jobs(port(), 2, 50000);
  EXPECT_TRUE(run_echo_jobs(again, 4096));
  close_jobs(again);
  EXPECT_EQ(counter("fixed_file_misses"), 1) << "the freed slots were not reused";
  expect_pools_returned();
}

// --uring-recv-bundle: a stream larger than one buffer comes back whole, in fewer completions
// than buffers it filled.
TEST_P(UringEchoTest, RecvBundleFillsSeveralBuffersPerCompletion) {
  start_echo([](net::ServerConfig& config) {
    config.ring.recv_bundle = true;
    config.ring.incremental_buffers = false;
    config.loop.buffer_size = 1024;
    config.loop.buffer_count = 512;
  });
  if (!server_->in_force("recv bundles on")) {
    GTEST_SKIP() << "no receive bundles (Linux 6.10+): " << server_->server().setup_mode();
  }
  auto jobs = make_jobs(port(), 4, 1 << 20);
  EXPECT_TRUE(run_echo_jobs(jobs, 1 << 18));
  close_jobs(jobs);
  expect_pools_returned();
  const std::int64_t buffers_filled = counter("bytes_in") / 1024;
  EXPECT_LT(counter("recv_completions"), buffers_filled / 2)
      << "completions should carry several buffers each";
}

// --uring-incremental-buffers: small receives take a piece of a buffer, not a whole one, so
// many connections fit in one buffer, and bytes of different connections side by side in it
// never mix.
TEST_P(UringEchoTest, IncrementalBuffersPackSmallReceivesIntoOneBuffer) {
  start_echo([](net::ServerConfig& config) {
    config.ring.incremental_buffers = true;
    config.loop.buffer_size = 65536;
    config.loop.buffer_count = 2;
  });
  if (!server_->in_force("incremental buffers on")) {
    GTEST_SKIP() << "no incremental buffers (Linux 6.12+): " << server_->server().setup_mode();
  }
  // 64 clients at once with two buffers: a whole buffer per receive would run dry at once.
  // Everything they send (62.5 KiB) fits in one buffer, so packed receives cannot run out
  // however the kernel batches them and however late buffers come back.
  constexpr std::size_t kClients = 64;
  constexpr std::size_t kBytesEach = 1000;
  static_assert(kClients * kBytesEach <= 65536);
  auto jobs = make_jobs(port(), kClients, kBytesEach);
  EXPECT_TRUE(run_echo_jobs(jobs, 100));
  close_jobs(jobs);
  expect_pools_returned();
  EXPECT_EQ(counter("enobufs"), 0);
  EXPECT_EQ(counter("bytes_in"), static_cast<std::int64_t>(kClients * kBytesEach));
  EXPECT_GE(counter("recv_completions"), static_cast<std::int64_t>(kClients));
  // Every receive took a piece of the first buffer, which never filled: the kernel finished
  // with no buffer at all, where whole buffers would have been used up one per receive.
  EXPECT_EQ(counter("recv_buffers_used"), 0);
}

// --uring-send-zc: large echoes go zero-copy and come back intact; the chunks stay queued until
// the kernel's notification, and everything is freed once the clients have gone.
TEST_P(UringEchoTest, ZeroCopySendsDeliverEveryByteAndFreeTheirChunks) {
  start_echo([](net::ServerConfig& config) { config.ring.send_zc_min_bytes = 4096; });
  if (!server_->in_force("send zc >= 4096 B")) {
    GTEST_SKIP() << "no zero-copy sends with usage reports (Linux 6.2+): "
                 << server_->server().setup_mode();
  }
  auto jobs = make_jobs(port(), 8, 1 << 20);
  EXPECT_TRUE(run_echo_jobs(jobs, 1 << 16));
  close_jobs(jobs);
  expect_pools_returned();
  EXPECT_GT(counter("send_zc"), 0);
  // Loopback cannot send from our pages: the kernel copies and says so on each notification.
  EXPECT_EQ(counter("send_zc_copied"), counter("send_zc"));
  EXPECT_EQ(counter("send_errors"), 0);
  // Sends from registered chunks name their buffer (pieces of several slabs cannot).
  if (GetParam().registered_buffers) {
    EXPECT_GT(counter("fixed_sends"), 0);
  } else {
    EXPECT_EQ(counter("fixed_sends"), 0);
  }
}

// --uring-send-zc, closing: the client sends a little, half-closes and does not read, so the
// server echoes it all, closes, and the kernel still holds zero-copy pages the client's full
// window keeps unacknowledged. The socket stays open for the notifications (a plain close
// would leave the pages to an orphaned socket until TCP gives up), and then:
class UringZeroCopyCloseTest : public EchoTest {
 protected:
  // More than the client's window takes (its 4 KiB receive buffer), less than the server's
  // socket takes on top (16 KiB to start with, net.ipv4.tcp_wmem's default), so every byte is
  // handed over and some are still unacknowledged when the server closes.
  static constexpr std::size_t kBytes = 8 << 10;

  // Starts the server, and returns a client whose echo waits in the server's closed socket (or
  // waited there, and was reset, when the wait is short).
  int client_left_unread(std::uint64_t close_wait_ms, std::uint64_t grace_ms = 5000) {
    start_echo([&](net::ServerConfig& config) {
      config.threads = 1;
      config.loop.grace_ms = grace_ms;
      config.ring.send_zc_min_bytes = 1;
      config.ring.send_zc_close_wait_ms = close_wait_ms;
    });
    if (!server_->in_force("send zc >= 1 B")) return -1;
    const int fd = connect(4 << 10, 1024);
    EXPECT_GE(fd, 0);
    EXPECT_TRUE(send_all(fd, pattern(kBytes, 5)));
    EXPECT_EQ(::shutdown(fd, SHUT_WR), 0);
    EXPECT_TRUE(wait_until([&] {
      return counter("send_zc_close_waits") == 1 || counter("send_zc_resets") == 1;
    })) << "bytes_out "
        << counter("bytes_out") << " of " << kBytes;
    EXPECT_EQ(counter("bytes_out"), static_cast<std::int64_t>(kBytes));
    return fd;
  }
  std::string no_zc() const {
    return "no zero-copy sends with usage reports (Linux 6.2+): " + server_->server().setup_mode();
  }
};

// ... a peer that reads late still gets every byte and a clean end, with no reset;
TEST_P(UringZeroCopyCloseTest, APeerThatReadsLateGetsEverythingAndAnEnd) {
  const int fd = client_left_unread(30000);
  if (fd < 0) GTEST_SKIP() << no_zc();
  EXPECT_EQ(counter("connections_open"), 1);
  std::vector<std::byte> back(kBytes);
  ASSERT_TRUE(recv_exact(fd, back));
  EXPECT_EQ(back, pattern(kBytes, 5));
  char byte = 0;
  EXPECT_EQ(::recv(fd, &byte, 1, 0), 0) << "a clean end, not a reset";
  expect_pools_returned();
  EXPECT_EQ(counter("send_zc_close_waits"), 0);
  EXPECT_EQ(counter("send_zc_resets"), 0);
}

// ... a peer that never reads is reset once the wait is over, and everything is freed;
TEST_P(UringZeroCopyCloseTest, APeerThatNeverReadsIsResetAfterTheWait) {
  const int fd = client_left_unread(300);
  if (fd < 0) GTEST_SKIP() << no_zc();
  expect_pools_returned();
  EXPECT_EQ(counter("send_zc_close_waits"), 0);
  EXPECT_EQ(counter("send_zc_resets"), 1);
  EXPECT_TRUE(wait_closed(fd));
}

// ... and a stop does not wait for it beyond its grace period.
TEST_P(UringZeroCopyCloseTest, AStopResetsItWhenTheGraceEnds) {
  const int fd = client_left_unread(600000, 200);
  if (fd < 0) GTEST_SKIP() << no_zc();
  EXPECT_EQ(counter("send_zc_close_waits"), 1);
  EXPECT_TRUE(server_->stop_and_wait(milliseconds(10000)));
  EXPECT_EQ(counter("send_zc_resets"), 1);
  EXPECT_EQ(counter("connections_open"), 0);
  EXPECT_TRUE(wait_closed(fd));
}

INSTANTIATE_TEST_SUITE_P(Backends, EchoTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });
INSTANTIATE_TEST_SUITE_P(Uring, UringEchoTest,
                         ::testing::ValuesIn(backends_of(net::Backend::kUring)),
                         [](const auto& info) { return backend_name(info.param); });
INSTANTIATE_TEST_SUITE_P(Uring, UringZeroCopyCloseTest,
                         ::testing::ValuesIn(backends_of(net::Backend::kUring)),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
