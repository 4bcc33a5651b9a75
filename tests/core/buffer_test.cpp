#include "core/buffer.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/asan.hpp"
#include "tests/support/resident.hpp"

namespace rs::core {
namespace {

std::string contents(const BufferChain& chain) {
  std::string out(chain.size(), '\0');
  const std::size_t copied = chain.copy_out(0, std::as_writable_bytes(std::span(out)));
  EXPECT_EQ(copied, chain.size());
  return out;
}

std::string pattern(std::size_t n, std::size_t seed = 0) {
  std::string s(n, '\0');
  for (std::size_t i = 0; i < n; ++i) {
    s[i] = static_cast<char>('a' + (i + seed) % 26);
  }
  return s;
}

TEST(ChunkPool, GetAndPutTrackOutstanding) {
  ChunkPool pool(128, 4);
  EXPECT_EQ(pool.chunk_bytes(), 128U);
  Chunk* a = pool.get();
  Chunk* b = pool.get();
  EXPECT_EQ(pool.outstanding(), 2U);
  EXPECT_EQ(a->capacity, 128U);
  EXPECT_NE(a, b);
  pool.put(a);
  pool.put(b);
  EXPECT_EQ(pool.outstanding(), 0U);
}

TEST(ChunkPool, GetResetsChunkState) {
  ChunkPool pool(64, 2);
  Chunk* c = pool.get();
  c->begin = 3;
  c->end = 10;
  pool.put(c);
  Chunk* again = pool.get();
  EXPECT_EQ(again, c);
  EXPECT_EQ(again->begin, 0U);
  EXPECT_EQ(again->end, 0U);
  EXPECT_EQ(again->next, nullptr);
  EXPECT_EQ(again->writable(), 64U);
  pool.put(again);
}

TEST(ChunkPool, ReusesChunksWithoutGrowing) {
  ChunkPool pool(64, 4);
  for (int round = 0; round < 50; ++round) {
    std::vector<Chunk*> chunks;
    chunks.reserve(4);
    for (int i = 0; i < 4; ++i) {
      chunks.push_back(pool.get());
    }
    for (Chunk* c : chunks) {
      pool.put(c);
    }
  }
  EXPECT_EQ(pool.grows(), 1U);
  EXPECT_EQ(pool.capacity(), 4U);
}

// Pages of a chunk's payload that are resident.
std::size_t resident_pages(Chunk* c) {
  return test::resident_pages(c->data(), c->capacity);
}

TEST(ChunkPool, ChunksFreeForAWholePeriodGiveTheirPagesBack) {
  ChunkPool pool(16384, 8);
  std::vector<Chunk*> chunks;
  for (int i = 0; i < 8; ++i) {
    Chunk* c = pool.get();
    std::memset(c->data(), 'x', c->capacity);  // touched: resident
    chunks.push_back(c);
  }
  Chunk* watched = chunks[3];
  ASSERT_GE(resident_pages(watched), 3U);
  for (Chunk* c : chunks)
    pool.put(c);
  // The first call only starts the period: nothing is known to have stayed free through one.
  EXPECT_EQ(pool.release_idle(100), 0U);
  EXPECT_EQ(pool.free_held(), 8U);
  // One chunk is used during the period: the load needed one, so seven are released.
  pool.put(pool.get());
  EXPECT_EQ(pool.release_idle(100), 7U);
  EXPECT_EQ(pool.released(), 7U);
  EXPECT_EQ(pool.free_held(), 1U);
  std::size_t resident = 0;
  for (Chunk* c : chunks)
    resident += resident_pages(c);
  EXPECT_LE(resident, 4U) << "only the chunk in use keeps its pages";
  // At most `max` per call; released chunks are handed out after the warm one, zeroed where
  // their pages went back, and whole again.
  EXPECT_EQ(pool.release_idle(100), 1U);
  EXPECT_FALSE(pool.holds_free());
  std::vector<Chunk*> again;
  for (int i = 0; i < 8; ++i) {
    Chunk* c = pool.get();
    EXPECT_EQ(c->begin, 0U);
    EXPECT_EQ(c->end, 0U);
    EXPECT_EQ(c->capacity, 16384U);
    std::memset(c->data(), 'y', c->capacity);
    again.push_back(c);
  }
  EXPECT_EQ(pool.grows(), 1U) << "released chunks are reused, not replaced";
  EXPECT_EQ(pool.released(), 0U);
  for (Chunk* c : again)
    pool.put(c);
}

TEST(ChunkPool, ReleaseIsBoundedPerCall) {
  ChunkPool pool(16384, 16);
  std::vector<Chunk*> chunks;
  chunks.reserve(16);
  for (int i = 0; i < 16; ++i)
    chunks.push_back(pool.get());
  for (Chunk* c : chunks)
    pool.put(c);
  pool.release_idle(4);
  EXPECT_EQ(pool.release_idle(4), 4U);
  EXPECT_EQ(pool.release_idle(4), 4U);
  EXPECT_EQ(pool.free_held(), 8U);
}

// A chunk smaller than two pages has no whole page of its own: it gives nothing back, and is
// not counted as released.
TEST(ChunkPool, ChunksSmallerThanTwoPagesAreKept) {
  ChunkPool pool(2048, 4);
  EXPECT_FALSE(pool.releases_pages());
  pool.put(pool.get());
  pool.release_idle(10);
  EXPECT_EQ(pool.release_idle(10), 0U);
  EXPECT_EQ(pool.released(), 0U);
  EXPECT_EQ(pool.free_held(), 1U);
  EXPECT_TRUE(ChunkPool(16384, 1).releases_pages());
}

TEST(ChunkPool, ReserveGrowsCapacity) {
  ChunkPool pool(64, 4);
  pool.reserve(9);
  EXPECT_EQ(pool.capacity(), 12U);
  EXPECT_EQ(pool.grows(), 3U);
}

// Records the slabs it is told of; takes those whose number is in `take` under that number.
class RecordingRegistrar final : public SlabRegistrar {
 public:
  explicit RecordingRegistrar(std::vector<std::size_t> take) : take_(std::move(take)) {}
  std::uint32_t add_slab(std::size_t slab, std::span<std::byte> bytes) override {
    told.emplace_back(slab, bytes);
    return std::find(take_.begin(), take_.end(), slab) != take_.end()
               ? static_cast<std::uint32_t>(slab)
               : kNoBufferIndex;
  }
  std::vector<std::pair<std::size_t, std::span<std::byte>>> told;

 private:
  std::vector<std::size_t> take_;
};

// The slab whose bytes hold the chunk, by the registrar's record of the slabs.
std::size_t slab_of(const RecordingRegistrar& registrar, const Chunk* c) {
  const auto* at = reinterpret_cast<const std::byte*>(c);
  for (const auto& [slab, bytes] : registrar.told) {
    if (at >= bytes.data() && c->data() + c->capacity <= bytes.data() + bytes.size()) return slab;
  }
  ADD_FAILURE() << "a chunk outside every slab told";
  return SIZE_MAX;
}

TEST(ChunkPool, EverySlabIsToldAndItsChunksNameTheIndexTaken) {
  ChunkPool pool(1000, 4);
  RecordingRegistrar registrar({0, 2});
  pool.reserve(3);  // made before the registrar: told when it is set
  std::vector<Chunk*> chunks{pool.get(), pool.get()};
  pool.set_registrar(&registrar);
  ASSERT_EQ(registrar.told.size(), 1U);
  EXPECT_EQ(registrar.told[0].second.size(), pool.slab_bytes());
  for (int i = 0; i < 10; ++i)
    chunks.push_back(pool.get());  // two more slabs, told as they are made
  ASSERT_EQ(registrar.told.size(), 3U);
  for (std::size_t i = 0; i < registrar.told.size(); ++i)
    EXPECT_EQ(registrar.told[i].first, i);
  for (Chunk* c : chunks) {
    const std::size_t slab = slab_of(registrar, c);
    EXPECT_EQ(c->buffer_index, slab == 1 ? kNoBufferIndex : static_cast<std::uint32_t>(slab));
  }
  // Without the registrar no chunk names a buffer, those made before included.
  pool.set_registrar(nullptr);
  for (Chunk* c : chunks)
    pool.put(c);
  chunks.clear();
  for (int i = 0; i < 12; ++i) {
    chunks.push_back(pool.get());
    EXPECT_EQ(chunks.back()->buffer_index, kNoBufferIndex);
  }
  for (Chunk* c : chunks)
    pool.put(c);
}

// A registered slab's pages are pinned by the kernel: given back, the process would fault in
// new pages the kernel never sees.
TEST(ChunkPool, ChunksOfARegisteredSlabKeepTheirPages) {
  ChunkPool pool(16384, 4);
  RecordingRegistrar registrar({0});
  pool.set_registrar(&registrar);
  std::vector<Chunk*> chunks;
  for (int i = 0; i < 8; ++i) {
    chunks.push_back(pool.get());
    std::memset(chunks.back()->data(), 'x', chunks.back()->capacity);
  }
  for (Chunk* c : chunks)
    pool.put(c);
  EXPECT_TRUE(pool.holds_free());  // slab 1 is plain
  pool.release_idle(100);
  EXPECT_EQ(pool.release_idle(100), 4U);
  for (Chunk* c : chunks) {
    if (c->buffer_index != kNoBufferIndex) {
      EXPECT_GE(resident_pages(c), 3U);
    }
  }
  EXPECT_EQ(pool.free_held(), 4U);
  // Every slab registered: nothing to give back, so no trim is asked for.
  ChunkPool pinned(16384, 4);
  RecordingRegistrar all({0, 1});
  pinned.set_registrar(&all);
  pinned.put(pinned.get());
  EXPECT_FALSE(pinned.holds_free());
  pinned.set_registrar(nullptr);
}

// Pinned chunks at the head of the free list do not use up a trim's quota: the plain chunks
// behind them still go back (a pool with both, after a refused registration).
TEST(ChunkPool, PinnedChunksDoNotHoldBackThePlainOnesBehindThem) {
  ChunkPool pool(16384, 4);
  RecordingRegistrar registrar({0});  // slab 0 pinned, slab 1 plain
  pool.set_registrar(&registrar);
  std::vector<Chunk*> pinned;
  std::vector<Chunk*> plain;
  for (int i = 0; i < 8; ++i) {
    Chunk* c = pool.get();
    (c->buffer_index != kNoBufferIndex ? pinned : plain).push_back(c);
  }
  ASSERT_EQ(pinned.size(), 4U);
  for (Chunk* c : plain)
    pool.put(c);
  for (Chunk* c : pinned)
    pool.put(c);         // last in: at the head of the free list
  pool.release_idle(4);  // starts the period: every free chunk has been idle since
  EXPECT_EQ(pool.release_idle(4), 4U) << "the plain chunks behind the pinned ones";
  EXPECT_EQ(pool.free_held(), 4U);
  pool.set_registrar(nullptr);
}

TEST(ChunkPool, PayloadIsWritableToCapacityAndChunksDoNotOverlap) {
  ChunkPool pool(100, 3);
  std::vector<Chunk*> chunks;
  chunks.reserve(7);
  for (int i = 0; i < 7; ++i) {
    Chunk* c = pool.get();
    std::fill_n(c->data(), c->capacity, static_cast<std::byte>(i));
    chunks.push_back(c);
  }
  for (int i = 0; i < 7; ++i) {
    const std::byte* d = chunks[i]->data();
    EXPECT_TRUE(std::all_of(d, d + 100, [&](std::byte b) { return b == std::byte(i); }));
    EXPECT_EQ(chunks[i]->capacity, 100U);
  }
  for (Chunk* c : chunks) {
    pool.put(c);
  }
}

TEST(BufferChain, StartsEmptyWithoutChunks) {
  ChunkPool pool(64);
  BufferChain chain(pool);
  EXPECT_TRUE(chain.empty());
  EXPECT_EQ(chain.size(), 0U);
  EXPECT_EQ(chain.chunk_count(), 0U);
  EXPECT_EQ(pool.outstanding(), 0U);
  EXPECT_EQ(&chain.pool(), &pool);
}

TEST(BufferChain, AppendAcrossChunkBoundariesKeepsBytesInOrder) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  const std::string data = pattern(100);
  chain.append(std::string_view(data).substr(0, 10));
  chain.append(std::string_view(data).substr(10, 30));
  chain.append(std::string_view(data).substr(40));
  EXPECT_EQ(chain.size(), 100U);
  EXPECT_EQ(chain.chunk_count(), 7U);  // ceil(100 / 16): appends fill the tail before adding
  EXPECT_EQ(contents(chain), data);
}

TEST(BufferChain, AppendOfNothingAddsNoChunk) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  chain.append(std::string_view());
  EXPECT_EQ(chain.chunk_count(), 0U);
}

TEST(BufferChain, ConsumePartialChunkKeepsTheRest) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  chain.append(std::string_view("hello world"));
  chain.consume(6);
  EXPECT_EQ(chain.size(), 5U);
  EXPECT_EQ(contents(chain), "world");
  EXPECT_EQ(pool.outstanding(), 1U);
}

TEST(BufferChain, ConsumeWholeChunksReturnsThemToPool) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  const std::string data = pattern(50);
  chain.append(data);
  EXPECT_EQ(pool.outstanding(), 4U);
  chain.consume(33);  // two whole chunks and one byte of the third
  EXPECT_EQ(pool.outstanding(), 2U);
  EXPECT_EQ(chain.chunk_count(), 2U);
  EXPECT_EQ(contents(chain), data.substr(33));
  chain.consume(chain.size());
  EXPECT_TRUE(chain.empty());
  EXPECT_EQ(chain.chunk_count(), 0U);
  EXPECT_EQ(pool.outstanding(), 0U) << "an emptied chain keeps no memory";
}

TEST(BufferChain, GatherFillsIovecsFromFront) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  const std::string data = pattern(40);
  chain.append(data);
  chain.consume(5);
  iovec iov[8];
  const std::size_t n = chain.gather(iov, 8);
  ASSERT_EQ(n, 3U);
  EXPECT_EQ(iov[0].iov_len, 11U);
  EXPECT_EQ(iov[1].iov_len, 16U);
  EXPECT_EQ(iov[2].iov_len, 8U);
  std::string joined;
  for (std::size_t i = 0; i < n; ++i) {
    joined.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
  }
  EXPECT_EQ(joined, data.substr(5));
}

// A send may name one registered buffer for all its pieces: shared_buffer_index says which, if
// they share one.
TEST(BufferChain, GatherNamesTheBufferItsPiecesShare) {
  ChunkPool pool(16, 2);
  RecordingRegistrar registrar({0, 1});
  pool.set_registrar(&registrar);
  BufferChain chain(pool);
  chain.append(pattern(32));  // the two chunks of slab 0
  iovec iov[8];
  EXPECT_EQ(chain.gather(iov, 8), 2U);
  EXPECT_EQ(chain.shared_buffer_index(2), 0U);
  chain.append(pattern(10));  // a chunk of slab 1
  EXPECT_EQ(chain.gather(iov, 8), 3U);
  EXPECT_EQ(chain.shared_buffer_index(3), kNoBufferIndex);
  EXPECT_EQ(chain.shared_buffer_index(2), 0U) << "the first two pieces alone share slab 0";
  chain.consume(32);  // the pieces of slab 0 are gone
  EXPECT_EQ(chain.gather(iov, 8), 1U);
  EXPECT_EQ(chain.shared_buffer_index(1), 1U);
  chain.clear();
  pool.set_registrar(nullptr);
}

TEST(BufferChain, GatherStopsAtMaxIov) {
  ChunkPool pool(8);
  BufferChain chain(pool);
  chain.append(pattern(80));
  iovec iov[3];
  EXPECT_EQ(chain.gather(iov, 3), 3U);
  EXPECT_EQ(chain.gather(iov, 0), 0U);
  EXPECT_EQ(iov[0].iov_len + iov[1].iov_len + iov[2].iov_len, 24U);
}

TEST(BufferChain, PrepareCommitAppendsInPlace) {
  ChunkPool pool(32);
  BufferChain chain(pool);
  chain.append(std::string_view("GET "));
  std::span<std::byte> space = chain.prepare(4);
  ASSERT_GE(space.size(), 4U);
  EXPECT_EQ(space.size(), 28U) << "the tail's free space is offered first";
  std::memcpy(space.data(), "/abc", 4);
  chain.commit(4);
  EXPECT_EQ(contents(chain), "GET /abc");
  EXPECT_EQ(chain.chunk_count(), 1U);
}

TEST(BufferChain, PrepareAddsChunkWhenTailTooSmall) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  chain.append(pattern(12));
  std::span<std::byte> space = chain.prepare(8);
  EXPECT_EQ(space.size(), 16U);
  EXPECT_EQ(chain.chunk_count(), 2U);
  std::fill_n(space.data(), 8, std::byte{'!'});
  chain.commit(8);
  EXPECT_EQ(contents(chain), pattern(12) + "!!!!!!!!");
}

TEST(BufferChain, PrepareZeroIsNeverEmpty) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  chain.append(pattern(16));  // tail full
  EXPECT_FALSE(chain.prepare(0).empty());
}

TEST(BufferChain, PrepareLargerThanChunkReturnsAWholeChunk) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  chain.append(std::string_view("ab"));
  std::span<std::byte> space = chain.prepare(100);
  EXPECT_EQ(space.size(), 16U);
  chain.commit(16);
  EXPECT_EQ(chain.size(), 18U);
}

TEST(BufferChain, UncommittedPrepareIsReusedAndFreedWithTheChain) {
  ChunkPool pool(16);
  {
    BufferChain chain(pool);
    std::span<std::byte> first = chain.prepare(4);
    std::span<std::byte> second = chain.prepare(4);
    EXPECT_EQ(first.data(), second.data());
    EXPECT_EQ(chain.chunk_count(), 1U);
    EXPECT_TRUE(chain.empty());
  }
  EXPECT_EQ(pool.outstanding(), 0U);
}

TEST(BufferChain, SpliceBackMovesChunksWithoutCopy) {
  ChunkPool pool(16);
  BufferChain front(pool);
  BufferChain back(pool);
  front.append(pattern(20, 0));
  back.append(pattern(40, 7));
  iovec before[8];
  const std::size_t n_before = back.gather(before, 8);
  front.splice_back(back);
  EXPECT_TRUE(back.empty());
  EXPECT_EQ(back.chunk_count(), 0U);
  EXPECT_EQ(front.size(), 60U);
  EXPECT_EQ(front.chunk_count(), 5U);
  EXPECT_EQ(contents(front), pattern(20, 0) + pattern(40, 7));
  iovec after[8];
  ASSERT_EQ(front.gather(after, 8), 2 + n_before);
  for (std::size_t i = 0; i < n_before; ++i) {
    EXPECT_EQ(after[2 + i].iov_base, before[i].iov_base) << "bytes must not move";
  }
  // The spliced-from chain stays usable.
  back.append(std::string_view("x"));
  EXPECT_EQ(contents(back), "x");
}

TEST(BufferChain, SpliceBackIntoEmptyChain) {
  ChunkPool pool(16);
  BufferChain to(pool);
  BufferChain from(pool);
  from.append(std::string_view("abc"));
  to.splice_back(from);
  EXPECT_EQ(contents(to), "abc");
  to.append(std::string_view("def"));
  EXPECT_EQ(contents(to), "abcdef");
}

TEST(BufferChain, SpliceBackAfterUncommittedPrepareKeepsBytesInOrder) {
  ChunkPool pool(16);
  BufferChain to(pool);
  BufferChain from(pool);
  to.append(pattern(16));
  (void)to.prepare(8);  // empty tail chunk left behind
  from.append(std::string_view("tail"));
  to.splice_back(from);
  EXPECT_EQ(contents(to), pattern(16) + "tail");
  iovec iov[4];
  EXPECT_EQ(to.gather(iov, 4), 2U) << "empty chunks are not gathered";
  to.consume(16);
  EXPECT_EQ(contents(to), "tail");
  EXPECT_EQ(to.chunk_count(), 1U);
  to.clear();
  EXPECT_EQ(pool.outstanding(), 0U);
}

TEST(BufferChain, AppendChunkLinksAFilledChunkWithoutCopy) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  chain.append(std::string_view("head"));
  (void)chain.prepare(16);  // an uncommitted tail chunk, as a response head may leave
  Chunk* filled = pool.get();
  std::memcpy(filled->data(), "0123456789", 10);
  filled->end = 10;
  chain.append_chunk(filled);
  EXPECT_EQ(chain.size(), 14U);
  EXPECT_EQ(contents(chain), "head0123456789");
  iovec iov[4];
  ASSERT_EQ(chain.gather(iov, 4), 2U);
  EXPECT_EQ(iov[1].iov_base, filled->data()) << "bytes must not move";
  chain.append(std::string_view("!"));  // later bytes go after it
  EXPECT_EQ(contents(chain), "head0123456789!");
  chain.consume(chain.size());
  EXPECT_EQ(pool.outstanding(), 0U);

  BufferChain empty(pool);
  Chunk* only = pool.get();
  only->end = 3;
  std::memcpy(only->data(), "abc", 3);
  empty.append_chunk(only);
  EXPECT_EQ(contents(empty), "abc");
  EXPECT_EQ(empty.chunk_count(), 1U);
  empty.clear();
  EXPECT_EQ(pool.outstanding(), 0U);
}

TEST(BufferChain, CopyOutFromOffset) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  const std::string data = pattern(50);
  chain.append(data);
  chain.consume(3);
  std::string out(20, '\0');
  EXPECT_EQ(chain.copy_out(10, std::as_writable_bytes(std::span(out))), 20U);
  EXPECT_EQ(out, data.substr(13, 20));
  EXPECT_EQ(chain.copy_out(40, std::as_writable_bytes(std::span(out))), 7U);
  EXPECT_EQ(out.substr(0, 7), data.substr(43));
  EXPECT_EQ(chain.copy_out(47, std::as_writable_bytes(std::span(out))), 0U);
  EXPECT_EQ(chain.copy_out(1000, std::as_writable_bytes(std::span(out))), 0U);
}

TEST(BufferChain, ForEachSegmentVisitsFrontToBack) {
  ChunkPool pool(16);
  BufferChain chain(pool);
  const std::string data = pattern(40);
  chain.append(data);
  chain.consume(4);
  std::vector<std::size_t> sizes;
  std::string joined;
  chain.for_each_segment([&](std::span<const std::byte> segment) {
    sizes.push_back(segment.size());
    joined.append(reinterpret_cast<const char*>(segment.data()), segment.size());
  });
  EXPECT_EQ(sizes, (std::vector<std::size_t>{12, 16, 8}));
  EXPECT_EQ(joined, data.substr(4));
}

TEST(BufferChain, MoveConstructorTransfersChunks) {
  ChunkPool pool(16);
  BufferChain a(pool);
  a.append(pattern(30));
  BufferChain b(std::move(a));
  EXPECT_EQ(b.size(), 30U);
  EXPECT_EQ(contents(b), pattern(30));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): moved-from state is specified
  EXPECT_EQ(a.chunk_count(), 0U);
  EXPECT_EQ(pool.outstanding(), 2U);
}

TEST(BufferChain, MoveAssignmentReleasesOldChunks) {
  ChunkPool pool(16);
  BufferChain a(pool);
  BufferChain b(pool);
  a.append(pattern(20));
  b.append(pattern(40));
  b = std::move(a);
  EXPECT_EQ(contents(b), pattern(20));
  EXPECT_EQ(pool.outstanding(), 2U);
}

TEST(BufferChain, DestructorAndClearReturnAllChunks) {
  ChunkPool pool(16);
  {
    BufferChain chain(pool);
    chain.append(pattern(100));
    EXPECT_EQ(pool.outstanding(), 7U);
    chain.clear();
    EXPECT_EQ(pool.outstanding(), 0U);
    EXPECT_TRUE(chain.empty());
    chain.append(pattern(100));
  }
  EXPECT_EQ(pool.outstanding(), 0U);
}

// Random appends, prepares, consumes, splices and copies against a std::string model.
TEST(BufferChain, RandomOperationsMatchStringModel) {
  ChunkPool pool(64, 8);
  BufferChain chain(pool);
  BufferChain side(pool);
  std::string model;
  std::string side_model;
  std::mt19937 rng(12345);
  auto pick = [&](std::size_t hi) {
    return std::uniform_int_distribution<std::size_t>(0, hi)(rng);
  };
  for (int step = 0; step < 5000; ++step) {
    switch (pick(5)) {
      case 0: {
        const std::string s = pattern(pick(300), step);
        chain.append(s);
        model += s;
        break;
      }
      case 1: {
        std::span<std::byte> space = chain.prepare(pick(80));
        const std::size_t n = pick(space.size());
        const std::string s = pattern(n, step);
        std::memcpy(space.data(), s.data(), n);
        chain.commit(n);
        model += s;
        break;
      }
      case 2: {
        const std::size_t n = pick(model.size());
        chain.consume(n);
        model.erase(0, n);
        break;
      }
      case 3: {
        const std::string s = pattern(pick(100), step + 1);
        side.append(s);
        side_model += s;
        if (pick(1) == 0) {
          chain.splice_back(side);
          model += side_model;
          side_model.clear();
        }
        break;
      }
      case 4: {
        const std::size_t offset = pick(model.size());
        std::string out(pick(200), '\0');
        const std::size_t copied = chain.copy_out(offset, std::as_writable_bytes(std::span(out)));
        ASSERT_EQ(copied, std::min(out.size(), model.size() - offset));
        ASSERT_EQ(out.substr(0, copied), model.substr(offset, copied));
        break;
      }
      default: {
        iovec iov[4];
        const std::size_t n = chain.gather(iov, 4);
        std::string joined;
        for (std::size_t i = 0; i < n; ++i) {
          ASSERT_NE(iov[i].iov_len, 0U);
          joined.append(static_cast<const char*>(iov[i].iov_base), iov[i].iov_len);
        }
        ASSERT_EQ(joined, model.substr(0, joined.size()));
        if (n < 4) {
          ASSERT_EQ(joined.size(), model.size()) << "fewer iovecs than allowed: all bytes";
        }
        break;
      }
    }
    ASSERT_EQ(chain.size(), model.size());
    ASSERT_EQ(chain.empty(), model.empty());
  }
  EXPECT_EQ(contents(chain), model);
  EXPECT_EQ(pool.outstanding(), chain.chunk_count() + side.chunk_count());
  chain.clear();
  side.clear();
  EXPECT_EQ(pool.outstanding(), 0U);
}

#if defined(RS_ASAN_ENABLED)
TEST(ChunkPoolDeathTest, TouchingReturnedChunkIsCaughtByAsan) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        ChunkPool pool(64, 2);
        Chunk* c = pool.get();
        std::byte* payload = c->data();
        pool.put(c);
        volatile std::byte sink = payload[10];
        (void)sink;
      },
      "use-after-poison");
}
#endif

}  // namespace
}  // namespace rs::core
