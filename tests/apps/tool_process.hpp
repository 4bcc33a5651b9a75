// Real client tools (curl, wrk, python3) run as child processes from the test, with their
// output captured and a deadline on every run.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace rs::test {

struct ToolResult {
  int status = -1;  // exit status, 128 + signal, or -1 when it could not run
  bool timed_out = false;
  std::string out;
  std::string err;
};

// The full path of an executable named `name` on PATH, or empty when there is none.
std::string find_tool(std::string_view name);

// Runs argv (argv[0] looked up on PATH) with stdin from /dev/null and stdout and stderr
// captured. A tool still running at the timeout is killed and reported as timed out.
ToolResult run_tool(const std::vector<std::string>& argv, std::chrono::milliseconds timeout);

// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  // Writes a file in the directory and returns its path.
  std::string write(std::string_view name, std::string_view contents) const;

 private:
  std::string path_;
};

}  // namespace rs::test
