#include "net/http/http_date.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <string_view>

namespace rs::http {

namespace {

constexpr std::array<const char*, 7> kDays = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
constexpr std::array<const char*, 12> kMonths = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                                 "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

void two_digits(char* out, int v) {
  out[0] = static_cast<char>('0' + v / 10);
  out[1] = static_cast<char>('0' + v % 10);
}

int month_index(std::string_view name) {
  for (std::size_t i = 0; i < kMonths.size(); ++i) {
    if (name == kMonths[i]) return static_cast<int>(i);
  }
  return -1;
}

bool number(std::string_view s, int& out) {
  if (s.empty()) return false;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && end == s.data() + s.size();
}

// "HH:MM:SS"
bool clock_time(std::string_view s, std::tm& tm) {
  return s.size() == 8 && s[2] == ':' && s[5] == ':' && number(s.substr(0, 2), tm.tm_hour) &&
         number(s.substr(3, 2), tm.tm_min) && number(s.substr(6, 2), tm.tm_sec);
}

std::optional<std::time_t> to_time(std::tm& tm) {
  if (tm.tm_mon < 0 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
      tm.tm_sec > 60) {
    return std::nullopt;
  }
  return ::timegm(&tm);
}

// "YYYY" and "HH:MM:SS", the fields every format shares.
void put_year(char* out, const std::tm& tm) {
  const int year = tm.tm_year + 1900;
  two_digits(out, year / 100);
  two_digits(out + 2, year % 100);
}

void put_clock(char* out, const std::tm& tm) {
  two_digits(out, tm.tm_hour);
  out[2] = ':';
  two_digits(out + 3, tm.tm_min);
  out[5] = ':';
  two_digits(out + 6, tm.tm_sec);
}

}  // namespace

void format_imf_fixdate(std::time_t t, char* out) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  std::memcpy(out, kDays[static_cast<std::size_t>(tm.tm_wday)], 3);
  out[3] = ',';
  out[4] = ' ';
  two_digits(out + 5, tm.tm_mday);
  out[7] = ' ';
  std::memcpy(out + 8, kMonths[static_cast<std::size_t>(tm.tm_mon)], 3);
  out[11] = ' ';
  put_year(out + 12, tm);
  out[16] = ' ';
  put_clock(out + 17, tm);
  constexpr std::string_view kGmt = " GMT";  // a fixed-width field: no terminator follows
  std::copy(kGmt.begin(), kGmt.end(), out + 25);
}

void format_clf_date(std::time_t t, char* out) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  two_digits(out, tm.tm_mday);
  out[2] = '/';
  std::memcpy(out + 3, kMonths[static_cast<std::size_t>(tm.tm_mon)], 3);
  out[6] = '/';
  put_year(out + 7, tm);
  out[11] = ':';
  put_clock(out + 12, tm);
  constexpr std::string_view kUtc = " +0000";  // a fixed-width field: no terminator follows
  std::copy(kUtc.begin(), kUtc.end(), out + 20);
}

void format_iso_date(std::time_t t, char* out) {
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  put_year(out, tm);
  out[4] = '-';
  two_digits(out + 5, tm.tm_mon + 1);
  out[7] = '-';
  two_digits(out + 8, tm.tm_mday);
  out[10] = 'T';
  put_clock(out + 11, tm);
  constexpr std::string_view kUtc = "+00:00";  // a fixed-width field: no terminator follows
  std::copy(kUtc.begin(), kUtc.end(), out + 19);
}

std::optional<std::time_t> parse_http_date(std::string_view s) {
  std::tm tm{};
  // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
  if (s.size() == 29 && s[3] == ',' && s.substr(25) == " GMT") {
    tm.tm_mon = month_index(s.substr(8, 3));
    if (!number(s.substr(5, 2), tm.tm_mday) || !number(s.substr(12, 4), tm.tm_year) ||
        !clock_time(s.substr(17, 8), tm)) {
      return std::nullopt;
    }
    tm.tm_year -= 1900;
    return to_time(tm);
  }
  // RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT"
  const auto comma = s.find(", ");
  if (comma != std::string_view::npos && comma > 3 && s.size() == comma + 24 &&
      s.substr(s.size() - 4) == " GMT") {
    const auto d = s.substr(comma + 2);
    if (d[2] != '-' || d[6] != '-') return std::nullopt;
    tm.tm_mon = month_index(d.substr(3, 3));
    if (!number(d.substr(0, 2), tm.tm_mday) || !number(d.substr(7, 2), tm.tm_year) ||
        !clock_time(d.substr(10, 8), tm)) {
      return std::nullopt;
    }
    if (tm.tm_year < 70) tm.tm_year += 100;  // RFC 9110: within 50 years, interpreted simply
    return to_time(tm);
  }
  // asctime: "Sun Nov  6 08:49:37 1994"
  if (s.size() == 24 && s[3] == ' ' && s[7] == ' ' && s[10] == ' ') {
    tm.tm_mon = month_index(s.substr(4, 3));
    const auto day = s[8] == ' ' ? s.substr(9, 1) : s.substr(8, 2);
    if (!number(day, tm.tm_mday) || !clock_time(s.substr(11, 8), tm) ||
        !number(s.substr(20, 4), tm.tm_year)) {
      return std::nullopt;
    }
    tm.tm_year -= 1900;
    return to_time(tm);
  }
  return std::nullopt;
}

}  // namespace rs::http
