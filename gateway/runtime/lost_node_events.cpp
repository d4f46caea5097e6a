#include "gateway/runtime/lost_node_events.hpp"

namespace wsgateway {

EventChunk LostConnectionCloses(std::span<const std::string_view> connection_ids) {
  EventChunk chunk;
  v1::Event event;
  auto* close = event.mutable_close();
  close->set_code(1006);
  close->set_reason("node lost");
  close->set_closed_by(v1::CLOSED_BY_NODE_LOST);
  for (const auto id : connection_ids) {
    event.set_connection_id(std::string(id));
    AppendEvent(chunk, event);
  }
  return chunk;
}

EventChunk NodeLostSummary(std::string_view lost_node, std::uint64_t connections) {
  EventChunk chunk;
  v1::Event event;
  auto* lost = event.mutable_node_lost();
  lost->set_node_id(std::string(lost_node));
  lost->set_connections(connections);
  AppendEvent(chunk, event);
  return chunk;
}

}  // namespace wsgateway
