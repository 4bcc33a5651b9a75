#include "net/http/request_head.hpp"

#include "net/http/chars.hpp"

namespace rs::http {

const Header* RequestHead::find_header(std::string_view name) const {
  for (const Header& header : fields()) {
    if (chars::iequals(header.name, name)) {
      return &header;
    }
  }
  return nullptr;
}

std::optional<std::string_view> RequestHead::header_value(std::string_view name) const {
  const Header* header = find_header(name);
  if (header == nullptr) {
    return std::nullopt;
  }
  return header->value;
}

}  // namespace rs::http
