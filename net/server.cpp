#include "net/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <future>
#include <string_view>
#include <system_error>
#include <utility>

#include <fmt/format.h>

#include "core/log.hpp"
#include "net/epoll/epoll_poller.hpp"
#include "net/loop/event_loop.hpp"
#include "net/socket.hpp"
#include "net/threads/acceptor.hpp"
#include "net/uring/ring.hpp"
#include "net/uring/ring_poller.hpp"

namespace rs::net {

// Each backend's loop is compiled once, in its poller's source file.
extern template class EventLoop<uring::RingPoller>;
extern template class EventLoop<epoll::EpollPoller>;

const char* to_string(Backend backend) {
  switch (backend) {
    case Backend::kAuto:
      return "auto";
    case Backend::kUring:
      return "uring";
    case Backend::kEpoll:
      return "epoll";
    case Backend::kThreads:
      return "threads";
  }
  return "?";
}

std::ostream& operator<<(std::ostream& os, Backend backend) {
  return os << to_string(backend);
}

namespace {

// The listener options, one line each: the word after a comma, and what it sets (returning
// whether it was set already).
struct ListenOption {
  std::string_view word;
  bool (*set)(ListenAddress& listener);
};
constexpr ListenOption kListenOptions[] = {
    {"tls", [](ListenAddress& l) { return std::exchange(l.tls, true); }},
    {"metrics",
     [](ListenAddress& l) {
       return std::exchange(l.use, ListenerUse::kMetrics) == ListenerUse::kMetrics;
     }},
    {"proxy", [](ListenAddress& l) { return std::exchange(l.proxy, true); }},
};

}  // namespace

ListenAddress parse_listen_address(const std::string& text, std::string_view flag) {
  const auto bad = [&text, flag](std::string_view why) {
    std::string grammar = "ADDRESS:PORT";
    for (const ListenOption& option : kListenOptions)
      grammar += fmt::format("[,{}]", option.word);
    return StartupError(fmt::format(
        "{} {}: {}; write {}, e.g. 0.0.0.0:8443,tls or [::]:8080 or 127.0.0.1:9100,metrics or "
        "0.0.0.0:443,tls,proxy",
        flag, text, why, grammar));
  };
  const std::size_t comma = text.find(',');
  const std::string_view where = std::string_view(text).substr(0, comma);
  ListenAddress listener;
  std::string_view port;
  if (where.starts_with('[')) {
    const std::size_t close = where.find(']');
    if (close == std::string_view::npos || close + 1 >= where.size() || where[close + 1] != ':') {
      throw bad("an IPv6 address in brackets is followed by :PORT");
    }
    listener.address = std::string(where.substr(1, close - 1));
    port = where.substr(close + 2);
  } else {
    const std::size_t colon = where.rfind(':');
    if (colon == std::string_view::npos) throw bad("no :PORT");
    if (where.find(':') != colon) throw bad("an IPv6 address goes in brackets");
    listener.address = std::string(where.substr(0, colon));
    port = where.substr(colon + 1);
  }
  if (listener.address.empty()) throw bad("no address (0.0.0.0 or [::] listens on all)");
  const bool bracketed = where.starts_with('[');
  if (in6_addr v6{}; bracketed && ::inet_pton(AF_INET6, listener.address.c_str(), &v6) != 1) {
    throw bad("not an IPv6 address literal in the brackets");
  }
  if (in_addr v4{}; !bracketed && ::inet_pton(AF_INET, listener.address.c_str(), &v4) != 1) {
    throw bad("not an IPv4 address literal (names are not resolved; IPv6 goes in brackets)");
  }
  unsigned value = 0;
  const auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (port.empty() || error != std::errc() || end != port.data() + port.size() || value > 65535) {
    throw bad("the port is a number from 0 to 65535 (0: any free port)");
  }
  listener.port = static_cast<std::uint16_t>(value);
  if (comma != std::string::npos) {
    const std::string why =
        parse_listener_options(std::string_view(text).substr(comma + 1), listener);
    if (!why.empty()) throw bad(why);
  }
  return listener;
}

std::string parse_listener_options(std::string_view options, ListenAddress& listener) {
  for (std::size_t at = 0; at <= options.size();) {
    const std::size_t next = std::min(options.find(',', at), options.size());
    const std::string_view word = options.substr(at, next - at);
    const auto* option = std::find_if(std::begin(kListenOptions), std::end(kListenOptions),
                                      [word](const ListenOption& o) { return o.word == word; });
    if (option == std::end(kListenOptions)) {
      std::string words;
      for (const ListenOption& o : kListenOptions)
        words += fmt::format("{}{}", words.empty() ? "" : ", ", o.word);
      return fmt::format("unknown option \"{}\" (the options are {})", word, words);
    }
    if (option->set(listener)) return fmt::format("{} is given twice", word);
    at = next + 1;
  }
  return {};
}

std::string describe(const ListenAddress& listener) {
  return fmt::format("{} port {}{}{}{}{}", listener.address, listener.port,
                     listener.tls ? " tls" : "",
                     listener.use == ListenerUse::kMetrics ? " metrics" : "",
                     listener.proxy ? " proxy" : "", listener.fd >= 0 ? " (inherited)" : "");
}

namespace {

// The CPUs this process may run on (its affinity mask, as taskset or a cgroup left it), in
// order: loop i goes to the i-th. The mask is sized for the host (CPU_ALLOC), so a machine
// with more CPUs than a fixed cpu_set_t holds is no reason to refuse --pin.
std::vector<int> allowed_cpus() {
  const long configured = ::sysconf(_SC_NPROCESSORS_CONF);
  for (int count = static_cast<int>(std::max<long>(configured, CPU_SETSIZE));; count *= 2) {
    cpu_set_t* set = CPU_ALLOC(count);
    if (set == nullptr) throw StartupError("--pin: out of memory for a CPU mask");
    const std::size_t size = CPU_ALLOC_SIZE(count);
    CPU_ZERO_S(size, set);
    if (::sched_getaffinity(0, size, set) != 0) {
      const int error = errno;
      CPU_FREE(set);
      if (error == EINVAL && count < (1 << 20)) continue;  // the kernel's mask is larger
      throw StartupError(fmt::format("--pin: sched_getaffinity: {}", std::strerror(error)));
    }
    std::vector<int> cpus;
    for (int cpu = 0; cpu < count; ++cpu) {
      if (CPU_ISSET_S(cpu, size, set)) cpus.push_back(cpu);
    }
    CPU_FREE(set);
    return cpus;
  }
}

// Another descriptor for an inherited listener, for another loop.
int duplicate_listener(const ListenAddress& listener) {
  const int fd = ::fcntl(listener.fd, F_DUPFD_CLOEXEC, 3);
  if (fd < 0) {
    throw StartupError(fmt::format("dup of the inherited listener {}: {}", describe(listener),
                                   std::strerror(errno)));
  }
  return fd;
}

// The longest accept queue a listener gets: listen() caps the backlog at somaxconn.
std::uint64_t effective_backlog(int backlog) {
  std::uint64_t cap = 4096;  // the kernel's default since 5.4, if the file cannot be read
  if (std::FILE* f = std::fopen("/proc/sys/net/core/somaxconn", "re")) {
    unsigned long value = 0;
    if (std::fscanf(f, "%lu", &value) == 1) cap = value;
    std::fclose(f);
  }
  return std::min<std::uint64_t>(static_cast<std::uint64_t>(std::max(backlog, 1)), cap);
}

// Pins the calling thread; 0 or the error.
int pin_to_cpu(int cpu) {
  cpu_set_t* set = CPU_ALLOC(cpu + 1);
  if (set == nullptr) return ENOMEM;
  const std::size_t size = CPU_ALLOC_SIZE(cpu + 1);
  CPU_ZERO_S(size, set);
  CPU_SET_S(cpu, size, set);
  const int rc = ::pthread_setaffinity_np(::pthread_self(), size, set);
  CPU_FREE(set);
  return rc;
}

}  // namespace

struct Server::LoopSlot {
  LoopCounters counters;
  LoopContext context;
  std::promise<std::string> ready;  // empty string: serving; otherwise the start-up error
  std::thread thread;
};

Server::Server(ServerConfig config, ProtocolFactoryMaker make_protocols)
    : config_(std::move(config)), make_protocols_(std::move(make_protocols)), tls_(config_.tls) {}

Server::~Server() {
  stop();
  wait();
  for (auto& slot : loops_) {
    // Bound and never run (run() not reached): the listeners are still the server's.
    if (!ran_) close_listeners(slot->context);
    if (slot->context.wake_fd >= 0) ::close(slot->context.wake_fd);
  }
}

void Server::start() {
  bind();
  run();
}

void Server::bind() {
  if (config_.threads == 0) throw StartupError("--threads must be at least 1");
  if (config_.backend == Backend::kThreads && config_.threads != 1) {
    throw StartupError(
        "--threads sets the event loops of uring and epoll; the threads backend makes a thread "
        "per connection by itself (bound it with --max-connections): leave --threads at 1");
  }
  if (config_.backend == Backend::kThreads && config_.pin) {
    throw StartupError(
        "--pin pins the event loops of uring and epoll; the threads backend's threads come and "
        "go with connections: drop --pin (use taskset to confine the whole process)");
  }
  check_connection_cap(config_.max_connections, config_.threads, raise_fd_limit());
  if (config_.pin) {
    pin_cpus_ = allowed_cpus();
    if (pin_cpus_.size() < config_.threads) {
      core::log_info("--pin: {} loops on {} CPUs: some loops share a CPU", config_.threads,
                     pin_cpus_.size());
    }
  }
  resolve_listeners();
  cap_ = std::make_unique<ConnectionCap>(config_.max_connections);
  // One burst of a multishot accept is at most a full backlog (and one more), on every
  // listener of every loop.
  config_.loop.multishot_accept_room =
      config_.threads * listeners_.size() * (effective_backlog(config_.backlog) + 1);
  resolve_backend();

  // Every loop gets its own socket for each listener; the first loop's bind (port 0 picks one),
  // the rest join it. An inherited socket is one socket: loop 0 takes it, the others a dup()
  // (epoll and io_uring accept on one socket from several loops; the multishot accept room
  // above counts a burst per loop all the same).
  const bool reuse_port = config_.threads > 1;
  for (unsigned i = 0; i < config_.threads; ++i) {
    auto slot = std::make_unique<LoopSlot>();
    slot->context.index = static_cast<int>(i);
    try {
      slot->context.listeners.reserve(listeners_.size());
      for (ListenAddress& listener : listeners_) {
        const int fd = listener.fd < 0 ? listen_tcp(listener.address, listener.port, reuse_port,
                                                    config_.backlog)
                       : i == 0        ? listener.fd
                                       : duplicate_listener(listener);
        slot->context.listeners.push_back({.fd = fd,
                                           .tls = listener.tls,
                                           .proxy = listener.proxy,
                                           .use = listener.use});  // reserved
        if (i == 0) listener.port = local_port(fd);
      }
      slot->context.wake_fd = ::eventfd(0, EFD_CLOEXEC);
      if (slot->context.wake_fd < 0) {
        throw StartupError(fmt::format("eventfd: {}", std::strerror(errno)));
      }
    } catch (...) {
      // No loop runs yet: every listener bound so far is closed here (the wake descriptors of
      // the slots in loops_ go with the server).
      close_listeners(slot->context);
      for (auto& earlier : loops_)
        close_listeners(earlier->context);
      throw;
    }
    slot->context.signal_fd = i == 0 ? config_.signal_fd : -1;
    slot->context.counters = &slot->counters;
    slot->context.proxy = &config_.proxy;
    slot->context.cap = cap_.get();
    slot->context.make_protocols = make_protocols_;
    slot->context.stop_all = [this] {
      if (config_.on_stopping) config_.on_stopping();
      stop();
    };
    slot->context.on_hangup = [this] {
      if (config_.on_reloading) config_.on_reloading();
      if (config_.tls) reload_tls();
      reopen_logs();
      if (config_.on_reloaded) config_.on_reloaded();
    };
    if (config_.tls) slot->context.current_tls = [this] { return current_tls(); };
    slot->context.near_cap_all = [this] { broadcast(loop_message::kNearCap); };
    loops_.push_back(std::move(slot));
  }
}

void Server::run() {
  ran_ = true;
  std::string first_error;
  for (auto& slot : loops_) {
    auto ready = slot->ready.get_future();
    slot->thread = std::thread([this, s = slot.get()] {
      if (backend_ == Backend::kEpoll) {
        run_loop<EventLoop<epoll::EpollPoller>>(*s, epoll::EpollOptions{});
      } else if (backend_ == Backend::kThreads) {
        run_loop<threads::Acceptor>(*s);
      } else {
        run_loop<EventLoop<uring::RingPoller>>(*s, config_.ring);
      }
    });
    std::string error = ready.get();
    if (!error.empty() && first_error.empty()) first_error = std::move(error);
  }
  if (!first_error.empty()) {
    stop();
    wait();
    throw StartupError(first_error);
  }
}

namespace {

// Whether two listeners would take each other's connections on one port: the same address,
// however spelt (SO_REUSEPORT, on when there are several loops, would let both bind and the
// kernel would share clients between them at random), or a wildcard and an address it covers
// ("::" covers IPv4 too, as a dual-stack socket).
bool overlap(const ListenAddress& a, const ListenAddress& b) {
  if (a.port == 0 || a.port != b.port) return false;
  in6_addr a6{};
  in6_addr b6{};
  in_addr a4{};
  in_addr b4{};
  const bool a_v6 = ::inet_pton(AF_INET6, a.address.c_str(), &a6) == 1;
  const bool b_v6 = ::inet_pton(AF_INET6, b.address.c_str(), &b6) == 1;
  const bool a_v4 = !a_v6 && ::inet_pton(AF_INET, a.address.c_str(), &a4) == 1;
  const bool b_v4 = !b_v6 && ::inet_pton(AF_INET, b.address.c_str(), &b4) == 1;
  const bool a_any6 = a_v6 && IN6_IS_ADDR_UNSPECIFIED(&a6);
  const bool b_any6 = b_v6 && IN6_IS_ADDR_UNSPECIFIED(&b6);
  if (a_any6 || b_any6) return true;  // covers both families
  if (a_v6 && b_v6) return IN6_ARE_ADDR_EQUAL(&a6, &b6);
  if (a_v4 && b_v4) {
    return a4.s_addr == b4.s_addr || a4.s_addr == htonl(INADDR_ANY) ||
           b4.s_addr == htonl(INADDR_ANY);
  }
  return a.address == b.address;  // not literals (--address is checked at bind)
}

}  // namespace

// --listen, or --address and --port; which of them speak TLS, checked against the certificate.
void Server::resolve_listeners() {
  if (!config_.inherited.empty() && !config_.listen.empty()) {
    throw StartupError(
        "--listen is given and systemd passed listening sockets (LISTEN_FDS: a socket unit): "
        "the server serves those; drop --listen, or stop the socket units");
  }
  listeners_ = config_.inherited.empty() ? config_.listen : config_.inherited;
  if (listeners_.empty()) {
    listeners_.push_back(
        {.address = config_.address, .port = config_.port, .tls = bool(config_.tls)});
  }
  for (ListenAddress metrics : config_.metrics_listen) {
    metrics.use = ListenerUse::kMetrics;
    listeners_.push_back(std::move(metrics));
  }
  const auto serves = [](const ListenAddress& l) { return l.use == ListenerUse::kServe; };
  if (std::none_of(listeners_.begin(), listeners_.end(), serves)) {
    throw StartupError(
        "every listener is for metrics: give one that serves requests (a --listen without "
        ",metrics, or --address and --port)");
  }
  if (!config_.protocol_has_metrics && !std::all_of(listeners_.begin(), listeners_.end(), serves)) {
    throw StartupError("this server has no metrics to serve: drop ,metrics from --listen");
  }
  if (listeners_.size() > kMaxListeners) {
    throw StartupError(
        fmt::format("{} --listen options: at most {} are taken", listeners_.size(), kMaxListeners));
  }
  const bool any_tls = std::any_of(listeners_.begin(), listeners_.end(),
                                   [](const ListenAddress& l) { return l.tls; });
  if (any_tls && !config_.tls) {
    throw StartupError(
        config_.inherited.empty()
            ? "a --listen with ,tls needs a certificate: give --tls-cert and --tls-key"
            : "a socket named tls (FileDescriptorName=tls) needs a certificate: give "
              "--tls-cert and --tls-key");
  }
  if (!any_tls && config_.tls && !config_.inherited.empty()) {
    throw StartupError(
        "--tls-cert is given but no socket systemd passed speaks TLS: name the TLS socket unit's "
        "sockets tls (FileDescriptorName=tls)");
  }
  if (!any_tls && config_.tls) {
    throw StartupError(
        "--tls-cert is given but no --listen speaks TLS: add ,tls to the listener that should "
        "(e.g. --listen 0.0.0.0:8443,tls)");
  }
  const bool any_proxy = std::any_of(listeners_.begin(), listeners_.end(),
                                     [](const ListenAddress& l) { return l.proxy; });
  if (any_proxy && config_.proxy.trusted.empty()) {
    throw StartupError(
        "a --listen with ,proxy takes PROXY headers only from trusted peers: give the load "
        "balancer's addresses with --trusted-proxy CIDR (e.g. --trusted-proxy 10.0.0.0/8), or "
        "drop ,proxy");
  }
  for (std::size_t i = 0; i < listeners_.size(); ++i) {
    for (std::size_t j = 0; j < i; ++j) {
      const bool both_inherited = listeners_[i].fd >= 0 && listeners_[j].fd >= 0;
      if (!both_inherited && overlap(listeners_[i], listeners_[j])) {
        throw StartupError(fmt::format(
            "--listen {} and --listen {} take the same connections: give each its own port",
            describe(listeners_[j]), describe(listeners_[i])));
      }
    }
  }
}

void Server::close_listeners(LoopContext& context) {
  for (const ListenSocket& listener : context.listeners) {
    if (listener.fd >= 0) ::close(listener.fd);
  }
  context.listeners.clear();
}

// io_uring can be missing (old kernel), switched off (kernel.io_uring_disabled) or refused (a
// seccomp profile, a container runtime): auto then serves on epoll and says why.
void Server::resolve_backend() {
  backend_ = config_.backend;
  if (backend_ != Backend::kAuto) return;
  try {
    LoopCounters scratch;
    uring::Ring probe(uring::RingOptions{.sq_entries = 8, .cq_entries = 16}, scratch);
    backend_ = Backend::kUring;
  } catch (const std::exception& e) {
    core::log_info("io_uring unavailable ({}); serving on epoll", e.what());
    backend_ = Backend::kEpoll;
  }
}

template <class Loop, class... Options>
void Server::run_loop(LoopSlot& slot, const Options&... options) {
  std::optional<Loop> loop;
  const int index = slot.context.index;
  ::pthread_setname_np(::pthread_self(), fmt::format("rs-loop-{}", index).c_str());
  if (!pin_cpus_.empty()) {
    const int cpu = pin_cpus_[static_cast<std::size_t>(index) % pin_cpus_.size()];
    if (const int error = pin_to_cpu(cpu); error != 0) {
      close_listeners(slot.context);
      slot.ready.set_value(
          fmt::format("--pin: cannot pin loop {} to CPU {}: {}", index, cpu, std::strerror(error)));
      return;
    }
  }
  try {
    // The ring (or epoll set) is created here, on the thread that drives it.
    loop.emplace(config_.loop, slot.context, options...);
  } catch (const std::exception& e) {
    close_listeners(slot.context);  // those not yet handed over
    slot.ready.set_value(e.what());
    return;
  }
  if (slot.context.index == 0) setup_mode_ = loop->describe();
  slot.ready.set_value({});
  try {
    loop->run();
  } catch (const std::exception& e) {
    // A broken invariant or exhausted memory on one loop: say so and stop the whole server
    // rather than terminate the process without a word.
    core::log_error("loop {} failed: {}; stopping the server", slot.context.index, e.what());
    stop();
  }
}

void Server::stop() {
  broadcast(loop_message::kStop);
}

void Server::reopen_logs() {
  broadcast(loop_message::kReopenLogs);
}

bool Server::reload_tls() {
  const std::shared_ptr<const tls::TlsContext> old = current_tls();
  if (!old) return false;
  std::shared_ptr<const tls::TlsContext> fresh;
  try {
    // The old context's ticket keys go on: tickets issued before the reload still resume.
    fresh = tls::TlsContext::load(old->config(), old->ticket_keys());
  } catch (const std::exception& e) {
    core::log_warn("TLS not reloaded, the certificate in use stays: {}", e.what());
    return false;
  }
  core::log_info("TLS reloaded: {}", fresh->describe());
  {
    std::lock_guard lock(tls_mutex_);
    tls_ = std::move(fresh);
  }
  for (auto& slot : loops_)
    slot->context.tls_generation.fetch_add(1, std::memory_order_release);
  broadcast(loop_message::kReloadTls);
  return true;
}

std::shared_ptr<const tls::TlsContext> Server::current_tls() const {
  std::lock_guard lock(tls_mutex_);
  return tls_;
}

void Server::broadcast(std::uint32_t message) {
  for (auto& slot : loops_) {
    if (slot->context.wake_fd < 0) continue;
    // The bit first, then the wake-up: the loop reads the eventfd before it takes the bits.
    slot->context.messages.fetch_or(message, std::memory_order_release);
    const std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(slot->context.wake_fd, &one, sizeof(one));
  }
}

void Server::wait() {
  for (auto& slot : loops_) {
    if (slot->thread.joinable()) slot->thread.join();
  }
}

namespace {

std::uint8_t backend_bit(Backend backend) {
  if (backend == Backend::kEpoll) return backends::kEpoll;
  if (backend == Backend::kThreads) return backends::kThreads;
  return backends::kUring;
}

}  // namespace

void Server::add_loop_counters(std::size_t loop, CounterValues& values) const {
  const std::uint8_t backend = backend_bit(backend_);
  const LoopSlot& slot = *loops_[loop];
  values.add(slot.counters, backend);
  slot.context.for_each_extra_counters([&](const LoopCounters& c) { values.add(c, backend); });
}

CounterValues Server::counters() const {
  CounterValues values;
  for (std::size_t i = 0; i < loops_.size(); ++i)
    add_loop_counters(i, values);
  return values;
}

std::vector<CounterValues> Server::counters_by_loop() const {
  std::vector<CounterValues> loops(loops_.size());
  for (std::size_t i = 0; i < loops_.size(); ++i)
    add_loop_counters(i, loops[i]);
  return loops;
}

}  // namespace rs::net
