// One static-file answer in progress, embedded in its Pending request: it opens the file through
// the loop's file service, writes the head into the request's deferred slot, then reads the
// body chunk by chunk straight into the slot (no copy) and streams it while the answer is first
// in line. Reading stops while the connection has more than a little output queued and goes on
// when the session reports the output drained, so a large file to a slow client costs a few
// chunks, not the file. Destroying it (the connection closed) closes the file; the file service
// then makes no further call.
#pragma once

#include <cstdint>

#include "core/buffer.hpp"
#include "net/file_service.hpp"
#include "net/http/static_request.hpp"

namespace rs::http {

struct Pending;

class FileTransfer final : public net::FileReader {
 public:
  FileTransfer() = default;
  ~FileTransfer();
  FileTransfer(const FileTransfer&) = delete;
  FileTransfer& operator=(const FileTransfer&) = delete;

  // Serves pending.request (GET or HEAD of pending.request.file) from below root_fd.
  void start(Pending& pending, int root_fd);
  // The connection's output drained: stream on if this answer was waiting for room. Never
  // finishes the answer from here (the session may be walking its pending list).
  void resume();
  // Started, and its head not written yet (the file is being opened).
  bool waiting() const { return pending_ != nullptr && !streaming_; }

 private:
  void on_file_opened(int error, const net::FileInfo& info) override;
  void on_file_read(int result, core::Chunk* chunk) override;

  void open_first();
  void open_candidate();
  void answer(const net::FileInfo& info);
  void answer_redirect();
  void answer_error(int status);
  void read_more();
  void finish();
  void close_file();

  Pending* pending_ = nullptr;
  net::FileService* files_ = nullptr;
  net::FileHandle* handle_ = nullptr;
  int root_fd_ = -1;
  std::uint64_t offset_ = 0;                 // next byte to read
  std::uint64_t end_ = 0;                    // one past the last byte to send
  Encoding encoding_ = Encoding::kIdentity;  // the sibling being opened or sent
  bool index_ = false;                       // the directory's index.html is being opened
  bool streaming_ = false;                   // the head is written; body pieces follow
  bool reading_ = false;                     // a read is in flight
};

}  // namespace rs::http
