// Echo: every byte that arrives goes back, in order. The purest test of the I/O path: the
// protocol copies input to output and consumes it, and the backend does the rest.
#pragma once

#include <memory>

#include "net/connection.hpp"
#include "net/transport.hpp"

namespace rs::net::echo {

// Stateless, so one instance serves every connection of a loop.
class EchoProtocol final : public Protocol {
 public:
  void on_input(Connection& conn, Input& input) override {
    core::BufferChain& out = conn.output();
    input.for_each_segment([&](std::span<const std::byte> bytes) { out.append(bytes); });
    input.consume(input.size());
  }
  void on_close(Connection& /*conn*/) override {}
};

class EchoFactory final : public ProtocolFactory {
 public:
  Protocol* open(Connection& /*conn*/) override { return &protocol_; }

 private:
  EchoProtocol protocol_;
};

inline std::unique_ptr<ProtocolFactory> make_factory(LoopServices& /*services*/) {
  return std::make_unique<EchoFactory>();
}

}  // namespace rs::net::echo
