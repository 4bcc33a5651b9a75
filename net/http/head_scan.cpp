#include "net/http/head_scan.hpp"

// Every header this file needs is included here, before any target region: a function defined
// inside a region is compiled for that instruction set, and a library inline function compiled
// that way could be picked by the linker for callers on any CPU.
#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "net/http/chars.hpp"

#if defined(__x86_64__)
#include <immintrin.h>
#define RS_HAVE_X86_SIMD 1
#endif

namespace rs::http {

namespace {

bool is_connect(const char* begin, const char* end) {
  return end - begin == 7 && std::memcmp(begin, "CONNECT", 7) == 0;
}

// The byte classes the kernels scan: token characters, the path of an origin-form target
// (pchar / "/", so that it stops at "?"), and its query (pchar / "/" / "?").
enum class Class : uint8_t { kToken, kPath, kQuery };

template <Class C>
[[gnu::always_inline]] inline bool in_class(char c) {
  if constexpr (C == Class::kToken) {
    return chars::is_tchar(c);
  } else if constexpr (C == Class::kPath) {
    return chars::has(c, chars::kPchar) || c == '/';
  } else {
    return chars::has(c, chars::kPathQuery);
  }
}

template <Class C>
[[gnu::always_inline]] inline const char* skip_class(const char* p, const char* end) {
  while (p < end && in_class<C>(*p)) {
    ++p;
  }
  return p;
}

[[gnu::always_inline]] inline const char* skip_value(const char* p, const char* end) {
  while (p < end && chars::is_value_char(*p)) {
    ++p;
  }
  return p;
}

template <Class C>
constexpr chars::NibbleTables kNibbles = C == Class::kToken ? chars::nibble_tables(chars::kTchar)
                                         : C == Class::kPath
                                             ? chars::nibble_tables(chars::kPchar, "/")
                                             : chars::nibble_tables(chars::kPathQuery);

}  // namespace

namespace scalar {
namespace {
template <Class C>
[[gnu::always_inline]] inline const char* scan_class(const char* p, const char* end) {
  return skip_class<C>(p, end);
}
[[gnu::always_inline]] inline const char* scan_value(const char* p, const char* end) {
  return skip_value(p, end);
}
#include "net/http/head_scan_body.inl"
}  // namespace
}  // namespace scalar

#if RS_HAVE_X86_SIMD

#if defined(__clang__)
#define RS_TARGET_REGION(isa) \
  _Pragma(RS_STRINGIFY(clang attribute push(__attribute__((target(isa))), apply_to = function)))
#define RS_END_TARGET_REGION _Pragma("clang attribute pop")
#else
#define RS_TARGET_REGION(isa) _Pragma("GCC push_options") _Pragma(RS_STRINGIFY(GCC target(isa)))
#define RS_END_TARGET_REGION _Pragma("GCC pop_options")
#endif
#define RS_STRINGIFY(x) #x

// 16 bytes at a time: SSSE3 byte shuffles for the class lookups.
RS_TARGET_REGION("sse4.2")
namespace sse42 {
namespace {

// Bit i set when byte i of the 16 at p is outside the class.
template <Class C>
[[gnu::always_inline]] inline unsigned misses16(const char* p) {
  const chars::NibbleTables& n = kNibbles<C>;
  const __m128i lo_table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(n.lo.data()));
  const __m128i hi_table = _mm_loadu_si128(reinterpret_cast<const __m128i*>(n.hi.data()));
  const __m128i nibble = _mm_set1_epi8(0x0f);
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i lo = _mm_shuffle_epi8(lo_table, _mm_and_si128(v, nibble));
  const __m128i hi = _mm_shuffle_epi8(hi_table, _mm_and_si128(_mm_srli_epi16(v, 4), nibble));
  const __m128i in = _mm_and_si128(lo, hi);
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(in, _mm_setzero_si128())));
}

// Bit i set at a CTL other than HTAB, or DEL: the bytes a field value may not hold.
[[gnu::always_inline]] inline unsigned value_stops16(const char* p) {
  const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  const __m128i c1f = _mm_set1_epi8(0x1f);
  const __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, c1f), c1f);
  const __m128i tab = _mm_cmpeq_epi8(v, _mm_set1_epi8('\t'));
  const __m128i del = _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f));
  return static_cast<unsigned>(_mm_movemask_epi8(_mm_or_si128(_mm_andnot_si128(tab, ctl), del)));
}

template <Class C>
[[gnu::always_inline]] inline const char* scan_class(const char* p, const char* end) {
  for (; end - p >= 16; p += 16) {
    const unsigned miss = misses16<C>(p);
    if (miss != 0) {
      return p + __builtin_ctz(miss);
    }
  }
  return skip_class<C>(p, end);
}

[[gnu::always_inline]] inline const char* scan_value(const char* p, const char* end) {
  for (; end - p >= 16; p += 16) {
    const unsigned stop = value_stops16(p);
    if (stop != 0) {
      return p + __builtin_ctz(stop);
    }
  }
  return skip_value(p, end);
}

#include "net/http/head_scan_body.inl"

}  // namespace
}  // namespace sse42
RS_END_TARGET_REGION

// 32 bytes at a time, then 16, then one.
RS_TARGET_REGION("avx2,bmi")
namespace avx2 {
namespace {

template <Class C>
[[gnu::always_inline]] inline unsigned misses32(const char* p) {
  const chars::NibbleTables& n = kNibbles<C>;
  const __m256i lo_table =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(n.lo.data())));
  const __m256i hi_table =
      _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(n.hi.data())));
  const __m256i nibble = _mm256_set1_epi8(0x0f);
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i lo = _mm256_shuffle_epi8(lo_table, _mm256_and_si256(v, nibble));
  const __m256i hi =
      _mm256_shuffle_epi8(hi_table, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
  const __m256i in = _mm256_and_si256(lo, hi);
  return static_cast<unsigned>(_mm256_movemask_epi8(_mm256_cmpeq_epi8(in, _mm256_setzero_si256())));
}

[[gnu::always_inline]] inline unsigned value_stops32(const char* p) {
  const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
  const __m256i c1f = _mm256_set1_epi8(0x1f);
  const __m256i ctl = _mm256_cmpeq_epi8(_mm256_max_epu8(v, c1f), c1f);
  const __m256i tab = _mm256_cmpeq_epi8(v, _mm256_set1_epi8('\t'));
  const __m256i del = _mm256_cmpeq_epi8(v, _mm256_set1_epi8(0x7f));
  return static_cast<unsigned>(
      _mm256_movemask_epi8(_mm256_or_si256(_mm256_andnot_si256(tab, ctl), del)));
}

template <Class C>
[[gnu::always_inline]] inline const char* scan_class(const char* p, const char* end) {
  for (; end - p >= 32; p += 32) {
    const unsigned miss = misses32<C>(p);
    if (miss != 0) {
      return p + __builtin_ctz(miss);
    }
  }
  return sse42::scan_class<C>(p, end);
}

[[gnu::always_inline]] inline const char* scan_value(const char* p, const char* end) {
  for (; end - p >= 32; p += 32) {
    const unsigned stop = value_stops32(p);
    if (stop != 0) {
      return p + __builtin_ctz(stop);
    }
  }
  return sse42::scan_value(p, end);
}

#include "net/http/head_scan_body.inl"

}  // namespace
}  // namespace avx2
RS_END_TARGET_REGION

#endif  // RS_HAVE_X86_SIMD

namespace {

std::array<ParserIsa, 4> detect_isas(size_t& count) {
  std::array<ParserIsa, 4> isas{ParserIsa::kIncremental, ParserIsa::kScalar};
  count = 2;
#if RS_HAVE_X86_SIMD
  __builtin_cpu_init();
  if (__builtin_cpu_supports("sse4.2") && __builtin_cpu_supports("ssse3")) {
    isas[count++] = ParserIsa::kSse42;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("bmi")) {
      isas[count++] = ParserIsa::kAvx2;
    }
  }
#endif
  return isas;
}

struct Supported {
  size_t count = 0;
  std::array<ParserIsa, 4> isas = detect_isas(count);
};

const Supported& supported() {
  static const Supported s;
  return s;
}

}  // namespace

const char* to_string(ParserIsa isa) {
  switch (isa) {
    case ParserIsa::kIncremental:
      return "incremental";
    case ParserIsa::kScalar:
      return "scalar";
    case ParserIsa::kSse42:
      return "sse4.2";
    case ParserIsa::kAvx2:
      return "avx2";
  }
  return "?";
}

std::span<const ParserIsa> supported_parser_isas() {
  const Supported& s = supported();
  return {s.isas.data(), s.count};
}

HeadScan head_scan(ParserIsa isa) {
  // A set this CPU lacks would be an illegal instruction: the best one it has instead.
  const std::span<const ParserIsa> isas = supported_parser_isas();
  if (std::find(isas.begin(), isas.end(), isa) == isas.end()) {
    isa = isas.back();
  }
  switch (isa) {
    case ParserIsa::kIncremental:
      return nullptr;
    case ParserIsa::kScalar:
      return scalar::scan_head;
#if RS_HAVE_X86_SIMD
    case ParserIsa::kSse42:
      return sse42::scan_head;
    case ParserIsa::kAvx2:
      return avx2::scan_head;
#else
    default:
      return scalar::scan_head;
#endif
  }
  return nullptr;
}

ParserIsa default_parser_isa() {
  static const ParserIsa isa = [] {
    const std::span<const ParserIsa> isas = supported_parser_isas();
    const char* wanted = std::getenv("RINGSERVE_PARSER_ISA");
    if (wanted == nullptr) {
      return isas.back();
    }
    for (const ParserIsa candidate : isas) {
      if (std::string_view(wanted) == to_string(candidate)) {
        return candidate;
      }
    }
    std::fprintf(stderr,
                 "RINGSERVE_PARSER_ISA=%s: not one of incremental, scalar, sse4.2, avx2 that this "
                 "CPU has; using %s\n",
                 wanted, to_string(isas.back()));
    return isas.back();
  }();
  return isa;
}

}  // namespace rs::http
