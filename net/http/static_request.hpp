// The request side of static files: what a GET or HEAD for a file keeps of its head (the
// parser's views die with the receive buffers, and the answer comes later), and the pure rules
// that decide the answer: path decoding, validators, conditionals, ranges, media types.
//
// Path policy (RFC 3986 has already been checked by the parser, so the path holds only pchar,
// "/" and well-formed %XX):
// - %XX is decoded once. A decoded NUL or "/" (%00, %2F) is refused with 404: no file name
//   holds either, and a slash that only appears after decoding is how "..%2F" tricks start.
// - Segments are split on "/" after decoding. Any ".." segment (also spelled %2e%2e) is 404;
//   "." and empty segments are dropped. The root is ".". A trailing "/" is kept, so that
//   "/file.txt/" fails with ENOTDIR (404) instead of serving the file.
// - A decoded path longer than FileRequest::kMaxPathBytes is answered 414 (the server will not
//   look it up; a URI it refuses for length, not a missing file).
// The kernel then enforces the rest: the file is opened with RESOLVE_BENEATH below the root,
// so a symlink that leaves the root fails (404) and one that stays inside is followed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "net/http/request_head.hpp"

namespace rs::http {

// A single byte range from a Range field (RFC 9110 14.1.2), before the size is known.
struct ByteRange {
  enum class Kind : std::uint8_t {
    kNone,    // no Range, or one we ignore (another unit, several ranges, bad syntax)
    kFromTo,  // first-last
    kFrom,    // first-
    kSuffix,  // -length (length in `first`)
  };
  Kind kind = Kind::kNone;
  std::uint64_t first = 0;
  std::uint64_t last = 0;
};

struct FileRequest {
  static constexpr std::size_t kMaxPathBytes = 1024;
  static constexpr std::size_t kMaxTagsBytes = 256;
  static constexpr std::size_t kMaxIfRangeBytes = 128;
  // A query kept for the redirect of a directory named without its trailing slash.
  static constexpr std::size_t kMaxQueryBytes = 512;

  // User-provided on purpose: Request{} then leaves the buffers alone instead of zeroing
  // 1.4 KB for every request of every route. They are written before they are read.
  FileRequest() {}

  std::string_view path() const { return {path_bytes, path_size}; }
  std::string_view if_none_match() const { return {tags, tags_size}; }
  std::string_view if_match() const { return {match_tags, match_tags_size}; }
  std::string_view if_range() const { return {if_range_bytes, if_range_size}; }
  std::string_view query() const { return {query_bytes, query_size}; }

  std::uint16_t status = 0;  // non-zero: answer this at once (404 bad path, 414 too long)
  std::uint16_t path_size = 0;
  std::uint16_t tags_size = 0;
  std::uint16_t match_tags_size = 0;
  std::uint8_t if_range_size = 0;
  std::uint16_t query_size = 0;
  bool query_too_long = false;  // more than kMaxQueryBytes: a redirect would lose it (414)
  // Present flags: a field too long to keep stays present with an empty value, which matches
  // nothing (so the answer is a full 200, never a wrong 304 or 206).
  bool has_if_match = false;
  bool has_if_unmodified_since = false;  // and a valid date
  bool has_if_none_match = false;
  bool has_if_modified_since = false;  // and a valid date
  bool has_if_range = false;
  std::uint8_t encodings = 0;  // kAcceptsGzip | kAcceptsBr, with --precompressed only
  std::int64_t if_unmodified_since = 0;
  std::int64_t if_modified_since = 0;
  ByteRange range;
  char path_bytes[kMaxPathBytes];
  char tags[kMaxTagsBytes];        // If-None-Match
  char match_tags[kMaxTagsBytes];  // If-Match
  char if_range_bytes[kMaxIfRangeBytes];
  char query_bytes[kMaxQueryBytes];
};

// Fills `out` from the head: decoded path (or a status), conditionals and Range.
void prepare_file_request(const RequestHead& head, FileRequest& out);

// Whether a decoded path names a directory as such ("." or a trailing "/"); a directory named
// otherwise is redirected to that form, so that relative links in its index resolve below it.
inline bool names_directory(std::string_view decoded_path) {
  return decoded_path == "." || decoded_path.ends_with('/');
}

// The Location of that redirect: "/" + the decoded path percent-encoded where RFC 3986 needs
// it + "/" + "?" query when there is one. Empty when it does not fit `out`.
inline constexpr std::size_t kMaxLocationBytes = 1536;
std::string_view directory_location(const FileRequest& request, char (&out)[kMaxLocationBytes]);

// Decodes an origin-form path into out[0..cap): 0 and the size on success, else 404 or 414.
int decode_file_path(std::string_view path, char* out, std::size_t cap, std::size_t& size);

// Range = "bytes=" range-spec (one only); anything else is kNone.
ByteRange parse_range(std::string_view value);

// What a ByteRange means for a file of `size` bytes.
struct RangeAnswer {
  enum class Kind : std::uint8_t { kWhole, kPartial, kUnsatisfiable };
  Kind kind = Kind::kWhole;
  std::uint64_t first = 0;
  std::uint64_t last = 0;  // inclusive
};
RangeAnswer resolve_range(const ByteRange& range, std::uint64_t size);

// A precompressed sibling a request may be answered with (--precompressed), and the
// Accept-Encoding bits that allow each.
enum class Encoding : std::uint8_t { kIdentity, kGzip, kBr };
inline constexpr std::uint8_t kAcceptsGzip = 1;
inline constexpr std::uint8_t kAcceptsBr = 2;

// Which of gzip and br every Accept-Encoding field of the head allows (RFC 9110 12.5.3): a coding
// named with q > 0, or not named while "*" has q > 0; q=0 refuses it. "x-gzip" is gzip.
std::uint8_t accepted_encodings(const RequestHead& head);

// Strong validator from inode, size and mtime: "\"<ino hex>-<size hex>-<mtime hex>\"", with
// "-gz" or "-br" before the closing quote for a precompressed sibling, so that no two
// representations of one path share a tag, even when a sibling is a hard link.
inline constexpr std::size_t kMaxEtagBytes = 3 * 16 + 4 + 3;
std::string_view format_etag(std::uint64_t inode, std::uint64_t size, std::int64_t mtime_s,
                             Encoding encoding, char (&out)[kMaxEtagBytes]);

// Whether a kept If-Match or If-None-Match list ("*" or entity tags) names etag. The list holds
// only what the comparison may match (If-Match: no weak tags, RFC 9110 13.1.1; If-None-Match:
// tags without W/, 13.1.2), so equality is the comparison each field asks for.
bool tag_list_hits(std::string_view list, std::string_view etag);

// The preconditions of a GET or HEAD of an existing file, in the order of RFC 9110 13.2.2:
// If-Match (else If-Unmodified-Since) may fail with 412, then If-None-Match (else
// If-Modified-Since) may answer 304; otherwise 200 (Range decides further).
int evaluate_preconditions(const FileRequest& request, std::string_view etag, std::int64_t mtime_s);
// If-Range holding an entity tag: strong comparison; a weak tag never matches.
bool if_range_matches(std::string_view value, std::string_view etag, std::int64_t mtime_s);

}  // namespace rs::http
