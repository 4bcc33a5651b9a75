// The --listen grammar (ADDRESS:PORT[,tls][,metrics][,proxy]) and --trusted-proxy, and what a
// server refuses to start with: a TLS listener without a certificate, a certificate no listener
// uses, the same address twice, metrics listeners alone or on a server without metrics, a PROXY
// listener that trusts nobody.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>

#include <string>
#include <vector>

#include "net/echo/echo_protocol.hpp"
#include "net/ip_address.hpp"
#include "net/server.hpp"
#include "net/startup_error.hpp"
#include "net/tls/tls_context.hpp"
#include "tests/support/tls_files.hpp"

namespace rs::net {
namespace {

TEST(ListenAddress, Ipv4WithAndWithoutTls) {
  ListenAddress plain = parse_listen_address("127.0.0.1:8080");
  EXPECT_EQ(plain.address, "127.0.0.1");
  EXPECT_EQ(plain.port, 8080);
  EXPECT_FALSE(plain.tls);
  ListenAddress secure = parse_listen_address("0.0.0.0:8443,tls");
  EXPECT_EQ(secure.address, "0.0.0.0");
  EXPECT_EQ(secure.port, 8443);
  EXPECT_TRUE(secure.tls);
  EXPECT_EQ(describe(secure), "0.0.0.0 port 8443 tls");
  EXPECT_EQ(describe(plain), "127.0.0.1 port 8080");
}

// The option words alone: what a socket systemd passed is named (FileDescriptorName=), so a new
// word of the --listen grammar names an inherited socket too.
TEST(ListenAddress, OptionWordsParseAloneForInheritedSockets) {
  ListenAddress both{.address = "::", .port = 443, .fd = 3};
  EXPECT_EQ(parse_listener_options("tls,metrics", both), "");
  EXPECT_TRUE(both.tls);
  EXPECT_EQ(both.use, ListenerUse::kMetrics);
  EXPECT_EQ(describe(both), ":: port 443 tls metrics (inherited)");
  ListenAddress bad;
  EXPECT_EQ(parse_listener_options("tlz", bad),
            "unknown option \"tlz\" (the options are tls, metrics, proxy)");
  EXPECT_EQ(parse_listener_options("tls,tls", bad), "tls is given twice");
  EXPECT_NE(parse_listener_options("", bad), "");
}

TEST(ListenAddress, MetricsListenerWithAndWithoutTls) {
  ListenAddress metrics = parse_listen_address("127.0.0.1:9100,metrics");
  EXPECT_EQ(metrics.use, ListenerUse::kMetrics);
  EXPECT_FALSE(metrics.tls);
  EXPECT_EQ(describe(metrics), "127.0.0.1 port 9100 metrics");
  ListenAddress both = parse_listen_address("[::1]:9443,metrics,tls");
  EXPECT_EQ(both.use, ListenerUse::kMetrics);
  EXPECT_TRUE(both.tls);
  EXPECT_EQ(describe(both), "::1 port 9443 tls metrics");
  EXPECT_EQ(parse_listen_address("127.0.0.1:80").use, ListenerUse::kServe);
}

TEST(ListenAddress, Ipv6InBracketsAndPortZero) {
  ListenAddress any = parse_listen_address("[::]:0,tls");
  EXPECT_EQ(any.address, "::");
  EXPECT_EQ(any.port, 0);
  EXPECT_TRUE(any.tls);
  EXPECT_EQ(parse_listen_address("[::1]:65535").port, 65535);
}

TEST(ListenAddress, MalformedOnesSayWhatIsWrong) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"127.0.0.1", "no :PORT"},
      {"::1:80", "IPv6 address goes in brackets"},
      {"[::1]80", "followed by :PORT"},
      {"[::1", "followed by :PORT"},
      {":80", "no address"},
      {"127.0.0.1:", "the port is a number"},
      {"127.0.0.1:65536", "the port is a number"},
      {"127.0.0.1:8x", "the port is a number"},
      {"127.0.0.1:-1", "the port is a number"},
      {"127.0.0.1:80,", "unknown option \"\""},
      {"127.0.0.1:80,tls,haproxy",
       "unknown option \"haproxy\" (the options are tls, metrics, proxy)"},
      {"127.0.0.1:80,proxy,tls,proxy", "proxy is given twice"},
      {"127.0.0.1:80,tls,tls", "tls is given twice"},
      {"127.0.0.1:80,metrics,metrics", "metrics is given twice"},
      {"localhost:80", "not an IPv4 address literal"},
      {"[127.0.0.1]:80", "not an IPv6 address literal"},
  };
  for (const auto& [text, why] : cases) {
    try {
      parse_listen_address(text);
      ADD_FAILURE() << text << " was taken";
    } catch (const StartupError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("--listen " + text + ": ", 0), 0U) << message;
      EXPECT_NE(message.find(why), std::string::npos) << message;
    }
  }
}

TEST(ListenAddress, ProxyCombinesWithTlsAndMetrics) {
  ListenAddress proxied = parse_listen_address("0.0.0.0:80,proxy");
  EXPECT_TRUE(proxied.proxy);
  EXPECT_FALSE(proxied.tls);
  EXPECT_EQ(describe(proxied), "0.0.0.0 port 80 proxy");
  ListenAddress all = parse_listen_address("[::]:443,proxy,tls,metrics");
  EXPECT_TRUE(all.proxy);
  EXPECT_TRUE(all.tls);
  EXPECT_EQ(all.use, ListenerUse::kMetrics);
  EXPECT_EQ(describe(all), ":: port 443 tls metrics proxy");
  EXPECT_FALSE(parse_listen_address("127.0.0.1:80,tls").proxy);
}

TEST(ListenAddress, ErrorsListTheGrammarWithEveryOption) {
  try {
    parse_listen_address("127.0.0.1");
    ADD_FAILURE() << "taken";
  } catch (const StartupError& e) {
    EXPECT_NE(std::string(e.what()).find("ADDRESS:PORT[,tls][,metrics][,proxy]"), std::string::npos)
        << e.what();
  }
}

TEST(TrustedProxies, RangesOfBothFamiliesMatchTheirAddressesOnly) {
  IpRanges ranges;
  ranges.add("10.0.0.0/8");
  ranges.add("192.0.2.7");  // one address: /32
  ranges.add("2001:db8::/32");
  ranges.add("::1/128");
  ranges.add("172.16.0.0/12");
  const auto has = [&ranges](const char* text) {
    IpAddress a;
    EXPECT_TRUE(a.parse(text)) << text;
    return ranges.contains(a);
  };
  EXPECT_TRUE(has("10.255.1.2"));
  EXPECT_FALSE(has("11.0.0.1"));
  EXPECT_TRUE(has("192.0.2.7"));
  EXPECT_FALSE(has("192.0.2.8"));
  EXPECT_TRUE(has("172.31.255.255"));
  EXPECT_FALSE(has("172.32.0.0"));
  EXPECT_TRUE(has("2001:db8:ffff::1"));
  EXPECT_FALSE(has("2001:db9::1"));
  EXPECT_TRUE(has("::1"));
  EXPECT_FALSE(has("::2"));
  EXPECT_FALSE(has("::ffff:10.0.0.1")) << "a v6 literal is matched against v6 ranges";
  // A v4 client of a dual-stack socket (v4-mapped) is its v4 address.
  sockaddr_storage mapped{};
  auto& in6 = reinterpret_cast<sockaddr_in6&>(mapped);
  in6.sin6_family = AF_INET6;
  ASSERT_EQ(::inet_pton(AF_INET6, "::ffff:10.1.2.3", &in6.sin6_addr), 1);
  EXPECT_TRUE(ranges.contains(mapped));
  IpRanges all;
  all.add("0.0.0.0/0");
  EXPECT_TRUE(all.contains(IpAddress::from(mapped)));
  IpAddress none;
  EXPECT_FALSE(all.contains(none));
}

TEST(TrustedProxies, BadRangesAreRefusedByName) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"10.0.0.0/33", "from 0 to 32"},
      {"::/129", "from 0 to 128"},
      {"10.0.0.0/", "number of bits"},
      {"10.0.0.0/8x", "number of bits"},
      {"10.1.0.0/8", "below the /8 prefix"},
      {"localhost", "not an IPv4 or IPv6 address literal"},
      {"", "not an IPv4 or IPv6 address literal"},
      {"10.0.0.1:80", "not an IPv4 or IPv6 address literal"},
      {"[::1]/128", "not an IPv4 or IPv6 address literal"},
  };
  for (const auto& [text, why] : cases) {
    IpRanges ranges;
    try {
      ranges.add(text);
      ADD_FAILURE() << text << " was taken";
    } catch (const StartupError& e) {
      const std::string message = e.what();
      EXPECT_EQ(message.rfind("--trusted-proxy " + text + ": ", 0), 0U) << message;
      EXPECT_NE(message.find(why), std::string::npos) << message;
    }
  }
  IpRanges full;
  for (std::size_t i = 0; i < IpRanges::kMax; ++i)
    full.add("10.0.0." + std::to_string(i));
  EXPECT_THROW(full.add("10.0.1.0"), StartupError) << "the table is bounded";
  EXPECT_EQ(full.size(), IpRanges::kMax);
}

class ListenStartup : public ::testing::Test {
 protected:
  // The error start() throws, or "" when the server started.
  std::string start_error(const ServerConfig& config) {
    Server server(config, echo::make_factory);
    try {
      server.start();
    } catch (const StartupError& e) {
      return e.what();
    }
    server.stop();
    server.wait();
    return {};
  }
  std::shared_ptr<const tls::TlsContext> context() {
    tls::TlsConfig config;
    config.cert_file = files_.cert;
    config.key_file = files_.key;
    return tls::TlsContext::load(config);
  }
  static ServerConfig base() {
    ServerConfig config;
    config.backend = Backend::kEpoll;
    config.max_connections = 16;
    return config;
  }

  test::TlsFiles files_;
};

TEST_F(ListenStartup, TlsListenerNeedsACertificate) {
  ServerConfig config = base();
  config.listen = {{.address = "127.0.0.1", .port = 0, .tls = true}};
  EXPECT_NE(start_error(config).find("needs a certificate"), std::string::npos);
}

TEST_F(ListenStartup, CertificateNeedsATlsListener) {
  ServerConfig config = base();
  config.tls = context();
  config.listen = {{.address = "127.0.0.1", .port = 0, .tls = false}};
  EXPECT_NE(start_error(config).find("no --listen speaks TLS"), std::string::npos);
}

// Several loops bind with SO_REUSEPORT, which would let both of these bind and share clients at
// random: refused before any bind, however the address is spelt.
TEST_F(ListenStartup, ListenersThatOverlapAreRefused) {
  ServerConfig config = base();
  config.tls = context();
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"127.0.0.1", "127.0.0.1"},
      {"0.0.0.0", "127.0.0.1"},
      {"::", "127.0.0.1"},
      {"::1", "0:0::1"},
      {"::", "::1"},
  };
  for (const auto& [a, b] : pairs) {
    config.listen = {{.address = a, .port = 18931, .tls = false},
                     {.address = b, .port = 18931, .tls = true}};
    EXPECT_NE(start_error(config).find("take the same connections"), std::string::npos)
        << a << " and " << b;
  }
  // Different families, neither a dual-stack wildcard: both are served.
  config.listen = {{.address = "0.0.0.0", .port = 0, .tls = false},
                   {.address = "::1", .port = 0, .tls = true}};
  EXPECT_EQ(start_error(config), "");
}

// A bind that fails half-way (the port is taken) leaves nothing bound: every socket made
// before it is closed, so the ports can be bound again at once.
TEST_F(ListenStartup, BindFailingHalfWayClosesWhatWasBound) {
  // A port that is free now: a server takes one and lets it go.
  ServerConfig probe = base();
  probe.port = 0;
  std::uint16_t free_port = 0;
  {
    Server server(probe, echo::make_factory);
    server.start();
    free_port = server.port();
    server.stop();
    server.wait();
  }
  ServerConfig holder = base();
  holder.port = 0;
  Server taken(holder, echo::make_factory);
  taken.start();
  // Two loops: the free port is bound by loop 0 (with SO_REUSEPORT), then the taken one fails.
  ServerConfig config = base();
  config.threads = 2;
  config.listen = {{.address = "127.0.0.1", .port = free_port, .tls = false},
                   {.address = "127.0.0.1", .port = taken.port(), .tls = false}};
  EXPECT_NE(start_error(config), "");
  // Had the first socket stayed open, this bind (no SO_REUSEPORT: one loop) would fail.
  ServerConfig again = base();
  again.listen = {{.address = "127.0.0.1", .port = free_port, .tls = false}};
  EXPECT_EQ(start_error(again), "") << "port " << free_port << " is still held";
  taken.stop();
  taken.wait();
}

TEST_F(ListenStartup, MetricsListenersAloneAreRefused) {
  ServerConfig config = base();
  config.protocol_has_metrics = true;
  config.listen = {{.address = "127.0.0.1", .port = 0, .use = ListenerUse::kMetrics}};
  EXPECT_NE(start_error(config).find("every listener is for metrics"), std::string::npos);
  config.listen.clear();
  config.metrics_listen = {{.address = "127.0.0.1", .port = 0}};
  EXPECT_EQ(start_error(config), "") << "--metrics-listen beside --address and --port";
}

TEST_F(ListenStartup, MetricsListenerNeedsAProtocolWithMetrics) {
  ServerConfig config = base();  // echo: no metrics
  config.metrics_listen = {{.address = "127.0.0.1", .port = 0}};
  EXPECT_NE(start_error(config).find("no metrics to serve"), std::string::npos);
}

TEST_F(ListenStartup, ProxyListenerNeedsTrustedProxies) {
  ServerConfig config = base();
  config.listen = {{.address = "127.0.0.1", .port = 0, .proxy = true}};
  const std::string error = start_error(config);
  EXPECT_NE(error.find("--trusted-proxy"), std::string::npos) << error;
  config.proxy.trusted.add("127.0.0.0/8");
  EXPECT_EQ(start_error(config), "");
}

TEST_F(ListenStartup, AtMostSixteenListeners) {
  ServerConfig config = base();
  config.listen.assign(kMaxListeners + 1, {.address = "127.0.0.1", .port = 0, .tls = false});
  EXPECT_NE(start_error(config).find("at most 16"), std::string::npos);
  config.listen.resize(kMaxListeners);  // port 0 each: sixteen ports
  EXPECT_EQ(start_error(config), "");
}

TEST_F(ListenStartup, PortsResolvedInTheOrderGiven) {
  ServerConfig config = base();
  config.threads = 2;  // the second loop joins each port (SO_REUSEPORT)
  config.listen = {{.address = "127.0.0.1", .port = 0, .tls = false},
                   {.address = "::1", .port = 0, .tls = false}};
  Server server(config, echo::make_factory);
  server.start();
  ASSERT_EQ(server.listeners().size(), 2U);
  EXPECT_EQ(server.listeners()[0].address, "127.0.0.1");
  EXPECT_EQ(server.listeners()[1].address, "::1");
  EXPECT_NE(server.listeners()[0].port, 0);
  EXPECT_NE(server.listeners()[1].port, 0);
  EXPECT_EQ(server.port(), server.listeners()[0].port);
  server.stop();
  server.wait();
}

}  // namespace
}  // namespace rs::net
