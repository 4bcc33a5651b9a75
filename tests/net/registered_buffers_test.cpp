// The chunk pool registered with a ring as fixed buffers: each slab in the slot of its number,
// as the kernel lists them in the ring's fdinfo, and chunks that name it; a slab the kernel
// refuses (RLIMIT_MEMLOCK) leaves the chunks plain, counted, and registration off.
#include "net/uring/registered_buffers.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "core/buffer.hpp"
#include "net/uring/ring.hpp"
#include "tests/support/locked_memory.hpp"
#include "tests/support/ring_fdinfo.hpp"

namespace rs::net::uring {
namespace {

using test::ring_buffers;

// The slot of the registered buffer holding the chunk's payload, or kNoBufferIndex.
std::uint32_t slot_holding(const test::RingBuffers& buffers, const core::Chunk* c) {
  const auto from = reinterpret_cast<std::uintptr_t>(c->data());
  for (const auto& b : buffers.registered) {
    if (from >= b.address && from + c->capacity <= b.address + b.length) return b.slot;
  }
  return core::kNoBufferIndex;
}

TEST(RegisteredBuffers, EachSlabTakesTheSlotOfItsNumberAsTheKernelLists) {
  LoopCounters counters;
  core::ChunkPool pool(16384, 4);
  // The ring after the pool: it goes first, before the slabs it has registered.
  Ring ring(RingOptions{.sq_entries = 8, .cq_entries = 16}, counters);
  std::vector<core::Chunk*> chunks;
  {
    RegisteredBuffers registered(*ring.raw(), pool, counters, true);
    EXPECT_EQ(registered.registered(), 1U) << "the first slab, at start-up";
    for (int i = 0; i < 10; ++i)
      chunks.push_back(pool.get());
    ASSERT_EQ(registered.registered(), 3U);
    EXPECT_EQ(counters.registered_buffers.get(), 3);
    EXPECT_EQ(counters.registered_buffer_bytes.get(),
              static_cast<std::int64_t>(3 * pool.slab_bytes()));
    EXPECT_NE(registered.describe().find("on (3 x "), std::string::npos) << registered.describe();

    const auto buffers = ring_buffers(ring.raw()->ring_fd);
    ASSERT_TRUE(buffers);
    EXPECT_EQ(buffers->table, RegisteredBuffers::kTableSlots);
    ASSERT_EQ(buffers->registered.size(), registered.registered());
    for (std::size_t i = 0; i < buffers->registered.size(); ++i) {
      EXPECT_EQ(buffers->registered[i].slot, i);
      EXPECT_EQ(buffers->registered[i].length, pool.slab_bytes());
    }
    // Chunks 0-3 from slab 0, 4-7 from slab 1, 8-9 from slab 2: each names the buffer that
    // holds it.
    for (std::size_t i = 0; i < chunks.size(); ++i) {
      EXPECT_EQ(chunks[i]->buffer_index, i / 4);
      EXPECT_EQ(slot_holding(*buffers, chunks[i]), chunks[i]->buffer_index);
    }
  }
  // Gone with the registration: the chunks name no buffer.
  for (core::Chunk* c : chunks) {
    EXPECT_EQ(c->buffer_index, core::kNoBufferIndex);
    pool.put(c);
  }
}

TEST(RegisteredBuffers, OffRegistersNothing) {
  LoopCounters counters;
  core::ChunkPool pool(16384, 4);
  // The ring after the pool: it goes first, before the slabs it has registered.
  Ring ring(RingOptions{.sq_entries = 8, .cq_entries = 16}, counters);
  RegisteredBuffers registered(*ring.raw(), pool, counters, false);
  core::Chunk* c = pool.get();
  EXPECT_EQ(c->buffer_index, core::kNoBufferIndex);
  EXPECT_EQ(registered.describe(), "off");
  const auto buffers = ring_buffers(ring.raw()->ring_fd);
  ASSERT_TRUE(buffers);
  EXPECT_EQ(buffers->table, 0U);
  pool.put(c);
}

// Without CAP_IPC_LOCK the kernel charges pinned pages to RLIMIT_MEMLOCK: a 1 MiB slab over a
// 256 KiB limit is refused (ENOMEM), and the pool goes on with plain chunks.
TEST(RegisteredBuffers, ASlabTheKernelRefusesLeavesEveryLaterChunkPlain) {
  test::LockedMemoryLimit limit(256 << 10);
  if (!limit.active()) GTEST_SKIP() << "cannot lower RLIMIT_MEMLOCK here";
  LoopCounters counters;
  core::ChunkPool pool(16384, 64);
  // The ring after the pool: it goes first, before the slabs it has registered.
  Ring ring(RingOptions{.sq_entries = 8, .cq_entries = 16}, counters);
  RegisteredBuffers registered(*ring.raw(), pool, counters, true);
  EXPECT_EQ(registered.registered(), 0U);
  EXPECT_NE(registered.describe().find("off (refused: ENOMEM"), std::string::npos)
      << registered.describe();
  EXPECT_EQ(counters.registered_buffer_fallbacks.get(), 1);
  std::vector<core::Chunk*> chunks;
  chunks.reserve(100);
  for (int i = 0; i < 100; ++i)
    chunks.push_back(pool.get());  // a second slab: not asked for, counted as plain
  EXPECT_EQ(counters.registered_buffer_fallbacks.get(), 2);
  EXPECT_EQ(counters.registered_buffers.get(), 0);
  for (core::Chunk* c : chunks) {
    EXPECT_EQ(c->buffer_index, core::kNoBufferIndex);
    pool.put(c);
  }
  // Plain chunks give their pages back as before.
  EXPECT_TRUE(pool.holds_free());
  const auto buffers = ring_buffers(ring.raw()->ring_fd);
  ASSERT_TRUE(buffers);
  EXPECT_TRUE(buffers->registered.empty());
}

}  // namespace
}  // namespace rs::net::uring
