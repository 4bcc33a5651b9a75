// --user and --group: a server started as root binds its listeners (ports below 1024), then
// becomes an unprivileged user before any loop starts, for good.
#pragma once

#include <sys/types.h>

#include <string>

namespace rs::apps {

struct PrivilegeDrop {
  std::string user;  // empty: no drop
  uid_t uid = 0;
  gid_t gid = 0;  // --group's, or the user's own group
};

// Looks --user and --group up (names from the passwd and group databases). Throws
// net::StartupError when the process is not root, or naming a user or group that does not
// exist; --group needs --user. Both empty: no drop.
PrivilegeDrop resolve_privilege_drop(const std::string& user, const std::string& group);

// initgroups (the user's supplementary groups), setgid, setuid, in that order, then checks that
// root cannot be had back (setuid(0) fails). Before any thread of the server starts: the
// credentials are then the whole process's. Throws net::StartupError.
void drop_privileges(const PrivilegeDrop& drop);

}  // namespace rs::apps
