// Why a request was rejected, and what to answer. The short names are stable: the server uses
// them as metric labels, so renaming one is a dashboard-visible change.
#pragma once

#include <cstdint>

namespace rs::http {

enum class ParseError : uint8_t {
  kNone,
  kBadRequestLine,       // 400: method token, separators, missing version, leading junk
  kBadTarget,            // 400: request-target syntax, form, or asterisk-form with non-OPTIONS
  kBadVersion,           // 400: not "HTTP/" DIGIT "." DIGIT
  kVersionNotSupported,  // 505: HTTP major version other than 1
  kLineTooLong,          // 414: request line over Limits::max_request_line_bytes
  kBadLineEnding,        // 400: bare LF or bare CR in the head
  kBadHeader,            // 400: field name token, space before colon, CTL/NUL in value
  kObsFold,              // 400: obsolete line folding (or whitespace-led line)
  kHeaderTooLarge,       // 431: header block over Limits::max_header_bytes
  kTooManyHeaders,       // 431: more than Limits::max_header_fields field lines
  kBadHost,              // 400: Host missing in HTTP/1.1, repeated, or invalid
  kBadContentLength,     // 400: malformed or differing Content-Length
  kTeClConflict,         // 400: Transfer-Encoding together with Content-Length
  kBadTransferEncoding,  // 400: chunked not final, chunked twice, TE in HTTP/1.0, bad syntax
  kUnsupportedTe,        // 501: a transfer coding before chunked that we do not implement
  kConnectUnsupported,   // 501: CONNECT (authority-form); this server is not a tunnel
  kBadChunk,             // 400: chunk size, extension or CRLF framing
  kBadTrailer,           // 400: trailer field syntax
  kBodyTooLarge,         // 413: body over Limits::max_body_bytes
};

// Stable short name, e.g. "te_cl_conflict".
const char* to_string(ParseError error);

// HTTP status code to answer with; 0 for kNone.
int status_for(ParseError error);

}  // namespace rs::http
