#include "apps/privileges.hpp"

#include <grp.h>
#include <pwd.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include <fmt/format.h>

#include "net/startup_error.hpp"

namespace rs::apps {

namespace {

// getpwnam_r/getgrnam_r's scratch space: sysconf's suggestion, grown on ERANGE.
template <class Entry, class Lookup>
bool look_up(const std::string& name, Entry& entry, std::vector<char>& buffer, Lookup lookup) {
  buffer.resize(16384);
  for (;;) {
    Entry* found = nullptr;
    const int error = lookup(name.c_str(), &entry, buffer.data(), buffer.size(), &found);
    if (error == ERANGE && buffer.size() < (1U << 24)) {
      buffer.resize(buffer.size() * 2);
      continue;
    }
    if (error != 0 && error != ENOENT) {
      throw net::StartupError(fmt::format("looking up {}: {}", name, std::strerror(error)));
    }
    return found != nullptr;
  }
}

}  // namespace

PrivilegeDrop resolve_privilege_drop(const std::string& user, const std::string& group) {
  if (user.empty()) {
    if (!group.empty()) throw net::StartupError("--group needs --user: give both");
    return {};
  }
  if (::geteuid() != 0) {
    throw net::StartupError(fmt::format(
        "--user {}: the server is not running as root (uid {}), so it has no privileges to drop; "
        "leave out --user and --group, or start it as root",
        user, ::geteuid()));
  }
  PrivilegeDrop drop{.user = user};
  passwd pw{};
  std::vector<char> buffer;
  if (!look_up(user, pw, buffer, ::getpwnam_r)) {
    throw net::StartupError(fmt::format("--user {}: no such user", user));
  }
  drop.uid = pw.pw_uid;
  drop.gid = pw.pw_gid;
  if (!group.empty()) {
    ::group gr{};
    if (!look_up(group, gr, buffer, ::getgrnam_r)) {
      throw net::StartupError(fmt::format("--group {}: no such group", group));
    }
    drop.gid = gr.gr_gid;
  }
  return drop;
}

void drop_privileges(const PrivilegeDrop& drop) {
  if (drop.user.empty()) return;
  const auto failed = [&drop](const char* call) {
    return net::StartupError(
        fmt::format("--user {}: {}: {}", drop.user, call, std::strerror(errno)));
  };
  // The groups first: after setuid the process could no longer change them.
  if (::initgroups(drop.user.c_str(), drop.gid) != 0) throw failed("initgroups");
  if (::setgid(drop.gid) != 0) throw failed("setgid");
  if (::setuid(drop.uid) != 0) throw failed("setuid");
  if (drop.uid != 0 && ::setuid(0) == 0) {
    throw net::StartupError(fmt::format(
        "--user {}: root could be regained after setuid; refusing to serve", drop.user));
  }
}

}  // namespace rs::apps
