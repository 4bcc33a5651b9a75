// What every ringserve executable shares: the common flags, signal handling (blocked in every
// thread, read by loop 0 through a signalfd), the start-up line and the final counters.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "net/server.hpp"

namespace rs::apps {

// --port, --address, --backend, --threads, --max-connections, --grace-ms and the ring knobs.
void add_server_flags(CLI::App& app, net::ServerConfig& config);

// Blocks SIGINT/SIGTERM/SIGHUP before any thread starts, runs the server until a signal stops
// it, prints the counters and returns the exit status. Start-up errors are printed with advice.
// `on_created`, when set, sees the server before it starts (to wire up metrics).
int run_server(const char* name, net::ServerConfig& config, net::ProtocolFactoryMaker make,
               const std::function<void(net::Server&)>& on_created = {});

}  // namespace rs::apps
