// A server: N independent loops, each on its own thread with its own listener (SO_REUSEPORT)
// and its own ring, sharing nothing but the connection cap. The protocol is supplied as a
// factory maker, so the same server runs echo or HTTP.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "net/loop/loop_config.hpp"
#include "net/loop_counters.hpp"
#include "net/tls/tls_context.hpp"
#include "net/transport.hpp"
#include "net/uring/ring_options.hpp"

namespace rs::net {

// auto: uring where io_uring is available, else epoll (with a log line saying why).
// threads: a thread per connection with blocking I/O (one acceptor; --threads must be 1).
enum class Backend : std::uint8_t { kAuto, kUring, kEpoll, kThreads };
const char* to_string(Backend backend);
std::ostream& operator<<(std::ostream& os, Backend backend);

struct ServerConfig {
  std::string address = "127.0.0.1";
  std::uint16_t port = 9000;  // 0: any free port
  Backend backend = Backend::kAuto;
  unsigned threads = 1;
  // Pin loop i to the i-th CPU this process may run on (wrapping when there are more loops).
  bool pin = false;
  std::uint64_t max_connections = 10000;
  int backlog = 4096;
  // When >= 0, loop 0 reads this signalfd: SIGINT/SIGTERM stop the server, SIGHUP reopens
  // the access log on every loop.
  int signal_fd = -1;
  LoopConfig loop;
  // The ring backend's knobs (--uring-*); the other backends have none.
  uring::RingOptions ring;
  // Set: every connection speaks TLS (--tls-cert, --tls-key and the other --tls-* flags).
  std::shared_ptr<const tls::TlsContext> tls;
};

class Server {
 public:
  Server(ServerConfig config, ProtocolFactoryMaker make_protocols);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Binds, starts every loop and returns once all are serving. Throws StartupError with a
  // message that says what to do.
  void start();
  std::uint16_t port() const { return port_; }
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

  CounterValues counters() const;

 private:
  struct LoopSlot;
  template <class Loop, class... Options>
  void run_loop(LoopSlot& slot, const Options&... options);
  void resolve_backend();
  void broadcast(std::uint32_t message);  // a loop_message bit to every loop

  ServerConfig config_;
  ProtocolFactoryMaker make_protocols_;
  mutable std::mutex tls_mutex_;
  std::shared_ptr<const tls::TlsContext> tls_;  // the latest, under tls_mutex_
  std::unique_ptr<ConnectionCap> cap_;
  std::vector<std::unique_ptr<LoopSlot>> loops_;
  std::uint16_t port_ = 0;
  Backend backend_ = Backend::kAuto;
  std::string setup_mode_;
  std::vector<int> pin_cpus_;  // --pin: loop i runs on pin_cpus_[i % size]
};

}  // namespace rs::net
