// Routing and the built-in routes. route_request runs while the head is still readable and
// copies what the handler will need; handle_request answers (now, or later through a deferred
// slot).
#pragma once

#include "core/buffer.hpp"
#include "net/http/http_config.hpp"
#include "net/http/request.hpp"
#include "net/http/request_head.hpp"
#include "net/listen_socket.hpp"

namespace rs::http {

class HttpSession;

// `use`: what the listener the request came through is for (a metrics listener answers
// /metrics and nothing else).
void route_request(const RequestHead& head, Request& request, const HttpConfig& config,
                   net::ListenerUse use);
void handle_request(HttpSession& session, const Request& request, core::BufferChain& body);

}  // namespace rs::http
