// GET /metrics: Prometheus text exposition format (version 0.0.4), summed over every loop.
#pragma once

#include <string>

#include "net/http/http_config.hpp"
#include "net/http/request.hpp"

namespace rs::http {

class HttpSession;

// The whole exposition text.
std::string render_metrics(const HttpShared& shared);
void respond_metrics(HttpSession& session, const Request& request);

}  // namespace rs::http
