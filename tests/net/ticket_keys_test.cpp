// Session tickets sealed with the rotated key ring, over real handshakes between an OpenSSL
// client and the server's context joined by an in-memory BIO pair: a ticket resumes; after one
// rotation it still does (and a fresh ticket under the new key comes back), after two it does
// not; the timer rotates lazily on a clock the test moves; a reload keeps the ring; 0 turns
// tickets off; and handshakes on several threads while another rotates.
#include "net/tls/ticket_keys.hpp"

#include <gtest/gtest.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <atomic>
#include <memory>
#include <ostream>
#include <string>
#include <thread>
#include <vector>

#include "net/server.hpp"
#include "net/startup_error.hpp"
#include "net/tls/tls_context.hpp"
#include "tests/support/openssl_ptr.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::test {
namespace {

using net::tls::TicketKeys;
using net::tls::TlsConfig;
using net::tls::TlsContext;

constexpr std::uint64_t kSecond = 1'000'000'000;

// What one connection came to.
struct Outcome {
  bool finished = false;  // both sides finished the handshake
  bool reused = false;    // the server resumed the session offered
  SessionPtr session;     // the client's session afterwards, with the last ticket it received
  std::string error;
};

// One connection: the client offers `offer` (when given), both sides step until done, the client
// reads what follows the handshake (TLS 1.3's tickets) and closes cleanly (an SSL freed without
// close_notify marks its session not resumable).
Outcome connect(const TlsContext& tls, SSL_CTX* client_ctx, SSL_SESSION* offer = nullptr) {
  Outcome outcome;
  const SslPtr server(SSL_new(tls.ctx()));
  const SslPtr client(SSL_new(client_ctx));
  BIO* client_bio = nullptr;
  BIO* server_bio = nullptr;
  if (!server || !client || BIO_new_bio_pair(&client_bio, 0, &server_bio, 0) != 1) {
    outcome.error = net::tls::openssl_reason();
    return outcome;
  }
  SSL_set_bio(client.get(), client_bio, client_bio);
  SSL_set_bio(server.get(), server_bio, server_bio);
  SSL_set_connect_state(client.get());
  SSL_set_accept_state(server.get());
  SSL_set_tlsext_host_name(client.get(), "localhost");
  if (offer != nullptr && SSL_set_session(client.get(), offer) != 1) {
    outcome.error = "SSL_set_session: " + net::tls::openssl_reason();
    return outcome;
  }
  bool client_done = false;
  bool server_done = false;
  for (int round = 0; round < 20 && !(client_done && server_done); ++round) {
    for (auto [ssl, done] : {std::pair{client.get(), &client_done}, {server.get(), &server_done}}) {
      if (*done) continue;
      const int r = SSL_do_handshake(ssl);
      if (r == 1) {
        *done = true;
        continue;
      }
      const int code = SSL_get_error(ssl, r);
      if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) {
        outcome.error =
            (ssl == client.get() ? "client: " : "server: ") + net::tls::openssl_reason();
        return outcome;
      }
    }
  }
  outcome.finished = client_done && server_done;
  if (!outcome.finished) {
    outcome.error = "the handshake did not finish in 20 rounds";
    return outcome;
  }
  outcome.reused = SSL_session_reused(server.get()) == 1;
  char byte;
  if (SSL_read(client.get(), &byte, 1) > 0 ||
      SSL_get_error(client.get(), -1) != SSL_ERROR_WANT_READ) {
    outcome.error = "client reading the tickets: " + net::tls::openssl_reason();
  }
  SSL_shutdown(client.get());
  outcome.session.reset(SSL_get1_session(client.get()));
  return outcome;
}

// The name of the key a session's ticket was sealed with: the ticket's first 16 bytes.
TicketKeys::Name ticket_name(const SSL_SESSION* session) {
  TicketKeys::Name name{};
  const unsigned char* ticket = nullptr;
  std::size_t len = 0;
  SSL_SESSION_get0_ticket(session, &ticket, &len);
  if (ticket != nullptr && len >= name.size()) std::copy_n(ticket, name.size(), name.begin());
  return name;
}

// A clock the test moves; handshakes on any thread read it.
class FakeClock {
 public:
  TicketKeys::Clock clock() {
    return [this] { return now_.load(std::memory_order_relaxed); };
  }
  void advance(std::uint64_t seconds) { now_.fetch_add(seconds * kSecond); }

 private:
  std::atomic<std::uint64_t> now_{1000 * kSecond};
};

struct Version {
  const char* name;
  int max_version;
};
void PrintTo(const Version& version, std::ostream* os) {
  *os << version.name;
}

class TicketKeysTest : public ::testing::TestWithParam<Version> {
 protected:
  void SetUp() override {
    client_.reset(SSL_CTX_new(TLS_client_method()));
    ASSERT_TRUE(client_);
    SSL_CTX_set_max_proto_version(client_.get(), GetParam().max_version);
    // The client keeps its sessions (SSL_get1_session) and offers them; it does not verify the
    // self-signed certificate, which has its own tests.
  }
  TlsConfig config(std::uint64_t rotate_s = 3600) const {
    TlsConfig c;
    c.cert_file = files_.cert;
    c.key_file = files_.key;
    c.ticket_rotate_s = rotate_s;
    return c;
  }
  // A first, full handshake and the session it leaves the client with.
  SessionPtr first_session(const TlsContext& tls) {
    Outcome first = connect(tls, client_.get());
    EXPECT_TRUE(first.finished) << first.error;
    EXPECT_FALSE(first.reused);
    EXPECT_TRUE(first.error.empty()) << first.error;
    EXPECT_TRUE(first.session && SSL_SESSION_has_ticket(first.session.get()));
    return std::move(first.session);
  }

  TlsFiles files_;
  CtxPtr client_;
};

TEST_P(TicketKeysTest, ATicketResumesOnASecondConnection) {
  const auto tls = TlsContext::load(config());
  ASSERT_TRUE(tls->ticket_keys());
  const SessionPtr session = first_session(*tls);
  ASSERT_TRUE(session);
  EXPECT_EQ(ticket_name(session.get()), tls->ticket_keys()->current_name());
  const Outcome second = connect(*tls, client_.get(), session.get());
  ASSERT_TRUE(second.finished) << second.error;
  EXPECT_TRUE(second.reused);
  // Opened with the current key: no fresh ticket is needed, and none comes (TLS 1.3 too: OpenSSL
  // sends one after a resumption only when the ticket is to be renewed).
  const unsigned char* before = nullptr;
  const unsigned char* after = nullptr;
  std::size_t before_len = 0;
  std::size_t after_len = 0;
  SSL_SESSION_get0_ticket(session.get(), &before, &before_len);
  SSL_SESSION_get0_ticket(second.session.get(), &after, &after_len);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(after), after_len),
            std::string(reinterpret_cast<const char*>(before), before_len));
}

TEST_P(TicketKeysTest, AfterOneRotationAnOldTicketResumesOnceMoreAndAfterTwoItDoesNot) {
  const auto tls = TlsContext::load(config());
  TicketKeys& keys = *tls->ticket_keys();
  const SessionPtr old = first_session(*tls);
  ASSERT_TRUE(old);
  const TicketKeys::Name first_key = keys.current_name();

  keys.rotate_now();
  ASSERT_NE(keys.current_name(), first_key);
  const Outcome renewed = connect(*tls, client_.get(), old.get());
  ASSERT_TRUE(renewed.finished) << renewed.error;
  EXPECT_TRUE(renewed.reused) << "the previous key is still accepted";
  ASSERT_TRUE(renewed.session && SSL_SESSION_has_ticket(renewed.session.get()));
  EXPECT_EQ(ticket_name(renewed.session.get()), keys.current_name())
      << "a fresh ticket, sealed with the current key, replaces the old one";

  keys.rotate_now();
  const Outcome refused = connect(*tls, client_.get(), old.get());
  ASSERT_TRUE(refused.finished) << refused.error;  // a full handshake, no error
  EXPECT_TRUE(refused.error.empty()) << refused.error;
  EXPECT_FALSE(refused.reused) << "the first key is gone after two rotations";
  // The ticket issued after the first rotation is one rotation old: it still resumes.
  const Outcome later = connect(*tls, client_.get(), renewed.session.get());
  ASSERT_TRUE(later.finished) << later.error;
  EXPECT_TRUE(later.reused);
  EXPECT_EQ(keys.rotations(), 2u);
}

TEST_P(TicketKeysTest, TheTimerRotatesAtTheFirstHandshakeAfterThePeriod) {
  FakeClock clock;
  auto keys = std::make_shared<TicketKeys>(60, clock.clock());
  const auto tls = TlsContext::load(config(60), keys);
  ASSERT_EQ(tls->ticket_keys(), keys);
  EXPECT_EQ(SSL_CTX_get_timeout(tls->ctx()), 60) << "a ticket lives one period";
  const SessionPtr old = first_session(*tls);
  ASSERT_TRUE(old);
  EXPECT_EQ(SSL_SESSION_get_ticket_lifetime_hint(old.get()), 60u) << "and the client is told";

  clock.advance(59);
  Outcome early = connect(*tls, client_.get(), old.get());
  ASSERT_TRUE(early.finished) << early.error;
  EXPECT_TRUE(early.reused);
  EXPECT_EQ(keys->rotations(), 0u) << "not yet";

  clock.advance(1);
  const TicketKeys::Name first_key = keys->current_name();
  const Outcome due = connect(*tls, client_.get(), old.get());
  ASSERT_TRUE(due.finished) << due.error;
  EXPECT_EQ(keys->rotations(), 1u) << "the handshake rotated";
  EXPECT_TRUE(due.reused) << "under the previous key";
  EXPECT_NE(ticket_name(due.session.get()), first_key);

  clock.advance(60);
  const Outcome gone = connect(*tls, client_.get(), old.get());
  ASSERT_TRUE(gone.finished) << gone.error;
  EXPECT_EQ(keys->rotations(), 2u);
  EXPECT_FALSE(gone.reused);
}

// With no handshake for two periods, the current key is not kept as the previous one: every
// ticket it sealed is older than a ticket's lifetime.
TEST_P(TicketKeysTest, AfterTwoIdlePeriodsNoOldTicketResumes) {
  FakeClock clock;
  auto keys = std::make_shared<TicketKeys>(60, clock.clock());
  const auto tls = TlsContext::load(config(60), keys);
  const SessionPtr old = first_session(*tls);
  ASSERT_TRUE(old);
  clock.advance(120);
  const Outcome outcome = connect(*tls, client_.get(), old.get());
  ASSERT_TRUE(outcome.finished) << outcome.error;
  EXPECT_EQ(keys->rotations(), 1u);
  EXPECT_FALSE(outcome.reused);
}

TEST_P(TicketKeysTest, ATicketIssuedBeforeAReloadResumesAfterIt) {
  const auto before = TlsContext::load(config());
  const SessionPtr session = first_session(*before);
  ASSERT_TRUE(session);

  const auto after = TlsContext::load(before->config(), before->ticket_keys());
  ASSERT_NE(after->ctx(), before->ctx());
  EXPECT_EQ(after->ticket_keys(), before->ticket_keys());
  const Outcome resumed = connect(*after, client_.get(), session.get());
  ASSERT_TRUE(resumed.finished) << resumed.error;
  EXPECT_TRUE(resumed.reused);

  // Without the ring handed on, a new context has keys of its own: a full handshake.
  const auto unrelated = TlsContext::load(before->config());
  EXPECT_NE(unrelated->ticket_keys(), before->ticket_keys());
  const Outcome full = connect(*unrelated, client_.get(), session.get());
  ASSERT_TRUE(full.finished) << full.error;
  EXPECT_FALSE(full.reused);
}

// SIGHUP's path: Server::reload_tls makes the new context with the old one's ring.
TEST_P(TicketKeysTest, ServerReloadKeepsTheTicketKeys) {
  net::ServerConfig server_config;
  server_config.tls = TlsContext::load(config());
  const auto before = server_config.tls;
  net::Server server(std::move(server_config), [](net::LoopServices&) {
    return std::unique_ptr<net::ProtocolFactory>();
  });  // never started: reload_tls needs no loop
  const SessionPtr session = first_session(*before);
  ASSERT_TRUE(session);

  ASSERT_TRUE(server.reload_tls());
  const auto after = server.current_tls();
  ASSERT_NE(after, before);
  EXPECT_EQ(after->ticket_keys(), before->ticket_keys());
  const Outcome resumed = connect(*after, client_.get(), session.get());
  ASSERT_TRUE(resumed.finished) << resumed.error;
  EXPECT_TRUE(resumed.reused);
}

// 0: no tickets at all (in TLS 1.3 not even the stateful kind), so nothing resumes.
TEST_P(TicketKeysTest, RotationZeroIssuesNoTicket) {
  const auto tls = TlsContext::load(config(0));
  EXPECT_FALSE(tls->ticket_keys());
  EXPECT_NE(SSL_CTX_get_options(tls->ctx()) & SSL_OP_NO_TICKET, 0u);
  EXPECT_NE(tls->describe().find(", tickets off"), std::string::npos) << tls->describe();
  Outcome first = connect(*tls, client_.get());
  ASSERT_TRUE(first.finished) << first.error;
  ASSERT_TRUE(first.session);
  EXPECT_FALSE(SSL_SESSION_has_ticket(first.session.get()));
  const Outcome second = connect(*tls, client_.get(), first.session.get());
  ASSERT_TRUE(second.finished) << second.error;
  EXPECT_FALSE(second.reused);
}

// Handshakes on several threads, each resuming its last session, while another thread rotates
// by hand and moves the clock (so the handshakes also rotate, racing each other). Rotations run
// from before the first handshake until after the last; run under the sanitizer build this
// checks that no handshake reads keys a rotation freed.
TEST_P(TicketKeysTest, HandshakesOnManyThreadsWhileKeysRotate) {
  constexpr int kThreads = 4;
  constexpr int kHandshakes = 30;
  FakeClock clock;
  auto keys = std::make_shared<TicketKeys>(60, clock.clock());
  const auto tls = TlsContext::load(config(60), keys);
  std::atomic<int> workers_done{0};
  std::atomic<int> failures{0};
  std::atomic<int> resumed{0};

  std::thread rotator([&] {
    do {
      keys->rotate_now();
      clock.advance(60);
    } while (workers_done.load() < kThreads);
  });
  std::vector<std::thread> workers;
  workers.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&] {
      while (keys->rotations() == 0) {
      }  // the rotator has started
      SessionPtr last;
      for (int i = 0; i < kHandshakes; ++i) {
        Outcome outcome = connect(*tls, client_.get(), last.get());
        if (!outcome.finished || !outcome.error.empty()) {
          failures.fetch_add(1);
          ERR_clear_error();
          continue;
        }
        if (outcome.reused) resumed.fetch_add(1);
        last = std::move(outcome.session);
      }
      workers_done.fetch_add(1);
    });
  }
  for (std::thread& worker : workers)
    worker.join();
  rotator.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_GT(keys->rotations(), 1u);
  // No resumption is promised while keys turn over this fast; each handshake either resumed
  // or made a full one.
  RecordProperty("resumed", resumed.load());
}

INSTANTIATE_TEST_SUITE_P(Versions, TicketKeysTest,
                         ::testing::Values(Version{"Tls12", TLS1_2_VERSION},
                                           Version{"Tls13", TLS1_3_VERSION}),
                         [](const auto& info) { return std::string(info.param.name); });

// The ring on its own.
TEST(TicketKeys, RotateNowMakesANewCurrentKey) {
  TicketKeys keys(3600);
  const TicketKeys::Name first = keys.current_name();
  keys.rotate_now();
  EXPECT_NE(keys.current_name(), first);
  EXPECT_EQ(keys.rotations(), 1u);
  EXPECT_EQ(keys.rotate_seconds(), 3600u);
}

TEST(TicketKeys, AZeroPeriodIsNotARing) {
  EXPECT_THROW(TicketKeys(0), std::invalid_argument);
}

TEST(TicketKeysConfig, RotationLongerThanSevenDaysIsRefused) {
  TlsFiles files;
  TlsConfig config;
  config.cert_file = files.cert;
  config.key_file = files.key;
  config.ticket_rotate_s = net::tls::kMaxTicketRotateSeconds + 1;
  try {
    TlsContext::load(config);
    ADD_FAILURE() << "load() accepted a rotation of " << config.ticket_rotate_s << " s";
  } catch (const net::StartupError& e) {
    const std::string message = e.what();
    EXPECT_NE(message.find("--tls-ticket-rotate-s 604801"), std::string::npos) << message;
    EXPECT_NE(message.find("at most 604800"), std::string::npos) << message;
  }
  config.ticket_rotate_s = net::tls::kMaxTicketRotateSeconds;
  const auto tls = TlsContext::load(config);
  EXPECT_EQ(SSL_CTX_get_timeout(tls->ctx()), 604800);
  EXPECT_NE(tls->describe().find(", tickets rotated every 604800s"), std::string::npos)
      << tls->describe();
}

// A ring whose period is not the configuration's (the flag changed) is not reused.
TEST(TicketKeysConfig, ARingOfAnotherPeriodIsReplaced) {
  TlsFiles files;
  TlsConfig config;
  config.cert_file = files.cert;
  config.key_file = files.key;
  config.ticket_rotate_s = 60;
  auto other = std::make_shared<TicketKeys>(3600);
  const auto tls = TlsContext::load(config, other);
  ASSERT_TRUE(tls->ticket_keys());
  EXPECT_NE(tls->ticket_keys(), other);
  EXPECT_EQ(tls->ticket_keys()->rotate_seconds(), 60u);
}

}  // namespace
}  // namespace rs::test
