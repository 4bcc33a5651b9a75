// Static files from the built ringserve-http (--root), fetched by curl the way a user would:
// a byte range, a conditional GET with the ETag of an earlier answer, and HEAD.
#include <gtest/gtest.h>
#include <signal.h>

#include <cctype>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "tests/apps/tool_process.hpp"
#include "tests/support/server_harness.hpp"

namespace rs::test {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kStartTimeout{10000};
constexpr milliseconds kToolTimeout{30000};

#define REQUIRE_CURL()                                                                  \
  do {                                                                                  \
    if (find_tool("curl").empty())                                                      \
      GTEST_SKIP() << "curl is not installed (scripts/setup.sh installs it); skipping"; \
  } while (0)

std::string numbers() {
  std::string s;
  for (int i = 0; s.size() < 100000; ++i)
    s += std::to_string(i) + "\n";
  return s;
}

// ringserve-http on an ephemeral port serving a fresh temporary directory, with more flags
// when asked.
class StaticApp {
 public:
  explicit StaticApp(const std::vector<std::string>& flags = {},
                     const std::function<void(const TempDir&)>& fill = {}) {
    dir_.write("numbers.txt", numbers());
    dir_.write("index.html", "<p>index</p>\n");
    if (fill) fill(dir_);
    std::vector<std::string> args{"--port", "0", "--address", "127.0.0.1", "--root", dir_.path()};
    args.insert(args.end(), flags.begin(), flags.end());
    process_ = std::make_unique<ChildProcess>("ringserve-http", args);
    if (const auto line = process_->wait_for_line("listening on", kStartTimeout)) {
      port_ = port_from_startup_line(*line);
    }
  }
  ~StaticApp() {
    process_->signal(SIGTERM);
    process_->wait_exit(kStartTimeout);
  }
  bool started() const { return port_ != 0; }
  ChildProcess& process() { return *process_; }
  std::string url(std::string_view path) const {
    return "http://127.0.0.1:" + std::to_string(port_) + std::string(path);
  }

 private:
  TempDir dir_;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

// The value of a header in curl's dump of a response head (names compared case-insensitively).
std::string header_value(const std::string& head, std::string name) {
  std::string lower = head;
  for (char& c : lower)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (char& c : name)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  const auto at = lower.find("\n" + name + ": ");
  if (at == std::string::npos) return {};
  const auto begin = at + name.size() + 3;
  return head.substr(begin, head.find("\r\n", begin) - begin);
}

TEST(StaticCurl, RangeGetsExactlyThoseBytes) {
  REQUIRE_CURL();
  StaticApp app;
  ASSERT_TRUE(app.started()) << app.process().err();
  const ToolResult r = run_tool({"curl", "-s", "-r", "0-9", app.url("/numbers.txt")}, kToolTimeout);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out, numbers().substr(0, 10));
  const ToolResult tail = run_tool(
      {"curl", "-s", "-r", "-7", "-w", "|%{http_code}", app.url("/numbers.txt")}, kToolTimeout);
  EXPECT_EQ(tail.out, numbers().substr(numbers().size() - 7) + "|206");
}

TEST(StaticCurl, IfNoneMatchWithAnEarlierEtagGets304) {
  REQUIRE_CURL();
  StaticApp app;
  ASSERT_TRUE(app.started()) << app.process().err();
  const ToolResult first =
      run_tool({"curl", "-s", "-D", "-", "-o", "/dev/null", app.url("/numbers.txt")}, kToolTimeout);
  ASSERT_EQ(first.status, 0) << first.err;
  const std::string etag = header_value(first.out, "ETag");
  ASSERT_FALSE(etag.empty()) << first.out;
  const ToolResult again = run_tool({"curl", "-s", "-H", "If-None-Match: " + etag, "-o",
                                     "/dev/null", "-w", "%{http_code}", app.url("/numbers.txt")},
                                    kToolTimeout);
  EXPECT_EQ(again.status, 0) << again.err;
  EXPECT_EQ(again.out, "304");
  const ToolResult changed =
      run_tool({"curl", "-s", "-H", "If-None-Match: \"something-else\"", "-o", "/dev/null", "-w",
                "%{http_code}", app.url("/numbers.txt")},
               kToolTimeout);
  EXPECT_EQ(changed.out, "200");
}

TEST(StaticCurl, HeadShowsTheHeadersOfGet) {
  REQUIRE_CURL();
  StaticApp app;
  ASSERT_TRUE(app.started()) << app.process().err();
  const ToolResult r = run_tool({"curl", "-s", "-I", app.url("/numbers.txt")}, kToolTimeout);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.out.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << r.out;
  EXPECT_EQ(header_value(r.out, "Content-Length"), std::to_string(numbers().size()));
  EXPECT_EQ(header_value(r.out, "Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(header_value(r.out, "Accept-Ranges"), "bytes");
  EXPECT_FALSE(header_value(r.out, "ETag").empty()) << r.out;
  EXPECT_EQ(header_value(r.out, "Last-Modified").size(), 29u) << r.out;
  const ToolResult index =
      run_tool({"curl", "-s", "-w", "|%{content_type}", app.url("/")}, kToolTimeout);
  EXPECT_EQ(index.out, "<p>index</p>\n|text/html; charset=utf-8");
}

TEST(StaticCurl, MissingRootStopsStartupWithAMessage) {
  ChildProcess server("ringserve-http",
                      {"--port", "0", "--root", "/nonexistent/ringserve-static-root"});
  EXPECT_EQ(server.wait_exit(kStartTimeout), 1);
  EXPECT_NE(server.err().find("--root /nonexistent/ringserve-static-root"), std::string::npos)
      << server.err();
}

// The types of a mime.types file the test writes (not /etc/mime.types: the test must not
// depend on it).
TEST(StaticCurl, MimeTypesFileGivesContentTypes) {
  REQUIRE_CURL();
  TempDir types;
  const std::string file = types.write("mime.types", "image/webp webp\ntext/markdown md\n");
  StaticApp app({"--mime-types", file}, [](const TempDir& dir) {
    dir.write("pic.webp", "RIFF");
    dir.write("notes.md", "# notes\n");
  });
  ASSERT_TRUE(app.started()) << app.process().err();
  const ToolResult webp =
      run_tool({"curl", "-s", "-o", "/dev/null", "-w", "%{content_type}", app.url("/pic.webp")},
               kToolTimeout);
  EXPECT_EQ(webp.out, "image/webp");
  const ToolResult md =
      run_tool({"curl", "-s", "-o", "/dev/null", "-w", "%{content_type}", app.url("/notes.md")},
               kToolTimeout);
  EXPECT_EQ(md.out, "text/markdown; charset=utf-8");
}

TEST(StaticCurl, BadMimeTypesFileStopsStartupNamingFileAndLine) {
  TempDir dir;
  const std::string file = dir.write("bad.types", "image/webp webp\nimage-png png\n");
  ChildProcess bad("ringserve-http", {"--port", "0", "--root", dir.path(), "--mime-types", file});
  EXPECT_EQ(bad.wait_exit(kStartTimeout), 1);
  EXPECT_NE(bad.err().find("--mime-types " + file + " line 2: 'image-png' is not a media type"),
            std::string::npos)
      << bad.err();
  ChildProcess missing("ringserve-http", {"--port", "0", "--root", dir.path(), "--mime-types",
                                          dir.path() + "/missing.types"});
  EXPECT_EQ(missing.wait_exit(kStartTimeout), 1);
  EXPECT_NE(missing.err().find("missing.types: cannot read it"), std::string::npos)
      << missing.err();
}

TEST(StaticCurl, CacheControlFlagIsSentAndCheckedAtStartup) {
  REQUIRE_CURL();
  StaticApp app({"--cache-control", "public, max-age=3600"});
  ASSERT_TRUE(app.started()) << app.process().err();
  const ToolResult r = run_tool({"curl", "-s", "-I", app.url("/numbers.txt")}, kToolTimeout);
  EXPECT_EQ(header_value(r.out, "Cache-Control"), "public, max-age=3600") << r.out;
  TempDir dir;
  ChildProcess bad("ringserve-http",
                   {"--port", "0", "--root", dir.path(), "--cache-control", "max-age=1\r\nX: y"});
  EXPECT_EQ(bad.wait_exit(kStartTimeout), 1);
  EXPECT_NE(bad.err().find("--cache-control: holds a byte that is not printable ASCII"),
            std::string::npos)
      << bad.err();
}

// A real gzip sibling made by gzip(1): curl --compressed asks for it, gets it and decodes it to
// the file's bytes.
TEST(StaticCurl, PrecompressedGzipSiblingDecodesToTheFile) {
  REQUIRE_CURL();
  if (find_tool("gzip").empty()) GTEST_SKIP() << "gzip is not installed";
  StaticApp app({"--precompressed"}, [](const TempDir& dir) {
    const ToolResult zipped = run_tool({"gzip", "-k", dir.path() + "/numbers.txt"}, kToolTimeout);
    ASSERT_EQ(zipped.status, 0) << zipped.err;
  });
  ASSERT_TRUE(app.started()) << app.process().err();
  const ToolResult r = run_tool({"curl", "-s", "-H", "Accept-Encoding: gzip", "--compressed", "-D",
                                 "/dev/stderr", app.url("/numbers.txt")},
                                kToolTimeout);
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(header_value(r.err, "Content-Encoding"), "gzip") << r.err;
  EXPECT_EQ(header_value(r.err, "Vary"), "Accept-Encoding") << r.err;
  EXPECT_TRUE(r.out == numbers()) << "decoded bytes differ from the file";
  const ToolResult plain = run_tool({"curl", "-s", app.url("/numbers.txt")}, kToolTimeout);
  EXPECT_TRUE(plain.out == numbers()) << "no Accept-Encoding: the file itself";
}

TEST(StaticCurl, HelpListsTheStaticFileFlags) {
  ChildProcess help("ringserve-http", {"--help"});
  EXPECT_EQ(help.wait_exit(kStartTimeout), 0);
  for (const char* flag : {"--root", "--mime-types", "--cache-control", "--precompressed"})
    EXPECT_NE(help.out().find(flag), std::string::npos) << flag << "\n" << help.out();
}

}  // namespace
}  // namespace rs::test
