#include "tests/http/replay.hpp"

#include <cstdlib>
#include <cstring>
#include <memory>

namespace rs::http::test {

namespace {

// A buffer that lives only as long as the call that reads it, like a receive buffer.
class Fresh {
 public:
  explicit Fresh(std::string_view bytes)
      : data_(std::make_unique<char[]>(bytes.size())), size_(bytes.size()) {
    std::memcpy(data_.get(), bytes.data(), bytes.size());
  }
  std::string_view view() const { return {data_.get(), size_}; }

 private:
  std::unique_ptr<char[]> data_;
  size_t size_;
};

void copy_head(const RequestParser& parser, Message& message) {
  const RequestHead& head = parser.head();
  message.head_complete = true;
  message.method = head.method;
  message.target = head.target;
  message.path = head.path;
  message.query = head.query;
  message.host = head.host;
  message.form = head.form;
  message.version_major = head.version_major;
  message.version_minor = head.version_minor;
  for (const Header& header : head.fields()) {
    message.headers.emplace_back(header.name, header.value);
  }
  message.keep_alive = head.keep_alive;
  message.expect_continue = head.expect_continue;
  message.chunked = head.chunked;
  message.content_length = head.content_length;
  message.head_bytes = parser.head_bytes();
}

bool inside(std::string_view part, std::string_view whole) {
  if (part.empty()) {
    return true;
  }
  const auto begin = reinterpret_cast<uintptr_t>(whole.data());
  const auto p = reinterpret_cast<uintptr_t>(part.data());
  return p >= begin && p + part.size() <= begin + whole.size();
}

class Driver {
 public:
  Driver(const Limits& limits, size_t max_messages, ParserIsa isa)
      : parser_(limits, isa), max_messages_(max_messages) {}

  // Returns false once the run has stopped; `piece` is then partly unconsumed in `pending`.
  bool feed(std::string_view piece) {
    pending_ = piece;
    while (!pending_.empty()) {
      if (!(in_body_ ? feed_body() : feed_head())) {
        return false;
      }
    }
    return true;
  }

  Replay finish(std::string_view unfed) {
    if (stopped_) {
      if (!error_) {
        out_.rest = std::string(pending_) + std::string(unfed);
      }
    } else if (in_body_ || !block_.empty()) {
      out_.messages.push_back(std::move(current_));
    }
    return std::move(out_);
  }

 private:
  bool feed_head() {
    block_.append(pending_);
    pending_ = {};
    const Fresh copy(block_);
    const ParseStatus status = parser_.parse_head(copy.view());
    if (status == ParseStatus::kError) {
      return fail(parser_.error());
    }
    if (status == ParseStatus::kIncomplete) {
      return true;
    }
    // The block must not be looked at past the head: anything after it belongs to the body.
    if (parser_.head_bytes() > block_.size()) {
      std::abort();
    }
    copy_head(parser_, current_);
    carry_ = block_.substr(parser_.head_bytes());
    block_.clear();
    pending_ = carry_;
    in_body_ = true;
    return parser_.body_done() ? complete() : true;
  }

  bool feed_body() {
    const Fresh copy(pending_);
    const BodyResult result = parser_.parse_body(copy.view());
    if (result.consumed > pending_.size() || !inside(result.data, copy.view())) {
      std::abort();
    }
    current_.body.append(result.data);
    if (result.error != ParseError::kNone) {
      return fail(result.error);
    }
    pending_.remove_prefix(result.consumed);
    if (result.done) {
      return complete();
    }
    if (result.consumed == 0) {
      std::abort();  // no progress on non-empty input
    }
    return true;
  }

  bool complete() {
    current_.verdict = Verdict::kComplete;
    current_.message_bytes = parser_.message_bytes();
    const bool keep_alive = current_.keep_alive;
    out_.messages.push_back(std::move(current_));
    current_ = {};
    if (out_.messages.size() == max_messages_ || !keep_alive) {
      stopped_ = true;
      // Keep the unconsumed bytes alive: pending_ may point into carry_.
      carry_ = std::string(pending_);
      pending_ = carry_;
      return false;
    }
    parser_.reset();
    in_body_ = false;
    return true;
  }

  bool fail(ParseError error) {
    current_.verdict = Verdict::kError;
    current_.error = error;
    out_.messages.push_back(std::move(current_));
    stopped_ = true;
    error_ = true;
    return false;
  }

  RequestParser parser_;
  size_t max_messages_;
  Replay out_;
  Message current_;
  std::string block_;
  std::string carry_;
  std::string_view pending_;
  bool in_body_ = false;
  bool stopped_ = false;
  bool error_ = false;
};

}  // namespace

const char* to_string(Verdict verdict) {
  switch (verdict) {
    case Verdict::kIncomplete:
      return "incomplete";
    case Verdict::kComplete:
      return "complete";
    case Verdict::kError:
      return "error";
  }
  return "?";
}

Replay replay(std::string_view raw, std::span<const size_t> cuts, const Limits& limits,
              size_t max_messages, ParserIsa isa) {
  Driver driver(limits, max_messages, isa);
  size_t begin = 0;
  for (size_t i = 0; i <= cuts.size(); ++i) {
    const size_t end = i < cuts.size() ? cuts[i] : raw.size();
    if (end < begin || end > raw.size()) {
      std::abort();
    }
    if (!driver.feed(raw.substr(begin, end - begin))) {
      return driver.finish(raw.substr(end));
    }
    begin = end;
  }
  return driver.finish({});
}

Replay replay_whole(std::string_view raw, const Limits& limits, size_t max_messages,
                    ParserIsa isa) {
  return replay(raw, {}, limits, max_messages, isa);
}

Replay replay_bytewise(std::string_view raw, const Limits& limits, size_t max_messages) {
  std::vector<size_t> cuts;
  for (size_t i = 1; i < raw.size(); ++i) {
    cuts.push_back(i);
  }
  return replay(raw, cuts, limits, max_messages);
}

std::string escape(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (c == '\r') {
      out += "\\r";
    } else if (c == '\n') {
      out += "\\n";
    } else if (c == '\\') {
      out += "\\\\";
    } else if (u < 0x20 || u >= 0x7f) {
      out += "\\x";
      out += kHex[u >> 4];
      out += kHex[u & 15];
    } else {
      out += c;
    }
  }
  return out;
}

std::string describe(const Replay& replay) {
  std::string out;
  for (const Message& m : replay.messages) {
    out += "[";
    out += to_string(m.verdict);
    if (m.verdict == Verdict::kError) {
      out += std::string(" ") + rs::http::to_string(m.error) + " " +
             std::to_string(status_for(m.error));
    }
    if (m.head_complete) {
      out += " " + escape(m.method) + " " + escape(m.target) + " HTTP/" +
             std::to_string(m.version_major) + "." + std::to_string(m.version_minor);
      out += " path=" + escape(m.path) + " query=" + escape(m.query) + " host=" + escape(m.host);
      for (const auto& [name, value] : m.headers) {
        out += " {" + escape(name) + ": " + escape(value) + "}";
      }
      out += m.keep_alive ? " keep-alive" : " close";
      if (m.expect_continue) {
        out += " expect-continue";
      }
      if (m.chunked) {
        out += " chunked";
      }
      if (m.content_length) {
        out += " cl=" + std::to_string(*m.content_length);
      }
      out += " head_bytes=" + std::to_string(m.head_bytes);
      out += " body=\"" + escape(m.body) + "\"";
      out += " message_bytes=" + std::to_string(m.message_bytes);
    }
    out += "] ";
  }
  out += "rest=\"" + escape(replay.rest) + "\"";
  return out;
}

}  // namespace rs::http::test
