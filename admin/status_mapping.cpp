#include "admin/status_mapping.hpp"

#include "gateway/group_rules.hpp"

namespace wsgateway::admin {

std::string_view StateName(v1::ConnectionState state) {
  switch (state) {
    case v1::CONNECTION_STATE_CONNECTION:
      return "CONNECTION";
    case v1::CONNECTION_STATE_HANDSHAKE:
      return "HANDSHAKE";
    case v1::CONNECTION_STATE_ACTIVE:
      return "ACTIVE";
    case v1::CONNECTION_STATE_CLOSING:
      return "CLOSING";
    default:
      return "CLOSED";
  }
}

grpc::Status MissingConnectionId(std::string_view field) {
  return {grpc::StatusCode::INVALID_ARGUMENT, std::string(field) + " is empty: pass a connection id"};
}

grpc::Status ConnectionNotFound(std::string_view connection_id) {
  return {grpc::StatusCode::NOT_FOUND,
          "no connection '" + std::string(connection_id) + "' on this gateway (it closed, or never existed)"};
}

grpc::Status NotActive(std::string_view connection_id, v1::ConnectionState state, std::string_view action) {
  return {grpc::StatusCode::FAILED_PRECONDITION, "connection '" + std::string(connection_id) + "' is " +
                                                     std::string(StateName(state)) + "; only ACTIVE connections " +
                                                     std::string(action)};
}

grpc::Status TooManyGroups(std::string_view connection_id, std::size_t member_of, std::size_t joining) {
  return {grpc::StatusCode::FAILED_PRECONDITION,
          "connection '" + std::string(connection_id) + "' is in " + std::to_string(member_of) + " groups; joining " +
              std::to_string(joining) + " more would pass the limit of " + std::to_string(kMaxGroupsPerConnection) +
              " per connection: leave some groups first (it joined none of these)"};
}

grpc::Status MissingBearerToken() {
  return {grpc::StatusCode::UNAUTHENTICATED, "missing bearer token: send the metadata 'authorization: Bearer <token>'"};
}

grpc::Status BearerTokenNotAccepted() { return {grpc::StatusCode::UNAUTHENTICATED, "bearer token not accepted"}; }

grpc::Status EnqueueStatus(Session::EnqueueResult result, std::string_view connection_id,
                           v1::ConnectionState state_before, std::size_t queue_limit) {
  switch (result) {
    case Session::EnqueueResult::kQueued:
      return grpc::Status::OK;
    case Session::EnqueueResult::kNotActive:
      return NotActive(connection_id, state_before, "accept messages");
    case Session::EnqueueResult::kNoMessageToContinue:
      return {grpc::StatusCode::FAILED_PRECONDITION,
              "connection '" + std::string(connection_id) +
                  "' has no fragmented message of this opcode open: send the first frame with fin false and "
                  "continuation false, then continue it with the same opcode"};
    case Session::EnqueueResult::kQueueFull:
      break;
  }
  return {grpc::StatusCode::RESOURCE_EXHAUSTED, "send queue of connection '" + std::string(connection_id) +
                                                    "' passed its limit of " + std::to_string(queue_limit) +
                                                    " bytes; the client is not reading and was closed with 1008"};
}

}  // namespace wsgateway::admin
