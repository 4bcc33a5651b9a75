// libFuzzer target for the PROXY protocol header parser (net/proxy_header.hpp). Each input is
// parsed whole and at every length up to the header's end, and must agree with itself: a prefix
// of a header is incomplete, never bad; a header is whole at one length only and the bytes after
// it do not change it; a bad input stays bad however it goes on; nothing is incomplete at the
// bound. Sanitizers catch the memory errors.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <span>
#include <vector>

#include "net/proxy_header.hpp"

namespace {

using rs::net::proxy::Header;
using rs::net::proxy::kMaxHeaderBytes;
using rs::net::proxy::kMaxV1Bytes;
using Status = Header::Status;

Header parse(const std::uint8_t* data, std::size_t size) {
  return rs::net::proxy::parse({reinterpret_cast<const std::byte*>(data), size});
}

bool same(const Header& a, const Header& b) {
  return a.status == b.status && a.size == b.size && a.source.family == b.source.family &&
         std::memcmp(a.source.bytes, b.source.bytes, sizeof(a.source.bytes)) == 0 &&
         a.source_port == b.source_port;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Header whole = parse(data, size);
  switch (whole.status) {
    case Status::kIncomplete:
      if (size >= kMaxHeaderBytes) std::abort();
      break;
    case Status::kDone:
      if (whole.size == 0 || whole.size > size || whole.size > kMaxHeaderBytes) std::abort();
      if (whole.version == 1 && whole.size > kMaxV1Bytes) std::abort();
      if (!same(parse(data, whole.size), whole)) std::abort();
      break;
    case Status::kBad: {
      // Bytes after a bad start cannot make it good.
      std::vector<std::uint8_t> longer(data, data + size);
      longer.insert(longer.end(), data, data + size);
      longer.push_back('\n');
      if (parse(longer.data(), longer.size()).status != Status::kBad) std::abort();
      break;
    }
  }
  // Every shorter length: incomplete before the end of a good header; never bad unless the
  // whole input is.
  const std::size_t limit = whole.status == Status::kDone ? whole.size : size;
  for (std::size_t n = 0; n < limit; ++n) {
    const Status status = parse(data, n).status;
    if (status == Status::kDone) std::abort();
    if (status == Status::kBad && whole.status != Status::kBad) std::abort();
  }
  return 0;
}
