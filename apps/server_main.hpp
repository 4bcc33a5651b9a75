// What every ringserve executable shares: the common flags, signal handling (blocked in every
// thread, read by loop 0 through a signalfd), the start-up line and the final counters.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

#include "net/server.hpp"

namespace rs::apps {

// --version ("NAME VERSION (OpenSSL ...)"), --config (apps/config_file.hpp), --port, --address,
// --listen, --trusted-proxy, --backend, --threads, --max-connections, --grace-ms, the ring knobs
// and the TLS flags (--tls-*, --handshake-timeout-ms), --user and --group. The TLS flags are kept
// aside until run_server turns them into config.tls.
void add_server_flags(CLI::App& app, const char* name, net::ServerConfig& config);

// Blocks SIGINT/SIGTERM/SIGHUP before any thread starts, loads the TLS certificate and key when
// --tls-cert/--tls-key were given (refusing a bad pair, with the file named), runs the server
// until a signal stops it, prints the counters and returns the exit status. Start-up errors are
// printed with advice. The start-up line ends with "tls=off" or "tls=<TlsContext::describe()>".
// The listeners systemd passed (LISTEN_FDS) replace --address and --port; with --user, the
// server binds, drops root's privileges, then starts its loops.
// After it, a service manager is told READY=1 (and STOPPING=1, RELOADING=1 as signals arrive:
// apps/service_manager.hpp).
// `on_created`, when set, sees the server before it starts (to wire up metrics).
int run_server(const char* name, net::ServerConfig& config, net::ProtocolFactoryMaker make,
               const std::function<void(net::Server&)>& on_created = {});

// This release's version ("0.13.0"), as --version prints it.
const char* release_version();

}  // namespace rs::apps
