// ringserve-echo: every byte a client sends comes back, in order.
#include <CLI/CLI.hpp>
#include <cstdio>

#include "apps/config_file.hpp"
#include "apps/server_main.hpp"
#include "net/echo/echo_protocol.hpp"

int main(int argc, char** argv) try {
  CLI::App app{"ringserve-echo: an echo server on io_uring"};
  rs::net::ServerConfig config;
  rs::apps::add_server_flags(app, "ringserve-echo", config);
  if (const auto status = rs::apps::parse_flags(app, "ringserve-echo", argc, argv)) return *status;
  return rs::apps::run_server("ringserve-echo", config, rs::net::echo::make_factory);
} catch (const std::exception& e) {
  std::fprintf(stderr, "ringserve-echo: %s\n", e.what());
  return 1;
}
