// The turn's first steps (net::redeliver_and_flush) on connections with a fake transport: the
// order of send and settle, and what a pass does with connections listed during it. No sockets:
// the outcome is decided by the order of calls alone.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "core/buffer.hpp"
#include "core/timer_wheel.hpp"
#include "net/connection.hpp"
#include "net/input.hpp"
#include "net/loop/loop_state.hpp"
#include "net/loop/loop_support.hpp"
#include "net/transport.hpp"

namespace rs::net {
namespace {

class NoFiles final : public FileService {
 public:
  FileHandle* open(int /*dir_fd*/, std::string_view /*path*/, FileReader& /*reader*/) override {
    return nullptr;
  }
  void read(FileHandle* /*file*/, std::uint64_t /*offset*/, std::size_t /*max_bytes*/) override {}
  void close(FileHandle* /*file*/) override {}
};

class FakeLoop final : public LoopServices {
 public:
  core::TimerWheel& timers() override { return state.timers; }
  core::ChunkPool& chunks() override { return state.chunks; }
  std::uint64_t now_ms() const override { return state.now_ms; }
  std::uint64_t now_us() const override { return state.now_us; }
  std::uint64_t wall_clock_s() const override { return state.wall_clock_s; }
  LogSink* access_log() override { return nullptr; }
  FileService& files() override { return files_; }

  ConnectionLimits limits;
  LoopCounters counters;
  LoopState state{*this, limits, counters, 4096, 4};

 private:
  NoFiles files_;
};

// Answers every input with "ok", and remembers that it heard of the close.
class Answering final : public Protocol {
 public:
  void on_input(Connection& conn, Input& input) override {
    input.consume(input.size());
    conn.write("ok");
  }
  void on_close(Connection& /*conn*/) override { ++closes; }
  int closes = 0;
};

// Every connection gets the one protocol.
class OneProtocol final : public ProtocolFactory {
 public:
  explicit OneProtocol(Protocol& protocol) : protocol_(protocol) {}
  Protocol* open(Connection& /*conn*/) override { return &protocol_; }

 private:
  Protocol& protocol_;
};

// A send is "in flight" from the moment it is started until the test says the kernel took it.
class FakeConnection final : public DrivenConnection {
 public:
  FakeConnection(FakeLoop& loop, std::uint64_t id)
      : DrivenConnection(-1, id, loop.state.connection_context) {}
  bool in_flight = false;
  int sends = 0;

 private:
  void set_receiving(bool /*on*/) override {}
  bool send_in_flight() const override { return in_flight; }
  void shutdown_write() override {}
  void close_transport() override {}
};

void give_input(FakeConnection& conn) {
  const std::string bytes = "ask";
  conn.deliver(std::as_bytes(std::span(bytes.data(), bytes.size())), nullptr, 0);
}

// The send of a completion backend: it starts, and the kernel answers in a later turn.
bool start_send(DrivenConnection& c) {
  auto& conn = static_cast<FakeConnection&>(c);
  conn.in_flight = true;
  ++conn.sends;
  return false;
}

void close_now(FakeConnection& conn) {
  conn.abort();
  conn.turn_done();
}

// One loop, one protocol; each connection is started and has written an answer to an input.
class TurnListsTest : public ::testing::Test {
 protected:
  void answering(FakeConnection& conn) {
    OneProtocol factory(protocol_);
    conn.start(factory, ListenSocket{});
    give_input(conn);
  }
  TurnLists& turn() { return loop_.state.turn; }

  FakeLoop loop_;
  Answering protocol_;
};

TEST_F(TurnListsTest, SendThenSettleLeavesNothingForTheNextTurn) {
  FakeConnection conn(loop_, 1);
  answering(conn);
  ASSERT_FALSE(turn().flush.empty()) << "an answer was written: it is listed";
  redeliver_and_flush(turn(), start_send);
  EXPECT_EQ(conn.sends, 1);
  // Settled after its send started, the connection has nothing left for the next turn: had it
  // settled first (output queued, no send under way), it would be listed again, and the next
  // turn would wake without waiting, for nothing.
  EXPECT_TRUE(turn().flush.empty());
  close_now(conn);
  EXPECT_EQ(protocol_.closes, 1);
}

TEST_F(TurnListsTest, AConnectionListedDuringAPassWaitsForTheNextTurn) {
  FakeConnection conn(loop_, 1);
  answering(conn);
  redeliver_and_flush(turn(), [](DrivenConnection& c) {
    auto& self = static_cast<FakeConnection&>(c);
    ++self.sends;
    self.flush();  // more to send: listed again, for the next turn
    return false;
  });
  EXPECT_EQ(conn.sends, 1) << "one send per connection per pass";
  EXPECT_EQ(turn().flush.size(), 1u);
  close_now(conn);
}

TEST_F(TurnListsTest, AConnectionClosedDuringAPassLeavesTheListsForGood) {
  FakeConnection first(loop_, 1);
  FakeConnection second(loop_, 2);
  answering(first);
  answering(second);
  ASSERT_EQ(turn().flush.size(), 2u);
  // The first one's send cuts the second, which is still waiting in the pass.
  redeliver_and_flush(turn(), [&](DrivenConnection& c) {
    if (&c == &first) second.abort();
    return start_send(c);
  });
  EXPECT_TRUE(second.closed());
  EXPECT_EQ(protocol_.closes, 1) << "the cut connection's protocol heard of it, once";
  EXPECT_TRUE(turn().flush.empty());
  EXPECT_EQ(second.sends, 1) << "its settle came through the pass";
  close_now(first);
  EXPECT_EQ(protocol_.closes, 2);
}

}  // namespace
}  // namespace rs::net
