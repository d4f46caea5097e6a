#pragma once
// The names of the Redis keys the cluster shares, in one place so that the
// membership (which reaps), the connection registry (which writes) and the
// loss reporter (which reads) cannot disagree. Every key starts with the
// prefix in braces, a hash tag: all of them live in one slot, so the Lua
// scripts that touch several stay valid on Redis Cluster.
//
// Thread-safety: pure functions.

#include <string>
#include <string_view>

namespace wsgateway::cluster {

inline std::string KeyPrefix(std::string_view prefix) { return "{" + std::string(prefix) + "}"; }

// HASH connection id -> backend target: a node's live connections.
inline std::string ConnectionsKey(std::string_view prefix, std::string_view node_id) {
  return KeyPrefix(prefix) + ":conns:" + std::string(node_id);
}

// HASH: a reaped node's connections, renamed from ConnectionsKey by the
// reap, kept until a survivor reported them.
inline std::string LostConnectionsKey(std::string_view prefix, std::string_view node_id) {
  return KeyPrefix(prefix) + ":lost:" + std::string(node_id);
}

// STREAM of reap records (fields "node" and "connections").
inline std::string LostStreamKey(std::string_view prefix) { return KeyPrefix(prefix) + ":lost"; }

// The consumer group of LostStreamKey every survivor reads through.
inline constexpr const char* kLostReportersGroup = "reporters";

// STRING: the node was reaped; found by the node itself, it is fenced.
inline std::string TombstoneKey(std::string_view prefix, std::string_view node_id) {
  return KeyPrefix(prefix) + ":reaped:" + std::string(node_id);
}

}  // namespace wsgateway::cluster
