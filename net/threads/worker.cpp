#include "net/threads/worker.hpp"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <csignal>

#include "core/clock.hpp"
#include "net/loop/loop_support.hpp"
#include "net/threads/acceptor.hpp"

namespace rs::net::threads {

namespace {

// Receive buffers per worker: one to read into, one for an answer that holds its bytes.
constexpr unsigned kWorkerBuffers = 2;
// Output chunks per slab of a worker's pool: one connection at a time needs few.
constexpr std::size_t kWorkerChunksPerSlab = 4;
// Timer wheel slots of a worker: its one connection has a handful of timers, and a wheel of
// 1,024 would cost 24 KB a connection.
constexpr std::size_t kWorkerTimerSlots = 64;
// Places of deferred answers per slab: a few pipelined /delay or file requests.
constexpr std::size_t kWorkerSlotsPerSlab = 4;
// A blocking send returns after this long without progress, so the worker's timers
// (--send-timeout-ms among them) keep running while a peer does not read.
constexpr int kSendSliceMs = 200;

void set_socket_timeout(int fd, int option, std::int64_t ms) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(ms / 1000);
  tv.tv_usec = static_cast<suseconds_t>((ms % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, option, &tv, sizeof(tv));
}

}  // namespace

Worker::Worker(Acceptor& owner, LoopCounters& counters, SharedLog& log)
    : owner_(owner),
      counters_(counters),
      state_(*this, owner.config().limits, counters, owner.config().chunk_bytes,
             kWorkerChunksPerSlab, kWorkerTimerSlots, kWorkerSlotsPerSlab),
      log_(log, state_.timers),
      buffers_(kWorkerBuffers, owner.config().buffer_size),
      files_(state_.chunks) {
  // The first slabs now, on the acceptor's thread. What a slab has not used yet is not
  // written, so it costs next to no RSS.
  state_.chunks.reserve(kWorkerChunksPerSlab);
  state_.slots.reserve(kWorkerSlotsPerSlab);
  if (LoopContext& context = owner.context(); context.current_tls) {
    tls_generation_ = context.tls_generation.load(std::memory_order_acquire);
    state_.use_tls(context.current_tls(), 1);
  }
  protocols_ = owner_.context().make_protocols(*this);
  state_.use_protocols(*protocols_, owner_.context().proxy);
}

// On the acceptor's thread, after join(): what the worker held goes back to the heap it came
// from.
Worker::~Worker() {
  protocols_.reset();
}

int Worker::start(ListenSocket accepted) {
  first_ = accepted;
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  // Its loop keeps its state on the heap, so a small stack is plenty, and thousands of workers
  // do not reserve gigabytes of address space (--thread-stack-kib).
  pthread_attr_setstacksize(&attr, owner_.config().thread_stack_bytes);
  const int rc = ::pthread_create(&thread_, &attr, &Worker::main, this);
  pthread_attr_destroy(&attr);
  started_ = rc == 0;
  return rc;
}

void Worker::join() {
  if (started_) ::pthread_join(thread_, nullptr);
  started_ = false;
}

void Worker::interrupt() {
  if (started_) ::pthread_kill(thread_, SIGUSR1);
}

void* Worker::main(void* self) {
  // Named first, by itself: a thread that serves a client already carries its name (named by
  // the acceptor after pthread_create, it would carry the acceptor's until then).
  ::pthread_setname_np(::pthread_self(), "rs-worker");
  static_cast<Worker*>(self)->run();
  return nullptr;
}

void Worker::run() {
  ListenSocket accepted = first_;
  do {
    serve(accepted);
    // Before the wait for the next connection, which may be long (or the last): the lines of
    // this one reach the file now.
    log_.flush();
    update_gauges();  // the connection's chunks went back with it
  } while (owner_.wait_for_connection(*this, accepted));
}

void Worker::update_gauges() {
  state_.update_gauges(counters_, files_.open_files());
  counters_.buffers_held.set(buffers_.held());
}

void Worker::refresh() {
  state_.move_clock();
  state_.timers.advance(state_.now_ms);
}

void Worker::on_wake(ThreadConnection& conn) {
  state_.move_clock();
  observe_owner(conn);
}

void Worker::move_clock() {
  state_.move_clock();
}

// One connection, start to close: each pass does what the event loops' turns do (redelivered
// input, then a blocking send and the settle), hands over file results, then waits in recv (or
// sleeps) until input or the next timer, then fires timers. Access-log lines wait in the
// worker's buffer (WorkerLog) until it waits for input, so the lines of a pass go in one
// write; while it blocks in a send or sleeps, the log's timer bounds their wait.
void Worker::serve(ListenSocket accepted) {
  const int fd = accepted.fd;
  if (state_.tls && accepted.tls) {
    // A SIGHUP may have reloaded the certificate since this worker's last connection.
    LoopContext& context = owner_.context();
    const std::uint32_t generation = context.tls_generation.load(std::memory_order_acquire);
    if (generation != tls_generation_ && context.current_tls) {
      state_.tls->use(context.current_tls());
      tls_generation_ = generation;
    }
  }
  ThreadConnection conn(state_.connection_context, fd, next_id_++, buffers_, *this);
  note_connection_opened(counters_);
  set_socket_timeout(fd, SO_SNDTIMEO, kSendSliceMs);
  recv_timeout_ms_ = 0;
  shut_down_ = false;
  cut_ = false;
  refresh();  // the worker may have been idle: the connection's first timers count from now
  conn.start(*protocols_, accepted);
  for (;;) {
    // The send blocks for at most kSendSliceMs without progress.
    redeliver_and_flush(state_.turn,
                        [&conn](DrivenConnection& /*c*/) { return conn.send_pending(); });
    files_.deliver_posted();
    update_gauges();
    if (conn.closed() && state_.turn.empty()) {
      conn.turn_done();  // the protocol hears of the close
      break;
    }
    observe_owner(conn);
    if (state_.turn.empty() && !files_.has_posted() && !cut_) wait_for_input_or_timer(conn);
    // Stashed input waiting to be handed back arrived before any deadline now due: it goes to
    // the protocol (at the top of the next pass) before timers fire.
    state_.move_clock();
    if (state_.turn.resumed.empty()) state_.timers.advance(state_.now_ms);
  }
  refresh();
  counters_.closed.add();
  counters_.connections_open.dec();
  // Its place under the cap is given back once this worker is idle (wait_for_connection), so
  // the next client finds a thread waiting instead of making one more.
}

// Acts on the owner's stop flags, once each per connection, then acknowledges them. The flags
// are read before the acknowledgement: a notice sent after this load is acted on at the next
// pass, and the owner interrupts until it is acknowledged.
void Worker::observe_owner(ThreadConnection& conn) {
  const std::uint32_t notice = owner_.notice();
  if (owner_.cut() && !cut_) {
    cut_ = true;
    conn.abort();
  } else if (owner_.stopping() && !shut_down_) {
    shut_down_ = true;
    conn.shut_down();
  }
  seen_.store(notice, std::memory_order_release);
}

void Worker::wait_for_input_or_timer(ThreadConnection& conn) {
  // No free buffer (answers still pending hold them all): nothing could be read into; a
  // timer releases them.
  const bool reading = conn.receiving() && !conn.transport_closed() && buffers_.available() > 0;
  // The pass is over and the wait for input may be long: what it logged reaches the file now,
  // and the log's timer (cancelled) does not cut the wait short.
  if (reading) log_.flush();
  std::int64_t timeout_ms = -1;  // no timer: wait for input (or a stop) alone
  if (auto next = state_.timers.next_expiry_ms()) {
    timeout_ms = static_cast<std::int64_t>(*next > state_.now_ms ? *next - state_.now_ms : 0);
    if (timeout_ms == 0) return;  // a timer is due now
  }
  if (reading) {
    // The socket timeout is the next timer. It changes only when the deadline moved by more
    // than a millisecond, so a keep-alive connection re-arming the same idle timeout costs no
    // setsockopt per request.
    const std::int64_t want = timeout_ms < 0 ? 0 : timeout_ms;
    if (want == 0 ? recv_timeout_ms_ != 0
                  : (recv_timeout_ms_ == 0 || want < recv_timeout_ms_ - 1 ||
                     want > recv_timeout_ms_ + 1)) {
      set_socket_timeout(conn.fd(), SO_RCVTIMEO, want);
      recv_timeout_ms_ = want;
    }
    conn.receive();  // returns with input, at the timeout (a timer is due) or on a stop
    return;
  }
  // Nothing to read (input paused, ended, or every buffer held by a pending answer): sleep
  // until the next timer (the log's among them: lines still buffered wait at most
  // WorkerLog::kFlushMs). A pending GET /delay keeps its thread here.
  ::poll(nullptr, 0, static_cast<int>(std::min<std::int64_t>(timeout_ms, INT32_MAX)));
}

}  // namespace rs::net::threads
