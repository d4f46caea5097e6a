#include "admin/status_mapping.hpp"

#include "gateway/data_plane/connection_id.hpp"
#include "gateway/data_plane/group_rules.hpp"

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

std::string QuotedInput(std::string_view input) {
  if (input.size() <= kMaxQuotedInputBytes) return "'" + std::string(input) + "'";
  std::size_t cut = kMaxQuotedInputBytes;
  // Back over continuation bytes (10xxxxxx) to the start of the character.
  while (cut > 0 && (static_cast<unsigned char>(input[cut]) & 0xC0) == 0x80) --cut;
  return "'" + std::string(input.substr(0, cut)) + "'...(" + std::to_string(input.size()) + " bytes)";
}

grpc::Status MissingConnectionId(std::string_view field) {
  return {grpc::StatusCode::INVALID_ARGUMENT, std::string(field) + " is empty: pass a connection id"};
}

grpc::Status ConnectionNotFound(std::string_view connection_id) {
  return {grpc::StatusCode::NOT_FOUND,
          "no connection " + QuotedInput(connection_id) + " on this gateway (it closed, or never existed)"};
}

grpc::Status NotActive(std::string_view connection_id, v1::ConnectionState state, std::string_view action) {
  return {grpc::StatusCode::FAILED_PRECONDITION, "connection " + QuotedInput(connection_id) + " is " +
                                                     std::string(StateName(state)) + "; only ACTIVE connections " +
                                                     std::string(action)};
}

grpc::Status TooManyGroups(std::string_view connection_id, std::size_t member_of, std::size_t joining) {
  return {grpc::StatusCode::FAILED_PRECONDITION,
          "connection " + QuotedInput(connection_id) + " is in " + std::to_string(member_of) + " groups; joining " +
              std::to_string(joining) + " more would pass the limit of " + std::to_string(kMaxGroupsPerConnection) +
              " per connection: leave some groups first (it joined none of these)"};
}

grpc::Status MissingBearerToken() {
  return {grpc::StatusCode::UNAUTHENTICATED, "missing bearer token: send the metadata 'authorization: Bearer <token>'"};
}

grpc::Status BearerTokenNotAccepted() { return {grpc::StatusCode::UNAUTHENTICATED, "bearer token not accepted"}; }

grpc::Status InvalidFragmentText(std::string_view connection_id) {
  return {grpc::StatusCode::INVALID_ARGUMENT,
          "connection " + QuotedInput(connection_id) +
              ": this piece would make the fragmented text message open on it invalid UTF-8 (or it ends the "
              "message inside a character); it was not sent and the message is still open: continue it with "
              "valid UTF-8, or send the message as OPCODE_BINARY"};
}

grpc::Status OwnerUnreachable(std::string_view connection_id) {
  const auto node = NodeIdOf(connection_id);
  return {grpc::StatusCode::UNAVAILABLE,
          "the replica owning connection " + QuotedInput(connection_id) + " (node " + std::string(node) +
              ") is a live member but did not answer in time; whether the call took effect there is unknown: "
              "retry it"};
}

grpc::Status ResultStatus(const ConnectionResult& result, const StatusSubject& subject) {
  const auto id = subject.connection_id;
  switch (result.outcome) {
    case Outcome::kOk:
      return grpc::Status::OK;
    case Outcome::kNotFound:
      return ConnectionNotFound(id);
    case Outcome::kNotActive:
      return NotActive(id, result.state, subject.action);
    case Outcome::kNoMessageToContinue:
      return {grpc::StatusCode::FAILED_PRECONDITION,
              "connection " + QuotedInput(id) +
                  " has no fragmented message of this opcode open: send the first frame with fin false and "
                  "continuation false, then continue it with the same opcode"};
    case Outcome::kInvalidUtf8:
      return InvalidFragmentText(id);
    case Outcome::kTooManyGroups:
      return TooManyGroups(id, subject.member_of, subject.joining);
    case Outcome::kUnreachable:
      return OwnerUnreachable(id);
    case Outcome::kQueueFull:
      break;
  }
  return {grpc::StatusCode::RESOURCE_EXHAUSTED, "send queue of connection " + QuotedInput(id) +
                                                    " passed its limit of " + std::to_string(subject.queue_limit) +
                                                    " bytes; the client is not reading and was closed with 1008"};
}

grpc::Status EnqueueStatus(Outcome outcome, std::string_view connection_id, v1::ConnectionState state_before,
                           std::size_t queue_limit) {
  return ResultStatus({outcome, state_before},
                      {.connection_id = connection_id, .action = "accept messages", .queue_limit = queue_limit});
}

}  // namespace wsgateway::admin
