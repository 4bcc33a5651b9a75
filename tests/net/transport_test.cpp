// The contract every backend passes (the ring and epoll pollers of net::EventLoop, and the
// threads backend's workers): the transport interface exercised by a small line protocol, so
// every capability HTTP leans on is proven on real sockets: input spanning several receive
// buffers, answers that complete later but leave in order, holding a receive buffer, pausing
// input, peer address, graceful close. A new backend joins all_backends() and passes it.
//
// Commands, one per line:
//   now TEXT       answer TEXT at once
//   later MS TEXT  answer TEXT after MS milliseconds, from a loop timer (deferred slot)
//   hold / release keep the current receive buffer / give it back
//   pause MS       stop reading for MS milliseconds
//   peer           answer the peer's port
//   bye            answer "bye" and close gracefully
#include <arpa/inet.h>
#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <unistd.h>

#include <charconv>
#include <memory>
#include <string>
#include <vector>

#include "core/slab_pool.hpp"
#include "net/connection.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {
namespace {

struct Pending;

struct LineState final : net::Protocol {
  explicit LineState(core::SlabPool<LineState>& states, core::SlabPool<Pending>& pendings)
      : states(states), pendings(pendings) {}
  void on_input(net::Connection& conn, net::Input& input) override;
  void on_close(net::Connection& conn) override;
  void handle(net::Connection& conn, std::string_view line, net::Input& input);

  core::SlabPool<LineState>& states;
  core::SlabPool<Pending>& pendings;
  core::Timer resume_timer;
  core::Timer release_timer;  // "hold_for": lets the held buffer go
  net::HeldBuffer held;
  net::Connection* conn = nullptr;
  std::vector<Pending*> waiting;  // reserved at open; never grows on the request path
};

struct Pending {
  core::Timer timer;
  net::ResponseSlot* slot = nullptr;
  net::Connection* conn = nullptr;
  LineState* state = nullptr;
  char text[64] = {};
  std::size_t length = 0;
};

std::uint64_t parse_ms(std::string_view s) {
  std::uint64_t v = 0;
  std::from_chars(s.data(), s.data() + s.size(), v);
  return v;
}

void fire_pending(core::Timer& timer) {
  auto* p = static_cast<Pending*>(timer.context());
  p->conn->deferred_output(p->slot).append(std::string_view(p->text, p->length));
  p->conn->complete(p->slot);
  auto& list = p->state->waiting;
  std::erase(list, p);
  p->state->pendings.destroy(p);
}

void LineState::handle(net::Connection& c, std::string_view line, net::Input& input) {
  const auto space = line.find(' ');
  const std::string_view verb = line.substr(0, space);
  const std::string_view rest = space == std::string_view::npos ? "" : line.substr(space + 1);
  if (verb == "now") {
    c.output().append(rest);
    c.output().append("\n");
  } else if (verb == "later") {
    const auto gap = rest.find(' ');
    auto* p = pendings.make();
    p->slot = c.defer();
    p->conn = &c;
    p->state = this;
    const std::string_view text = rest.substr(gap + 1);
    p->length = std::min(text.size(), sizeof(p->text) - 1);
    std::memcpy(p->text, text.data(), p->length);
    p->text[p->length++] = '\n';
    p->timer.set(&fire_pending, p);
    // +1: the wheel counts whole milliseconds from the start of the loop turn.
    c.services().timers().arm(p->timer, parse_ms(rest.substr(0, gap)) + 1);
    waiting.push_back(p);
  } else if (verb == "hold") {
    held = input.hold_fresh();
    c.output().append("held\n");
  } else if (verb == "hold_for") {
    held = input.hold_fresh();
    release_timer.set([](core::Timer& t) { static_cast<LineState*>(t.context())->held.release(); },
                      this);
    c.services().timers().arm(release_timer, parse_ms(rest) + 1);
    c.output().append("held\n");
  } else if (verb == "release") {
    held.release();
    c.output().append("released\n");
  } else if (verb == "pause") {
    c.pause_input();
    resume_timer.set(
        [](core::Timer& t) {
          auto* s = static_cast<LineState*>(t.context());
          s->conn->resume_input();
        },
        this);
    c.services().timers().arm(resume_timer, parse_ms(rest) + 1);
    c.output().append("paused\n");
  } else if (verb == "peer") {
    const sockaddr_storage peer = c.peer();
    const auto port = ntohs(reinterpret_cast<const sockaddr_in&>(peer).sin_port);
    char buf[16];
    auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), port);
    c.output().append(std::string_view(buf, static_cast<std::size_t>(end - buf)));
    c.output().append("\n");
  } else if (verb == "bye") {
    c.output().append("bye\n");
    c.close();
  }
}

void LineState::on_input(net::Connection& c, net::Input& input) {
  // A line may span the stash and the fresh buffer: copy it out only when it does.
  char line[256];
  for (;;) {
    const std::size_t n = input.copy_out(std::as_writable_bytes(std::span(line)));
    const std::string_view view(line, n);
    const std::size_t eol = view.find('\n');
    if (eol == std::string_view::npos) return;  // incomplete: stays in the stash
    handle(c, view.substr(0, eol), input);
    input.consume(eol + 1);
    if (!c.open() || c.input_paused()) return;
  }
}

void LineState::on_close(net::Connection& /*conn*/) {
  for (Pending* p : waiting)
    pendings.destroy(p);  // their timers cancel themselves
  waiting.clear();
  held.release();
  states.destroy(this);
}

class LineFactory final : public net::ProtocolFactory {
 public:
  net::Protocol* open(net::Connection& conn) override {
    auto* s = states_.make(states_, pendings_);
    s->conn = &conn;
    s->waiting.reserve(64);
    return s;
  }

 private:
  core::SlabPool<Pending> pendings_;  // destroyed after states_: states hold pendings
  core::SlabPool<LineState> states_;
};

class TransportTest : public ::testing::TestWithParam<BackendParam> {
 protected:
  void start(unsigned buffer_size = 16384) {
    net::ServerConfig config = test_config(GetParam());
    config.loop.buffer_size = buffer_size;
    server_ = std::make_unique<InProcessServer>(
        config, [](net::LoopServices&) { return std::make_unique<LineFactory>(); });
    fd_ = connect_to(server_->port());
    ASSERT_GE(fd_, 0);
  }
  void TearDown() override {
    if (fd_ >= 0) ::close(fd_);
  }
  std::string ask(std::string_view request, std::size_t reply_bytes) {
    EXPECT_TRUE(send_all(fd_, request));
    return recv_string(fd_, reply_bytes);
  }
  std::unique_ptr<InProcessServer> server_;
  int fd_ = -1;
};

TEST_P(TransportTest, LaterAnswersStillLeaveInRequestOrder) {
  start();
  const auto begin = Clock::now();
  const std::string reply = ask("later 80 first\nnow second\nlater 20 third\nnow fourth\n", 26);
  EXPECT_EQ(reply, "first\nsecond\nthird\nfourth\n");
  EXPECT_GE(Clock::now() - begin, milliseconds(80));  // never before its timer
}

TEST_P(TransportTest, LinesSpanningSeveralReceiveBuffersAreReassembled) {
  start(64);  // 64-byte receive buffers: a 200-byte line spans four of them
  const std::string text(200, 'z');
  EXPECT_EQ(ask("now " + text + "\n", 201), text + "\n");
  EXPECT_EQ(ask("now a\nnow b\n", 4), "a\nb\n");
}

TEST_P(TransportTest, HeldBufferStaysOutOfTheRingUntilReleased) {
  start();
  EXPECT_EQ(ask("hold\n", 5), "held\n");
  EXPECT_TRUE(wait_until([&] { return server_->counter("buffers_held") == 1; }));
  EXPECT_EQ(ask("release\n", 9), "released\n");
  EXPECT_TRUE(wait_until([&] { return server_->counter("buffers_held") == 0; }));
}

// Every receive buffer held by an answer: a reader with bytes waiting is starved (epoll leaves
// EPOLLIN out, the ring's receive ends with ENOBUFS) and is let back in the turn a buffer comes
// back, here from a timer, with nothing else to wake the loop for it.
TEST_P(TransportTest, AReaderStarvedOfBuffersIsReadmittedWhenOneComesBack) {
  if (GetParam().backend == net::Backend::kThreads) {
    GTEST_SKIP() << "threads: each worker has receive buffers of its own";
  }
  if (GetParam().loops > 1) GTEST_SKIP() << "the three clients must share one loop's buffers";
  if (GetParam().tuned) {
    GTEST_SKIP() << "incremental buffers: holds share a buffer (IncrementalBuffersLetManyHolds...)";
  }
  net::ServerConfig config = test_config(GetParam());
  config.loop.buffer_count = 2;
  server_ = std::make_unique<InProcessServer>(
      config, [](net::LoopServices&) { return std::make_unique<LineFactory>(); });
  std::vector<int> holders;
  for (int i = 0; i < 2; ++i) {
    holders.push_back(connect_to(server_->port()));
    ASSERT_TRUE(send_all(holders.back(), "hold_for 300\n"));
    EXPECT_EQ(recv_string(holders.back(), 5), "held\n");
  }
  ASSERT_TRUE(wait_until([&] { return server_->counter("buffers_held") == 2; }));
  const int starved = connect_to(server_->port());
  ASSERT_TRUE(send_all(starved, "now fed\n"));
  ASSERT_TRUE(wait_until([&] { return server_->counter("enobufs") > 0; }))
      << "the reader must find no buffer free";
  EXPECT_EQ(recv_string(starved, 4, milliseconds(5000)), "fed\n");
  EXPECT_TRUE(wait_until([&] { return server_->counter("buffers_held") == 0; }));
  for (int fd : holders)
    ::close(fd);
  ::close(starved);
}

TEST_P(TransportTest, PausedInputIsReadOnlyAfterResume) {
  start();
  const auto begin = Clock::now();
  EXPECT_EQ(ask("pause 100\nnow after\n", 13), "paused\nafter\n");
  EXPECT_GE(Clock::now() - begin, milliseconds(100));
}

TEST_P(TransportTest, EndOfInputWaitsBehindInputHeldByAPause) {
  start();
  ASSERT_TRUE(send_all(fd_, "pause 50\nnow x\n"));
  ASSERT_EQ(::shutdown(fd_, SHUT_WR), 0);
  EXPECT_EQ(recv_string(fd_, 9), "paused\nx\n");
  EXPECT_TRUE(wait_closed(fd_));
}

TEST_P(TransportTest, CloseFromATimerFinishesWithNothingQueued) {
  start();
  // "later" answers from a timer; "bye" after it closes once that answer is out. The close
  // itself is decided outside any protocol callback only when nothing else is pending.
  EXPECT_EQ(ask("later 20 a\n", 2), "a\n");
  EXPECT_EQ(ask("bye\n", 4), "bye\n");
  EXPECT_TRUE(wait_closed(fd_));
  EXPECT_TRUE(wait_until([&] { return server_->counter("connections_open") == 0; }));
}

TEST_P(TransportTest, PeerIsTheClientsAddress) {
  start();
  sockaddr_in local{};
  socklen_t len = sizeof(local);
  ::getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
  const std::string port = std::to_string(ntohs(local.sin_port));
  EXPECT_EQ(ask("peer\n", port.size() + 1), port + "\n");
}

TEST_P(TransportTest, GracefulCloseSendsPendingAnswersFirst) {
  start();
  EXPECT_EQ(ask("later 30 last words\nbye\n", 15), "last words\nbye\n");
  EXPECT_TRUE(wait_closed(fd_));
}

TEST_P(TransportTest, ClientLeavingWithAnswersPendingFreesEverything) {
  start();
  ASSERT_TRUE(send_all(fd_, "later 60000 never\nhold\n"));
  EXPECT_TRUE(wait_until([&] { return server_->counter("buffers_held") == 1; }));
  // A reset, not a FIN: after a FIN the server would rightly still owe the pending answer.
  linger reset{1, 0};
  ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
  ::close(fd_);
  fd_ = -1;
  expect_pools_returned(*server_);
}

// The shared "every pool came back" check itself: while a connection is open and holds a
// receive buffer it fails, naming what is still out; once the client has gone it passes.
TEST_P(TransportTest, PoolsReturnedCheckNamesWhatIsStillOut) {
  start();
  EXPECT_EQ(ask("hold\n", 5), "held\n");
  ASSERT_TRUE(wait_until([&] { return server_->counter("buffers_held") == 1; }));
  ::testing::TestPartResultArray failures;
  bool returned = true;
  {
    ::testing::ScopedFakeTestPartResultReporter intercept(
        ::testing::ScopedFakeTestPartResultReporter::INTERCEPT_ONLY_CURRENT_THREAD, &failures);
    returned = expect_pools_returned(*server_, milliseconds(100));
  }
  EXPECT_FALSE(returned);
  std::string messages;
  for (int i = 0; i < failures.size(); ++i) {
    EXPECT_TRUE(failures.GetTestPartResult(i).nonfatally_failed());
    messages += failures.GetTestPartResult(i).message();
  }
  EXPECT_NE(messages.find("connections_open"), std::string::npos) << messages;
  EXPECT_NE(messages.find("buffers_held"), std::string::npos) << messages;
  EXPECT_EQ(ask("release\n", 9), "released\n");
  ::close(fd_);
  fd_ = -1;
  expect_pools_returned(*server_);
}

// Incremental buffers (uring, Linux 6.12+): a held receive keeps only its piece of a buffer.
// Eight clients each hold their request in a ring of two buffers; with a whole buffer per
// receive, two holds would empty the ring and the other six would wait for ever.
TEST(UringTransport, IncrementalBuffersLetManyHoldsShareABuffer) {
  net::ServerConfig config = test_config({net::Backend::kUring, 1});
  config.ring.incremental_buffers = true;
  config.loop.buffer_count = 2;
  config.loop.buffer_size = 16384;
  InProcessServer server(config,
                         [](net::LoopServices&) { return std::make_unique<LineFactory>(); });
  if (!server.in_force("incremental buffers on")) {
    GTEST_SKIP() << "no incremental buffers (Linux 6.12+): " << server.server().setup_mode();
  }
  std::vector<int> fds;
  for (int i = 0; i < 8; ++i) {
    fds.push_back(connect_to(server.port()));
    ASSERT_GE(fds.back(), 0);
    ASSERT_TRUE(send_all(fds.back(), "hold\n"));
    EXPECT_EQ(recv_string(fds.back(), 5), "held\n") << "client " << i;
  }
  EXPECT_LE(server.counter("buffers_held"), 1);
  EXPECT_EQ(server.counter("enobufs"), 0);
  for (int fd : fds) {
    ASSERT_TRUE(send_all(fd, "release\nnow ok\n"));
    EXPECT_EQ(recv_string(fd, 12), "released\nok\n");
    ::close(fd);
  }
  expect_pools_returned(server);
}

INSTANTIATE_TEST_SUITE_P(Backends, TransportTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
