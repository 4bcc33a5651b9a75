// The io_uring floor: one thread, one ring (single issuer, deferred task work), a multishot
// accept, a multishot receive per connection into a provided buffer ring, and per loop turn one
// send per connection carrying every answer its receives asked for.
// Usage: floor-uring [--port N]
#include <liburing.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "perf/floors/floor_common.hpp"

namespace {

constexpr unsigned kEntries = 4096;
constexpr unsigned kBuffers = 4096;  // a power of two, as the buffer ring needs
constexpr unsigned kBufferBytes = 4096;
constexpr int kGroup = 0;

enum Op : std::uint64_t { kAccept = 0, kRecv = 1, kSend = 2 };

std::uint64_t tag(int fd, Op op) {
  return (static_cast<std::uint64_t>(fd) << 8) | op;
}

struct Conn {
  int fd = -1;
  floors::RequestEnds ends;
  std::string out;      // answers waiting for the next send
  std::string sending;  // the bytes of the send in flight
  bool send_in_flight = false;
  bool recv_armed = false;
  bool closing = false;
  bool dirty = false;  // on this turn's list of connections with answers to send
};

class Floor {
 public:
  explicit Floor(int listen_fd) : lfd_(listen_fd), conns_(1 << 16) {
    io_uring_params params{};
    params.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
    params.cq_entries = kEntries * 4;
    if (io_uring_queue_init_params(kEntries, &ring_, &params) < 0) {
      errno = EINVAL;
      floors::die("io_uring_queue_init_params (needs Linux 6.1 or later)");
    }
    void* ring_memory = nullptr;
    if (posix_memalign(&ring_memory, 4096, kBuffers * sizeof(io_uring_buf)) != 0) {
      floors::die("posix_memalign");
    }
    buf_ring_ = static_cast<io_uring_buf_ring*>(ring_memory);
    io_uring_buf_ring_init(buf_ring_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uint64_t>(buf_ring_);
    reg.ring_entries = kBuffers;
    reg.bgid = kGroup;
    if (io_uring_register_buf_ring(&ring_, &reg, 0) != 0) floors::die("register_buf_ring");
    buffers_ = std::make_unique<char[]>(std::size_t{kBuffers} * kBufferBytes);
    for (unsigned i = 0; i < kBuffers; ++i)
      give_back(static_cast<std::uint16_t>(i));
    io_uring_buf_ring_advance(buf_ring_, static_cast<int>(returned_));
    returned_ = 0;
    io_uring_prep_multishot_accept(sqe(), lfd_, nullptr, nullptr, 0);
    io_uring_sqe_set_data64(last_, tag(lfd_, kAccept));
  }

  void run() {
    __kernel_timespec wait{.tv_sec = 0, .tv_nsec = 200'000'000};
    while (floors::g_stop == 0) {
      io_uring_cqe* cqe = nullptr;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &wait, nullptr);
      unsigned head = 0;
      unsigned seen = 0;
      io_uring_for_each_cqe(&ring_, head, cqe) {
        handle(*cqe);
        ++seen;
      }
      io_uring_cq_advance(&ring_, seen);
      end_turn();
    }
  }

 private:
  io_uring_sqe* sqe() {
    last_ = io_uring_get_sqe(&ring_);
    if (last_ == nullptr) {
      io_uring_submit(&ring_);
      last_ = io_uring_get_sqe(&ring_);
    }
    return last_;
  }

  void give_back(std::uint16_t bid) {
    io_uring_buf_ring_add(buf_ring_, buffers_.get() + std::size_t{bid} * kBufferBytes, kBufferBytes,
                          bid, io_uring_buf_ring_mask(kBuffers), static_cast<int>(returned_++));
  }

  void arm_recv(Conn& c) {
    io_uring_prep_recv_multishot(sqe(), c.fd, nullptr, 0, 0);
    last_->flags |= IOSQE_BUFFER_SELECT;
    last_->buf_group = kGroup;
    io_uring_sqe_set_data64(last_, tag(c.fd, kRecv));
    c.recv_armed = true;
  }

  void send(Conn& c) {
    c.sending.swap(c.out);
    c.out.clear();
    io_uring_prep_send(sqe(), c.fd, c.sending.data(), c.sending.size(), MSG_NOSIGNAL);
    io_uring_sqe_set_data64(last_, tag(c.fd, kSend));
    c.send_in_flight = true;
  }

  void handle(const io_uring_cqe& cqe) {
    const int fd = static_cast<int>(cqe.user_data >> 8);
    const auto op = static_cast<Op>(cqe.user_data & 0xff);
    if (op == kAccept) {
      on_accept(cqe);
      return;
    }
    Conn& c = *conns_[static_cast<std::size_t>(fd)];
    if (op == kRecv) {
      on_recv(c, cqe);
    } else {
      on_send(c, cqe);
    }
    if (c.closing && !c.send_in_flight && !c.recv_armed) {
      ::close(c.fd);
      conns_[static_cast<std::size_t>(fd)].reset();
    }
  }

  void on_accept(const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) {
      io_uring_prep_multishot_accept(sqe(), lfd_, nullptr, nullptr, 0);
      io_uring_sqe_set_data64(last_, tag(lfd_, kAccept));
    }
    if (cqe.res < 0) return;
    if (static_cast<std::size_t>(cqe.res) >= conns_.size()) {
      ::close(cqe.res);
      return;
    }
    const int one = 1;
    ::setsockopt(cqe.res, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    auto& slot = conns_[static_cast<std::size_t>(cqe.res)];
    slot = std::make_unique<Conn>();
    slot->fd = cqe.res;
    arm_recv(*slot);
  }

  void on_recv(Conn& c, const io_uring_cqe& cqe) {
    if ((cqe.flags & IORING_CQE_F_MORE) == 0) c.recv_armed = false;
    if (cqe.res > 0) {
      const auto bid = static_cast<std::uint16_t>(cqe.flags >> IORING_CQE_BUFFER_SHIFT);
      const int ends = c.ends.count(buffers_.get() + std::size_t{bid} * kBufferBytes,
                                    static_cast<std::size_t>(cqe.res));
      give_back(bid);
      if (ends > 0) {
        floors::append_answers(c.out, answer_.bytes(), ends);
        if (!c.dirty) {
          c.dirty = true;
          dirty_.push_back(c.fd);
        }
      }
      if (!c.recv_armed && !c.closing) arm_recv(c);
      return;
    }
    if (cqe.res == -ENOBUFS) {
      if (!c.recv_armed && !c.closing) arm_recv(c);
      return;
    }
    c.closing = true;  // end of input or an error
  }

  void on_send(Conn& c, const io_uring_cqe& cqe) {
    c.send_in_flight = false;
    if (cqe.res < 0) {
      c.closing = true;
      ::shutdown(c.fd, SHUT_RDWR);  // ends the multishot receive too
      return;
    }
    c.sending.erase(0, static_cast<std::size_t>(cqe.res));
    floors::g_sent_bytes += static_cast<std::uint64_t>(cqe.res);
    if (!c.sending.empty()) {
      c.out.insert(0, c.sending);  // a short send: the rest goes first next turn
      c.sending.clear();
    }
    if (!c.out.empty() && !c.dirty && !c.closing) {
      c.dirty = true;
      dirty_.push_back(c.fd);
    }
  }

  // The buffers go back to the kernel (before any submit), then one send per connection.
  void end_turn() {
    if (returned_ > 0) {
      io_uring_buf_ring_advance(buf_ring_, static_cast<int>(returned_));
      returned_ = 0;
    }
    for (const int fd : dirty_) {
      Conn* c = conns_[static_cast<std::size_t>(fd)].get();
      if (c == nullptr) continue;
      c->dirty = false;
      if (!c->send_in_flight && !c->closing && !c->out.empty()) send(*c);
    }
    dirty_.clear();
  }

  int lfd_;
  io_uring ring_{};
  io_uring_sqe* last_ = nullptr;
  io_uring_buf_ring* buf_ring_ = nullptr;
  std::unique_ptr<char[]> buffers_;
  unsigned returned_ = 0;
  std::vector<std::unique_ptr<Conn>> conns_;
  std::vector<int> dirty_;
  floors::Answer answer_;
};

}  // namespace

int main(int argc, char** argv) {
  const int lfd = floors::listen_on(floors::port_argument(argc, argv), 0);
  Floor floor(lfd);
  floors::announce(lfd);
  floor.run();
  return floors::report_and_exit(floors::Answer().bytes().size());
}
