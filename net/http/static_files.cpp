#include "net/http/static_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "net/http/http_date.hpp"
#include "net/http/response.hpp"
#include "net/http/session.hpp"
#include "net/http/session_factory.hpp"

namespace rs::http {

namespace {

// One chunk per read; one read in flight per answer.
constexpr std::size_t kReadBytes = 16 << 10;
constexpr std::string_view kIndex = "/index.html";
constexpr std::string_view kSuffixBytes = ".gz";  // as long as ".br"
static_assert(FileRequest::kMaxPathBytes + kIndex.size() + kSuffixBytes.size() <=
              net::FileService::kMaxPathBytes);

std::string_view suffix_of(Encoding encoding) {
  switch (encoding) {
    case Encoding::kGzip:
      return ".gz";
    case Encoding::kBr:
      return ".br";
    case Encoding::kIdentity:
      break;
  }
  return "";
}

std::string_view content_encoding_of(Encoding encoding) {
  return encoding == Encoding::kGzip ? "gzip" : "br";
}

// The sibling to try after `tried` (kIdentity: the file itself; it is tried last): br before
// gzip, each only when the request accepts it.
Encoding next_encoding(Encoding tried, std::uint8_t accepted) {
  if (tried == Encoding::kIdentity && (accepted & kAcceptsBr) != 0) return Encoding::kBr;
  if (tried != Encoding::kGzip && (accepted & kAcceptsGzip) != 0) return Encoding::kGzip;
  return Encoding::kIdentity;
}

// Out of descriptors or memory is the server's trouble, not a missing file.
int status_for_open_error(int error) {
  switch (error) {
    case EMFILE:
    case ENFILE:
    case ENOMEM:
    case EAGAIN:
      return 503;
    case EIO:
      return 500;
    default:  // ENOENT, ENOTDIR, EXDEV (leaves the root), ELOOP, EACCES, ENAMETOOLONG, ...
      return 404;
  }
}

std::string_view body_for(int status) {
  switch (status) {
    case 301:
      return "Moved Permanently\n";
    case 403:
      return "Forbidden\n";
    case 412:
      return "Precondition Failed\n";
    case 414:
      return "URI Too Long\n";
    case 500:
      return "Internal Server Error\n";
    case 503:
      return "Service Unavailable\n";
    default:
      return "Not Found\n";
  }
}

// "bytes first-last/size", or "bytes */size" when unsatisfiable.
std::string_view content_range(const RangeAnswer& range, std::uint64_t size, char (&out)[72]) {
  char* at = out;
  char* const end = out + sizeof(out);
  constexpr std::string_view kUnit = "bytes ";
  at = std::copy(kUnit.begin(), kUnit.end(), at);
  if (range.kind == RangeAnswer::Kind::kUnsatisfiable) {
    *at++ = '*';
  } else {
    at = std::to_chars(at, end, range.first).ptr;
    *at++ = '-';
    at = std::to_chars(at, end, range.last).ptr;
  }
  *at++ = '/';
  at = std::to_chars(at, end, size).ptr;
  return {out, static_cast<std::size_t>(at - out)};
}

}  // namespace

int open_root_directory(const std::string& root) {
  if (root.empty()) return -1;
  const int fd = ::open(root.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) {
    throw std::runtime_error(
        fmt::format("--root {}: cannot open it as a directory ({}); name an existing directory "
                    "the server may search",
                    root, std::strerror(errno)));
  }
  return fd;
}

void close_root_directory(int fd) {
  if (fd >= 0) ::close(fd);
}

void serve_static(HttpSession& s, const Request& r) {
  if (r.file.status != 0) {
    s.respond(r, s.connection().output(), r.file.status, "text/plain", body_for(r.file.status));
    return;
  }
  Pending* pending = s.defer(r);
  pending->transfer.start(*pending, s.factory().shared().root_fd());
}

FileTransfer::~FileTransfer() {
  close_file();  // the connection closed first: the file service drops what is in flight
}

void FileTransfer::start(Pending& pending, int root_fd) {
  pending_ = &pending;
  root_fd_ = root_fd;
  files_ = &pending.session->factory().services().files();
  open_first();
}

// The best precompressed sibling the request accepts first, the file itself last. A directory
// has no siblings (its index.html may).
void FileTransfer::open_first() {
  const FileRequest& f = pending_->request.file;
  const bool directory = !index_ && names_directory(f.path());
  encoding_ = directory ? Encoding::kIdentity : next_encoding(Encoding::kIdentity, f.encodings);
  open_candidate();
}

// Opens the file (or its directory's index.html) with the suffix of encoding_, from the root
// again each time so that the same rules (nothing outside the root) hold for every one.
void FileTransfer::open_candidate() {
  const std::string_view base = pending_->request.file.path();
  char path[net::FileService::kMaxPathBytes];
  std::size_t n = base.size();
  std::memcpy(path, base.data(), n);
  if (index_) {
    const std::string_view index = base.ends_with('/') ? kIndex.substr(1) : kIndex;
    std::memcpy(path + n, index.data(), index.size());
    n += index.size();
  }
  const std::string_view suffix = suffix_of(encoding_);
  std::memcpy(path + n, suffix.data(), suffix.size());
  n += suffix.size();
  handle_ = files_->open(root_fd_, {path, n}, *this);
}

void FileTransfer::close_file() {
  if (handle_ != nullptr) files_->close(std::exchange(handle_, nullptr));
  reading_ = false;
}

void FileTransfer::on_file_opened(int error, const net::FileInfo& info) {
  if (pending_->session->connection().closed()) {
    close_file();  // the session goes away at the end of this turn, and this with it
    return;
  }
  if (encoding_ != Encoding::kIdentity && (error != 0 || !info.regular)) {
    close_file();  // no such sibling (or not a file): the next one, the file itself at last
    encoding_ = next_encoding(encoding_, pending_->request.file.encodings);
    open_candidate();
    return;
  }
  if (error == 0 && info.directory && !index_) {
    close_file();
    if (names_directory(pending_->request.file.path())) {
      index_ = true;
      open_first();
    } else {
      answer_redirect();
    }
    return;
  }
  if (index_ && error == ENOENT) {
    close_file();
    answer_error(403);  // a directory without index.html: no listing (nginx without autoindex)
    return;
  }
  if (error != 0 || !info.regular) {
    close_file();
    answer_error(error != 0 ? status_for_open_error(error) : 404);
    return;
  }
  answer(info);
}

void FileTransfer::answer(const net::FileInfo& info) {
  Pending& p = *pending_;
  HttpSession& s = *p.session;
  const Request& r = p.request;
  const FileRequest& f = r.file;
  char etag_text[kMaxEtagBytes];
  const std::string_view etag =
      format_etag(info.inode, info.size, info.mtime_s, encoding_, etag_text);
  char modified[kImfFixdateLength];
  format_imf_fixdate(static_cast<std::time_t>(info.mtime_s), modified);

  // RFC 9110 13.2.2: the preconditions first; Range (GET only) counts only when the validators
  // say the client still has what it asks a part of.
  int status = evaluate_preconditions(f, etag, info.mtime_s);
  if (status == 412) {
    close_file();
    answer_error(412);
    return;
  }
  RangeAnswer range;
  if (status == 200 && r.method == Method::kGet && f.range.kind != ByteRange::Kind::kNone &&
      (!f.has_if_range || if_range_matches(f.if_range(), etag, info.mtime_s))) {
    range = resolve_range(f.range, info.size);
    if (range.kind == RangeAnswer::Kind::kPartial) status = 206;
    if (range.kind == RangeAnswer::Kind::kUnsatisfiable) status = 416;
  }
  const std::uint64_t first = status == 206 ? range.first : 0;
  const std::uint64_t length = status == 206 ? range.last - range.first + 1 : info.size;
  const bool has_body = (status == 200 || status == 206) && !r.head_only && length > 0;
  const Persistence persistence = s.answer_closes(p) ? Persistence::kClose : r.persistence();
  s.note_response(r, status, has_body ? length : 0);

  net::Connection& conn = s.connection();
  ResponseHead head(conn.deferred_output(p.slot), status, s.factory().stamp());
  char range_text[72];
  const HttpConfig& config = s.factory().config();
  if (!config.cache_control.empty() && status != 416)
    head.add("Cache-Control", config.cache_control);
  // With --precompressed every file answer depends on Accept-Encoding, also one without a
  // sibling (which may appear) or for a client that accepts no coding.
  if (config.precompressed) head.add("Vary", "Accept-Encoding");
  if (status == 304) {
    head.add("ETag", etag).add("Last-Modified", {modified, kImfFixdateLength});
  } else if (status == 416) {
    head.add("Content-Range", content_range(range, info.size, range_text))
        .add("Content-Length", std::uint64_t{0});
  } else {
    const std::string_view name = index_ ? kIndex : f.path();
    head.add("Content-Type", s.factory().shared().mime_types().lookup(name));
    if (encoding_ != Encoding::kIdentity)
      head.add("Content-Encoding", content_encoding_of(encoding_));
    head.add("Content-Length", length)
        .add("Last-Modified", {modified, kImfFixdateLength})
        .add("ETag", etag)
        .add("Accept-Ranges", "bytes");
    if (status == 206) head.add("Content-Range", content_range(range, info.size, range_text));
  }
  head.finish(persistence);
  if (!has_body) {
    finish();
    return;
  }
  offset_ = first;
  end_ = first + length;
  streaming_ = true;
  conn.flush_deferred(p.slot);  // the head leaves now when this answer is first in line
  s.note_output();
  read_more();
}

// 301 to the directory's name with its trailing slash (the query kept), as nginx answers:
// relative links in its index then resolve below it.
void FileTransfer::answer_redirect() {
  close_file();
  Pending& p = *pending_;
  const FileRequest& f = p.request.file;
  char location_text[kMaxLocationBytes];
  const std::string_view location =
      f.query_too_long ? std::string_view() : directory_location(f, location_text);
  if (location.empty()) {
    answer_error(414);  // the redirect could not carry the URI whole
    return;
  }
  HttpSession& s = *p.session;
  const std::string_view body = body_for(301);
  const Persistence persistence =
      s.answer_closes(p) ? Persistence::kClose : p.request.persistence();
  s.note_response(p.request, 301, p.request.head_only ? 0 : body.size());
  core::BufferChain& out = s.connection().deferred_output(p.slot);
  ResponseHead head(out, 301, s.factory().stamp());
  head.add("Location", location)
      .add("Content-Type", "text/plain")
      .add("Content-Length", body.size());
  head.finish(persistence);
  if (!p.request.head_only) out.append(body);
  finish();
}

void FileTransfer::answer_error(int status) {
  Pending& p = *pending_;
  HttpSession& s = *p.session;
  if (s.answer_closes(p)) p.request.keep_alive = false;
  s.respond(p.request, s.connection().deferred_output(p.slot), status, "text/plain",
            body_for(status));
  finish();
}

void FileTransfer::read_more() {
  if (reading_ || handle_ == nullptr || offset_ >= end_) return;
  // Reading stops while more than --max-queued-output-bytes is queued ahead of this answer's
  // end and goes on when output has drained: enough to keep the socket busy between reads,
  // little enough that a thousand slow downloads hold a few chunks each rather than their
  // files. Answers queued behind this one do not count: they leave only after it, so waiting
  // for them would wait for ever.
  HttpSession& session = *pending_->session;
  const net::Connection& conn = session.connection();
  if (conn.closed() || conn.queued_bytes_through(pending_->slot) >
                           session.factory().config().max_queued_output_bytes) {
    return;  // resume() goes on
  }
  reading_ = true;
  files_->read(handle_, offset_,
               static_cast<std::size_t>(std::min<std::uint64_t>(end_ - offset_, kReadBytes)));
}

void FileTransfer::on_file_read(int result, core::Chunk* chunk) {
  reading_ = false;
  Pending& p = *pending_;
  HttpSession& s = *p.session;
  net::Connection& conn = s.connection();
  if (conn.closed()) {
    if (chunk != nullptr) conn.services().chunks().put(chunk);
    close_file();
    return;
  }
  if (result <= 0) {
    // The file shrank or failed after its head promised Content-Length bytes. Nothing true can
    // be sent any more: cut the connection so the client sees a short answer, not a hang.
    close_file();
    conn.abort();
    return;
  }
  // Never more than asked for (read() was bounded by end_), so the chunk goes in as it is.
  conn.deferred_output(p.slot).append_chunk(chunk);
  offset_ += static_cast<std::uint64_t>(result);
  if (offset_ >= end_) {
    finish();
    return;
  }
  conn.flush_deferred(p.slot);
  s.note_output();
  read_more();
}

void FileTransfer::resume() {
  if (!streaming_ || handle_ == nullptr) return;
  HttpSession& s = *pending_->session;
  // Answers before this one may have finished since: stream what waited in the slot.
  s.connection().flush_deferred(pending_->slot);
  s.note_output();
  read_more();
}

// Completes the slot and hands the request back; `this` lives inside the Pending that
// deferred_done destroys, so nothing may follow.
void FileTransfer::finish() {
  close_file();
  Pending& p = *pending_;
  HttpSession& s = *p.session;
  s.connection().complete(p.slot);
  s.deferred_done(p);
}

}  // namespace rs::http
