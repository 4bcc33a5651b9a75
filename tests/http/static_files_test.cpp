// Static files from --root, in process over real sockets, with real files in a temporary
// directory: exact bytes and headers, validators and conditionals, ranges, index.html, every
// way out of the root refused, streaming a large file in bounded memory, and a client that
// leaves mid-download.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "net/http/http_date.hpp"
#include "tests/support/http_client.hpp"
#include "tests/support/locked_memory.hpp"
#include "tests/support/net_client.hpp"
#include "tests/support/ring_fdinfo.hpp"
#include "tests/support/server_fixture.hpp"

namespace rs::test {
namespace {

namespace fs = std::filesystem;

constexpr std::size_t kBigBytes = 3u << 20;
const std::string kHello = "Hello, static world!\n";

std::string big_contents() {
  std::string s(kBigBytes, '\0');
  for (std::size_t i = 0; i < s.size(); ++i)
    s[i] = static_cast<char>((i * 131 + i / 4096) & 0xff);
  return s;
}

void write_file(const fs::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
}

// base/root is served; base/outside holds what no request may reach.
class StaticFilesTest : public ServerFixture {
 protected:
  // Each loop (and each worker thread of the threads backend) warms its own pools, and the
  // kernel picks which one takes a connection: only with one set is "no growth" checkable.
  bool one_set_of_pools() const {
    return GetParam().loops == 1 && GetParam().backend != net::Backend::kThreads;
  }
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/rs-static-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    base_ = pattern;
    root_ = base_ / "root";
    fs::create_directories(root_ / "sub" / "noindex");
    fs::create_directories(base_ / "outside");
    write_file(root_ / "hello.txt", kHello);
    write_file(root_ / "index.html", "<h1>root</h1>\n");
    write_file(root_ / "sub" / "index.html", "<h1>sub</h1>\n");
    write_file(root_ / "sub" / "style.CSS", "body{}\n");
    write_file(root_ / "sub" / "noindex" / "data.bin", "xyz");
    write_file(root_ / "file with space.json", "{}");
    write_file(root_ / "empty.txt", "");
    write_file(root_ / "big.bin", big_contents());
    write_file(base_ / "outside" / "secret.txt", "secret\n");
    fs::create_symlink("hello.txt", root_ / "inside-link.txt");
    fs::create_symlink("../outside/secret.txt", root_ / "outside-relative.txt");
    fs::create_symlink(base_ / "outside" / "secret.txt", root_ / "outside-absolute.txt");
    fs::create_directory_symlink("../outside", root_ / "outside-dir");
  }
  void TearDown() override {
    ServerFixture::TearDown();  // the server stops before its root goes
    std::error_code ec;
    fs::remove_all(base_, ec);
  }

  // An HTTP server serving root_ (or no root at all), with more settings when asked.
  void start(bool with_root = true, const HttpTweak& tweak = {}) {
    ServerFixture::start([&](http::HttpConfig& config) {
      if (with_root) config.root = root_.string();
      // Some tests mix files with /plaintext and /delay (off by default beside --root).
      config.demo_routes = http::HttpConfig::Switch::kOn;
      if (tweak) tweak(config);
    });
  }
  // A slow reader with a 16 KiB receive buffer.
  int connect_small_window() { return ServerFixture::connect_small_window(16 << 10); }
  // One request on a fresh connection; extra header lines end in CRLF.
  HttpResponse fetch(std::string_view path, const std::string& extra = {},
                     std::string_view method = "GET") {
    const int fd = connect();
    const std::string request =
        std::string(method) + " " + std::string(path) + " HTTP/1.1\r\nHost: t\r\n" + extra + "\r\n";
    EXPECT_TRUE(send_all(fd, request));
    HttpReader reader(fd);
    reader.expect_head_response(method == "HEAD");
    return reader.next();
  }
  // A 24 MiB file, far more than loopback socket buffers hold.
  std::string make_huge() {
    std::string huge(24u << 20, '\0');
    for (std::size_t i = 0; i < huge.size(); ++i)
      huge[i] = static_cast<char>((i * 7 + i / 65536) & 0xff);
    write_file(root_ / "huge.bin", huge);
    return huge;
  }

  // The ETag of a file; a precompressed sibling's ends in "-gz" or "-br" (the suffix).
  std::string etag_of(const fs::path& path, const char* suffix = "") {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    char text[64];
    std::snprintf(text, sizeof(text), "\"%llx-%llx-%llx%s\"",
                  static_cast<unsigned long long>(st.st_ino),
                  static_cast<unsigned long long>(st.st_size),
                  static_cast<unsigned long long>(st.st_mtime), suffix);
    return text;
  }
  std::string last_modified_of(const fs::path& path, std::int64_t shift_s = 0) {
    struct stat st {};
    EXPECT_EQ(::stat(path.c_str(), &st), 0);
    char text[http::kImfFixdateLength];
    http::format_imf_fixdate(st.st_mtime + shift_s, text);
    return {text, http::kImfFixdateLength};
  }

  fs::path base_;
  fs::path root_;
};

TEST_P(StaticFilesTest, SmallFileHasTypeLengthValidatorsAndExactBytes) {
  start();
  const HttpResponse r = fetch("/hello.txt");
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, kHello);
  EXPECT_EQ(r.header("Content-Type"), "text/plain; charset=utf-8");
  EXPECT_EQ(r.header("Content-Length"), std::to_string(kHello.size()));
  EXPECT_EQ(r.header("Last-Modified"), last_modified_of(root_ / "hello.txt"));
  EXPECT_EQ(r.header("ETag"), etag_of(root_ / "hello.txt"));
  EXPECT_EQ(r.header("Accept-Ranges"), "bytes");
  EXPECT_TRUE(r.header("Connection").empty());
  EXPECT_EQ(fetch("/sub/style.CSS").header("Content-Type"), "text/css; charset=utf-8");
  EXPECT_EQ(fetch("/file%20with%20space.json").header("Content-Type"), "application/json");
  EXPECT_EQ(fetch("/big.bin", "Range: bytes=0-0\r\n").header("Content-Type"),
            "application/octet-stream");
  const HttpResponse empty = fetch("/empty.txt");
  EXPECT_EQ(empty.status, 200);
  EXPECT_EQ(empty.header("Content-Length"), "0");
  EXPECT_TRUE(wait_until([&] { return counter("pool_files") == 0; }));
}

// Content-Type from the mime.types file --mime-types names (one the test writes, so that the
// test does not depend on /etc/mime.types), over the built-in table.
TEST_P(StaticFilesTest, ContentTypeComesFromTheGivenMimeTypesFile) {
  write_file(base_ / "mime.types",
             "# test types\nimage/webp webp\ntext/markdown md markdown\nfont/woff2 woff2\n"
             "video/mp4 mp4\n");
  for (const char* name : {"a.webp", "README.MD", "f.woff2", "v.mp4", "x.unknownext"})
    write_file(root_ / name, "x");
  start(true,
        [&](http::HttpConfig& config) { config.mime_types = (base_ / "mime.types").string(); });
  EXPECT_EQ(fetch("/a.webp").header("Content-Type"), "image/webp");
  EXPECT_EQ(fetch("/README.MD").header("Content-Type"), "text/markdown; charset=utf-8");
  EXPECT_EQ(fetch("/f.woff2").header("Content-Type"), "font/woff2");
  EXPECT_EQ(fetch("/v.mp4", "", "HEAD").header("Content-Type"), "video/mp4");
  EXPECT_EQ(fetch("/x.unknownext").header("Content-Type"), "application/octet-stream");
  EXPECT_EQ(fetch("/hello.txt").header("Content-Type"), "text/plain; charset=utf-8")
      << "the built-in table answers for what the file does not name";
  EXPECT_EQ(fetch("/").header("Content-Type"), "text/html; charset=utf-8");
}

TEST_P(StaticFilesTest, LargeFileStreamsExactBytesInBoundedMemory) {
  start();
  ASSERT_EQ(fetch("/hello.txt").status, 200);  // warm the pools up
  ASSERT_TRUE(wait_until([&] { return counter("pool_chunks") == 0; }));
  const std::int64_t grows_before = counter("pool_grows");
  const int fd = connect_small_window();
  ASSERT_TRUE(send_all(fd, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::int64_t peak_chunks = 0;
  HttpReader reader(fd);
  reader.on_read([&] { peak_chunks = std::max(peak_chunks, counter("pool_chunks")); }, 8192);
  const HttpResponse r = reader.next(milliseconds(30000));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.header("Content-Length"), std::to_string(kBigBytes));
  EXPECT_TRUE(r.body == big_contents()) << "the body differs from the file";
  // The file is 192 chunks of 16 KiB; the server holds about 256 KiB of it at a time.
  EXPECT_LT(peak_chunks, 48);
  if (one_set_of_pools()) {
    EXPECT_EQ(counter("pool_grows"), grows_before) << "streaming must not grow the pools";
  }
  // Registered chunks are read into as fixed buffers, and only they.
  if (GetParam().backend == net::Backend::kUring && GetParam().registered_buffers) {
    EXPECT_GE(counter("fixed_reads"), static_cast<std::int64_t>(kBigBytes / 16384));
  } else {
    EXPECT_EQ(counter("fixed_reads"), 0);
  }
  EXPECT_TRUE(wait_until([&] { return counter("pool_chunks") == 0; }));
}

// Loopback socket buffers take a few MiB on their own, so only a file well beyond them shows
// whether the server stops reading for a slow client.
TEST_P(StaticFilesTest, SlowReaderOfAHugeFileCostsOnlyAFewChunks) {
  const std::string huge = make_huge();
  start();
  ASSERT_EQ(fetch("/hello.txt").status, 200);  // warm the pools up
  ASSERT_TRUE(wait_until([&] { return counter("pool_chunks") == 0; }));
  const std::int64_t grows_before = counter("pool_grows");
  const int fd = connect_small_window();
  ASSERT_TRUE(send_all(fd, "GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
  std::int64_t peak_chunks = 0;
  HttpReader reader(fd);
  reader.on_read([&] { peak_chunks = std::max(peak_chunks, counter("pool_chunks")); }, 16384);
  const HttpResponse r = reader.next(milliseconds(60000));
  ASSERT_TRUE(r.ok);
  EXPECT_TRUE(r.body == huge) << "the body differs from the file";
  EXPECT_LT(peak_chunks, 48);
  if (one_set_of_pools()) {
    EXPECT_EQ(counter("pool_grows"), grows_before) << "streaming must not grow the pools";
  }
}

// The close is asked for before the body is read: streaming must still go on to the end.
TEST_P(StaticFilesTest, LargeFileWithConnectionCloseIsSentWholeThenCloses) {
  const std::string huge = make_huge();
  start();
  const int fd = connect_small_window();
  ASSERT_TRUE(send_all(fd, "GET /huge.bin HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"));
  HttpReader reader(fd);
  const HttpResponse r = reader.next(milliseconds(60000));
  ASSERT_TRUE(r.ok);
  EXPECT_EQ(r.header("Connection"), "close");
  EXPECT_TRUE(r.body == huge);
  EXPECT_TRUE(reader.closed());
  expect_pools_returned();
}

TEST_P(StaticFilesTest, HeadHasTheSameHeadersAndNoBody) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "HEAD /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReader reader(fd);
  reader.expect_head_response(true);
  const HttpResponse head = reader.next();
  EXPECT_EQ(head.status, 200);
  EXPECT_EQ(head.header("Content-Length"), std::to_string(kBigBytes));
  EXPECT_EQ(head.header("ETag"), etag_of(root_ / "big.bin"));
  EXPECT_FALSE(head.header("Last-Modified").empty());
  reader.expect_head_response(false);
  EXPECT_EQ(reader.next().body, kHello) << "no stray body bytes before it";
}

TEST_P(StaticFilesTest, DirectoryServesItsIndexHtml) {
  start();
  const HttpResponse top = fetch("/");
  EXPECT_EQ(top.status, 200);
  EXPECT_EQ(top.body, "<h1>root</h1>\n");
  EXPECT_EQ(top.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(fetch("/sub/").body, "<h1>sub</h1>\n");
  EXPECT_EQ(fetch("/sub/./").body, "<h1>sub</h1>\n");
  EXPECT_EQ(fetch("/sub/.").body, "<h1>sub</h1>\n");
  EXPECT_EQ(fetch("/sub/noindex/data.bin").body, "xyz");
  EXPECT_EQ(fetch("/hello.txt/").status, 404) << "a file is not a directory";
  EXPECT_EQ(fetch("/hello.txt/.").status, 404) << "'.' names a directory";
  EXPECT_EQ(fetch("/hello.txt/%2e").status, 404) << "'.' names a directory";
}

// As nginx: a directory named without its trailing slash is redirected to it (so that relative
// links in its index resolve below it), the query kept; one without index.html is 403.
TEST_P(StaticFilesTest, DirectoryWithoutTrailingSlashRedirectsKeepingTheQuery) {
  fs::create_directories(root_ / "a dir" / "x");
  start();
  const HttpResponse sub = fetch("/sub");
  EXPECT_EQ(sub.status, 301);
  EXPECT_EQ(sub.header("Location"), "/sub/");
  EXPECT_EQ(sub.body, "Moved Permanently\n");
  EXPECT_TRUE(sub.header("ETag").empty());
  EXPECT_EQ(fetch("/sub?page=2&q=a%20b").header("Location"), "/sub/?page=2&q=a%20b");
  EXPECT_EQ(fetch("/./sub//noindex?x").header("Location"), "/sub/noindex/?x")
      << "the path as it was resolved";
  EXPECT_EQ(fetch("/a%20dir/x").header("Location"), "/a%20dir/x/") << "encoded again";
  EXPECT_EQ(fetch("/hello.txt?x=1").body, kHello) << "a file keeps its name";
  const HttpResponse head = fetch("/sub?v", "", "HEAD");
  EXPECT_EQ(head.status, 301);
  EXPECT_EQ(head.header("Location"), "/sub/?v");
  // A query too long for the redirect to carry: refused rather than dropped.
  EXPECT_EQ(fetch("/sub?" + std::string(600, 'q')).status, 414);
  EXPECT_EQ(fetch("/sub/?" + std::string(600, 'q')).status, 200) << "no redirect, no need";
  // Pipelined behind a redirect, the next request is answered on the same connection.
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /sub HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReader reader(fd);
  EXPECT_EQ(reader.next().status, 301);
  EXPECT_EQ(reader.next().body, kHello);
}

TEST_P(StaticFilesTest, DirectoryWithoutIndexIs403) {
  start();
  const HttpResponse r = fetch("/sub/noindex/");
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(r.body, "Forbidden\n");
  EXPECT_EQ(fetch("/sub/noindex").status, 301) << "the redirect comes first, as in nginx";
  EXPECT_EQ(fetch("/sub/noindex/", "", "HEAD").status, 403);
  fs::create_directories(root_ / "dirindex" / "index.html");
  EXPECT_EQ(fetch("/dirindex/").status, 404) << "an index.html that is no file";
  EXPECT_TRUE(wait_until([&] { return counter("pool_files") == 0; }));
}

TEST_P(StaticFilesTest, MissingFileIs404AndKeepsTheConnection) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /nope.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReader reader(fd);
  EXPECT_EQ(reader.next().status, 404);
  EXPECT_EQ(reader.next().body, kHello);
  EXPECT_EQ(fetch("/sub/nope/deeper.txt").status, 404);
}

TEST_P(StaticFilesTest, NoWayOutOfTheRoot) {
  start();
  for (const char* path :
       {"/../outside/secret.txt", "/sub/../../outside/secret.txt", "/%2e%2e/outside/secret.txt",
        "/%2E%2E/outside/secret.txt", "/sub/%2e%2e/%2e%2e/outside/secret.txt",
        "/.%2e/outside/secret.txt", "/..%2foutside%2fsecret.txt", "/%2e%2e%2Foutside/secret.txt",
        "/hello.txt%00.html", "/sub/..", "/outside-relative.txt", "/outside-absolute.txt",
        "/outside-dir/secret.txt"}) {
    const HttpResponse r = fetch(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body.find("secret"), std::string::npos) << path;
  }
  const HttpResponse inside = fetch("/inside-link.txt");
  EXPECT_EQ(inside.status, 200);
  EXPECT_EQ(inside.body, kHello);
  EXPECT_TRUE(wait_until([&] { return counter("pool_files") == 0; }));
}

// Only regular files (and directories, for their index) are served: a symlink to a device
// leaves the root (RESOLVE_BENEATH refuses it), and a FIFO or a device node below the root is
// opened non-blocking, seen not to be a regular file, and answered 404 like a missing file.
TEST_P(StaticFilesTest, SymlinkToADeviceOutsideTheRootIs404) {
  fs::create_symlink("/dev/zero", root_ / "zero-link");
  fs::create_symlink("/dev/null", root_ / "null-link.txt");
  start();
  for (const char* path : {"/zero-link", "/null-link.txt"}) {
    const HttpResponse r = fetch(path);
    EXPECT_EQ(r.status, 404) << path;
    EXPECT_EQ(r.body, "Not Found\n") << path;
  }
  EXPECT_TRUE(wait_until([&] { return counter("pool_files") == 0; }));
}

// A FIFO with no writer: a blocking open would wait for ever (and stall a whole loop). The
// answer comes at once, and the connection and the loop go on.
TEST_P(StaticFilesTest, FifoBelowTheRootIs404AndBlocksNothing) {
  ASSERT_EQ(::mkfifo((root_ / "pipe.txt").c_str(), 0644), 0) << std::strerror(errno);
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /pipe.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                       "HEAD /pipe.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReader reader(fd);
  EXPECT_EQ(reader.next().status, 404);
  reader.expect_head_response(true);
  EXPECT_EQ(reader.next().status, 404);
  reader.expect_head_response(false);
  EXPECT_EQ(reader.next().body, kHello);
  EXPECT_EQ(fetch("/hello.txt").body, kHello) << "another connection is served too";
  EXPECT_TRUE(wait_until([&] { return counter("pool_files") == 0; }));
}

// A character device made below the root (the tests run as root; without CAP_MKNOD the test
// is skipped): /dev/zero's numbers, so a device served by mistake would never end.
TEST_P(StaticFilesTest, DeviceNodeBelowTheRootIs404) {
  if (::mknod((root_ / "zero.bin").c_str(), S_IFCHR | 0644, ::makedev(1, 5)) != 0) {
    GTEST_SKIP() << "mknod: " << std::strerror(errno) << " (needs CAP_MKNOD)";
  }
  start();
  const HttpResponse r = fetch("/zero.bin");
  EXPECT_EQ(r.status, 404);
  EXPECT_EQ(r.body, "Not Found\n");
  EXPECT_EQ(fetch("/zero.bin", "Range: bytes=0-9\r\n").status, 404);
  EXPECT_EQ(fetch("/hello.txt").body, kHello);
  EXPECT_TRUE(wait_until([&] { return counter("pool_files") == 0; }));
}

TEST_P(StaticFilesTest, IfNoneMatchGives304AndTakesPrecedence) {
  start();
  const std::string etag = etag_of(root_ / "hello.txt");
  const HttpResponse hit = fetch("/hello.txt", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(hit.status, 304);
  EXPECT_EQ(hit.header("ETag"), etag);
  EXPECT_EQ(hit.header("Last-Modified"), last_modified_of(root_ / "hello.txt"));
  EXPECT_TRUE(hit.header("Content-Length").empty());
  EXPECT_EQ(fetch("/hello.txt", "If-None-Match: \"x\", W/" + etag + "\r\n").status, 304)
      << "weak comparison, lists";
  EXPECT_EQ(fetch("/hello.txt", "If-None-Match: \"x\"\r\nIf-None-Match: " + etag + "\r\n").status,
            304)
      << "the field repeated";
  EXPECT_EQ(fetch("/hello.txt", "If-None-Match: *\r\n").status, 304);
  // A long list (a cache holding many variants, or padding) is read to its end: the tag after
  // 2 KB of others still matches, among them tags of the server's own shape up to the room.
  std::string many;
  for (int i = 0; i < 60; ++i)
    many += "\"other-tag-" + std::to_string(i) + "\", W/\"" + std::to_string(i) + "\", ";
  for (int i = 0; i < 5; ++i)
    many += "\"1" + std::to_string(i) + "-2-3\", ";
  EXPECT_EQ(fetch("/hello.txt", "If-None-Match: " + many + etag + "\r\n").status, 304);
  EXPECT_EQ(fetch("/hello.txt", "If-None-Match: " + many + "\"1-2-3\"\r\n").status, 200);
  EXPECT_EQ(fetch("/hello.txt", "If-None-Match: \"x\", garbage, " + etag + "\r\n").status, 200)
      << "a malformed list matches nothing";
  EXPECT_EQ(fetch("/hello.txt", "If-None-Match: " + etag + "\r\n", "HEAD").status, 304);
  // A non-matching If-None-Match wins over an If-Modified-Since that would give 304.
  const HttpResponse miss =
      fetch("/hello.txt", "If-None-Match: \"other\"\r\nIf-Modified-Since: " +
                              last_modified_of(root_ / "hello.txt", 3600) + "\r\n");
  EXPECT_EQ(miss.status, 200);
  EXPECT_EQ(miss.body, kHello);
}

// RFC 9110 13.1.1, 13.1.4 and the order of 13.2.2: If-Match (strong comparison; "*" is any
// existing file), else If-Unmodified-Since, may fail with 412 before If-None-Match or
// If-Modified-Since are looked at.
TEST_P(StaticFilesTest, IfMatchAndIfUnmodifiedSinceGive412) {
  start();
  const fs::path file = root_ / "hello.txt";
  const std::string etag = etag_of(file);
  const auto status = [&](const std::string& fields) { return fetch("/hello.txt", fields).status; };
  const HttpResponse hit = fetch("/hello.txt", "If-Match: " + etag + "\r\n");
  EXPECT_EQ(hit.status, 200);
  EXPECT_EQ(hit.body, kHello);
  const HttpResponse miss = fetch("/hello.txt", "If-Match: \"other\"\r\n");
  EXPECT_EQ(miss.status, 412);
  EXPECT_EQ(miss.body, "Precondition Failed\n");
  EXPECT_EQ(status("If-Match: *\r\n"), 200);
  EXPECT_EQ(status("If-Match: \"1-2-3\", " + etag + "\r\n"), 200) << "a list";
  EXPECT_EQ(status("If-Match: \"x\"\r\nIf-Match: " + etag + "\r\n"), 200) << "repeated";
  EXPECT_EQ(status("If-Match: W/" + etag + "\r\n"), 412) << "strong comparison";
  EXPECT_EQ(status("If-Match: garbage, " + etag + "\r\n"), 412) << "malformed: no match";
  EXPECT_EQ(fetch("/nope.txt", "If-Match: *\r\n").status, 404) << "'*' needs a file";
  EXPECT_EQ(fetch("/hello.txt", "If-Match: \"other\"\r\n", "HEAD").status, 412);
  // If-Unmodified-Since: 412 when the file is newer; an invalid date is ignored.
  EXPECT_EQ(status("If-Unmodified-Since: " + last_modified_of(file, -60) + "\r\n"), 412);
  EXPECT_EQ(status("If-Unmodified-Since: " + last_modified_of(file) + "\r\n"), 200);
  EXPECT_EQ(status("If-Unmodified-Since: " + last_modified_of(file, 60) + "\r\n"), 200);
  EXPECT_EQ(status("If-Unmodified-Since: not a date\r\n"), 200);
  // The order: If-Match decides over If-Unmodified-Since, and both come before the 304 fields.
  EXPECT_EQ(status("If-Match: " + etag + "\r\nIf-Unmodified-Since: " + last_modified_of(file, -60) +
                   "\r\n"),
            200)
      << "If-Unmodified-Since only counts without If-Match";
  EXPECT_EQ(status("If-Match: \"other\"\r\nIf-None-Match: " + etag + "\r\n"), 412);
  EXPECT_EQ(status("If-Match: " + etag + "\r\nIf-None-Match: " + etag + "\r\n"), 304);
  EXPECT_EQ(status("If-Unmodified-Since: " + last_modified_of(file, -60) +
                   "\r\nIf-Modified-Since: " + last_modified_of(file) + "\r\n"),
            412);
  EXPECT_EQ(status("If-Unmodified-Since: " + last_modified_of(file) +
                   "\r\nIf-Modified-Since: " + last_modified_of(file) + "\r\n"),
            304);
  const HttpResponse part = fetch("/hello.txt", "If-Match: " + etag + "\r\nRange: bytes=0-4\r\n");
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, kHello.substr(0, 5));
  // A 412 is an ordinary answer: the connection goes on.
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /hello.txt HTTP/1.1\r\nHost: t\r\nIf-Match: \"no\"\r\n\r\n"
                       "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReader reader(fd);
  EXPECT_EQ(reader.next().status, 412);
  EXPECT_EQ(reader.next().body, kHello);
  EXPECT_TRUE(wait_until([&] { return counter("pool_files") == 0; }));
}

TEST_P(StaticFilesTest, CacheControlOnSuccessAndNotModifiedOnly) {
  start(true, [](http::HttpConfig& config) { config.cache_control = "public, max-age=3600"; });
  const std::string etag = etag_of(root_ / "hello.txt");
  EXPECT_EQ(fetch("/hello.txt").header("Cache-Control"), "public, max-age=3600");
  EXPECT_EQ(fetch("/hello.txt", "", "HEAD").header("Cache-Control"), "public, max-age=3600");
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=0-1\r\n").header("Cache-Control"),
            "public, max-age=3600");
  const HttpResponse not_modified = fetch("/hello.txt", "If-None-Match: " + etag + "\r\n");
  EXPECT_EQ(not_modified.status, 304);
  EXPECT_EQ(not_modified.header("Cache-Control"), "public, max-age=3600");
  EXPECT_EQ(fetch("/").header("Cache-Control"), "public, max-age=3600") << "an index";
  for (const HttpResponse& r :
       {fetch("/nope.txt"), fetch("/sub"), fetch("/sub/noindex/"),
        fetch("/hello.txt", "If-Match: \"x\"\r\n"), fetch("/hello.txt", "Range: bytes=99-\r\n")}) {
    EXPECT_TRUE(r.header("Cache-Control").empty()) << r.status;
  }
  EXPECT_TRUE(fetch("/plaintext").header("Cache-Control").empty()) << "static files only";
}

TEST_P(StaticFilesTest, IfModifiedSinceGives304WhenNotModified) {
  start();
  const fs::path file = root_ / "hello.txt";
  EXPECT_EQ(fetch("/hello.txt", "If-Modified-Since: " + last_modified_of(file) + "\r\n").status,
            304);
  EXPECT_EQ(fetch("/hello.txt", "If-Modified-Since: " + last_modified_of(file, 60) + "\r\n").status,
            304);
  const HttpResponse older =
      fetch("/hello.txt", "If-Modified-Since: " + last_modified_of(file, -60) + "\r\n");
  EXPECT_EQ(older.status, 200);
  EXPECT_EQ(older.body, kHello);
  EXPECT_EQ(fetch("/hello.txt", "If-Modified-Since: yesterday\r\n").status, 200)
      << "an invalid date is ignored";
}

TEST_P(StaticFilesTest, SingleRangeGives206WithExactBytes) {
  start();
  const std::string big = big_contents();
  const HttpResponse first = fetch("/big.bin", "Range: bytes=0-9\r\n");
  EXPECT_EQ(first.status, 206);
  EXPECT_EQ(first.header("Content-Range"), "bytes 0-9/" + std::to_string(kBigBytes));
  EXPECT_EQ(first.header("Content-Length"), "10");
  EXPECT_EQ(first.body, big.substr(0, 10));
  const HttpResponse across = fetch("/big.bin", "Range: bytes=16000-50000\r\n");
  EXPECT_EQ(across.status, 206);
  EXPECT_TRUE(across.body == big.substr(16000, 34001));
  const HttpResponse suffix = fetch("/hello.txt", "Range: bytes=-6\r\n");
  EXPECT_EQ(suffix.status, 206);
  EXPECT_EQ(suffix.header("Content-Range"), "bytes " + std::to_string(kHello.size() - 6) + "-" +
                                                std::to_string(kHello.size() - 1) + "/" +
                                                std::to_string(kHello.size()));
  EXPECT_EQ(suffix.body, kHello.substr(kHello.size() - 6));
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=7-\r\n").body, kHello.substr(7));
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=7-999\r\n").body, kHello.substr(7));
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=-999\r\n").body, kHello);
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=0-1,4-5\r\n").status, 200)
      << "several ranges: the whole file";
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=5-2\r\n").status, 200) << "invalid: ignored";
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=0-1\r\n", "HEAD").status, 200)
      << "Range is for GET only";
}

TEST_P(StaticFilesTest, UnsatisfiableRangeIs416) {
  start();
  const HttpResponse r = fetch("/hello.txt", "Range: bytes=1000-\r\n");
  EXPECT_EQ(r.status, 416);
  EXPECT_EQ(r.header("Content-Range"), "bytes */" + std::to_string(kHello.size()));
  EXPECT_EQ(r.body, "");
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=-0\r\n").status, 416);
  EXPECT_EQ(fetch("/empty.txt", "Range: bytes=0-\r\n").status, 416);
}

TEST_P(StaticFilesTest, IfRangeMismatchSendsTheWholeFile) {
  start();
  const fs::path file = root_ / "hello.txt";
  const HttpResponse stale = fetch("/hello.txt", "Range: bytes=0-4\r\nIf-Range: \"stale\"\r\n");
  EXPECT_EQ(stale.status, 200);
  EXPECT_EQ(stale.body, kHello);
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=0-4\r\nIf-Range: W/" + etag_of(file) + "\r\n").status,
            200)
      << "a weak tag never matches If-Range";
  EXPECT_EQ(
      fetch("/hello.txt", "Range: bytes=0-4\r\nIf-Range: " + last_modified_of(file, -1) + "\r\n")
          .status,
      200);
  const HttpResponse fresh =
      fetch("/hello.txt", "Range: bytes=0-4\r\nIf-Range: " + etag_of(file) + "\r\n");
  EXPECT_EQ(fresh.status, 206);
  EXPECT_EQ(fresh.body, kHello.substr(0, 5));
  EXPECT_EQ(fetch("/hello.txt", "Range: bytes=0-4\r\nIf-Range: " + last_modified_of(file) + "\r\n")
                .status,
            206);
}

// --precompressed: app.js has .br and .gz siblings, style.css only .gz, plain.txt none (the
// siblings' bytes need not be compressed: the server sends them as they are).
class PrecompressedFiles {
 public:
  static void write(const fs::path& root) {
    write_file(root / "app.js", "console.log('plain');\n");
    write_file(root / "app.js.br", "BR-BYTES-OF-APP-JS");
    write_file(root / "app.js.gz", "GZ-BYTES-OF-APP-JS!");
    write_file(root / "style.css", "body { color: red; }\n");
    write_file(root / "style.css.gz", "GZ-CSS");
    write_file(root / "plain.txt", "no siblings\n");
    write_file(root / "sub" / "index.html.gz", "GZ-INDEX");
  }
};

TEST_P(StaticFilesTest, PrecompressedSiblingServedWhenAcceptEncodingAllows) {
  PrecompressedFiles::write(root_);
  start(true, [](http::HttpConfig& config) { config.precompressed = true; });
  const HttpResponse br = fetch("/app.js", "Accept-Encoding: gzip, deflate, br\r\n");
  EXPECT_EQ(br.status, 200);
  EXPECT_EQ(br.body, "BR-BYTES-OF-APP-JS") << "br first when both are allowed and exist";
  EXPECT_EQ(br.header("Content-Encoding"), "br");
  EXPECT_EQ(br.header("Vary"), "Accept-Encoding");
  EXPECT_EQ(br.header("Content-Type"), "text/javascript; charset=utf-8") << "the file's type";
  const std::string br_etag = br.header("ETag");
  EXPECT_EQ(br_etag, etag_of(root_ / "app.js.br", "-br"));
  const HttpResponse gz = fetch("/app.js", "Accept-Encoding: gzip\r\n");
  EXPECT_EQ(gz.body, "GZ-BYTES-OF-APP-JS!");
  EXPECT_EQ(gz.header("Content-Encoding"), "gzip");
  EXPECT_EQ(gz.header("Content-Length"), "19");
  const HttpResponse plain = fetch("/app.js");
  EXPECT_EQ(plain.body, "console.log('plain');\n");
  EXPECT_TRUE(plain.header("Content-Encoding").empty());
  EXPECT_EQ(plain.header("Vary"), "Accept-Encoding") << "the answer depends on the field";
  EXPECT_NE(plain.header("ETag"), br_etag);
  EXPECT_NE(plain.header("ETag"), gz.header("ETag"));
  EXPECT_EQ(gz.header("ETag"), etag_of(root_ / "app.js.gz", "-gz"));
  // q=0 refuses; "*" stands for what is not named; x-gzip is gzip.
  const auto coding = [&](const std::string& path, const std::string& accept) {
    return fetch(path, "Accept-Encoding: " + accept + "\r\n").header("Content-Encoding");
  };
  EXPECT_EQ(coding("/app.js", "br;q=0, gzip"), "gzip");
  EXPECT_EQ(coding("/app.js", "br; q=0.000, gzip;q=0.5"), "gzip");
  EXPECT_EQ(coding("/app.js", "gzip;q=0, br;q=0"), "");
  EXPECT_EQ(coding("/app.js", "*"), "br");
  EXPECT_EQ(coding("/app.js", "*, br;q=0"), "gzip");
  EXPECT_EQ(coding("/app.js", "*;q=0"), "");
  EXPECT_EQ(coding("/app.js", "identity"), "");
  EXPECT_EQ(coding("/app.js", "X-GZIP"), "gzip");
  EXPECT_EQ(fetch("/app.js", "Accept-Encoding: gzip;q=0\r\nAccept-Encoding: br\r\n")
                .header("Content-Encoding"),
            "br")
      << "every Accept-Encoding field counts";
  EXPECT_EQ(coding("/style.css", "br, gzip"), "gzip") << "only the sibling that exists";
  const HttpResponse none = fetch("/plain.txt", "Accept-Encoding: br, gzip\r\n");
  EXPECT_EQ(none.body, "no siblings\n");
  EXPECT_TRUE(none.header("Content-Encoding").empty());
  EXPECT_EQ(none.header("Vary"), "Accept-Encoding");
  const HttpResponse index = fetch("/sub/", "Accept-Encoding: gzip\r\n");
  EXPECT_EQ(index.body, "GZ-INDEX") << "a directory's index.html has siblings too";
  EXPECT_EQ(index.header("Content-Type"), "text/html; charset=utf-8");
  EXPECT_EQ(fetch("/sub", "Accept-Encoding: gzip\r\n").status, 301);
  EXPECT_TRUE(wait_until([&] { return counter("pool_files") == 0; }));
}

TEST_P(StaticFilesTest, PrecompressedSiblingIsItsOwnRepresentation) {
  PrecompressedFiles::write(root_);
  start(true, [](http::HttpConfig& config) { config.precompressed = true; });
  const std::string accept = "Accept-Encoding: br\r\n";
  const HttpResponse part = fetch("/app.js", accept + "Range: bytes=3-5\r\n");
  EXPECT_EQ(part.status, 206);
  EXPECT_EQ(part.body, "BYT") << "a range of the compressed bytes";
  EXPECT_EQ(part.header("Content-Range"), "bytes 3-5/18");
  EXPECT_EQ(part.header("Content-Encoding"), "br");
  const std::string br_etag = fetch("/app.js", accept).header("ETag");
  const HttpResponse same = fetch("/app.js", accept + "If-None-Match: " + br_etag + "\r\n");
  EXPECT_EQ(same.status, 304);
  EXPECT_EQ(same.header("ETag"), br_etag);
  EXPECT_EQ(same.header("Vary"), "Accept-Encoding");
  EXPECT_EQ(fetch("/app.js", "If-None-Match: " + br_etag + "\r\n").status, 200)
      << "the uncompressed file is another representation";
  EXPECT_EQ(fetch("/app.js", "Accept-Encoding: gzip\r\nIf-Match: " + br_etag + "\r\n").status, 412);
  EXPECT_EQ(fetch("/app.js", accept + "If-Match: " + br_etag + "\r\n").status, 200);
  EXPECT_EQ(fetch("/app.js", accept + "If-Range: " + br_etag + "\r\nRange: bytes=0-1\r\n").body,
            "BR");
  const HttpResponse head = fetch("/app.js", accept, "HEAD");
  EXPECT_EQ(head.header("Content-Length"), "18");
  EXPECT_EQ(head.header("Content-Encoding"), "br");
}

TEST_P(StaticFilesTest, WithoutPrecompressedSiblingsAreNeverChosen) {
  PrecompressedFiles::write(root_);
  start();
  const HttpResponse r = fetch("/app.js", "Accept-Encoding: gzip, br\r\n");
  EXPECT_EQ(r.body, "console.log('plain');\n");
  EXPECT_TRUE(r.header("Content-Encoding").empty());
  EXPECT_TRUE(r.header("Vary").empty());
}

TEST_P(StaticFilesTest, OtherMethodsAre405WithAllow) {
  start();
  const HttpResponse post = fetch("/hello.txt", "Content-Length: 0\r\n", "POST");
  EXPECT_EQ(post.status, 405);
  EXPECT_EQ(post.header("Allow"), "GET, HEAD, OPTIONS");
  const HttpResponse options = fetch("/hello.txt", "", "OPTIONS");
  EXPECT_EQ(options.status, 200);
  EXPECT_EQ(options.header("Allow"), "GET, HEAD, OPTIONS");
  EXPECT_EQ(fetch("/plaintext").body, "Hello, World!") << "demo routes turned on come first";
}

TEST_P(StaticFilesTest, PathLongerThanTheLimitIs414) {
  start();
  const std::string name(1100, 'a');
  const HttpResponse r = fetch("/" + name);
  EXPECT_EQ(r.status, 414);
  EXPECT_TRUE(r.header("Connection").empty()) << "an ordinary answer, not a framing error";
  EXPECT_EQ(fetch("/" + std::string(300, 'b')).status, 404) << "long but allowed: looked up";
}

TEST_P(StaticFilesTest, WithoutRootEverythingElseIs404) {
  start(/*with_root=*/false);
  EXPECT_EQ(fetch("/hello.txt").status, 404);
  EXPECT_EQ(fetch("/").status, 404);
  EXPECT_EQ(fetch("/hello.txt", "Content-Length: 0\r\n", "POST").status, 404);
}

TEST_P(StaticFilesTest, PipelinedFilesAnswerInOrder) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /delay?ms=20 HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /hello.txt HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /big.bin HTTP/1.1\r\nHost: t\r\nRange: bytes=-3\r\n\r\n"));
  HttpReader reader(fd);
  const std::string big = big_contents();
  EXPECT_TRUE(reader.next(milliseconds(30000)).body == big);
  EXPECT_EQ(reader.next().body, "Hello, World!");
  EXPECT_EQ(reader.next().body, "20 ms\n");
  EXPECT_EQ(reader.next().body, kHello);
  EXPECT_EQ(reader.next().body, big.substr(big.size() - 3));
}

// Two large files pipelined: the second reads ahead while the first is sent, and what it has
// read must not stop the first from reading on (its read-ahead counts only what is queued
// ahead of its own end; counted over the whole connection, the first stalled for ever).
TEST_P(StaticFilesTest, TwoPipelinedLargeFilesBothArriveWhole) {
  start();
  const int fd = connect();
  ASSERT_TRUE(send_all(fd,
                       "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"
                       "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReader reader(fd);
  const std::string big = big_contents();
  EXPECT_TRUE(reader.next(milliseconds(30000)).body == big) << "the first";
  EXPECT_TRUE(reader.next(milliseconds(30000)).body == big) << "the second";
}

TEST_P(StaticFilesTest, ClientLeavingMidDownloadFreesEverything) {
  make_huge();
  start();
  const int fd = connect_small_window();
  ASSERT_TRUE(send_all(fd, "GET /huge.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
  EXPECT_EQ(recv_string(fd, 100000).size(), 100000u);
  ASSERT_GT(counter("pool_files"), 0) << "the download should still be going";
  close_client(fd);
  expect_pools_returned();
}

TEST_P(StaticFilesTest, ShutdownFinishesADownloadInFlight) {
  start();
  const int fd = connect_small_window();
  ASSERT_TRUE(send_all(fd, "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
  HttpReader reader(fd);
  ASSERT_TRUE(wait_until([&] { return counter("bytes_out") > 0; }));
  server_->server().stop();
  const HttpResponse r = reader.next(milliseconds(30000));
  EXPECT_TRUE(r.ok);
  EXPECT_TRUE(r.body == big_contents());
  EXPECT_TRUE(server_->stop_and_wait(milliseconds(10000)));
}

TEST(StaticFilesRoot, MissingRootIsAClearStartupError) {
  http::HttpConfig config;
  config.root = "/nonexistent/ringserve-root";
  try {
    http::HttpShared shared(config);
    FAIL() << "a missing --root must not start";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("--root /nonexistent/ringserve-root"), std::string::npos)
        << e.what();
  }
}

TEST(StaticFilesConfig, CacheControlMustBeAShortPrintableLine) {
  const auto error = [](const std::string& value) -> std::string {
    http::HttpConfig config;
    config.cache_control = value;
    try {
      http::check_config(config);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error("public, max-age=3600"), "");
  EXPECT_EQ(error(""), "");
  EXPECT_NE(error("no-cache\r\nSet-Cookie: x=1").find("--cache-control: holds a byte"),
            std::string::npos);
  EXPECT_NE(error("a\tb").find("not printable ASCII"), std::string::npos);
  EXPECT_NE(error("caf\xc3\xa9").find("not printable ASCII"), std::string::npos);
  EXPECT_NE(error(std::string(257, 'a')).find("longer than 256 bytes"), std::string::npos);
  EXPECT_EQ(error(std::string(256, 'a')), "");
}

INSTANTIATE_TEST_SUITE_P(Backends, StaticFilesTest, ::testing::ValuesIn(all_backends()),
                         [](const auto& info) { return backend_name(info.param); });

// The chunk pool registered with each loop's ring (--uring-registered-buffers), on one loop and
// on two.
class RegisteredBuffersTest : public StaticFilesTest {};

// What each ring's fdinfo lists is what the loops count: every slab, the first at start-up and
// each later one as slow readers of a large file grow the pool.
TEST_P(RegisteredBuffersTest, TheRingsListEverySlabTheLoopsRegistered) {
  start();
  ASSERT_TRUE(server_->in_force("registered buffers on"));
  std::vector<int> fds;
  for (int i = 0; i < 64; ++i) {
    fds.push_back(connect_small_window());
    ASSERT_TRUE(send_all(fds.back(), "GET /big.bin HTTP/1.1\r\nHost: t\r\n\r\n"));
  }
  const auto loops = static_cast<std::int64_t>(GetParam().loops);
  EXPECT_TRUE(wait_until([&] { return counter("registered_buffers") > loops; }))
      << "the pool should have grown past a slab per loop";
  // The loops' rings: those with a buffer table (a ring made only to probe the kernel has none).
  std::int64_t rings = 0;
  const auto listed = [&] {
    std::int64_t n = 0;
    rings = 0;
    for (int fd : ring_fds()) {
      const auto buffers = ring_buffers(fd);
      if (!buffers || buffers->table == 0) continue;
      EXPECT_EQ(buffers->table, 1024U);
      ++rings;
      n += static_cast<std::int64_t>(buffers->registered.size());
    }
    return n;
  };
  EXPECT_TRUE(wait_until([&] { return listed() == counter("registered_buffers"); }))
      << listed() << " listed, " << counter("registered_buffers") << " counted";
  EXPECT_EQ(rings, loops);
  const auto slab_bytes = static_cast<std::int64_t>(core::ChunkPool(16384).slab_bytes());
  EXPECT_EQ(counter("registered_buffer_bytes"), counter("registered_buffers") * slab_bytes);
  EXPECT_EQ(counter("registered_buffer_fallbacks"), 0);
  for (int fd : fds) {
    HttpReader reader(fd);
    const HttpResponse r = reader.next(milliseconds(30000));
    EXPECT_TRUE(r.ok && r.body == big_contents());
    close_client(fd);
  }
  expect_pools_returned();
}

// Without CAP_IPC_LOCK, under a locked-memory limit that holds the ring but not a 1 MiB slab:
// the kernel refuses the first slab, the start-up line and the counter say so, and files and
// answers come from plain buffers.
TEST_P(RegisteredBuffersTest, ARefusedRegistrationServesFromPlainBuffers) {
  if (GetParam().loops != 1) GTEST_SKIP() << "one ring under the limit";
  LockedMemoryLimit limit(768 << 10);
  if (!limit.active()) GTEST_SKIP() << "cannot lower RLIMIT_MEMLOCK here";
  start();  // the loop thread takes this thread's capabilities
  EXPECT_TRUE(server_->in_force("registered buffers off (refused: ENOMEM"))
      << server_->server().setup_mode();
  EXPECT_GE(counter("registered_buffer_fallbacks"), 1);
  const HttpResponse r = fetch("/big.bin");
  EXPECT_EQ(r.status, 200);
  EXPECT_TRUE(r.body == big_contents());
  EXPECT_EQ(fetch("/plaintext").status, 200);
  EXPECT_EQ(counter("registered_buffers"), 0);
  EXPECT_EQ(counter("fixed_reads"), 0);
  for (int fd : std::vector<int>(fds_))
    close_client(fd);
  expect_pools_returned();
}

INSTANTIATE_TEST_SUITE_P(
    Uring, RegisteredBuffersTest,
    ::testing::Values(BackendParam{net::Backend::kUring, 1, false, false, true},
                      BackendParam{net::Backend::kUring, 2, false, false, true}),
    [](const auto& info) { return backend_name(info.param); });

}  // namespace
}  // namespace rs::test
