// libFuzzer target for the request parser. Each input is parsed whole (with each head scan and
// with none), in pieces cut at points derived from the input, and (when short) byte by byte;
// any difference aborts, as does any broken byte-accounting invariant. Sanitizers catch the memory
// errors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "net/http/parser.hpp"
#include "tests/http/replay.hpp"

namespace {

using rs::http::Limits;
using rs::http::test::Message;
using rs::http::test::Replay;
using rs::http::test::Verdict;

constexpr size_t kMaxMessages = 4;
constexpr size_t kBytewiseMax = 512;

// Small limits, so that short inputs reach every limit path too.
Limits small_limits() {
  Limits limits;
  limits.max_request_line_bytes = 64;
  limits.max_header_bytes = 256;
  limits.max_header_fields = 8;
  limits.max_body_bytes = 512;
  limits.max_chunk_line_bytes = 32;
  return limits;
}

// Every complete message plus the untouched rest must account for every input byte exactly.
void check_accounting(const Replay& replay, size_t input_size) {
  uint64_t used = 0;
  for (const Message& m : replay.messages) {
    if (m.verdict != Verdict::kComplete) return;
    if (m.head_bytes > m.message_bytes) std::abort();
    used += m.message_bytes;
  }
  if (!replay.rest.empty() && used + replay.rest.size() != input_size) std::abort();
  if (used > input_size) std::abort();
  const Message& last = replay.messages.back();
  if (!last.keep_alive || replay.messages.size() == kMaxMessages) {
    if (used + replay.rest.size() != input_size) std::abort();
  }
}

void check(std::string_view raw, const Limits& limits) {
  const Replay whole = rs::http::test::replay_whole(raw, limits, kMaxMessages);
  if (!whole.messages.empty()) check_accounting(whole, raw.size());
  for (const Message& m : whole.messages) {
    if (m.verdict == Verdict::kError && rs::http::status_for(m.error) < 400) std::abort();
  }
  // The one-pass head scan on every instruction set, and none at all, must agree.
  for (const rs::http::ParserIsa isa : rs::http::supported_parser_isas()) {
    if (rs::http::test::replay_whole(raw, limits, kMaxMessages, isa) != whole) std::abort();
  }
  if (raw.empty()) return;
  const auto* bytes = reinterpret_cast<const unsigned char*>(raw.data());
  const size_t a = (bytes[0] * 131U + bytes[raw.size() - 1]) % (raw.size() + 1);
  const size_t b = a + (raw.size() - a) / 2;
  const size_t one_cut[] = {a};
  if (rs::http::test::replay(raw, one_cut, limits, kMaxMessages) != whole) std::abort();
  const size_t two_cuts[] = {a, b};
  if (rs::http::test::replay(raw, two_cuts, limits, kMaxMessages) != whole) std::abort();
  if (raw.size() <= kBytewiseMax &&
      rs::http::test::replay_bytewise(raw, limits, kMaxMessages) != whole) {
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view raw(reinterpret_cast<const char*>(data), size);
  check(raw, Limits{});
  check(raw, small_limits());
  return 0;
}
