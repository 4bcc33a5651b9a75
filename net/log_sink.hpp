// A loop's log-append service: protocol code hands it whole lines, the loop writes them to a
// file later without blocking. Lines are never split between writes, so several loops (each
// with its own descriptor on one O_APPEND file) never interleave inside a line.
#pragma once

#include <string_view>

namespace rs::net {

class LogSink {
 public:
  // One whole line, newline included. Copied at once; when too much is already waiting for
  // the disk the line is dropped and counted instead (memory stays bounded, the loop never
  // waits).
  virtual void append(std::string_view line) = 0;

 protected:
  ~LogSink() = default;
};

}  // namespace rs::net
