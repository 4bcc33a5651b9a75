// The error every start-up check throws (the server's sockets and limits, the TLS context).
#pragma once

#include <stdexcept>

namespace rs::net {

// A start-up failure whose message says what is wrong and what to do about it.
class StartupError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace rs::net
