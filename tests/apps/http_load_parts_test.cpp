// The pieces of perf/http-load checked on their own: its HTTP response parser (bytes split
// anywhere, every framing, malformed answers) and the .hgrm export of the latency histogram
// (the format HdrHistogram's tools read), and the request schedule of the open loop.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <sstream>
#include <string>
#include <vector>

#include "perf/hgrm.hpp"
#include "perf/http_response_parser.hpp"
#include "perf/latency_histogram.hpp"
#include "perf/request_schedule.hpp"

namespace rs::test {
namespace {

using perf::HttpResponseParser;
using perf::LatencyHistogram;
using Result = HttpResponseParser::Result;

struct Parsed {
  std::vector<int> statuses;  // of each complete response, in order
  std::vector<bool> closes;   // whether each said the connection closes
  bool bad = false;
  std::string error;
};

// Feeds `text` in pieces of `step` bytes (then the close, with `eof`), as receives would.
Parsed parse(const std::string& text, std::size_t step, bool eof = false) {
  HttpResponseParser parser;
  Parsed out;
  const auto note = [&](Result r) {
    if (r == Result::kDone) {
      out.statuses.push_back(parser.status());
      out.closes.push_back(parser.connection_close());
    } else if (r == Result::kBad) {
      out.bad = true;
      out.error = parser.error();
    }
  };
  for (std::size_t at = 0; at < text.size() && !out.bad; at += step) {
    const std::size_t end = std::min(text.size(), at + step);
    std::size_t pos = at;
    while (pos < end && !out.bad) {
      std::size_t used = 0;
      const Result r = parser.feed(text.data() + pos, end - pos, used);
      pos += used;
      note(r);
    }
  }
  if (eof && !out.bad) note(parser.feed_eof());
  return out;
}

const std::string kPlaintext =
    "HTTP/1.1 200 OK\r\nServer: ringserve\r\nDate: Thu, 03 Dec 2026 10:00:00 GMT\r\n"
    "Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!";

TEST(HttpLoadResponseParser, PipelinedResponsesSplitAtEveryByteCountOnce) {
  const std::string chunked =
      "HTTP/1.1 404 Not Found\r\ntransfer-encoding: gzip, CHUNKED\r\n\r\n"
      "5;name=value\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nTrailer: x\r\n\r\n";
  const std::string text = kPlaintext + chunked + kPlaintext;
  for (std::size_t step = 1; step <= text.size(); ++step) {
    const Parsed p = parse(text, step);
    ASSERT_FALSE(p.bad) << step << ": " << p.error;
    EXPECT_EQ(p.statuses, (std::vector<int>{200, 404, 200})) << step;
    EXPECT_EQ(p.closes, (std::vector<bool>{false, false, false})) << step;
  }
}

TEST(HttpLoadResponseParser, ConnectionCloseAndHttp10AreSeen) {
  const Parsed p = parse(
      "HTTP/1.1 200 OK\r\nConnection: keep-alive, Close\r\nContent-Length: 0\r\n\r\n"
      "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx"
      "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\nx",
      7);
  ASSERT_FALSE(p.bad) << p.error;
  EXPECT_EQ(p.closes, (std::vector<bool>{true, true, false}));
}

TEST(HttpLoadResponseParser, NoBodyFor204And304AndInterimResponsesAreSkipped) {
  const Parsed p = parse(
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\nContent-Length: 99\r\n\r\n"
      "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n" +
          kPlaintext,
      3);
  ASSERT_FALSE(p.bad) << p.error;
  EXPECT_EQ(p.statuses, (std::vector<int>{204, 304, 200}));
}

TEST(HttpLoadResponseParser, ABodyWithoutLengthEndsAtTheClose) {
  const Parsed open = parse("HTTP/1.1 200 OK\r\n\r\nsome body", 4);
  EXPECT_TRUE(open.statuses.empty());
  const Parsed closed = parse("HTTP/1.1 200 OK\r\n\r\nsome body", 4, true);
  ASSERT_FALSE(closed.bad) << closed.error;
  EXPECT_EQ(closed.statuses, std::vector<int>{200});
}

TEST(HttpLoadResponseParser, ACloseInsideAResponseIsMalformedButBetweenThemIsNot) {
  EXPECT_TRUE(parse(kPlaintext.substr(0, kPlaintext.size() - 1), 5, true).bad);
  EXPECT_TRUE(parse("HTTP/1.1 200", 5, true).bad);
  const Parsed whole = parse(kPlaintext, 5, true);
  EXPECT_FALSE(whole.bad) << whole.error;
  EXPECT_EQ(whole.statuses.size(), 1U);
}

TEST(HttpLoadResponseParser, MalformedResponsesAreRefused) {
  for (const char* text : {
           "HTTP/2 200 OK\r\n\r\n",
           "HTTP/1.1 20 OK\r\n\r\n",
           "HTTP/1.1 200OK\r\n\r\n",
           "SSH-2.0-OpenSSH_9.2\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n",
           "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
           "HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
           "HTTP/1.1 200 OK\r\n folded: line\r\n\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
           "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
           "HTTP/1.1 101 Switching Protocols\r\n\r\n",
       }) {
    const Parsed p = parse(text, 2);
    EXPECT_TRUE(p.bad) << text;
    EXPECT_TRUE(p.statuses.empty()) << text;
  }
}

// The rows of an .hgrm text: value (us), percentile (0..1), total count.
struct HgrmRow {
  double value_us = 0;
  double percentile = 0;
  std::uint64_t count = 0;
};
struct Hgrm {
  std::string header;
  std::vector<HgrmRow> rows;
  double mean_us = -1;
  double std_dev_us = -1;
  double max_us = -1;
  std::uint64_t total = 0;
  int buckets = 0;
  int sub_buckets = 0;
  bool parsed = false;
};

// Reads the text as HdrHistogram's own parsers do: the header, a blank line, rows of three or
// four numbers, then the three #[...] footer lines.
Hgrm parse_hgrm(const std::string& text) {
  Hgrm h;
  std::istringstream in(text);
  std::string line;
  if (!std::getline(in, h.header) || !std::getline(in, line) || !line.empty()) return h;
  int footer = 0;
  while (std::getline(in, line)) {
    if (line.starts_with("#[")) {
      unsigned long long total = 0;
      footer += std::sscanf(line.c_str(), "#[Mean = %lf, StdDeviation = %lf]", &h.mean_us,
                            &h.std_dev_us) == 2;
      footer +=
          std::sscanf(line.c_str(), "#[Max = %lf, Total count = %llu]", &h.max_us, &total) == 2;
      footer += std::sscanf(line.c_str(), "#[Buckets = %d, SubBuckets = %d]", &h.buckets,
                            &h.sub_buckets) == 2;
      if (total > 0) h.total = total;
      continue;
    }
    HgrmRow row;
    unsigned long long count = 0;
    double inverse = 0;
    const int n = std::sscanf(line.c_str(), "%lf %lf %llu %lf", &row.value_us, &row.percentile,
                              &count, &inverse);
    if (n < 3) return h;
    row.count = count;
    h.rows.push_back(row);
  }
  h.parsed = footer == 3;
  return h;
}

TEST(HttpLoadHgrm, RowsClimbToTheTotalCountAndTheFooterAddsUp) {
  LatencyHistogram histogram;
  for (std::uint64_t us = 1; us <= 10000; ++us)
    histogram.record(us * 1000);
  histogram.record(250'000'000);  // one outlier: the tail rows jump to it
  const Hgrm h = parse_hgrm(perf::hgrm_text(histogram));
  ASSERT_TRUE(h.parsed) << perf::hgrm_text(histogram);
  EXPECT_EQ(h.header, "       Value     Percentile TotalCount 1/(1-Percentile)");
  ASSERT_GE(h.rows.size(), 50U);
  for (std::size_t i = 1; i < h.rows.size(); ++i) {
    EXPECT_GE(h.rows[i].value_us, h.rows[i - 1].value_us) << i;
    EXPECT_GT(h.rows[i].percentile, h.rows[i - 1].percentile) << i;
    EXPECT_GE(h.rows[i].count, h.rows[i - 1].count) << i;
  }
  EXPECT_EQ(h.rows.front().percentile, 0.0);
  EXPECT_EQ(h.rows.back().percentile, 1.0);
  EXPECT_EQ(h.rows.back().count, 10001U);
  EXPECT_EQ(h.rows.back().value_us, 250000.0);
  EXPECT_EQ(h.total, 10001U);
  EXPECT_EQ(h.max_us, 250000.0);
  EXPECT_NEAR(h.mean_us, histogram.mean_ns() / 1000, 0.001);
  EXPECT_GT(h.std_dev_us, 3000);  // about 3790: 2890 from the spread, the rest the outlier's
  EXPECT_LT(h.std_dev_us, 5000);
  EXPECT_EQ(h.buckets, 30);
  EXPECT_EQ(h.sub_buckets, 128);
  // Below the outlier, a row's value is its percentile of 1..10000 us, within the histogram's
  // precision (1/64) and the one-value rounding of a rank.
  for (const HgrmRow& row : h.rows) {
    if (row.count == 10001) continue;
    const double exact_us = row.percentile * 10001;
    EXPECT_GE(row.value_us, exact_us - 1) << row.percentile;
    EXPECT_LE(row.value_us, (exact_us + 1) * (1 + 1.0 / 64)) << row.percentile;
  }
}

TEST(HttpLoadHgrm, PercentileStepsHalveAsHdrHistogramTakesThem) {
  LatencyHistogram histogram;
  for (std::uint64_t i = 1; i <= 100000; ++i)
    histogram.record(i * 100);
  const Hgrm h = parse_hgrm(perf::hgrm_text(histogram));
  ASSERT_TRUE(h.parsed);
  // Five ticks per half distance to 100 %: steps of 10 % up to 50 %, 5 % up to 75 %, 2.5 % ...
  const std::vector<double> expected{0,    0.1,   0.2,    0.3,  0.4,    0.5,  0.55,
                                     0.6,  0.65,  0.7,    0.75, 0.775,  0.8,  0.825,
                                     0.85, 0.875, 0.8875, 0.9,  0.9125, 0.925};
  ASSERT_GE(h.rows.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i)
    EXPECT_NEAR(h.rows[i].percentile, expected[i], 1e-9) << i;
}

TEST(HttpLoadHgrm, OneValueGivesTwoRowsAndNoneGivesOnlyTheFrame) {
  LatencyHistogram one;
  one.record(1000);
  EXPECT_EQ(perf::hgrm_text(one),
            "       Value     Percentile TotalCount 1/(1-Percentile)\n"
            "\n"
            "       1.000 0.000000000000          1           1.00\n"
            "       1.000 1.000000000000          1\n"
            "#[Mean    =        1.000, StdDeviation   =        0.000]\n"
            "#[Max     =        1.000, Total count    =            1]\n"
            "#[Buckets =           30, SubBuckets     =          128]\n");
  const Hgrm none = parse_hgrm(perf::hgrm_text(LatencyHistogram{}));
  EXPECT_TRUE(none.parsed);
  EXPECT_TRUE(none.rows.empty());
  EXPECT_EQ(none.total, 0U);
}

using perf::RequestSchedule;
using perf::ScheduleKind;

// Uniform times are k x gap computed from k: exact where the gap is a whole number of
// nanoseconds, and never more than 1 ns off k x 1e9 / rate where it is not (no drift), at
// rates below 1/s too. The first request is due at the start.
TEST(HttpLoadRequestSchedule, UniformGapsAreExact) {
  for (const double rate : {1000.0, 0.5, 1e9}) {
    RequestSchedule schedule(ScheduleKind::kUniform, rate, 1);
    const auto gap = static_cast<std::uint64_t>(1e9 / rate);
    for (std::uint64_t k = 0; k < 1'000'000; ++k) {
      ASSERT_EQ(schedule.next_ns(), k * gap) << rate << " at " << k;
    }
  }
  RequestSchedule thirds(ScheduleKind::kUniform, 3, 1);
  for (std::uint64_t k = 0; k < 1'000'000; ++k) {
    const auto t = static_cast<double>(thirds.next_ns());
    ASSERT_LE(std::fabs(t - static_cast<double>(k) * 1e9 / 3), 1.0) << k;
  }
  // However low the rate, a time converts (capped at 2^62 ns, 146 years).
  RequestSchedule rare(ScheduleKind::kUniform, 1e-30, 1);
  EXPECT_EQ(rare.next_ns(), 0U);
  EXPECT_EQ(rare.next_ns(), std::uint64_t{1} << 62);
}

// Poisson gaps are exponential: their mean is 1 / rate and their standard deviation equals the
// mean (coefficient of variation 1). Over 1e6 draws from a fixed seed, deterministic.
TEST(HttpLoadRequestSchedule, PoissonGapsHaveTheMeanAndSpreadOfAnExponential) {
  constexpr int kDraws = 1'000'000;
  constexpr double kRate = 1000;
  for (const std::uint64_t seed : {1ULL, 7ULL, 0ULL}) {
    RequestSchedule schedule(ScheduleKind::kPoisson, kRate, seed);
    double sum = 0;
    double sum_sq = 0;
    std::uint64_t last = 0;
    for (int i = 0; i < kDraws; ++i) {
      const std::uint64_t t = schedule.next_ns();
      ASSERT_GE(t, last) << i;
      const auto gap = static_cast<double>(t - last);
      sum += gap;
      sum_sq += gap * gap;
      last = t;
    }
    const double mean = sum / kDraws;
    const double sd = std::sqrt(sum_sq / kDraws - mean * mean);
    EXPECT_NEAR(mean / (1e9 / kRate), 1.0, 0.01) << seed;
    EXPECT_NEAR(sd / mean, 1.0, 0.02) << seed;
  }
  // The same seed gives the same times; another seed, others.
  RequestSchedule a(ScheduleKind::kPoisson, kRate, 7);
  RequestSchedule b(ScheduleKind::kPoisson, kRate, 7);
  RequestSchedule c(ScheduleKind::kPoisson, kRate, 8);
  bool differs = false;
  for (int i = 0; i < 1000; ++i) {
    const std::uint64_t t = a.next_ns();
    ASSERT_EQ(t, b.next_ns()) << i;
    differs = differs || t != c.next_ns();
  }
  EXPECT_TRUE(differs);
}

}  // namespace
}  // namespace rs::test
