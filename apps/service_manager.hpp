// The service manager's side of the server (systemd, through libsystemd): readiness and state
// changes (sd_notify), and the listening sockets it passed (socket activation). Outside a
// service manager (no NOTIFY_SOCKET, no LISTEN_FDS in the environment) each does nothing.
#pragma once

#include <string>
#include <vector>

#include "net/server.hpp"

namespace rs::apps {

// READY=1 with STATUS=status: every listener is bound and every loop serves. Any thread.
void notify_ready(const std::string& status);
// STOPPING=1: SIGINT or SIGTERM, the loops are stopping.
void notify_stopping();
// RELOADING=1 (with MONOTONIC_USEC, for Type=notify-reload) before a SIGHUP's reload, READY=1
// with the last status after it.
void notify_reloading();
void notify_reloaded();

// The listeners systemd passed (LISTEN_FDS, for this process: LISTEN_PID), in order, each with
// its address and port read from the socket, fd set and made non-blocking and close-on-exec,
// and its kind from its name (LISTEN_FDNAMES, systemd's FileDescriptorName=): the --listen
// option words ("plain", "tls", "metrics", "tls,metrics"); an unnamed socket ("unknown", or
// systemd's default, the socket unit's name) is plain. The LISTEN_* variables are unset. Throws
// StartupError, naming the descriptor and its name, for a socket that is not a listening TCP
// socket or a name that is not a listener kind.
std::vector<net::ListenAddress> inherited_listeners();

}  // namespace rs::apps
