// Assertions shared by the parser tests. Every request a test parses is also checked for
// split-point invariance, so each unit test doubles as a split test.
#pragma once

#include <gtest/gtest.h>

#include <string_view>

#include "net/http/parser.hpp"
#include "tests/http/replay.hpp"

namespace rs::http::test {

// Whole (with every head scan this CPU has, and with none), two pieces at every split point
// (sampled above a few KiB), and byte by byte: the replays must be identical.
::testing::AssertionResult split_invariant(std::string_view raw, const Limits& limits = {},
                                           size_t max_messages = 1);

// Parses `raw` (after checking split invariance) and returns the replay of the whole input.
Replay parse(std::string_view raw, const Limits& limits = {}, size_t max_messages = 1);

// The first request is rejected with `kind`, which maps to `status`.
::testing::AssertionResult rejects(std::string_view raw, ParseError kind, int status,
                                   const Limits& limits = {});

// The first request is complete.
::testing::AssertionResult accepts(std::string_view raw, const Limits& limits = {});

}  // namespace rs::http::test
