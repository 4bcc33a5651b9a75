#include "net/http/mime_types.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <optional>
#include <stdexcept>

#include "core/log.hpp"
#include "net/http/chars.hpp"

namespace rs::http {

namespace {

struct BuiltinType {
  std::string_view extension;
  std::string_view type;
};

// What a server needs most when no mime.types file is at hand.
constexpr BuiltinType kBuiltin[] = {
    {"html", "text/html; charset=utf-8"},
    {"htm", "text/html; charset=utf-8"},
    {"css", "text/css; charset=utf-8"},
    {"js", "text/javascript; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"txt", "text/plain; charset=utf-8"},
    {"png", "image/png"},
    {"jpg", "image/jpeg"},
    {"jpeg", "image/jpeg"},
    {"gif", "image/gif"},
    {"svg", "image/svg+xml"},
    {"ico", "image/x-icon"},
    {"wasm", "application/wasm"},
    {"pdf", "application/pdf"},
    {"xml", "application/xml"},
};

constexpr std::string_view kCharset = "; charset=utf-8";
constexpr std::string_view kFix = "; fix the file, or name another with --mime-types FILE";

bool is_blank(char c) {
  return c == ' ' || c == '\t';
}

// The next blank-separated field of line (empty at its end); line moves past it.
std::string_view next_field(std::string_view& line) {
  while (!line.empty() && is_blank(line.front()))
    line.remove_prefix(1);
  std::size_t n = 0;
  while (n < line.size() && !is_blank(line[n]))
    ++n;
  const std::string_view field = line.substr(0, n);
  line.remove_prefix(n);
  return field;
}

// type "/" subtype, both tokens (RFC 9110 8.3.1).
bool is_media_type(std::string_view s) {
  const std::size_t slash = s.find('/');
  return slash != std::string_view::npos && chars::is_token(s.substr(0, slash)) &&
         chars::is_token(s.substr(slash + 1));
}

// What is wrong with one line, or nullopt; appends its extensions to `extensions` and sets
// `type`.
std::optional<std::string> parse_line(std::string_view line, std::vector<std::string>& extensions,
                                      std::string& type) {
  if (line.size() > MimeTypes::kMaxLineBytes) {
    return fmt::format("longer than {} bytes", MimeTypes::kMaxLineBytes);
  }
  // A comment may say anything (Debian's names people in UTF-8); only entries are checked.
  const std::size_t start = line.find_first_not_of(" \t");
  if (start == std::string_view::npos || line[start] == '#') return std::nullopt;
  for (const char c : line) {
    if (!is_blank(c) && (c < 0x21 || c > 0x7e)) {
      return fmt::format("holds byte 0x{:02x}; only printable ASCII, spaces and tabs may appear",
                         static_cast<unsigned char>(c));
    }
  }
  const std::string_view first = next_field(line);
  if (first.empty() || first.front() == '#') return std::nullopt;
  if (first.size() > MimeTypes::kMaxTypeBytes) {
    return fmt::format("a media type longer than {} bytes", MimeTypes::kMaxTypeBytes);
  }
  if (!is_media_type(first)) {
    return fmt::format("'{}' is not a media type (type/subtype)", first);
  }
  type.assign(first);
  if (first.size() > 5 && chars::iequals(first.substr(0, 5), "text/")) type += kCharset;
  for (std::string_view ext = next_field(line); !ext.empty(); ext = next_field(line)) {
    if (ext.size() > MimeTypes::kMaxExtensionBytes) {
      return fmt::format("extension '{}' is longer than {} bytes", ext,
                         MimeTypes::kMaxExtensionBytes);
    }
    if (!chars::is_token(ext)) {
      return fmt::format("'{}' is not an extension (token characters)", ext);
    }
    // A name is looked up by what follows its last '.': "cwl.json" could never match.
    if (ext.find('.') != std::string_view::npos) continue;
    std::string& lower = extensions.emplace_back(ext);
    for (char& c : lower)
      c = chars::to_lower(c);
  }
  return std::nullopt;
}

// The whole file, or std::runtime_error naming it and the reason.
std::string read_file(const std::string& path, std::string_view source, int& error) {
  error = 0;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
  if (fd < 0) {
    error = errno;
    return {};
  }
  struct stat st {};
  std::string text;
  std::string problem;
  if (::fstat(fd, &st) != 0) {
    problem = std::strerror(errno);
  } else if (!S_ISREG(st.st_mode)) {
    problem = "not a regular file";
  } else if (static_cast<std::uint64_t>(st.st_size) > MimeTypes::kMaxFileBytes) {
    problem = fmt::format("larger than {} bytes", MimeTypes::kMaxFileBytes);
  } else {
    text.resize(static_cast<std::size_t>(st.st_size));
    std::size_t have = 0;
    while (have < text.size()) {
      const ssize_t n = ::read(fd, text.data() + have, text.size() - have);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) problem = std::strerror(errno);
      if (n <= 0) break;
      have += static_cast<std::size_t>(n);
    }
    text.resize(have);  // a file that shrank meanwhile: what was there
  }
  ::close(fd);
  if (!problem.empty()) throw std::runtime_error(fmt::format("{}: {}{}", source, problem, kFix));
  return text;
}

}  // namespace

MimeTypes::MimeTypes() {
  finish();
}

MimeTypes MimeTypes::parse(std::string_view text, std::string_view source) {
  MimeTypes table;
  table.entries_.clear();
  std::vector<std::string> extensions;
  std::string type;
  std::size_t number = 0;
  while (!text.empty()) {
    ++number;
    const std::size_t end = text.find('\n');
    std::string_view line = text.substr(0, end);
    text.remove_prefix(end == std::string_view::npos ? text.size() : end + 1);
    if (line.ends_with('\r')) line.remove_suffix(1);
    extensions.clear();
    if (const auto problem = parse_line(line, extensions, type)) {
      throw std::runtime_error(fmt::format("{} line {}: {}{}", source, number, *problem, kFix));
    }
    if (table.entries_.size() + extensions.size() > kMaxExtensions) {
      throw std::runtime_error(fmt::format("{} line {}: more than {} extensions in the file{}",
                                           source, number, kMaxExtensions, kFix));
    }
    for (std::string& ext : extensions)
      table.entries_.push_back({std::move(ext), type});
  }
  table.finish();
  return table;
}

MimeTypes MimeTypes::load(const std::string& path) {
  const bool given = !path.empty();
  const std::string file = given ? path : std::string(kDefaultPath);
  const std::string source = given ? "--mime-types " + path : file;
  int error = 0;
  const std::string text = read_file(file, source, error);
  if (error != 0 && given) {
    throw std::runtime_error(fmt::format(
        "{}: cannot read it ({}); name a readable mime.types file, or leave the flag out for {}",
        source, std::strerror(error), kDefaultPath));
  }
  if (error != 0) {
    MimeTypes builtin;
    core::log_info(
        "{}: cannot read it ({}); media types come from the built-in table of {} "
        "extensions (install media-types, or name a file with --mime-types)",
        file, std::strerror(error), builtin.size());
    return builtin;
  }
  if (given) return parse(text, source);
  // The default file belongs to the system (a package update or an edit may change it): one it
  // cannot use costs the types it adds, not the start.
  try {
    return parse(text, source);
  } catch (const std::exception& e) {
    MimeTypes builtin;
    core::log_warn("{}; media types come from the built-in table of {} extensions", e.what(),
                   builtin.size());
    return builtin;
  }
}

void MimeTypes::finish() {
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const Entry& a, const Entry& b) { return a.extension < b.extension; });
  const auto duplicates =
      std::unique(entries_.begin(), entries_.end(),
                  [](const Entry& a, const Entry& b) { return a.extension == b.extension; });
  entries_.erase(duplicates, entries_.end());
  const std::size_t from_file = entries_.size();
  for (const BuiltinType& b : kBuiltin) {
    const auto at = std::lower_bound(
        entries_.begin(), entries_.begin() + static_cast<std::ptrdiff_t>(from_file), b.extension,
        [](const Entry& e, std::string_view ext) { return e.extension < ext; });
    if (at == entries_.begin() + static_cast<std::ptrdiff_t>(from_file) ||
        at->extension != b.extension) {
      entries_.push_back({std::string(b.extension), std::string(b.type)});
    }
  }
  std::sort(entries_.begin(), entries_.end(),
            [](const Entry& a, const Entry& b) { return a.extension < b.extension; });
}

std::string_view MimeTypes::lookup(std::string_view path) const {
  const std::size_t dot = path.rfind('.');
  const std::size_t slash = path.rfind('/');
  if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash)) {
    return kUnknown;
  }
  const std::string_view ext = path.substr(dot + 1);
  if (ext.empty() || ext.size() > kMaxExtensionBytes) return kUnknown;
  char lower[kMaxExtensionBytes];
  std::transform(ext.begin(), ext.end(), lower, chars::to_lower);
  const std::string_view key(lower, ext.size());
  const auto at = std::lower_bound(
      entries_.begin(), entries_.end(), key,
      [](const Entry& e, std::string_view k) { return std::string_view(e.extension) < k; });
  return at != entries_.end() && at->extension == key ? std::string_view(at->type) : kUnknown;
}

}  // namespace rs::http
