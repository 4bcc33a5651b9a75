// Media types by file extension, for the Content-Type of static files. The table is built once
// at start-up from a mime.types file (Debian's media-types package installs /etc/mime.types;
// --mime-types names another) over a small built-in table, and is then only read: lookup() is
// a binary search over a sorted flat table and never allocates.
//
// The file's format: one "type/subtype ext ext ..." per line, fields separated by spaces or
// tabs; blank lines and lines whose first non-blank byte is '#' are skipped, and so is a type
// with no extensions. Extensions are compared case-insensitively. An extension named twice keeps
// its first type. The built-in table answers for extensions the file does not name. text/* types
// from the file are sent with "; charset=utf-8", as the built-in ones are.
//
// The file is bounded (kMaxFileBytes, kMaxLineBytes, kMaxExtensions, the lengths of a type and
// an extension): a file that breaks a bound or the format is refused with an error that names the
// file, the line and what is wrong.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace rs::http {

class MimeTypes {
 public:
  static constexpr std::size_t kMaxFileBytes = 4u << 20;
  static constexpr std::size_t kMaxLineBytes = 1024;
  static constexpr std::size_t kMaxExtensions = 20000;
  static constexpr std::size_t kMaxExtensionBytes = 32;
  static constexpr std::size_t kMaxTypeBytes = 255;  // RFC 6838 4.2: 127 + "/" + 127
  static constexpr std::string_view kDefaultPath = "/etc/mime.types";
  static constexpr std::string_view kUnknown = "application/octet-stream";

  // The built-in table alone.
  MimeTypes();

  // The text of a mime.types file over the built-in table. Throws std::runtime_error starting
  // with `source` (how the file is named in messages), the line number and what is wrong.
  static MimeTypes parse(std::string_view text, std::string_view source);

  // What --mime-types asks for. Empty: kDefaultPath, or the built-in table when it cannot be
  // read (a missing file is no error: a log line says which table is in use). A path: that
  // file, or std::runtime_error saying why it cannot be used and what to do.
  static MimeTypes load(const std::string& path);

  // The media type of the file a path names, by the extension of its last segment;
  // kUnknown when it has none or an unknown one.
  std::string_view lookup(std::string_view path) const;

  // Extensions known.
  std::size_t size() const { return entries_.size(); }

 private:
  struct Entry {
    std::string extension;  // lowercase
    std::string type;
  };
  // Sorts by extension, keeps the first of each, then adds the built-in ones not named.
  void finish();

  std::vector<Entry> entries_;
};

}  // namespace rs::http
