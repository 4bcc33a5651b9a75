// Request-target forms (RFC 9112 3.2) and Host syntax (RFC 9110 7.2, RFC 3986 3.2.2). Strict
// RFC 3986 syntax: a server that guesses what a malformed target meant can disagree with the
// proxy in front of it about which resource was asked for.
#pragma once

#include <string_view>

#include "net/http/parse_error.hpp"
#include "net/http/request_head.hpp"

namespace rs::http {

struct TargetParts {
  ParseError error = ParseError::kNone;
  TargetForm form = TargetForm::kOrigin;
  std::string_view authority;  // absolute-form only
  std::string_view path;       // view into the target, or a static "/" for an empty path
  std::string_view query;      // without the "?"
};

// Classifies and validates `target` for `method`. CONNECT (authority-form) yields
// kConnectUnsupported; asterisk-form with a method other than OPTIONS, a fragment, userinfo,
// a scheme other than http/https, or any byte outside RFC 3986 yields kBadTarget.
TargetParts parse_target(std::string_view method, std::string_view target);

// Host = uri-host [ ":" port ]. An empty value is valid (RFC 9110 7.2: a client sends an empty
// Host when the target URI has no authority); `require_host` rejects an empty uri-host, as
// RFC 9110 4.2.1 demands for http URIs.
bool is_valid_host(std::string_view value, bool require_host);

}  // namespace rs::http
