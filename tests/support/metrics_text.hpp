// Reading a GET /metrics answer in tests, by hand (no std::regex): a family's samples summed
// over the labels a test does not name, so that the per-loop series (loop="N") and the status
// codes of a class add up to what the test asks.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace rs::test {

using MetricLabel = std::pair<std::string_view, std::string_view>;

// Whether the label block `labels` (what is between the braces) has name="value".
inline bool has_label(std::string_view labels, const MetricLabel& want) {
  while (!labels.empty()) {
    const std::size_t eq = labels.find('=');
    if (eq == std::string_view::npos || eq + 1 >= labels.size() || labels[eq + 1] != '"') break;
    const std::string_view name = labels.substr(0, eq);
    std::string value;
    std::size_t i = eq + 2;
    for (; i < labels.size() && labels[i] != '"'; ++i) {
      if (labels[i] == '\\' && i + 1 < labels.size()) ++i;
      value += labels[i];
    }
    if (name == want.first && value == want.second) return true;
    labels.remove_prefix(std::min(labels.size(), i + 1));
    if (!labels.empty() && labels.front() == ',') labels.remove_prefix(1);
  }
  return false;
}

// The sum of the samples of `name` (exactly; not its _bucket or _sum) whose labels include
// every one of `labels`; -1 when there is none.
inline std::int64_t metric_sum(std::string_view text, std::string_view name,
                               std::initializer_list<MetricLabel> labels = {}) {
  double sum = 0;
  bool found = false;
  while (!text.empty()) {
    const std::size_t end = std::min(text.find('\n'), text.size());
    const std::string_view line = text.substr(0, end);
    text.remove_prefix(std::min(text.size(), end + 1));
    if (line.empty() || line.front() == '#' || !line.starts_with(name)) continue;
    std::string_view rest = line.substr(name.size());
    std::string_view label_block;
    if (rest.starts_with('{')) {
      const std::size_t close = rest.rfind('}');
      if (close == std::string_view::npos) continue;
      label_block = rest.substr(1, close - 1);
      rest.remove_prefix(close + 1);
    }
    if (!rest.starts_with(' ')) continue;  // another family whose name starts with `name`
    bool match = true;
    for (const MetricLabel& label : labels)
      match = match && has_label(label_block, label);
    if (!match) continue;
    sum += std::strtod(std::string(rest.substr(1)).c_str(), nullptr);
    found = true;
  }
  return found ? static_cast<std::int64_t>(sum) : -1;
}

}  // namespace rs::test
