// Static files from --root under GET and HEAD. The request was prepared at route time
// (static_request.hpp: decoded path, conditionals, Range); the answer is deferred and written
// by the request's FileTransfer once the loop's file service has opened the file.
//
// Answers: 200 (Content-Type by extension, Content-Length, Last-Modified, ETag, Accept-Ranges),
// 206 for one satisfiable byte range, 416 (Content-Range: bytes */size) for an unsatisfiable
// one, 304 for a matching If-None-Match (weak comparison; it takes precedence) or an
// If-Modified-Since the file is not newer than, 301 for a directory named without its trailing
// slash (Location: the same with it, query kept), 403 for a directory without index.html, and
// 404 for anything missing, outside the root, or not a regular file (a FIFO, a device) after
// index.html resolution. With --precompressed, FILE.br or FILE.gz is sent instead of FILE when
// Accept-Encoding allows (br first), as its own representation: Content-Encoding, its own ETag
// and size, ranges over its bytes. docs/static-files.md says it for users.
#pragma once

#include "net/http/request.hpp"

namespace rs::http {

class HttpSession;

// GET or HEAD of request.file below the shared root.
void serve_static(HttpSession& session, const Request& request);

}  // namespace rs::http
