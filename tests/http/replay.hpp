// Drives RequestParser the way a server does, over input cut into pieces, and records the
// outcome as owned values so that runs over different cuts can be compared. Shared by the unit
// tests, the split-point tests and the fuzz target.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/http/parser.hpp"

namespace rs::http::test {

enum class Verdict : uint8_t { kIncomplete, kComplete, kError };
const char* to_string(Verdict verdict);

// One request as the parser saw it, copied out of the parser's views.
struct Message {
  Verdict verdict = Verdict::kIncomplete;
  ParseError error = ParseError::kNone;
  bool head_complete = false;
  std::string method, target, path, query, host;
  TargetForm form = TargetForm::kOrigin;
  int version_major = 0;
  int version_minor = 0;
  std::vector<std::pair<std::string, std::string>> headers;
  bool keep_alive = false;
  bool expect_continue = false;
  bool chunked = false;
  std::optional<uint64_t> content_length;
  size_t head_bytes = 0;
  std::string body;
  uint64_t message_bytes = 0;

  bool operator==(const Message&) const = default;
};

struct Replay {
  // Complete messages in order; the last one may instead be incomplete or an error.
  std::vector<Message> messages;
  // Bytes left untouched when the run stopped after a complete message (the connection would
  // close, or max_messages was reached): pipelined or upgrade data.
  std::string rest;

  bool operator==(const Replay&) const = default;
  const Message& first() const { return messages.front(); }
};

// Feeds `raw` cut at the ascending offsets `cuts`. Every parse_head call gets a freshly
// allocated copy of the block and every parse_body call a fresh copy of its piece, so a view
// that outlives its buffer is caught by the sanitizers. Stops after `max_messages` complete
// messages, after one that is not keep-alive, or at an error.
// `isa` picks the parser's one-pass head scan (head_scan.hpp), so that runs can be compared.
Replay replay(std::string_view raw, std::span<const size_t> cuts, const Limits& limits = {},
              size_t max_messages = 1, ParserIsa isa = default_parser_isa());

Replay replay_whole(std::string_view raw, const Limits& limits = {}, size_t max_messages = 1,
                    ParserIsa isa = default_parser_isa());
Replay replay_bytewise(std::string_view raw, const Limits& limits = {}, size_t max_messages = 1);

// Human-readable dump for assertion messages.
std::string describe(const Replay& replay);
std::string escape(std::string_view bytes);

}  // namespace rs::http::test
