// --config FILE: every flag can live in a file, read by CLI11 (TOML as CLI11 reads it: one
// `key = value` a line, the key a long flag without its dashes, `#` comments, arrays in
// brackets). What CLI11 does not do, this adds: a bad line names the file and the line, and an
// unknown key, a section or a flag given twice is refused instead of ignored.
#pragma once

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace rs::apps {

// CLI11's TOML reader, remembering the line of each key. Errors it finds itself (unknown key,
// section, repeated key, a line CLI11 would skip) it throws as CLI::ConfigError, already
// starting "FILE:LINE: ".
class ConfigFile : public CLI::ConfigTOML {
 public:
  explicit ConfigFile(const CLI::App& app) : app_(app) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;

  // "FILE:LINE: " for an error (CLI11's, or a flag's own check) whose message names a flag that
  // was taken from the file; empty when it names none.
  std::string locate(std::string_view message) const;

 private:
  std::string file_name() const;

  const CLI::App& app_;
  // The keys the file set (those the command line did not: it wins), with their lines.
  mutable std::vector<std::pair<std::string, int>> taken_;
};

// Adds --config FILE to the app (not itself allowed in the file).
void add_config_flag(CLI::App& app);

// Parses the command line and the --config file. On an error or after --help/--version,
// returns the exit status (having printed what to print, an error naming the file and line
// where the flag came from the file); std::nullopt when the server should start.
std::optional<int> parse_flags(CLI::App& app, const char* name, int argc, char** argv);

}  // namespace rs::apps
