#include "net/loop/loop_support.hpp"

#include <csignal>

#include "core/log.hpp"

namespace rs::net {

void handle_loop_signal(const LoopContext& context, std::uint32_t signo) {
  switch (signo) {
    case SIGHUP:
      if (context.on_hangup) context.on_hangup();
      break;
    case SIGINT:
    case SIGTERM:
      core::log_info("{}: stopping", signo == SIGINT ? "SIGINT" : "SIGTERM");
      if (context.stop_all) context.stop_all();
      break;
    default:
      break;
  }
}

}  // namespace rs::net
