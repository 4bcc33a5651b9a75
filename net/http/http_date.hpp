// HTTP dates (RFC 9110 5.6.7): the IMF-fixdate form servers send, and all three forms parsed.
// response.hpp keeps the per-loop Date (ResponseStamp).
#pragma once

#include <cstdint>
#include <ctime>
#include <optional>
#include <string_view>

namespace rs::http {

inline constexpr std::size_t kImfFixdateLength = 29;  // "Sun, 06 Nov 1994 08:49:37 GMT"

// Writes exactly kImfFixdateLength characters.
void format_imf_fixdate(std::time_t t, char* out);
// IMF-fixdate, RFC 850 and asctime forms; nullopt when malformed.
std::optional<std::time_t> parse_http_date(std::string_view text);

// Common Log Format time, "10/Oct/2000:13:55:36 +0000" (26 characters).
inline constexpr std::size_t kClfDateLength = 26;
void format_clf_date(std::time_t t, char* out);

// ISO 8601 time in UTC, "2000-10-10T13:55:36+00:00" (25 characters), as nginx's $time_iso8601.
inline constexpr std::size_t kIsoDateLength = 25;
void format_iso_date(std::time_t t, char* out);

}  // namespace rs::http
