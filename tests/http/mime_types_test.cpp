// The media-type table: a mime.types file parsed over the built-in table, case-insensitive
// lookups, and files that break the format or a bound refused with the file, the line and the
// reason. Files are written by the test: nothing here needs /etc/mime.types.
#include "net/http/mime_types.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

namespace rs::test {
namespace {

using http::MimeTypes;

constexpr std::string_view kSample =
    "# comment line\n"
    "\n"
    "image/webp\t\t\t\t\twebp\n"
    "text/markdown\t\t\t\t\tmd markdown\n"
    "video/mp4  mp4 mpg4\r\n"
    "font/woff2 woff2\n"
    "application/x-nothing\n"
    "text/html html htm\n"
    "application/x-first dup\n"
    "application/x-second dup\n"
    "   # indented comment\n"
    "application/json json";  // no final newline

// The error parse() throws, or "" when it accepts the text.
std::string parse_error(std::string_view text) {
  try {
    MimeTypes::parse(text, "--mime-types t.types");
  } catch (const std::exception& e) {
    return e.what();
  }
  return "";
}

TEST(MimeTypes, BuiltInTableKnowsTheCommonTypes) {
  const MimeTypes types;
  EXPECT_EQ(types.size(), 16u);
  EXPECT_EQ(types.lookup("a/index.html"), "text/html; charset=utf-8");
  EXPECT_EQ(types.lookup("style.CSS"), "text/css; charset=utf-8");
  EXPECT_EQ(types.lookup("x.webp"), MimeTypes::kUnknown);
  EXPECT_EQ(types.lookup("noext"), MimeTypes::kUnknown);
  EXPECT_EQ(types.lookup("dir.d/noext"), MimeTypes::kUnknown);
  EXPECT_EQ(types.lookup("trailing."), MimeTypes::kUnknown);
  EXPECT_EQ(types.lookup("x." + std::string(100, 'a')), MimeTypes::kUnknown);
}

TEST(MimeTypes, FileTypesComeFirstAndTheBuiltInOnesFillGaps) {
  const MimeTypes types = MimeTypes::parse(kSample, "t.types");
  EXPECT_EQ(types.lookup("a.webp"), "image/webp");
  EXPECT_EQ(types.lookup("a.WebP"), "image/webp") << "extensions compare case-insensitively";
  EXPECT_EQ(types.lookup("readme.md"), "text/markdown; charset=utf-8");
  EXPECT_EQ(types.lookup("v.mpg4"), "video/mp4") << "CRLF line ends";
  EXPECT_EQ(types.lookup("f.woff2"), "font/woff2");
  EXPECT_EQ(types.lookup("i.htm"), "text/html; charset=utf-8");
  EXPECT_EQ(types.lookup("d.dup"), "application/x-first") << "the first type of an extension";
  EXPECT_EQ(types.lookup("j.json"), "application/json");
  EXPECT_EQ(types.lookup("p.png"), "image/png") << "from the built-in table";
  EXPECT_EQ(types.lookup("x.unknown"), MimeTypes::kUnknown);
}

TEST(MimeTypes, MalformedLinesAreRefusedWithTheirNumber) {
  const std::string no_slash = parse_error("text/plain txt\nnotatype foo\n");
  EXPECT_NE(no_slash.find("--mime-types t.types line 2: 'notatype' is not a media type"),
            std::string::npos)
      << no_slash;
  EXPECT_NE(no_slash.find("--mime-types FILE"), std::string::npos) << "says what to do";
  EXPECT_NE(parse_error("a/b c\n/b x\n").find("line 2:"), std::string::npos);
  EXPECT_NE(parse_error("a/b c/d\n").find("'c/d' is not an extension"), std::string::npos);
  EXPECT_EQ(parse_error("a/b c.d\n"), "") << "skipped: a lookup never sees a '.' in one";
  EXPECT_NE(parse_error("a/b c\x01\n").find("line 1: holds byte 0x01"), std::string::npos);
  EXPECT_NE(parse_error("a/b \xc3\xa9\n").find("holds byte 0xc3"), std::string::npos);
  EXPECT_EQ(parse_error("a/b c\n# \n\t\n"), "");
  EXPECT_EQ(parse_error("# Jos\xc3\xa9 wrote this\na/b c\n"), "") << "a comment may say anything";
}

TEST(MimeTypes, BoundsAreEnforced) {
  const std::string long_line = "a/b " + std::string(MimeTypes::kMaxLineBytes, 'x') + "\n";
  EXPECT_NE(parse_error("a/b c\n" + long_line).find("line 2: longer than 1024 bytes"),
            std::string::npos);
  const std::string long_ext = "a/b " + std::string(MimeTypes::kMaxExtensionBytes + 1, 'e');
  EXPECT_NE(parse_error(long_ext).find("is longer than 32 bytes"), std::string::npos);
  const std::string long_type = "a/" + std::string(MimeTypes::kMaxTypeBytes, 't') + " x";
  EXPECT_NE(parse_error(long_type).find("a media type longer than"), std::string::npos);
  std::string many;
  for (std::size_t i = 0; i <= MimeTypes::kMaxExtensions; i += 100) {
    many += "a/b";
    for (std::size_t k = 0; k < 100; ++k)
      many += " e" + std::to_string(i + k);
    many += "\n";
  }
  EXPECT_NE(parse_error(many).find("more than 20000 extensions"), std::string::npos);
}

class MimeTypesFile : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TMPDIR");
    std::string pattern = std::string(tmp != nullptr ? tmp : "/tmp") + "/rs-mime-XXXXXX";
    ASSERT_NE(::mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    std::remove((dir_ + "/types").c_str());
    ::rmdir(dir_.c_str());
  }
  std::string write(std::string_view text) {
    const std::string path = dir_ + "/types";
    std::ofstream out(path, std::ios::binary);
    out.write(text.data(), static_cast<std::streamsize>(text.size()));
    return path;
  }
  std::string load_error(const std::string& path) {
    try {
      MimeTypes::load(path);
    } catch (const std::exception& e) {
      return e.what();
    }
    return "";
  }
  std::string dir_;
};

TEST_F(MimeTypesFile, GivenFileIsLoaded) {
  const MimeTypes types = MimeTypes::load(write(kSample));
  EXPECT_EQ(types.lookup("x.md"), "text/markdown; charset=utf-8");
}

TEST_F(MimeTypesFile, GivenFileThatCannotBeUsedIsAnError) {
  const std::string missing = load_error(dir_ + "/nope");
  EXPECT_NE(missing.find("--mime-types " + dir_ + "/nope: cannot read it"), std::string::npos)
      << missing;
  EXPECT_NE(load_error(dir_).find("not a regular file"), std::string::npos);
  const std::string bad = load_error(write("text/plain txt\nbroken\n"));
  EXPECT_NE(bad.find("--mime-types " + dir_ + "/types line 2: 'broken' is not a media type"),
            std::string::npos)
      << bad;
  const std::string big(MimeTypes::kMaxFileBytes + 1, '\n');
  EXPECT_NE(load_error(write(big)).find("larger than"), std::string::npos);
}

}  // namespace
}  // namespace rs::test
