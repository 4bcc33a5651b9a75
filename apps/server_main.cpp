#include "apps/server_main.hpp"

#include "apps/config_file.hpp"
#include "apps/privileges.hpp"
#include "apps/service_manager.hpp"

#include <sys/signalfd.h>
#include <unistd.h>

#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstring>

#include <fmt/format.h>
#include <openssl/crypto.h>

#include "core/log.hpp"
#include "net/socket.hpp"
#include "net/tls/ktls.hpp"
#include "net/tls/tls_context.hpp"

#if !defined(RS_SANITIZE)
#include <mimalloc.h>
#endif

namespace rs::apps {

namespace {

// The --tls-* flags as parsed. add_server_flags binds them here and run_server makes the shared
// context from them (net::ServerConfig holds only the finished context); one server per process.
net::tls::TlsConfig tls_flags;
// --tls-ktls: "auto" (kTLS where the kernel has it, the default) or "off".
std::string ktls_mode = "auto";
// --port and --address, to refuse them beside the sockets systemd passed.
const CLI::Option* port_flag = nullptr;
const CLI::Option* address_flag = nullptr;
// --user and --group: whom to become once the listeners are bound.
std::string run_as_user;
std::string run_as_group;

void add_tls_flags(CLI::App& app) {
  app.add_option("--tls-cert", tls_flags.cert_file,
                 "Serve HTTPS: the certificate chain, PEM, the server's certificate first, then "
                 "its intermediates (needs --tls-key)");
  app.add_option("--tls-key", tls_flags.key_file,
                 "The certificate's private key, PEM, unencrypted (needs --tls-cert)");
  app.add_option("--tls-min-version", tls_flags.min_version, "Oldest TLS version accepted")
      ->capture_default_str()
      ->check(CLI::IsMember({"1.2", "1.3"}));
  app.add_option("--tls-ciphers", tls_flags.ciphers,
                 "TLS 1.2 cipher list, OpenSSL syntax (default: Mozilla intermediate, ECDHE with "
                 "AES-GCM or ChaCha20-Poly1305)");
  app.add_option("--tls-ciphersuites", tls_flags.ciphersuites,
                 "TLS 1.3 suites, colon-separated (default: OpenSSL's)");
  app.add_option("--tls-groups", tls_flags.groups,
                 "Key exchange groups offered, colon-separated, preferred first")
      ->capture_default_str();
  app.add_option("--handshake-timeout-ms", tls_flags.handshake_timeout_ms,
                 "A TLS handshake, or a PROXY header on a ,proxy listener, not finished this "
                 "long after the connection opened: close")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3600000}));
  app.add_option("--tls-ktls", ktls_mode,
                 "kTLS: after a TLS 1.3 handshake the kernel seals the connection's records. auto: "
                 "where the kernel has TLS (the start-up line says whether it is on, and why "
                 "not); off: never, OpenSSL seals every record")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "off"}));
  app.add_option("--tls-ticket-rotate-s", tls_flags.ticket_rotate_s,
                 "Seconds between rotations of the session-ticket keys; a ticket resumes for up "
                 "to this long. 0: no session tickets (no resumption)")
      ->capture_default_str()
      ->check([](const std::string& text) {
        std::uint64_t seconds = 0;
        const char* end = text.data() + text.size();
        const auto [at, error] = std::from_chars(text.data(), end, seconds);
        if (!text.empty() && error == std::errc() && at == end &&
            seconds <= net::tls::kMaxTicketRotateSeconds) {
          return std::string();
        }
        return fmt::format(
            "must be 0 (no session tickets) or 1 to {} seconds (7 days, the longest a TLS 1.3 "
            "ticket may live)",
            net::tls::kMaxTicketRotateSeconds);
      });
}

// Whether connections give their sending keys to the kernel: sets tls_flags.ktls, and returns
// what the start-up line says of it.
std::string choose_ktls() {
  if (ktls_mode == "off") return "off (--tls-ktls off)";
  const net::tls::ktls::Probe probe = net::tls::ktls::probe_kernel();
  tls_flags.ktls = probe.available;
  // TLS 1.2 connections seal in user space (net/tls/ktls.hpp says why).
  return probe.available ? "on (TLS 1.3)" : fmt::format("off ({})", probe.reason);
}

}  // namespace

void add_server_flags(CLI::App& app, const char* name, net::ServerConfig& config) {
  app.set_version_flag(
         "--version", fmt::format("{} {} ({})", name, RS_VERSION, OpenSSL_version(OPENSSL_VERSION)))
      ->configurable(false);
  app.get_help_ptr()->configurable(false);
  add_config_flag(app);
  CLI::Option* port =
      app.add_option("--port", config.port, "TCP port to listen on; 0 picks any free port")
          ->capture_default_str();
  CLI::Option* address = app.add_option("--address", config.address, "IPv4 or IPv6 address to bind")
                             ->capture_default_str();
  app.add_option_function<std::vector<std::string>>(
         "--listen",
         [&config](const std::vector<std::string>& all) {
           config.listen.clear();
           for (const std::string& text : all)
             config.listen.push_back(net::parse_listen_address(text));
         },
         "ADDRESS:PORT[,tls][,metrics][,proxy], repeatable: listen there, speaking TLS with "
         ",tls (the --tls-* flags), serving only the metrics with ,metrics, taking a PROXY "
         "protocol header (v1 or v2, before TLS) from a --trusted-proxy with ,proxy; IPv6 in "
         "brackets, [::]:8443,tls. Instead of --address and --port")
      ->take_all()
      ->allow_extra_args(false)
      ->excludes(port)
      ->excludes(address);
  port_flag = port;
  address_flag = address;
  app.add_option_function<std::vector<std::string>>(
         "--trusted-proxy",
         [&config](const std::vector<std::string>& all) {
           config.proxy.trusted = {};
           for (const std::string& text : all)
             config.proxy.trusted.add(text);
         },
         "CIDR, repeatable (at most 64): the peers trusted to name the client, by a PROXY header "
         "on a ,proxy listener (any other peer there is closed) and by X-Forwarded-For where "
         "that is trusted; e.g. 10.0.0.0/8, ::1/128, 192.0.2.7")
      ->take_all()
      ->allow_extra_args(false);
  app.add_option("--backend", config.backend,
                 "I/O model: uring (io_uring completions), epoll (readiness), threads (a thread "
                 "per connection, blocking I/O), auto (uring where io_uring is available, else "
                 "epoll)")
      ->transform(CLI::CheckedTransformer(
          std::map<std::string, net::Backend>{{"auto", net::Backend::kAuto},
                                              {"uring", net::Backend::kUring},
                                              {"epoll", net::Backend::kEpoll},
                                              {"threads", net::Backend::kThreads}}))
      ->default_str("auto");
  app.add_option("--threads", config.threads, "Event loops, each on its own thread")
      ->capture_default_str()
      ->check(CLI::Range(1U, 1024U));
  app.add_flag("--pin", config.pin,
               "Pin loop i to the i-th CPU the process may use (see taskset); uring and epoll");
  app.add_option("--max-connections", config.max_connections,
                 "Open connections allowed, all loops together; beyond it clients wait in the "
                 "listen backlog")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--grace-ms", config.loop.grace_ms,
                 "On SIGINT/SIGTERM, how long queued output may drain before connections are cut")
      ->capture_default_str();
  app.add_option_function<std::size_t>(
         "--thread-stack-kib",
         [&config](std::size_t kib) { config.loop.thread_stack_bytes = kib << 10; },
         "threads: each worker thread's stack, in KiB")
      ->default_str(std::to_string(net::LoopConfig::kDefaultThreadStackBytes >> 10))
      ->check(CLI::Range(32U, 8192U));
  app.add_option("--thread-idle-timeout-ms", config.loop.thread_idle_timeout_ms,
                 "threads: a worker thread that has waited this long for a connection ends, "
                 "freeing its stack and pools")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{86400000}));
  app.add_option("--buffer-count", config.loop.buffer_count,
                 "Provided receive buffers per loop (power of two)")
      ->capture_default_str()
      ->check([](const std::string& s) {
        const unsigned long n = std::stoul(s);
        return n > 0 && n <= 32768 && (n & (n - 1)) == 0 ? std::string()
                                                         : "must be a power of two <= 32768";
      });
  app.add_option("--buffer-size", config.loop.buffer_size, "Bytes per receive buffer")
      ->capture_default_str()
      ->check(CLI::Range(64U, 1U << 20));
  // Ring tuning: each a flag so the perf lab can measure it on and off.
  app.add_option("--uring-defer-taskrun", config.ring.defer_taskrun,
                 "uring: run completions only when the loop asks (SINGLE_ISSUER|DEFER_TASKRUN); "
                 "false starts from COOP_TASKRUN")
      ->capture_default_str();
  app.add_option("--uring-wait-batch", config.ring.wait_batch,
                 "uring: a loop turn waits for this many completions, up to --uring-wait-usec "
                 "(Linux 6.12+); 1: wake at the first")
      ->capture_default_str()
      ->check(CLI::Range(1U, 4096U));
  app.add_option("--uring-wait-usec", config.ring.wait_min_usec,
                 "uring: longest a turn waits for --uring-wait-batch completions before taking "
                 "what has come")
      ->capture_default_str()
      ->check(CLI::Range(0U, 100000U));
  app.add_option("--uring-fixed-files", config.ring.fixed_files,
                 "uring: registered file table slots per loop; connections in it are named by "
                 "slot (no per-operation file lookup); 0: off")
      ->capture_default_str()
      ->check(CLI::Range(0U, 1U << 20));
  app.add_option("--uring-recv-bundle", config.ring.recv_bundle,
                 "uring: one receive completion may fill several buffers (Linux 6.10+)")
      ->capture_default_str();
  app.add_option("--uring-incremental-buffers", config.ring.incremental_buffers,
                 "uring: receives fill a buffer a piece at a time instead of a whole one each "
                 "(Linux 6.12+)")
      ->capture_default_str();
  app.add_option("--uring-registered-buffers", config.ring.registered_buffers,
                 "uring: the output chunks registered with the ring as fixed buffers (file reads "
                 "as READ_FIXED, zero-copy sends from them); the memory stays pinned")
      ->capture_default_str();
  app.add_option("--uring-send-zc", config.ring.send_zc_min_bytes,
                 "uring: sends of at least this many bytes go zero-copy (SEND_ZC); 0: off")
      ->capture_default_str();
  app.add_option("--uring-send-zc-close-wait-ms", config.ring.send_zc_close_wait_ms,
                 "uring: a closed connection whose zero-copy data the peer has not taken is "
                 "reset after this long")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{3600000}));
  add_tls_flags(app);
  CLI::Option* user =
      app.add_option("--user", run_as_user,
                     "Started as root: once the listeners are bound, run as this user (with its "
                     "groups) for good, before serving");
  app.add_option("--group", run_as_group, "With --user: this group instead of the user's own")
      ->needs(user);
}

namespace {

int block_signals_and_open_signalfd() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGHUP);
  // Blocked before any thread exists, so every thread inherits the mask and only the
  // signalfd sees these signals.
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  std::signal(SIGPIPE, SIG_IGN);
  // A log write past a file-size limit (RLIMIT_FSIZE) fails with EFBIG, like one to a full
  // disk, and is counted and retried instead of killing the server.
  std::signal(SIGXFSZ, SIG_IGN);
  return ::signalfd(-1, &set, SFD_CLOEXEC);
}

void print_counters(const char* name, const net::CounterValues& values) {
  std::string text = fmt::format("{} counters:", name);
  for (const auto& [info, value] : values.values()) {
    text += fmt::format(" {}={}", info.name, value);
  }
  std::puts(text.c_str());
  std::fflush(stdout);
}

}  // namespace

int run_server(const char* name, net::ServerConfig& config, net::ProtocolFactoryMaker make,
               const std::function<void(net::Server&)>& on_created) {
  const int signal_fd = block_signals_and_open_signalfd();
  if (signal_fd < 0) {
    std::fprintf(stderr, "%s: signalfd: %s\n", name, std::strerror(errno));
    return 1;
  }
  config.signal_fd = signal_fd;
  config.proxy.header_timeout_ms = tls_flags.handshake_timeout_ms;
  std::string ktls_state;  // for the start-up line, after tls=
  PrivilegeDrop drop;
  try {
    drop = resolve_privilege_drop(run_as_user, run_as_group);
    config.inherited = inherited_listeners();
    const CLI::Option* given = nullptr;
    for (const CLI::Option* flag : {port_flag, address_flag}) {
      if (flag != nullptr && flag->count() > 0) given = flag;
    }
    if (!config.inherited.empty() && given != nullptr) {
      throw net::StartupError(fmt::format(
          "{} is given and systemd passed listening sockets (LISTEN_FDS: a socket unit): the "
          "server serves those; drop {}, or stop the socket units",
          given->get_name(), given->get_name()));
    }
    // Before the server exists: it copies the config, context included.
    if (tls_flags.enabled()) {
      ktls_state = " ktls=" + choose_ktls();
      config.tls = net::tls::TlsContext::load(tls_flags);
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: cannot start: %s\n", name, e.what());
    return 1;
  }
  config.on_stopping = notify_stopping;
  config.on_reloading = notify_reloading;
  config.on_reloaded = notify_reloaded;
  net::Server server(config, std::move(make));
  if (on_created) on_created(server);
  try {
    server.bind();
    // The loops open the access log, and a SIGHUP reopens it and reads the TLS files again: as
    // the user dropped to (docs/deploy.md).
    drop_privileges(drop);
    for (const std::string* file : {&tls_flags.cert_file, &tls_flags.key_file}) {
      if (!drop.user.empty() && !file->empty() && ::access(file->c_str(), R_OK) != 0) {
        core::log_warn("{} is not readable by user {}: a SIGHUP cannot reload the certificate",
                       *file, drop.user);
      }
    }
    server.run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: cannot start: %s\n", name, e.what());
    return 1;
  }
#if defined(RS_SANITIZE)
  const char* allocator = "system (sanitizer build)";
#else
  const std::string allocator = fmt::format("mimalloc {}", mi_version());
#endif
  // "listening on 127.0.0.1 port 8080, 127.0.0.1 port 8443 tls: ..." (the first listener's
  // port is what scripts read).
  std::string where;
  for (const net::ListenAddress& listener : server.listeners()) {
    if (!where.empty()) where += ", ";
    where += net::describe(listener);
  }
  std::printf(
      "%s listening on %s: backend=%s threads=%u max-connections=%llu grace-ms=%llu "
      "buffers=%ux%u %s allocator=%s tls=%s%s\n",
      name, where.c_str(), net::to_string(server.backend()), config.threads,
      static_cast<unsigned long long>(config.max_connections),
      static_cast<unsigned long long>(config.loop.grace_ms), config.loop.buffer_count,
      config.loop.buffer_size, server.setup_mode().c_str(), fmt::format("{}", allocator).c_str(),
      config.tls ? config.tls->describe().c_str() : "off", ktls_state.c_str());
  std::fflush(stdout);
  notify_ready(fmt::format("serving on {} (backend {}, {} loops)", where,
                           net::to_string(server.backend()), config.threads));
  server.wait();
  print_counters(name, server.counters());
  ::close(signal_fd);
  return 0;
}

const char* release_version() {
  return RS_VERSION;
}

}  // namespace rs::apps
