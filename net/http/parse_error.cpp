#include "net/http/parse_error.hpp"

namespace rs::http {

const char* to_string(ParseError error) {
  switch (error) {
    case ParseError::kNone:
      return "none";
    case ParseError::kBadRequestLine:
      return "bad_request_line";
    case ParseError::kBadTarget:
      return "bad_target";
    case ParseError::kBadVersion:
      return "bad_version";
    case ParseError::kVersionNotSupported:
      return "version_not_supported";
    case ParseError::kLineTooLong:
      return "line_too_long";
    case ParseError::kBadLineEnding:
      return "bad_line_ending";
    case ParseError::kBadHeader:
      return "bad_header";
    case ParseError::kObsFold:
      return "obs_fold";
    case ParseError::kHeaderTooLarge:
      return "header_too_large";
    case ParseError::kTooManyHeaders:
      return "too_many_headers";
    case ParseError::kBadHost:
      return "bad_host";
    case ParseError::kBadContentLength:
      return "bad_content_length";
    case ParseError::kTeClConflict:
      return "te_cl_conflict";
    case ParseError::kBadTransferEncoding:
      return "bad_transfer_encoding";
    case ParseError::kUnsupportedTe:
      return "unsupported_te";
    case ParseError::kConnectUnsupported:
      return "connect_unsupported";
    case ParseError::kBadChunk:
      return "bad_chunk";
    case ParseError::kBadTrailer:
      return "bad_trailer";
    case ParseError::kBodyTooLarge:
      return "body_too_large";
  }
  return "unknown";
}

int status_for(ParseError error) {
  switch (error) {
    case ParseError::kNone:
      return 0;
    case ParseError::kVersionNotSupported:
      return 505;
    case ParseError::kLineTooLong:
      return 414;
    case ParseError::kHeaderTooLarge:
    case ParseError::kTooManyHeaders:
      return 431;
    case ParseError::kUnsupportedTe:
    case ParseError::kConnectUnsupported:
      return 501;
    case ParseError::kBodyTooLarge:
      return 413;
    case ParseError::kBadRequestLine:
    case ParseError::kBadTarget:
    case ParseError::kBadVersion:
    case ParseError::kBadLineEnding:
    case ParseError::kBadHeader:
    case ParseError::kObsFold:
    case ParseError::kBadHost:
    case ParseError::kBadContentLength:
    case ParseError::kTeClConflict:
    case ParseError::kBadTransferEncoding:
    case ParseError::kBadChunk:
    case ParseError::kBadTrailer:
      return 400;
  }
  return 400;
}

}  // namespace rs::http
