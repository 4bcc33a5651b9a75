// A server: N independent loops, each on its own thread with its own listeners (SO_REUSEPORT;
// one for each address the server listens on) and its own ring, sharing nothing but the
// connection cap. The protocol is supplied as a
// factory maker, so the same server runs echo or HTTP.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "net/loop/loop_config.hpp"
#include "net/loop_counters.hpp"
#include "net/proxy_header.hpp"
#include "net/tls/tls_context.hpp"
#include "net/transport.hpp"
#include "net/uring/ring_options.hpp"

namespace rs::net {

// auto: uring where io_uring is available, else epoll (with a log line saying why).
// threads: a thread per connection with blocking I/O (one acceptor; --threads must be 1).
enum class Backend : std::uint8_t { kAuto, kUring, kEpoll, kThreads };
const char* to_string(Backend backend);
std::ostream& operator<<(std::ostream& os, Backend backend);

// Where the server listens (a --listen), whether the connections made there speak TLS or begin
// with a PROXY header, and what they are for.
struct ListenAddress {
  std::string address;
  std::uint16_t port = 0;  // 0: any free port
  bool tls = false;
  bool proxy = false;
  ListenerUse use = ListenerUse::kServe;
  // A listening socket the process was given (systemd's socket activation), served instead of
  // one bound to address and port (which say where it listens); the server owns it.
  int fd = -1;
};
// "ADDRESS:PORT[,OPTION...]", the project's one listener grammar: an IPv4 literal, or an IPv6
// one in brackets ("[::1]:8443"), then options after commas: "tls" (the connections speak TLS),
// "metrics" (they get the server's metrics and nothing else) and "proxy" (each begins with a
// PROXY protocol header from a --trusted-proxy, before TLS). Throws StartupError naming what is
// wrong.
// `flag` names the option in the error.
ListenAddress parse_listen_address(const std::string& text, std::string_view flag = "--listen");
// The options part of that grammar, "tls", "metrics", "tls,proxy" (the words after the
// address's comma), set on `listener`: what a listener passed by systemd is named too. Returns
// what is wrong with them, or an empty string.
std::string parse_listener_options(std::string_view options, ListenAddress& listener);
// The inverse, for the start-up line: "127.0.0.1 port 8443 tls", "127.0.0.1 port 9100 metrics",
// "0.0.0.0 port 443 tls proxy", ":: port 80 (inherited)".
std::string describe(const ListenAddress& listener);

struct ServerConfig {
  // The simple case, one listener: --address and --port (TLS when `tls` is set).
  std::string address = "127.0.0.1";
  std::uint16_t port = 9000;  // 0: any free port
  // --listen, repeated: when given, these instead of address and port.
  std::vector<ListenAddress> listen;
  // Listening sockets passed by systemd (each with its fd): when given, these instead of
  // address and port; beside --listen they are refused. Loop 0 serves each, the other loops
  // a dup() of it (one socket, several loops accepting on it).
  std::vector<ListenAddress> inherited;
  // Listeners for the metrics alone (--metrics-listen), beside address and port or the --listen
  // ones: the protocol must have metrics (Server::start refuses them otherwise).
  std::vector<ListenAddress> metrics_listen;
  // Whether the protocol answers a ListenerUse::kMetrics listener (HTTP does, echo does not).
  bool protocol_has_metrics = false;
  Backend backend = Backend::kAuto;
  unsigned threads = 1;
  // Pin loop i to the i-th CPU this process may run on (wrapping when there are more loops).
  bool pin = false;
  std::uint64_t max_connections = 10000;
  int backlog = 4096;
  // When >= 0, loop 0 reads this signalfd: SIGINT/SIGTERM stop the server, SIGHUP reopens
  // the access log on every loop.
  int signal_fd = -1;
  // Told on loop 0's thread as those signals take effect (run_server tells the service
  // manager): SIGINT/SIGTERM before the loops stop; SIGHUP before the reload and once it is
  // under way (the TLS files read, every loop told to reopen its log).
  std::function<void()> on_stopping;
  std::function<void()> on_reloading;
  std::function<void()> on_reloaded;
  LoopConfig loop;
  // The ring backend's knobs (--uring-*); the other backends have none.
  uring::RingOptions ring;
  // The certificate and settings of the TLS listeners (--tls-cert, --tls-key and the other
  // --tls-* flags). Without --listen, set means that the one listener speaks TLS.
  std::shared_ptr<const tls::TlsContext> tls;
  // The peers a ,proxy listener takes PROXY headers from (--trusted-proxy), and how long a header
  // may take to arrive (--handshake-timeout-ms). Start-up refuses a ,proxy listener without them.
  ProxyConfig proxy;
};

class Server {
 public:
  Server(ServerConfig config, ProtocolFactoryMaker make_protocols);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, starts every loop and returns once all are serving: bind(), then run(). Throws
  // StartupError with a message that says what to do.
  void start();
  // start()'s first half: the checks, and every listener bound (or an inherited one taken); no
  // loop runs yet, so what must come between binding and serving (dropping root's privileges)
  // comes between the two. Once only.
  void bind();
  // start()'s second half, after bind(): starts every loop; returns once all are serving.
  void run();
  // The first listener's port (port 0 resolved).
  std::uint16_t port() const { return listeners_.empty() ? 0 : listeners_.front().port; }
  // Every listener, in the order given, with its port resolved: after start().
  const std::vector<ListenAddress>& listeners() const { return listeners_; }
  // The backend serving (auto resolved) and how loop 0 set it up, for the start-up line.
  Backend backend() const { return backend_; }
  const std::string& setup_mode() const { return setup_mode_; }

  // Any thread, any number of times: every loop stops accepting, lets output drain for the
  // grace period, closes its connections and returns.
  void stop();
  // Any thread: every loop reopens its access log (after a rotation renamed the file). SIGHUP
  // on loop 0's signalfd does this.
  void reopen_logs();
  // Any thread (SIGHUP does it on loop 0's): on a TLS server, reads the certificate and key
  // again, with the settings the server started with. New connections then use them; open
  // ones keep theirs. A bad file is logged, naming it, and the old context stays. Returns
  // whether the new files were taken. (The files are read on the calling thread.)
  bool reload_tls();
  // The TLS context new connections get; null without TLS.
  std::shared_ptr<const tls::TlsContext> current_tls() const;
  // Joins every loop.
  void wait();

  // Summed over every loop (the shutdown report).
  CounterValues counters() const;
  // Loop i's at [i]; the threads backend's one loop includes the counters of every worker,
  // those of workers that ended too (they stay counted: totals never go back).
  std::vector<CounterValues> counters_by_loop() const;

 private:
  void add_loop_counters(std::size_t loop, CounterValues& values) const;
  struct LoopSlot;
  template <class Loop, class... Options>
  void run_loop(LoopSlot& slot, const Options&... options);
  void resolve_backend();
  void resolve_listeners();
  static void close_listeners(LoopContext& context);
  void broadcast(std::uint32_t message);  // a loop_message bit to every loop

  ServerConfig config_;
  ProtocolFactoryMaker make_protocols_;
  mutable std::mutex tls_mutex_;
  std::shared_ptr<const tls::TlsContext> tls_;  // the latest, under tls_mutex_
  std::unique_ptr<ConnectionCap> cap_;
  std::vector<std::unique_ptr<LoopSlot>> loops_;
  std::vector<ListenAddress> listeners_;
  Backend backend_ = Backend::kAuto;
  std::string setup_mode_;
  std::vector<int> pin_cpus_;  // --pin: loop i runs on pin_cpus_[i % size]
  bool ran_ = false;           // run() started the loops: they own the listeners
};

}  // namespace rs::net
