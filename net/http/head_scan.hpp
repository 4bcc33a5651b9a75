// The one-pass scan of a complete request head, for the common case: the whole head has
// arrived in one block. It finds line ends and checks byte classes 16 or 32 bytes at a time and
// writes the field views straight into the RequestHead.
//
// It is an accelerator, not a second parser. It accepts only heads of the common shape
// (a token method other than CONNECT, an origin-form target, HTTP/1.0 or HTTP/1.1, field lines
// within the limits), every byte checked against the same rules as the state machine in
// parser.cpp, and it answers "not mine" for anything else: an unusual or invalid head, or one
// that has not fully arrived. RequestParser then runs its state machine from the first byte,
// which decides every error. So the strict policy lives in one place, and a head is accepted
// by the scan only if the state machine accepts it with the same result (the conformance test
// and the fuzzer check both on every instruction set).
//
// Instruction sets are chosen once at run time: AVX2 where the CPU has it, else SSE4.2, else a
// scalar scan. RINGSERVE_PARSER_ISA=incremental|scalar|sse4.2|avx2 forces one (tests use it),
// and a set the CPU lacks falls back to the best one it has.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "net/http/limits.hpp"
#include "net/http/request_head.hpp"

namespace rs::http {

enum class ParserIsa : uint8_t {
  kIncremental,  // no one-pass scan: the state machine parses every head
  kScalar,
  kSse42,
  kAvx2,
};

const char* to_string(ParserIsa isa);

// What the scan found besides the field views.
struct ScannedHead {
  size_t method_len = 0;  // the target starts after it and one SP
  size_t target_len = 0;
  size_t path_len = 0;     // up to the first "?", or the whole target
  int version_minor = 0;   // the major version is 1
  size_t field_count = 0;  // views written to headers[0, field_count)
  size_t head_bytes = 0;   // through the empty line's LF
};

// Scans `block` as one complete head; false means "not mine" (see above), and then `headers`
// may hold partial output. `headers` has room for limits.max_header_fields views.
using HeadScan = bool (*)(std::string_view block, const Limits& limits, Header* headers,
                          ScannedHead& out);

// nullptr for kIncremental; a set this CPU lacks gives the best one it has.
HeadScan head_scan(ParserIsa isa);

// kIncremental, kScalar and the SIMD sets this CPU has, in that order.
std::span<const ParserIsa> supported_parser_isas();

// The best supported set, or the one RINGSERVE_PARSER_ISA names; read once per process.
ParserIsa default_parser_isa();

}  // namespace rs::http
