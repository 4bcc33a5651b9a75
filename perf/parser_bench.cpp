// RequestParser against http-parser 2.9 (Debian libhttp-parser-dev, the packaged yardstick),
// on the same requests in the same run: ns per request and bytes per second. Each case runs
// whole (one block) and split at an awkward point (the incremental path: a head that arrives
// in two receives). For the chunked POST both parsers are timed over the whole message, head
// and body decoding.
//
// perf/parser_bench.py runs it with 5 repetitions and prints the medians side by side with
// the ratio; `parser_bench --benchmark_filter=...` runs a part.
#include <benchmark/benchmark.h>
#include <http_parser.h>

#include <array>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "net/http/parser.hpp"

namespace {

using rs::http::ParseStatus;
using rs::http::RequestParser;

struct Case {
  const char* name;
  std::string text;
  std::size_t split;  // where the split variant cuts the head (an awkward point)
};

std::string browser_request() {
  // 9 fields and a long cookie: about 705 bytes, as a desktop browser sends a page request.
  std::string cookie = "session=";
  cookie += std::string(180, 'a');
  cookie += "; prefs=theme%3Ddark%26lang%3Den; _ga=GA1.2.1234567890.1700000000; ";
  cookie += "_gid=GA1.2.987654321.1700000000; consent=yes; cart=";
  cookie += std::string(64, 'c');
  return "GET /products/widgets?page=2&sort=price HTTP/1.1\r\n"
         "Host: shop.example.com\r\n"
         "User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"
         "Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n"
         "Accept-Language: en-US,en;q=0.5\r\n"
         "Accept-Encoding: gzip, deflate, br\r\n"
         "Referer: https://shop.example.com/products\r\n"
         "Connection: keep-alive\r\n"
         "Upgrade-Insecure-Requests: 1\r\n"
         "Cookie: " +
         cookie + "\r\n\r\n";
}

std::string api_request() {
  // 20 fields, one of them a 2 KB cookie.
  std::string text = "GET /api/v2/orders/123456/items?expand=product,price HTTP/1.1\r\n";
  text += "Host: api.example.com\r\n";
  text += "Authorization: Bearer " + std::string(120, 't') + "\r\n";
  text += "Cookie: " + std::string(2048, 'k') + "\r\n";
  for (int i = 0; i < 17; ++i) {
    text += "X-Field-" + std::to_string(i) + ": value-" + std::to_string(i * 7919) + "\r\n";
  }
  return text + "\r\n";
}

std::string chunked_post() {
  std::string text =
      "POST /upload HTTP/1.1\r\nHost: api.example.com\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 8; ++i) {
    const std::string chunk(200 + i * 10, static_cast<char>('a' + i));
    char size[16];
    std::snprintf(size, sizeof(size), "%zx\r\n", chunk.size());
    text += size + chunk + "\r\n";
  }
  return text + "0\r\n\r\n";
}

const std::vector<Case>& corpus() {
  static const std::vector<Case> cases = [] {
    std::vector<Case> c;
    // wrk's request for /plaintext (49 bytes).
    c.push_back({"wrk", "GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n", 20});
    c.push_back({"techempower",
                 "GET /plaintext HTTP/1.1\r\nHost: server\r\n"
                 "Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,"
                 "application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n",
                 60});
    c.push_back({"browser", browser_request(), 301});
    c.push_back({"api", api_request(), 1111});
    c.push_back({"chunked_post", chunked_post(), 77});
    return c;
  }();
  return cases;
}

// RequestParser over the whole message: the head, then (for a body) parse_body until done.
bool ringserve_parse(RequestParser& parser, std::string_view text, std::size_t split) {
  parser.reset();
  if (split > 0 && parser.parse_head(text.substr(0, split)) != ParseStatus::kIncomplete) {
    return false;
  }
  if (parser.parse_head(text) != ParseStatus::kComplete) return false;
  std::string_view rest = text.substr(parser.head_bytes());
  while (!parser.body_done()) {
    const rs::http::BodyResult r = parser.parse_body(rest);
    if (r.error != rs::http::ParseError::kNone || r.consumed == 0) return false;
    benchmark::DoNotOptimize(r.data.data());
    rest.remove_prefix(r.consumed);
    if (r.done) break;
  }
  return true;
}

// http-parser with the callbacks a server needs: the target, each field's name and value,
// the body, the end of the message.
struct Spans {
  std::array<std::string_view, 64> fields{};
  std::size_t count = 0;
  std::string_view url;
  std::size_t body_bytes = 0;
  bool complete = false;
};

int on_url(http_parser* p, const char* at, std::size_t n) {
  static_cast<Spans*>(p->data)->url = {at, n};
  return 0;
}
int on_field(http_parser* p, const char* at, std::size_t n) {
  auto* s = static_cast<Spans*>(p->data);
  if (s->count < s->fields.size()) s->fields[s->count++] = {at, n};
  return 0;
}
int on_body(http_parser* p, const char* /*at*/, std::size_t n) {
  static_cast<Spans*>(p->data)->body_bytes += n;
  return 0;
}
int on_complete(http_parser* p) {
  static_cast<Spans*>(p->data)->complete = true;
  return 0;
}

http_parser_settings yardstick_settings() {
  http_parser_settings settings{};
  http_parser_settings_init(&settings);
  settings.on_url = on_url;
  settings.on_header_field = on_field;
  settings.on_header_value = on_field;
  settings.on_body = on_body;
  settings.on_message_complete = on_complete;
  return settings;
}

bool yardstick_parse(const http_parser_settings& settings, std::string_view text,
                     std::size_t split) {
  http_parser parser;
  http_parser_init(&parser, HTTP_REQUEST);
  Spans spans;
  parser.data = &spans;
  std::size_t done = 0;
  if (split > 0) {
    done = http_parser_execute(&parser, &settings, text.data(), split);
    if (done != split) return false;
  }
  done += http_parser_execute(&parser, &settings, text.data() + done, text.size() - done);
  benchmark::DoNotOptimize(spans);
  return done == text.size() && spans.complete;
}

void bench_ringserve(benchmark::State& state, const Case& c, bool split) {
  RequestParser parser;
  for (auto _ : state) {
    if (!ringserve_parse(parser, c.text, split ? c.split : 0)) {
      state.SkipWithError("RequestParser rejected the request");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.text.size()));
}

void bench_yardstick(benchmark::State& state, const Case& c, bool split) {
  const http_parser_settings settings = yardstick_settings();
  for (auto _ : state) {
    if (!yardstick_parse(settings, c.text, split ? c.split : 0)) {
      state.SkipWithError("http-parser rejected the request");
      break;
    }
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * c.text.size()));
}

const bool registered = [] {
  for (const Case& c : corpus()) {
    for (const bool split : {false, true}) {
      const std::string shape = std::string(c.name) + (split ? "/split" : "/whole");
      benchmark::RegisterBenchmark(("RequestParser/" + shape).c_str(), bench_ringserve, c, split);
      benchmark::RegisterBenchmark(("http_parser/" + shape).c_str(), bench_yardstick, c, split);
    }
  }
  return true;
}();

}  // namespace

BENCHMARK_MAIN();
