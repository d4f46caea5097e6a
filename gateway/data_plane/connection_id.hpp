#pragma once
// Connection ids: opaque strings to API clients, never reused. An id names
// the owning process (a random epoch drawn at start), the event loop that
// holds the connection and a per-loop counter, so a lookup goes straight
// to the right loop and, later, to the right replica.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgateway {

struct ConnectionId {
  std::uint64_t epoch = 0;
  std::uint32_t loop = 0;
  std::uint64_t counter = 0;

  friend bool operator==(const ConnectionId&, const ConnectionId&) = default;
};

// "<epoch:16 hex>-<loop hex>-<counter hex>".
std::string FormatConnectionId(const ConnectionId& id);

// The epoch as it leads a connection id: 16 hex digits. A cluster node's
// id, so that a connection id names its owner.
std::string FormatEpoch(std::uint64_t epoch);

// The node (process epoch) a connection id names: its part before the
// first '-', FormatEpoch's spelling. Empty for text with no '-'.
std::string_view NodeIdOf(std::string_view connection_id);

// Nullopt for anything FormatConnectionId cannot have produced.
std::optional<ConnectionId> ParseConnectionId(std::string_view text);

// A random, non-zero epoch for this process.
std::uint64_t DrawEpoch();

}  // namespace wsgateway
