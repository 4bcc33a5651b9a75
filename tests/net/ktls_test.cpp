// kTLS without the kernel: the sending keys a TlsSession exports after a TLS 1.3 handshake over
// memory must open the next record OpenSSL seals, for each suite the kernel is given (the record
// decrypted here with EVP, as the kernel would seal it: nonce = IV XOR sequence, the record
// header as additional data). And what a session does once the kernel holds its keys: plaintext
// out as it is, no close_notify of its own, a peer's KeyUpdate request fails it; and how its close
// waits for the kernel to push what it sealed (CloseDrain). The kernel's
// side (setsockopt, records on a socket) is tests/http/ktls_test.cpp's, where the kernel has it.
#include "net/tls/ktls.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "net/tls/tls_context.hpp"
#include "net/tls/tls_session.hpp"
#include "tests/support/tls_pair.hpp"

namespace rs::net::tls {
namespace {

// The plaintext of one application data record sealed with `keys` (ktls::open_record), or nullopt.
std::optional<std::string> application_data(const ktls::TxKeys& keys, std::string_view record,
                                            std::uint64_t later = 0) {
  std::optional<ktls::OpenedRecord> opened = ktls::open_record(keys, record, later);
  if (!opened || opened->type != ktls::kApplicationData) return std::nullopt;
  return std::move(opened->content);
}

class KtlsSession : public test::TlsPair {
 protected:
  // A session whose context logs the sending secret (kTLS in force), and a client of `version`
  // offering only `suite` (TLS 1.3) or the server's defaults.
  void open(int version = TLS1_3_VERSION, const char* suite = nullptr, bool ktls = true) {
    TlsPair::open({.version = version, .suite = suite, .ktls = ktls});
  }

  // seal() of `plain`: what it leaves in wire() (taken, and handed to the client).
  std::string seal(const std::string& plain) {
    core::BufferChain out(chunks_);
    out.append(plain);
    EXPECT_TRUE(session_->seal(out)) << session_->failure();
    EXPECT_TRUE(out.empty());
    return to_client();
  }
  // The client asks for a key update, and sends a byte under its new keys.
  void client_key_update(int type) {
    ASSERT_EQ(SSL_key_update(client_, type), 1);
    ASSERT_EQ(SSL_write(client_, "k", 1), 1);
  }
};

struct SuiteCase {
  const char* name;
  std::uint16_t cipher;  // linux/tls.h
};

class KtlsKeys : public KtlsSession, public ::testing::WithParamInterface<SuiteCase> {};

// After the tickets and an answer OpenSSL sealed, the exported keys (at the sequence number that
// follows them) open the next record OpenSSL seals, and only at that number.
TEST_P(KtlsKeys, ExportedKeysOpenTheNextRecordOpenSslSeals) {
  open(TLS1_3_VERSION, GetParam().name);
  const int tickets = handshake();
  EXPECT_GE(tickets, 1) << "TLS 1.3 tickets come after the server's Finished";
  // A request, and an answer OpenSSL seals before the keys go: it counts too.
  ASSERT_EQ(SSL_write(client_, "GET", 3), 3);
  ASSERT_EQ(receive(from_client()), Step::kOpen);
  ASSERT_EQ(count_records(seal("first answer")), 1);
  EXPECT_EQ(client_read(), "first answer");

  ASSERT_TRUE(session_->kernel_tls_due()) << "established, the secret kept, nothing in flight";
  ktls::TxKeys keys;
  ASSERT_TRUE(session_->export_tx_keys(keys));
  EXPECT_FALSE(session_->kernel_tls_due()) << "the secret is wiped once exported";
  EXPECT_EQ(keys.info.version, TLS_1_3_VERSION);
  EXPECT_EQ(keys.info.cipher_type, GetParam().cipher);
  const unsigned char* rec_seq =
      keys.info.cipher_type == TLS_CIPHER_AES_GCM_128   ? keys.aes_gcm_128.rec_seq
      : keys.info.cipher_type == TLS_CIPHER_AES_GCM_256 ? keys.aes_gcm_256.rec_seq
                                                        : keys.chacha20_poly1305.rec_seq;
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(rec_seq), 7), std::string(7, '\0'));
  EXPECT_EQ(static_cast<int>(rec_seq[7]), tickets + 1) << "the tickets and the first answer";

  // OpenSSL seals one more: the exported keys open it, as the kernel's first record would be.
  const std::string payload = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
  const std::string record = seal(payload);
  ASSERT_EQ(count_records(record), 1);
  EXPECT_EQ(application_data(keys, record), payload);
  EXPECT_EQ(application_data(keys, record, 1), std::nullopt) << "one sequence number later";
  EXPECT_EQ(client_read(), payload);
}

INSTANTIATE_TEST_SUITE_P(
    Suites, KtlsKeys,
    ::testing::Values(SuiteCase{"TLS_AES_128_GCM_SHA256", TLS_CIPHER_AES_GCM_128},
                      SuiteCase{"TLS_AES_256_GCM_SHA384", TLS_CIPHER_AES_GCM_256},
                      SuiteCase{"TLS_CHACHA20_POLY1305_SHA256", TLS_CIPHER_CHACHA20_POLY1305}),
    [](const auto& info) { return std::string(info.param.name); });

// A client that asked for small records (max_fragment_length) is given them by OpenSSL; the
// kernel would seal 16 KiB records, so its keys stay here.
TEST_F(KtlsSession, AClientAskingForSmallRecordsKeepsTheKeysHere) {
  TlsPair::open({.version = TLS1_3_VERSION,
                 .ktls = true,
                 .max_fragment_length = TLSEXT_max_fragment_length_512});
  handshake();
  ASSERT_TRUE(session_->kernel_tls_due());
  ktls::TxKeys keys;
  EXPECT_FALSE(session_->export_tx_keys(keys));
}

// TLS 1.2 stays in user space (net/tls/ktls.hpp): no secret is kept, nothing is exported.
TEST_F(KtlsSession, Tls12KeepsNoSecret) {
  open(TLS1_2_VERSION);
  handshake();
  EXPECT_FALSE(session_->kernel_tls_due());
  ktls::TxKeys keys;
  EXPECT_FALSE(session_->export_tx_keys(keys));
}

// With kTLS off the context has no key log at all: a handshake costs nothing more.
TEST_F(KtlsSession, KtlsOffLogsNoSecrets) {
  open(TLS1_3_VERSION, nullptr, false);
  EXPECT_EQ(SSL_CTX_get_keylog_callback(context_->ctx()), nullptr);
  handshake();
  EXPECT_FALSE(session_->kernel_tls_due());
}

// A key update the peer asked for before the keys could go: OpenSSL owes its own, so the keys
// are not exported (they are about to be spent), and it sends it with its next record.
TEST_F(KtlsSession, KeyUpdateAskedForBeforeTheExportKeepsTheKeysHere) {
  open();
  handshake();
  client_key_update(SSL_KEY_UPDATE_REQUESTED);
  ASSERT_EQ(receive(from_client()), Step::kOpen) << session_->failure();
  ktls::TxKeys keys;
  EXPECT_FALSE(session_->export_tx_keys(keys));
  seal("still served");  // by OpenSSL: its KeyUpdate, then the answer under its new keys
  EXPECT_EQ(client_read(), "still served");
}

// The same once OpenSSL has sent its KeyUpdate (with an answer sealed before the export): the
// secret kept is spent, and none is exported.
TEST_F(KtlsSession, KeyUpdateMadeBeforeTheExportSpendsTheKeys) {
  open();
  handshake();
  client_key_update(SSL_KEY_UPDATE_REQUESTED);
  ASSERT_EQ(receive(from_client()), Step::kOpen) << session_->failure();
  seal("answer");
  EXPECT_EQ(client_read(), "answer");
  ktls::TxKeys keys;
  EXPECT_FALSE(session_->export_tx_keys(keys));
}

// Once the kernel holds the keys: output leaves as plaintext, close_notify is left to the
// kernel, the client's own key updates are followed, and a request for ours fails the session
// without a byte of OpenSSL's reaching the wire.
TEST_F(KtlsSession, OnceTheKernelHoldsTheKeys) {
  open();
  handshake();
  ktls::TxKeys keys;
  ASSERT_TRUE(session_->export_tx_keys(keys));
  session_->use_kernel_tls();
  EXPECT_TRUE(session_->kernel_tls());

  core::BufferChain out(chunks_);
  out.append(std::string_view("plain answer"));
  ASSERT_TRUE(session_->seal(out));
  EXPECT_TRUE(out.empty());
  EXPECT_EQ(to_client(), "plain answer") << "handed over as it is: the kernel seals";

  client_key_update(SSL_KEY_UPDATE_NOT_REQUESTED);
  EXPECT_EQ(receive(from_client()), Step::kOpen) << session_->failure();
  EXPECT_EQ(text(plain_), "k") << "read under the client's new keys";
  EXPECT_TRUE(session_->wire().empty());

  client_key_update(SSL_KEY_UPDATE_REQUESTED);
  EXPECT_EQ(receive(from_client()), Step::kFailed);
  EXPECT_NE(std::string(session_->failure()).find("key update"), std::string::npos)
      << session_->failure();
  EXPECT_TRUE(session_->wire().empty()) << "OpenSSL's KeyUpdate is not sent";
}

TEST_F(KtlsSession, CloseNotifyIsLeftToTheKernel) {
  open();
  handshake();
  ktls::TxKeys keys;
  ASSERT_TRUE(session_->export_tx_keys(keys));
  session_->use_kernel_tls();
  session_->close_notify();
  EXPECT_TRUE(session_->close_notify_sent());
  EXPECT_TRUE(session_->wire().empty());
}

// The close of a kTLS connection (ktls::CloseDrain), against a socket the test plays: what the
// drain asks and when, whatever the kernel answers.
struct PlayedSocket {
  std::vector<ktls::CloseNotify> close_notify_answers;  // one per try; then kSent
  std::size_t unsent = 0;
  int close_notify_tries = 0;
  int unsent_asked = 0;

  ktls::CloseNotify send_close_notify() {
    const auto at = static_cast<std::size_t>(close_notify_tries++);
    return at < close_notify_answers.size() ? close_notify_answers[at] : ktls::CloseNotify::kSent;
  }
  std::size_t unsent_bytes() {
    ++unsent_asked;
    return unsent;
  }
};

using Next = ktls::CloseDrain::Next;

TEST(KtlsCloseDrain, ClosesAtOnceWhenTheKernelHoldsNothing) {
  PlayedSocket socket;
  ktls::CloseDrain drain;
  EXPECT_FALSE(drain.started());
  EXPECT_EQ(drain.check(socket, 1000, 1000, true), Next::kClose);
  EXPECT_TRUE(drain.started());
  EXPECT_EQ(socket.close_notify_tries, 1);
}

// close_notify waits until TCP is empty (its send then pushes whatever the TLS layer still
// holds, before it); a full buffer then does not skip it: it is tried again until taken.
TEST(KtlsCloseDrain, WaitsForTcpToEmptyThenRetriesCloseNotify) {
  PlayedSocket socket;
  socket.close_notify_answers = {ktls::CloseNotify::kBufferFull};
  socket.unsent = 5000;
  ktls::CloseDrain drain;
  std::uint64_t now = 1000;
  EXPECT_EQ(drain.check(socket, now, 1000, true), Next::kWait);
  EXPECT_EQ(socket.close_notify_tries, 0) << "close_notify waits for TCP to empty";
  EXPECT_EQ(drain.wait_ms(), 1U);
  now += drain.wait_ms();
  socket.unsent = 0;
  EXPECT_EQ(drain.check(socket, now, 1000, true), Next::kWait);  // the buffer was full
  EXPECT_EQ(socket.close_notify_tries, 1);
  EXPECT_EQ(drain.wait_ms(), 2U);
  now += drain.wait_ms();
  EXPECT_EQ(drain.check(socket, now, 1000, true), Next::kClose);
  EXPECT_EQ(socket.close_notify_tries, 2);
  EXPECT_EQ(socket.unsent_asked, 3);
}

TEST(KtlsCloseDrain, APeerThatIsGoneEndsTheDrain) {
  PlayedSocket socket;
  socket.close_notify_answers = {ktls::CloseNotify::kFailed};
  ktls::CloseDrain drain;
  EXPECT_EQ(drain.check(socket, 0, 1000, true), Next::kClose);
  EXPECT_EQ(socket.close_notify_tries, 1);
}

// A session that failed sends no close_notify (its end is not an orderly one), but what the
// kernel holds still drains first.
TEST(KtlsCloseDrain, AFailedSessionDrainsWithoutCloseNotify) {
  PlayedSocket socket;
  socket.unsent = 5000;
  ktls::CloseDrain drain;
  EXPECT_EQ(drain.check(socket, 0, 1000, false), Next::kWait);
  socket.unsent = 0;
  EXPECT_EQ(drain.check(socket, drain.wait_ms(), 1000, false), Next::kClose);
  EXPECT_EQ(socket.close_notify_tries, 0);
}

// A peer that never reads: checks 1, 2, 4 ... 64 ms apart, then every 64 ms, the last one cut to
// the bound, where the close goes ahead.
TEST(KtlsCloseDrain, GivesUpAtTheBound) {
  PlayedSocket socket;
  socket.unsent = 5000;
  ktls::CloseDrain drain;
  const std::uint64_t start = 7000;
  const std::uint64_t bound = 300;
  std::uint64_t now = start;
  std::vector<std::uint64_t> waits;
  Next next = Next::kWait;
  for (int i = 0; i < 100 && (next = drain.check(socket, now, bound, true)) == Next::kWait; ++i) {
    waits.push_back(drain.wait_ms());
    now += drain.wait_ms();
  }
  EXPECT_EQ(next, Next::kBoundPassed);
  EXPECT_EQ(now, start + bound);
  const std::vector<std::uint64_t> expected = {1, 2, 4, 8, 16, 32, 64, 64, 64, 45};
  EXPECT_EQ(waits, expected);
}

// What the drain reads of a real TCP socket (loopback; no TLS needed for these): the bytes TCP
// holds for a peer that does not read, none once it has read them all, none once it is gone;
// and how a send that cannot be taken is told apart from a peer that is gone (close_notify's
// errors are TCP's: on a plain socket its two bytes go as data).
class KtlsSocket : public ::testing::Test {
 protected:
  void SetUp() override {
    const int listener = ::socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(listener, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof(address);
    ASSERT_EQ(::bind(listener, reinterpret_cast<sockaddr*>(&address), size), 0);
    ASSERT_EQ(::listen(listener, 1), 0);
    ASSERT_EQ(::getsockname(listener, reinterpret_cast<sockaddr*>(&address), &size), 0);
    peer_ = ::socket(AF_INET, SOCK_STREAM, 0);
    const int small = 4096;  // a small window: the sender's buffer fills soon
    ::setsockopt(peer_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    ASSERT_EQ(::connect(peer_, reinterpret_cast<sockaddr*>(&address), size), 0);
    sender_ = ::accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
    ::close(listener);
    ASSERT_GE(sender_, 0);
  }
  void TearDown() override {
    if (sender_ >= 0) ::close(sender_);
    if (peer_ >= 0) ::close(peer_);
  }
  // Sends until the kernel has taken nothing more for 200 ms (a delayed acknowledgement can
  // still make room some 40 ms after the first EAGAIN); the bytes sent.
  std::size_t fill() {
    std::vector<char> block(65536, 'x');
    std::size_t sent = 0;
    auto quiet_since = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - quiet_since < std::chrono::milliseconds(200)) {
      const ssize_t n = ::send(sender_, block.data(), block.size(), MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        quiet_since = std::chrono::steady_clock::now();
      } else {
        pollfd writable{sender_, POLLOUT, 0};
        ::poll(&writable, 1, 20);
      }
    }
    return sent;
  }
  // Polls unsent_bytes() (the kernel acknowledges asynchronously) until it is 0, for up to 5 s.
  bool drains() const {
    for (int i = 0; i < 5000; ++i) {
      if (ktls::unsent_bytes(sender_) == 0) return true;
      ::usleep(1000);
    }
    return false;
  }
  int sender_ = -1;
  int peer_ = -1;
};

TEST_F(KtlsSocket, UnsentBytesCountWhatThePeerHasNotTaken) {
  const std::size_t sent = fill();
  ASSERT_GT(sent, 0U);
  EXPECT_GT(ktls::unsent_bytes(sender_), 0U);
  EXPECT_EQ(ktls::send_close_notify(sender_), ktls::CloseNotify::kBufferFull);
  std::vector<char> sink(65536);
  std::size_t read = 0;
  while (read < sent) {
    const ssize_t n = ::recv(peer_, sink.data(), sink.size(), 0);
    ASSERT_GT(n, 0);
    read += static_cast<std::size_t>(n);
  }
  EXPECT_TRUE(drains()) << ktls::unsent_bytes(sender_) << " bytes still held";
}

TEST_F(KtlsSocket, APeerThatResetIsGone) {
  ASSERT_GT(fill(), 0U);
  const linger abortive{1, 0};
  ::setsockopt(peer_, SOL_SOCKET, SO_LINGER, &abortive, sizeof(abortive));
  ::close(peer_);
  peer_ = -1;
  // The reset arrives asynchronously: once it has, nothing is left to wait for, and a send fails.
  EXPECT_TRUE(drains()) << "a reset connection still counts " << ktls::unsent_bytes(sender_);
  EXPECT_EQ(ktls::send_close_notify(sender_), ktls::CloseNotify::kFailed);
}

// The probe agrees with the kernel's list of ULPs: where it finds TLS, "tls" is registered (it
// loaded); where the ULP was refused, it is not.
TEST(KtlsProbe, SaysWhetherTheKernelHasTls) {
  const ktls::Probe probe = ktls::probe_kernel();
  std::string ulps;
  if (FILE* f = std::fopen("/proc/sys/net/ipv4/tcp_available_ulp", "r")) {
    char line[256] = {};
    if (std::fgets(line, sizeof(line), f) != nullptr) ulps = line;
    std::fclose(f);
  }
  if (probe.available) {
    EXPECT_TRUE(probe.reason.empty()) << probe.reason;
    EXPECT_NE(ulps.find("tls"), std::string::npos) << ulps;
  } else {
    EXPECT_NE(probe.reason.find("setsockopt"), std::string::npos) << probe.reason;
    if (probe.reason.find("TCP_ULP") != std::string::npos) {
      EXPECT_EQ(ulps.find("tls"), std::string::npos)
          << "the kernel lists the TLS ULP, yet: " << probe.reason;
    }
  }
}

}  // namespace
}  // namespace rs::net::tls
