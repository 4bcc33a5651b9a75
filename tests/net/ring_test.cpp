// The ring wrapper on its own: a full SQ is flushed, not an error; completions come back in
// batches, each to the operation that named it. And the zero-copy send's sink of sent chunks.
#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.hpp"
#include "net/uring/retired_chunks.hpp"
#include "net/uring/ring.hpp"

namespace rs::net::uring {
namespace {

struct CountingOp {
  Operation op;
  int completions = 0;
  std::int32_t last_res = -1;
  CountingOp() { bind<&CountingOp::on_complete>(op, this); }
  void on_complete(std::int32_t res, std::uint32_t /*flags*/) {
    ++completions;
    last_res = res;
  }
};

// One operation, several kinds in flight at once: each completion comes back with the tag its
// SQE carried in the low bits of user_data (a connection's receive, send, cancels and closes).
TEST(Ring, OneOperationTellsItsCompletionsApartByTag) {
  struct TaggedOp {
    Operation op;
    std::vector<unsigned> tags;
    std::vector<std::int32_t> results;
    void on_complete(std::int32_t res, std::uint32_t /*flags*/, unsigned tag) {
      tags.push_back(tag);
      results.push_back(res);
    }
  } tagged;
  bind<&TaggedOp::on_complete>(tagged.op, &tagged);
  LoopCounters counters;
  Ring ring(RingOptions{.sq_entries = 16, .cq_entries = 32}, counters);
  for (unsigned tag = 0; tag <= Operation::kTagMask; ++tag) {
    io_uring_prep_nop(ring.sqe(tagged.op, tag));
  }
  ring.submit_and_wait(std::nullopt);
  std::vector<Completion> batch(16);
  const std::size_t n = ring.reap(batch);
  ASSERT_EQ(n, Operation::kTagMask + 1);
  for (std::size_t i = 0; i < n; ++i)
    Operation::dispatch(batch[i].user_data, batch[i].res, 0);
  EXPECT_EQ(tagged.tags, (std::vector<unsigned>{0, 1, 2, 3, 4, 5, 6, 7}));
  EXPECT_EQ(tagged.results, std::vector<std::int32_t>(8, 0));
}

// A cancel names one SQE by its user_data, tag included: the wrong tag finds nothing, the right
// one ends the receive (as a connection cancels its receive or its send, never the other).
TEST(Ring, ACancelFindsOnlyTheSqeWithItsTag) {
  struct TaggedOp {
    Operation op;
    std::vector<std::pair<unsigned, std::int32_t>> seen;  // (tag, res)
    void on_complete(std::int32_t res, std::uint32_t /*flags*/, unsigned tag) {
      seen.emplace_back(tag, res);
    }
  } tagged;
  bind<&TaggedOp::on_complete>(tagged.op, &tagged);
  int fds[2];
  ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  LoopCounters counters;
  Ring ring(RingOptions{.sq_entries = 8, .cq_entries = 16}, counters);
  char buffer[16];
  constexpr unsigned kRecv = 3, kCancelWrong = 4, kCancelRight = 5;
  io_uring_prep_recv(ring.sqe(tagged.op, kRecv), fds[0], buffer, sizeof(buffer), 0);
  io_uring_prep_cancel64(ring.sqe(tagged.op, kCancelWrong), tagged.op.user_data(kRecv - 1), 0);
  std::vector<Completion> batch(8);
  const auto reap_until = [&](std::size_t n) {
    for (int turns = 0; tagged.seen.size() < n && turns < 100; ++turns) {
      ring.submit_and_wait(std::uint64_t{10'000'000});  // 10 ms
      const std::size_t got = ring.reap(batch);
      for (std::size_t i = 0; i < got; ++i)
        Operation::dispatch(batch[i].user_data, batch[i].res, batch[i].flags);
    }
  };
  reap_until(1);
  ASSERT_EQ(tagged.seen.size(), 1U) << "the receive must still be pending";
  EXPECT_EQ(tagged.seen[0], std::make_pair(kCancelWrong, -ENOENT));
  io_uring_prep_cancel64(ring.sqe(tagged.op, kCancelRight), tagged.op.user_data(kRecv), 0);
  reap_until(3);
  ASSERT_EQ(tagged.seen.size(), 3U);
  std::sort(tagged.seen.begin() + 1, tagged.seen.end());
  EXPECT_EQ(tagged.seen[1], std::make_pair(kRecv, -ECANCELED));
  EXPECT_EQ(tagged.seen[2], std::make_pair(kCancelRight, 0));
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST(Ring, FullSubmissionQueueIsFlushedNotAnError) {
  LoopCounters counters;
  Ring ring(RingOptions{.sq_entries = 8, .cq_entries = 64}, counters);
  std::vector<CountingOp> ops(20);
  for (auto& o : ops)
    io_uring_prep_nop(ring.sqe(o.op));
  EXPECT_GE(counters.sq_full_flushes.get(), 2u);
  ring.submit_and_wait(std::nullopt);
  std::vector<Completion> batch(64);
  std::size_t reaped = 0;
  while (reaped < ops.size()) {
    const std::size_t n = ring.reap(batch);
    if (n == 0) ring.submit_and_wait(std::nullopt);
    for (std::size_t i = 0; i < n; ++i)
      Operation::dispatch(batch[i].user_data, batch[i].res, 0);
    reaped += n;
  }
  EXPECT_EQ(counters.sqes_submitted.get(), 20u);
  EXPECT_EQ(counters.cqes_reaped.get(), 20u);
  for (auto& o : ops) {
    EXPECT_EQ(o.completions, 1);
    EXPECT_EQ(o.last_res, 0);
  }
  EXPECT_EQ(counters.cq_overflow_dropped.get(), 0u);
}

TEST(Ring, ReapTakesAtMostOneBatchAndLeavesTheRestQueued) {
  LoopCounters counters;
  Ring ring(RingOptions{.sq_entries = 32, .cq_entries = 64}, counters);
  std::vector<CountingOp> ops(10);
  for (auto& o : ops)
    io_uring_prep_nop(ring.sqe(o.op));
  ring.submit_and_wait(std::nullopt);
  // NOPs complete inline at submission, so all ten are waiting now.
  std::vector<Completion> batch(4);
  EXPECT_EQ(ring.reap(batch), 4u);
  EXPECT_EQ(ring.reap(batch), 4u);
  EXPECT_EQ(ring.reap(batch), 2u);
  EXPECT_EQ(ring.reap(batch), 0u);
  EXPECT_EQ(counters.cqes_reaped.get(), 10u);
}

TEST(Ring, CompletionQueueIsSizedAsAsked) {
  LoopCounters counters;
  Ring ring(RingOptions{.sq_entries = 16, .cq_entries = 4096}, counters);
  EXPECT_GE(ring.cq_entries(), 4096u);
}

TEST(Ring, TimeoutReturnsWhenNothingCompletes) {
  LoopCounters counters;
  Ring ring(RingOptions{.sq_entries = 8, .cq_entries = 16}, counters);
  ring.submit_and_wait(std::uint64_t{1000000});  // 1 ms
  std::vector<Completion> batch(4);
  EXPECT_EQ(ring.reap(batch), 0u);
}

TEST(Ring, CompletionsBeyondTheCqAreCountedAndNotLost) {
  LoopCounters counters;
  Ring ring(RingOptions{.sq_entries = 4, .cq_entries = 4}, counters);
  const unsigned cq = ring.cq_entries();
  std::vector<CountingOp> ops(std::size_t{cq} * 3);
  for (auto& o : ops)
    io_uring_prep_nop(ring.sqe(o.op));
  ring.submit_and_wait(std::nullopt);
  // More completions than the CQ holds: the kernel buffers the rest and says so.
  EXPECT_GE(counters.cq_overflow_buffered.get(), 1u);
  std::vector<Completion> batch(64);
  std::size_t reaped = 0;
  for (int turns = 0; reaped < ops.size() && turns < 100; ++turns) {
    const std::size_t n = ring.reap(batch);
    for (std::size_t i = 0; i < n; ++i)
      Operation::dispatch(batch[i].user_data, batch[i].res, 0);
    reaped += n;
    if (reaped < ops.size()) ring.submit_and_wait(std::uint64_t{1000000});
  }
  EXPECT_EQ(reaped, ops.size());
  EXPECT_EQ(counters.cq_overflow_dropped.get(), 0u);
}

// Retired chunks (zero-copy sends): consumed chunks stay out of the pool until every send up
// to their tag is done with them.
TEST(RetiredChunks, ConsumedChunksWaitForTheirTag) {
  core::ChunkPool pool(64, 4);
  RetiredChunks retired(pool);
  core::BufferChain chain(pool);
  chain.append(std::string(200, 'a'));  // four chunks
  ASSERT_EQ(pool.outstanding(), 4u);
  retired.set_tag(1);
  chain.consume(64, &retired);  // the first chunk, read by send 1
  retired.set_tag(3);
  chain.consume(100, &retired);  // the second (and part of the third), read by sends up to 3
  EXPECT_EQ(pool.outstanding(), 4u) << "retired chunks are not back in the pool";
  EXPECT_EQ(chain.size(), 36u);
  retired.release_through(0);
  EXPECT_EQ(pool.outstanding(), 4u);
  retired.release_through(2);  // send 1 and 2 done: the first chunk goes back
  EXPECT_EQ(pool.outstanding(), 3u);
  retired.release_through(3);
  EXPECT_EQ(pool.outstanding(), 2u);
  EXPECT_TRUE(retired.empty());
  chain.consume(36);  // no zero-copy send left: straight back to the pool
  EXPECT_EQ(pool.outstanding(), 0u);
}

TEST(RetiredChunks, MoreTagsThanBatchesFreeLaterNeverSooner) {
  core::ChunkPool pool(16, 8);
  RetiredChunks retired(pool);
  core::BufferChain chain(pool);
  chain.append(std::string(std::size_t{16} * 40, 'b'));
  for (std::uint64_t tag = 1; tag <= 40; ++tag) {
    retired.set_tag(tag);
    chain.consume(16, &retired);
  }
  EXPECT_EQ(pool.outstanding(), 40u);
  // Tags past the batch count share the newest batch under the latest tag: nothing of it may
  // go back before that tag is done.
  retired.release_through(39);
  EXPECT_GT(pool.outstanding(), 0u);
  EXPECT_FALSE(retired.empty());
  retired.release_through(40);
  EXPECT_EQ(pool.outstanding(), 0u);
}

TEST(RetiredChunks, DestructionGivesEverythingBack) {
  core::ChunkPool pool(16, 4);
  {
    RetiredChunks retired(pool);
    core::BufferChain chain(pool);
    chain.append(std::string(48, 'c'));
    retired.set_tag(5);
    chain.consume(48, &retired);
    EXPECT_EQ(pool.outstanding(), 3u);
  }
  EXPECT_EQ(pool.outstanding(), 0u);
}

}  // namespace
}  // namespace rs::net::uring
