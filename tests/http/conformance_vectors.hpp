// Test vectors from tests/http/conformance/*.json and tests/http/vectors/*.json, compiled into the
// test binary by gen_vectors.py, each joined with its override (if any) from overrides.json.
#pragma once

#include <cstdint>
#include <ostream>
#include <span>
#include <string_view>

#include "tests/http/replay.hpp"

namespace rs::http::test {

struct ExpectedHeader {
  std::string_view name;
  std::string_view value;
};

struct ConformanceVector {
  std::string_view id;
  std::string_view file;
  std::string_view raw;
  Verdict expect;
  // Error kind and status expected by our own vectors (ringserve_requests.json); empty / 0 for
  // the upstream files, whose verdicts carry no kind.
  std::string_view expect_kind;
  int expect_status;
  std::string_view lenient_tags;  // comma-joined, empty when not lenient
  // Expected parse result; only the http-parser requests[] cases carry one.
  bool has_fields;
  std::string_view method;
  std::string_view url;
  int version_major;
  int version_minor;
  std::span<const ExpectedHeader> headers;
  std::string_view body;
  bool keep_alive;
  bool has_content_length;
  uint64_t content_length;
  bool has_upgrade;
  std::string_view upgrade;
  // Where ringserve deliberately disagrees with `expect`.
  bool overridden;
  Verdict our_verdict;
  int our_status;
  std::string_view our_kind;
  std::string_view rfc;
};

std::span<const ConformanceVector> conformance_vectors();

// Keeps gtest from dumping the struct's bytes when naming a failing case.
inline void PrintTo(const ConformanceVector& vector, std::ostream* os) {
  *os << vector.id;
}

}  // namespace rs::http::test
