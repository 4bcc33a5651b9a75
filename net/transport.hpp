// The seam between protocol code (echo, HTTP) and the I/O backends (ring, epoll, threads).
//
// Protocol code sees a Connection (net/connection.hpp): input arrives through
// Protocol::on_input, output is appended to the connection and leaves in order once per loop
// turn, answers that complete later reserve their place with Connection::defer(). Beside
// connections each loop offers LoopServices. Protocol code never touches a ring, an epoll set
// or a thread.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "core/buffer.hpp"
#include "core/timer_wheel.hpp"
#include "net/file_service.hpp"
#include "net/input.hpp"
#include "net/log_sink.hpp"

namespace rs::net {

class Connection;
class LoopServices;

// Per-connection protocol state. The backend calls these on the loop thread, never reentrantly.
class Protocol {
 public:
  // Bytes arrived. Consume what was handled; what is left stays for the next call.
  virtual void on_input(Connection& conn, Input& input) = 0;
  // The peer shut down its sending side (EOF). The default closes once output has drained.
  virtual void on_input_end(Connection& conn);
  // Every sendable byte has been handed to the kernel (deferred answers may still be owed; a
  // streamed one reads on from here).
  virtual void on_output_drained(Connection& /*conn*/) {}
  // The server is stopping: finish what is in flight, then close. The default closes gracefully.
  virtual void on_shutdown(Connection& conn);
  // The peer closed (or shut down its sending side) while the server was not reading it: its
  // last bytes wait unread before the close. The default does nothing: the end of input comes in
  // order once reading resumes. A protocol that owes answers it has not begun may end the
  // connection now (a client that has gone would otherwise hold its place until they are done).
  virtual void on_peer_hangup(Connection& /*conn*/) {}
  // The wake-up asked for with Connection::wake_at is due.
  virtual void on_timer(Connection& /*conn*/) {}
  // On a ,proxy listener: the PROXY header named the client, right after the protocol opened and
  // before any input. Connection::peer() stays the socket's peer (the proxy); the connection
  // keeps no copy of `client`, so a protocol that names the client (an access log) keeps it.
  virtual void on_proxied_peer(Connection& /*conn*/, const sockaddr_storage& /*client*/) {}
  // Last call for this connection: release per-connection state, cancel timers.
  virtual void on_close(Connection& conn) = 0;

 protected:
  ~Protocol() = default;
};

// Makes per-connection protocol state; one factory per loop, used only on that loop's thread.
class ProtocolFactory {
 public:
  virtual ~ProtocolFactory() = default;
  virtual Protocol* open(Connection& conn) = 0;
};

// Makes a loop's factory once its services exist, on that loop's thread (a worker of the threads
// backend: on the acceptor's, before the worker's thread starts). What a net::Server takes, so
// the same server runs echo or HTTP.
using ProtocolFactoryMaker = std::function<std::unique_ptr<ProtocolFactory>(LoopServices&)>;

// What a loop offers protocol code beside connections. File reads and log appends join with
// the HTTP server.
class LoopServices {
 public:
  virtual core::TimerWheel& timers() = 0;
  virtual core::ChunkPool& chunks() = 0;
  virtual std::uint64_t now_ms() const = 0;
  // The same turn clock in microseconds (one clock read gives both): when a request's first
  // byte was taken, for its duration.
  virtual std::uint64_t now_us() const = 0;
  // The wall-clock second (UTC) of this loop turn, read with now_ms() once per turn: for the
  // Date header and log stamps, never for deadlines.
  virtual std::uint64_t wall_clock_s() const = 0;
  // The access log of this loop, or nullptr when it is off (lines are then not even formatted).
  virtual LogSink* access_log() = 0;
  // Opens and reads files without blocking the loop (net/file_service.hpp).
  virtual FileService& files() = 0;
  // A worker of the threads backend serves one connection at a time: its pools are made for
  // one, up front, where an event loop's grow by large slabs for thousands.
  virtual bool serves_one_connection() const { return false; }

 protected:
  ~LoopServices() = default;
};

// What a backend does for one of its connections, asked by the connection's shared logic
// (net/connection.cpp). Each backend's connection implements it: the ring with operations, epoll
// with the epoll set and plain calls, the threads backend with blocking calls.
class Transport {
 public:
  virtual void set_receiving(bool on) = 0;  // arm or stop receiving
  virtual bool send_in_flight() const = 0;  // the kernel has not yet taken a send we started
  virtual void shutdown_write() = 0;        // send FIN after the output already sent
  virtual void close_transport() = 0;       // cancel, close; freed after the last completion

 protected:
  ~Transport() = default;
};

}  // namespace rs::net
