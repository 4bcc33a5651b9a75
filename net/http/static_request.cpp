#include "net/http/static_request.hpp"

#include <algorithm>
#include <charconv>
#include <cstring>

#include "net/http/chars.hpp"
#include "net/http/http_date.hpp"

namespace rs::http {

namespace {

using chars::hex_value;

// 1*DIGIT without overflow.
std::optional<std::uint64_t> digits(std::string_view s) {
  std::uint64_t value = 0;
  if (s.empty() || !std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

// The opaque-tag of the entity tag at the front of s (quotes included), or empty when s does
// not start with one; *weak tells whether it carried W/. s moves past it.
std::string_view next_entity_tag(std::string_view& s, bool* weak) {
  *weak = s.starts_with("W/");
  const std::size_t open = *weak ? 2 : 0;
  if (s.size() <= open || s[open] != '"') return {};
  const std::size_t close = s.find('"', open + 1);
  if (close == std::string_view::npos) return {};
  const std::string_view tag = s.substr(open, close + 1 - open);
  s.remove_prefix(close + 1);
  return tag;
}

// Whether an opaque-tag (quotes included) has the shape format_etag gives: three lowercase hex
// numbers joined by '-', perhaps followed by "-gz" or "-br". No other tag can equal one of this
// server's.
bool could_be_our_etag(std::string_view tag) {
  if (tag.size() < 7 || tag.size() > kMaxEtagBytes) return false;
  std::string_view numbers = tag.substr(1, tag.size() - 2);
  if (numbers.ends_with("-gz") || numbers.ends_with("-br")) numbers.remove_suffix(3);
  int dashes = 0;
  char previous = '-';
  for (const char c : numbers) {
    if (c == '-') {
      if (previous == '-') return false;
      ++dashes;
    } else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
      return false;
    }
    previous = c;
  }
  return dashes == 2 && previous != '-';
}

// A q value (RFC 9110 12.4.2) is zero when all its digits are: "0", "0.", "0.000".
bool zero_weight(std::string_view q) {
  return q.starts_with('0') &&
         std::all_of(q.begin() + 1, q.end(), [](char c) { return c == '.' || c == '0'; });
}

// If-Match or If-None-Match, every instance and every member of it (RFC 9110 13.1.1, 13.1.2).
// The file's own tag is known only once it is open, when the head's text is gone: "*" is kept
// as it is, and of the entity tags only those this server could have made, joined by ','. A weak
// tag is kept without W/ for If-None-Match (weak comparison) and dropped for If-Match (strong
// comparison: it never matches). A malformed list, or more tags than the room holds, keeps
// nothing, which matches nothing: If-None-Match then answers 200, If-Match 412.
void keep_entity_tags(const RequestHead& head, std::string_view name, bool strong,
                      char (&room)[FileRequest::kMaxTagsBytes], std::uint16_t& size,
                      bool& present) {
  std::size_t n = 0;
  bool any = false;
  bool unusable = false;
  for (const Header& field : head.fields()) {
    if (!chars::iequals(field.name, name)) continue;
    present = true;
    std::string_view list = chars::trim_ows(field.value);
    if (list == "*") {
      any = true;
      continue;
    }
    while (!list.empty() && !unusable) {
      if (list.front() == ',' || list.front() == ' ' || list.front() == '\t') {
        list.remove_prefix(1);
        continue;
      }
      bool weak = false;
      const std::string_view tag = next_entity_tag(list, &weak);
      if (tag.empty()) {
        unusable = true;  // nothing after it can be trusted
      } else if (could_be_our_etag(tag) && !(strong && weak)) {
        if ((n > 0 ? n + 1 : 0) + tag.size() > FileRequest::kMaxTagsBytes) {
          unusable = true;
          break;
        }
        if (n > 0) room[n++] = ',';
        std::memcpy(room + n, tag.data(), tag.size());
        n += tag.size();
      }
    }
  }
  if (any) {
    room[0] = '*';
    n = 1;
  } else if (unusable) {
    n = 0;
  }
  size = static_cast<std::uint16_t>(n);
}

// A date field: present and valid, or ignored (RFC 9110 13.1.3, 13.1.4).
void keep_date(const RequestHead& head, std::string_view name, bool& present, std::int64_t& value) {
  if (const auto text = head.header_value(name)) {
    if (const auto date = parse_http_date(*text)) {
      present = true;
      value = static_cast<std::int64_t>(*date);
    }
  }
}

}  // namespace

int decode_file_path(std::string_view path, char* out, std::size_t cap, std::size_t& size) {
  std::size_t n = 0;  // bytes of out kept so far: whole segments joined by "/"
  std::size_t i = 0;
  bool ends_in_dot = false;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    // Decode one segment behind its separator slot; keep it only if it is a real name.
    const std::size_t begin = n == 0 ? 0 : n + 1;
    std::size_t w = begin;
    for (; i < path.size() && path[i] != '/'; ++i) {
      char c = path[i];
      if (c == '%') {
        const int hi = i + 2 < path.size() ? hex_value(path[i + 1]) : -1;
        const int lo = hi >= 0 ? hex_value(path[i + 2]) : -1;
        if (lo < 0) return 404;  // the parser lets no malformed %XX through; be safe anyway
        c = static_cast<char>(hi * 16 + lo);
        i += 2;
        if (c == '\0' || c == '/') return 404;
      }
      if (w >= cap) return 414;
      out[w++] = c;
    }
    const std::string_view segment(out + begin, w - begin);
    if (segment == "..") return 404;
    // "." names the directory it is in: "/a.txt/." is "/a.txt/", which no file answers.
    ends_in_dot = segment == ".";
    if (ends_in_dot) continue;
    if (n > 0) out[n] = '/';
    n = w;
  }
  if (n == 0) {
    if (cap == 0) return 414;
    out[n++] = '.';
  } else if (path.back() == '/' || ends_in_dot) {
    if (n >= cap) return 414;
    out[n++] = '/';
  }
  size = n;
  return 0;
}

ByteRange parse_range(std::string_view value) {
  value = chars::trim_ows(value);
  ByteRange none;
  if (value.size() < 6 || !chars::iequals(value.substr(0, 6), "bytes=")) return none;
  const std::string_view spec = chars::trim_ows(value.substr(6));
  // Several ranges may be answered with the whole representation (RFC 9110 14.2).
  if (spec.find(',') != std::string_view::npos) return none;
  const std::size_t dash = spec.find('-');
  if (dash == std::string_view::npos) return none;
  const std::string_view a = spec.substr(0, dash);
  const std::string_view b = spec.substr(dash + 1);
  ByteRange range;
  if (a.empty()) {
    const auto length = digits(b);
    if (!length) return none;
    range.kind = ByteRange::Kind::kSuffix;
    range.first = *length;
    return range;
  }
  const auto first = digits(a);
  if (!first) return none;
  range.first = *first;
  if (b.empty()) {
    range.kind = ByteRange::Kind::kFrom;
    return range;
  }
  const auto last = digits(b);
  if (!last || *last < *first) return none;  // invalid: the field is ignored (14.1.1)
  range.kind = ByteRange::Kind::kFromTo;
  range.last = *last;
  return range;
}

RangeAnswer resolve_range(const ByteRange& range, std::uint64_t size) {
  RangeAnswer answer;
  answer.kind = RangeAnswer::Kind::kPartial;
  switch (range.kind) {
    case ByteRange::Kind::kNone:
      answer.kind = RangeAnswer::Kind::kWhole;
      return answer;
    case ByteRange::Kind::kFromTo:
    case ByteRange::Kind::kFrom:
      if (range.first >= size) break;
      answer.first = range.first;
      answer.last =
          range.kind == ByteRange::Kind::kFrom ? size - 1 : std::min(range.last, size - 1);
      return answer;
    case ByteRange::Kind::kSuffix:
      if (range.first == 0 || size == 0) break;
      answer.first = range.first >= size ? 0 : size - range.first;
      answer.last = size - 1;
      return answer;
  }
  answer.kind = RangeAnswer::Kind::kUnsatisfiable;
  return answer;
}

std::string_view format_etag(std::uint64_t inode, std::uint64_t size, std::int64_t mtime_s,
                             Encoding encoding, char (&out)[kMaxEtagBytes]) {
  char* at = out;
  char* const end = out + kMaxEtagBytes;
  *at++ = '"';
  at = std::to_chars(at, end, inode, 16).ptr;
  *at++ = '-';
  at = std::to_chars(at, end, size, 16).ptr;
  *at++ = '-';
  at = std::to_chars(at, end, static_cast<std::uint64_t>(mtime_s), 16).ptr;
  if (encoding != Encoding::kIdentity) {
    const std::string_view suffix = encoding == Encoding::kGzip ? "-gz" : "-br";
    at = std::copy(suffix.begin(), suffix.end(), at);
  }
  *at++ = '"';
  return {out, static_cast<std::size_t>(at - out)};
}

bool tag_list_hits(std::string_view list, std::string_view etag) {
  list = chars::trim_ows(list);
  if (list == "*") return true;
  while (!list.empty()) {
    if (list.front() == ',' || list.front() == ' ' || list.front() == '\t') {
      list.remove_prefix(1);
      continue;
    }
    bool weak = false;
    const std::string_view tag = next_entity_tag(list, &weak);
    if (tag.empty()) return false;  // malformed: stop, nothing further can be trusted
    if (tag == etag) return true;   // weak comparison: W/ does not matter
  }
  return false;
}

std::uint8_t accepted_encodings(const RequestHead& head) {
  // Per coding: -1 not named, 0 refused, 1 allowed.
  int gzip = -1;
  int br = -1;
  int any = -1;
  for (const Header& field : head.fields()) {
    if (!chars::iequals(field.name, "Accept-Encoding")) continue;
    std::string_view list = field.value;
    while (!list.empty()) {
      const std::size_t comma = list.find(',');
      std::string_view member = list.substr(0, comma);
      list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
      const std::size_t semicolon = member.find(';');
      const std::string_view coding = chars::trim_ows(member.substr(0, semicolon));
      int allowed = 1;
      if (semicolon != std::string_view::npos) {
        const std::string_view weight = chars::trim_ows(member.substr(semicolon + 1));
        if (weight.size() < 2 || chars::to_lower(weight[0]) != 'q' || weight[1] != '=') continue;
        allowed = zero_weight(chars::trim_ows(weight.substr(2))) ? 0 : 1;
      }
      if (chars::iequals(coding, "gzip") || chars::iequals(coding, "x-gzip")) {
        gzip = gzip == 0 ? 0 : allowed;  // a refusal anywhere stands
      } else if (chars::iequals(coding, "br")) {
        br = br == 0 ? 0 : allowed;
      } else if (coding == "*") {
        any = any == 0 ? 0 : allowed;
      }
    }
  }
  const auto allows = [any](int coding) { return coding == 1 || (coding == -1 && any == 1); };
  return static_cast<std::uint8_t>((allows(gzip) ? kAcceptsGzip : 0) |
                                   (allows(br) ? kAcceptsBr : 0));
}

int evaluate_preconditions(const FileRequest& f, std::string_view etag, std::int64_t mtime_s) {
  if (f.has_if_match ? !tag_list_hits(f.if_match(), etag)
                     : f.has_if_unmodified_since && mtime_s > f.if_unmodified_since) {
    return 412;
  }
  if (f.has_if_none_match ? tag_list_hits(f.if_none_match(), etag)
                          : f.has_if_modified_since && mtime_s <= f.if_modified_since) {
    return 304;
  }
  return 200;
}

bool if_range_matches(std::string_view value, std::string_view etag, std::int64_t mtime_s) {
  value = chars::trim_ows(value);
  if (value.starts_with('"') || value.starts_with("W/")) {
    bool weak = false;
    const std::string_view tag = next_entity_tag(value, &weak);
    return !weak && !tag.empty() && chars::trim_ows(value).empty() && tag == etag;
  }
  const auto date = parse_http_date(value);
  return date && static_cast<std::int64_t>(*date) == mtime_s;
}

std::string_view directory_location(const FileRequest& request, char (&out)[kMaxLocationBytes]) {
  constexpr char kHex[] = "0123456789ABCDEF";
  const std::string_view path = request.path();
  const std::string_view query = request.query();
  std::size_t n = 0;
  // The longest a path can become, checked once: every byte may take three.
  if (1 + 3 * path.size() + 2 + query.size() > kMaxLocationBytes) return {};
  out[n++] = '/';
  for (const char c : path) {
    if (c == '/' || chars::has(c, chars::kPchar)) {
      out[n++] = c;
    } else {
      const auto byte = static_cast<unsigned char>(c);
      out[n++] = '%';
      out[n++] = kHex[byte >> 4];
      out[n++] = kHex[byte & 15];
    }
  }
  out[n++] = '/';
  if (!query.empty()) {
    out[n++] = '?';
    std::memcpy(out + n, query.data(), query.size());  // the parser checked its bytes
    n += query.size();
  }
  return {out, n};
}

void prepare_file_request(const RequestHead& head, FileRequest& out) {
  std::size_t size = 0;
  out.status = static_cast<std::uint16_t>(
      decode_file_path(head.path, out.path_bytes, FileRequest::kMaxPathBytes, size));
  out.path_size = out.status == 0 ? static_cast<std::uint16_t>(size) : 0;
  // Only a path that may be a directory named without its slash can need the query.
  out.query_too_long = head.query.size() > FileRequest::kMaxQueryBytes;
  out.query_size = 0;
  if (out.status == 0 && !names_directory(out.path()) && !out.query_too_long &&
      !head.query.empty()) {
    out.query_size = static_cast<std::uint16_t>(head.query.size());
    std::memcpy(out.query_bytes, head.query.data(), head.query.size());
  }
  keep_entity_tags(head, "If-Match", /*strong=*/true, out.match_tags, out.match_tags_size,
                   out.has_if_match);
  keep_entity_tags(head, "If-None-Match", /*strong=*/false, out.tags, out.tags_size,
                   out.has_if_none_match);
  keep_date(head, "If-Unmodified-Since", out.has_if_unmodified_since, out.if_unmodified_since);
  keep_date(head, "If-Modified-Since", out.has_if_modified_since, out.if_modified_since);
  if (const auto if_range = head.header_value("If-Range")) {
    out.has_if_range = true;
    const bool fits = if_range->size() <= FileRequest::kMaxIfRangeBytes;
    out.if_range_size = fits ? static_cast<std::uint8_t>(if_range->size()) : 0;
    if (fits) std::memcpy(out.if_range_bytes, if_range->data(), if_range->size());
  }
  if (const auto range = head.header_value("Range")) out.range = parse_range(*range);
}

}  // namespace rs::http
