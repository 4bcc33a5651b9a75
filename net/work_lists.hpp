// The per-turn work lists an event loop keeps of its connections: those with output to settle
// and send at the end of the turn (dirty), those whose input resumed with bytes waiting in the
// stash (resumed), and those waiting for receive buffers to come back (starved). A connection
// is on each list at most once; Conn has the three list nodes.
#pragma once

#include "core/intrusive_list.hpp"

namespace rs::net {

template <class Conn>
struct WorkLists {
  void mark_dirty(Conn& conn) {
    if (!conn.dirty_node.linked()) dirty.push_back(conn);
  }
  void mark_resumed(Conn& conn) {
    if (!conn.resumed_node.linked()) resumed.push_back(conn);
  }
  void wait_for_buffers(Conn& conn) {
    if (!conn.starved_node.linked()) starved.push_back(conn);
  }
  void stop_waiting_for_buffers(Conn& conn) {
    if (conn.starved_node.linked()) starved.remove(conn);
  }
  // The transport closed: the connection leaves every list.
  void forget(Conn& conn) {
    if (conn.dirty_node.linked()) dirty.remove(conn);
    stop_waiting_for_buffers(conn);
    if (conn.resumed_node.linked()) resumed.remove(conn);
  }

  core::IntrusiveList<Conn, &Conn::dirty_node> dirty;
  core::IntrusiveList<Conn, &Conn::resumed_node> resumed;
  core::IntrusiveList<Conn, &Conn::starved_node> starved;
};

}  // namespace rs::net
