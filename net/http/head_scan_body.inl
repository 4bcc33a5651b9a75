// The body of the one-pass head scan, written once and compiled once per instruction set:
// head_scan.cpp includes it inside one namespace per set, in that set's target region, after
// defining the set's two scanning loops, each returning the first byte in [p, end) outside its
// class, or end: scan_class<Class>(p, end) for token characters (method, field name), an
// origin-form path (pchar / "/") and its query (pchar / "/" / "?"), and scan_value(p, end) for
// field-vchar / obs-text / SP / HTAB (so it stops at CTL and DEL: at the CR).
// Not a header of its own: it has no include guard and is meant to be included only there.

struct Kernels {
  [[gnu::always_inline]] static const char* token(const char* p, const char* end) {
    return scan_class<Class::kToken>(p, end);
  }
  [[gnu::always_inline]] static const char* path(const char* p, const char* end) {
    return scan_class<Class::kPath>(p, end);
  }
  [[gnu::always_inline]] static const char* query(const char* p, const char* end) {
    return scan_class<Class::kQuery>(p, end);
  }
  [[gnu::always_inline]] static const char* value(const char* p, const char* end) {
    return scan_value(p, end);
  }
};

// NOLINTNEXTLINE(misc-definitions-in-headers): included once per instruction-set namespace
bool scan_head(std::string_view block, const Limits& limits, Header* headers, ScannedHead& out) {
  const char* const begin = block.data();
  const char* const end = begin + block.size();

  // Request line: method SP origin-form SP HTTP/1.x CRLF.
  const char* p = end - begin >= 4 && std::memcmp(begin, "GET ", 4) == 0
                      ? begin + 3
                      : Kernels::token(begin, end);
  if (p == begin || p == end || *p != ' ' || is_connect(begin, p)) {
    return false;
  }
  const char* const target = p + 1;
  if (target == end || *target != '/') {
    return false;  // absolute-form, asterisk-form and the empty target go the long way
  }
  const char* question = nullptr;
  p = target + 1;
  for (;;) {
    p = question == nullptr ? Kernels::path(p, end) : Kernels::query(p, end);
    if (p == end) {
      return false;
    }
    if (*p == '?' && question == nullptr) {
      question = p++;
    } else if (*p == '%') {
      if (end - p < 3 || !chars::is_hex(p[1]) || !chars::is_hex(p[2])) {
        return false;
      }
      p += 3;
    } else {
      break;
    }
  }
  // SP "HTTP/1." DIGIT CR LF: 11 bytes.
  if (end - p < 11 || *p != ' ' || std::memcmp(p + 1, "HTTP/1.", 7) != 0 ||
      (p[8] != '0' && p[8] != '1') || p[9] != '\r' || p[10] != '\n') {
    return false;
  }
  // The state machine's bounds exactly: every byte before the CR within the request-line limit,
  // every byte of the field section through the last LF within the header limit.
  if (static_cast<size_t>(p + 9 - begin) > limits.max_request_line_bytes) {
    return false;
  }
  out.method_len = static_cast<size_t>(target - 1 - begin);
  out.target_len = static_cast<size_t>(p - target);
  out.path_len = static_cast<size_t>((question != nullptr ? question : p) - target);
  out.version_minor = p[8] - '0';

  // Field lines: token ":" OWS value OWS CRLF, then the empty line.
  const char* const fields = p + 11;
  p = fields;
  size_t count = 0;
  for (;;) {
    if (p == end) {
      return false;
    }
    if (*p == '\r') {
      if (end - p < 2 || p[1] != '\n') {
        return false;
      }
      p += 2;
      break;
    }
    const char* const name_end = Kernels::token(p, end);
    if (name_end == p || name_end == end || *name_end != ':' || count == limits.max_header_fields) {
      return false;
    }
    const char* value = name_end + 1;
    while (value < end && chars::is_ws(*value)) {
      ++value;
    }
    const char* const cr = Kernels::value(value, end);
    if (end - cr < 2 || cr[0] != '\r' || cr[1] != '\n') {
      return false;
    }
    const char* value_end = cr;
    while (value_end > value && chars::is_ws(value_end[-1])) {
      --value_end;
    }
    headers[count++] = {{p, static_cast<size_t>(name_end - p)},
                        {value, static_cast<size_t>(value_end - value)}};
    p = cr + 2;
  }
  if (static_cast<size_t>(p - fields) > limits.max_header_bytes) {
    return false;
  }
  out.field_count = count;
  out.head_bytes = static_cast<size_t>(p - begin);
  return true;
}
