#pragma once
// The events a surviving node sends on behalf of a lost one: a Close event
// (1006, CLOSED_BY_NODE_LOST, sequence 0: the lost node's count is gone
// with it) for each connection it held, then one NodeLostEvent naming the
// node and how many connections it held for that backend. Built in wire
// form, as the loops build theirs, and handed to the backend link like a
// loop's chunk.

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "gateway/backend/event_wire.hpp"

namespace wsgateway {

// The Close events of `connection_ids`.
EventChunk LostConnectionCloses(std::span<const std::string_view> connection_ids);

// The event that follows them: `lost_node` held `connections` connections
// for this backend.
EventChunk NodeLostSummary(std::string_view lost_node, std::uint64_t connections);

}  // namespace wsgateway
