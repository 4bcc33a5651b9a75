#include "apps/config_file.hpp"

#include <cstdio>
#include <sstream>

#include <fmt/format.h>

namespace rs::apps {

namespace {

bool is_marker(const CLI::ConfigItem& item) {
  return item.name == "--" || item.name == "++";  // CLI11's section ends and starts
}

std::size_t count_keys(const std::vector<CLI::ConfigItem>& items) {
  std::size_t count = 0;
  for (const CLI::ConfigItem& item : items)
    count += is_marker(item) ? 0 : 1;
  return count;
}

std::string_view trim(std::string_view text) {
  const std::size_t first = text.find_first_not_of(" \t\r");
  if (first == std::string_view::npos) return {};
  return text.substr(first, text.find_last_not_of(" \t\r") - first + 1);
}

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

// Whether `message` names `token` whole (not as the start of a longer flag).
bool names(std::string_view message, std::string_view token) {
  for (std::size_t at = message.find(token); at != std::string_view::npos;
       at = message.find(token, at + 1)) {
    const std::size_t end = at + token.size();
    if (end == message.size() || !is_name_char(message[end])) return true;
  }
  return false;
}

}  // namespace

std::string ConfigFile::file_name() const {
  const CLI::Option* option = app_.get_config_ptr();
  return option != nullptr && option->count() > 0 ? option->as<std::string>() : "config";
}

std::vector<CLI::ConfigItem> ConfigFile::from_config(std::istream& input) const {
  const std::string file = file_name();
  const auto fail = [&file](int line, std::string_view what) {
    return CLI::ConfigError(fmt::format("{}:{}: {}", file, line, what));
  };
  // CLI11 reads the whole file and says nothing of lines; reading it again a line longer each
  // time tells where each key first appears (a config file is short).
  std::vector<CLI::ConfigItem> items;
  std::vector<int> lines;  // of each key in items, markers left out
  std::string prefix;
  int number = 0;
  for (std::string line; std::getline(input, line);) {
    ++number;
    prefix += line;
    prefix += '\n';
    // CLI11 skips a line of one or two characters; only a bracket (an array's end) is one.
    const std::string_view text = trim(line);
    if (!text.empty() && text.size() < 3 && text.front() != '#' && text.front() != ';' &&
        text.find_first_not_of("[]") != std::string_view::npos) {
      throw fail(number, fmt::format("\"{}\" is not KEY = VALUE", text));
    }
    std::istringstream so_far(prefix);
    items = CLI::ConfigTOML::from_config(so_far);
    lines.resize(count_keys(items), number);
  }

  // Each key: known, configurable, at the top level, given once (a repeatable flag's lines add
  // up, wherever they are).
  std::vector<CLI::ConfigItem> merged;
  std::vector<int> merged_lines;
  taken_.clear();
  std::size_t key = 0;
  for (CLI::ConfigItem& item : items) {
    if (is_marker(item)) continue;
    const int line = lines[key++];
    if (!item.parents.empty()) {
      throw fail(line, fmt::format("[{}]: there are no sections; write every key at the top level",
                                   item.parents.front()));
    }
    const CLI::Option* option = app_.get_option_no_throw("--" + item.name);
    if (option == nullptr || item.name.empty()) {
      throw fail(line, fmt::format("unknown key \"{}\" (a key is a long flag without its dashes, "
                                   "as in threads = 4; --help lists them)",
                                   item.name));
    }
    if (!option->get_configurable()) {
      throw fail(line, fmt::format("{} is not taken from a config file", item.name));
    }
    std::size_t earlier = 0;
    while (earlier < merged.size() && merged[earlier].name != item.name)
      ++earlier;
    if (earlier == merged.size()) {
      merged.push_back(std::move(item));
      merged_lines.push_back(line);
    } else if (option->get_items_expected_max() > 1) {
      merged[earlier].inputs.insert(merged[earlier].inputs.end(), item.inputs.begin(),
                                    item.inputs.end());
    } else {
      throw fail(line, fmt::format("{} is given twice (also on line {})", item.name,
                                   merged_lines[earlier]));
    }
  }
  for (std::size_t i = 0; i < merged.size(); ++i) {
    // A flag also on the command line keeps the command line's value: CLI11 skips the file's.
    if (app_.get_option_no_throw("--" + merged[i].name)->count() == 0) {
      taken_.emplace_back(merged[i].name, merged_lines[i]);
    }
  }
  return merged;
}

std::string ConfigFile::locate(std::string_view message) const {
  for (const auto& [key, line] : taken_) {
    // "--threads: Value 0 not in range", or "pin: Should be true/false" (CLI11 names a flag
    // read from a file by its key).
    if (names(message, "--" + key) || message.starts_with(key + ":")) {
      return fmt::format("{}:{}: ", file_name(), line);
    }
  }
  return {};
}

void add_config_flag(CLI::App& app) {
  app.set_config("--config", "",
                 "Read flags from this file, one KEY = VALUE a line: the long flag without its "
                 "dashes (threads = 4, listen = [\"0.0.0.0:80\", \"[::]:443,tls\"]), # comments; "
                 "the command line wins over it. Unknown keys are refused");
  app.config_formatter(std::make_shared<ConfigFile>(app));
  app.allow_config_extras(false);
}

std::optional<int> parse_flags(CLI::App& app, const char* name, int argc, char** argv) {
  const auto config = std::dynamic_pointer_cast<ConfigFile>(app.get_config_formatter());
  const auto located = [&config](const std::exception& e) {
    return config ? config->locate(e.what()) : std::string();
  };
  try {
    app.parse(argc, argv);
    return std::nullopt;
  } catch (const CLI::ConfigError& e) {
    // ConfigFile's own, already "FILE:LINE: ...".
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return e.get_exit_code();
  } catch (const CLI::FileError& e) {
    // CLI11 says "FILE was not readable (missing?)".
    std::fprintf(stderr, "%s: --config: %s\n", name, e.what());
    return e.get_exit_code();
  } catch (const CLI::ParseError& e) {
    const std::string where = located(e);
    if (where.empty()) return app.exit(e);
    std::fprintf(stderr, "%s: %s%s\n", name, where.c_str(), e.what());
    return e.get_exit_code();
  } catch (const std::exception& e) {
    // A flag's own check (--listen's grammar) throws its own error.
    std::fprintf(stderr, "%s: %s%s\n", name, located(e).c_str(), e.what());
    return 1;
  }
}

}  // namespace rs::apps
