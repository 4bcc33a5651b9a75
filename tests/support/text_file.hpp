// Reading files the server wrote (access logs), for tests.
#pragma once

#include <fstream>
#include <string>
#include <vector>

namespace rs::test {

// The file's lines, without their newlines; none when it cannot be read.
inline std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line))
    lines.push_back(line);
  return lines;
}

}  // namespace rs::test
