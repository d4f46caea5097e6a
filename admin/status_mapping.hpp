#pragma once
// The admin API's gRPC statuses, one place for their codes and wording.

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "gateway/data_plane/data_plane.hpp"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway::admin {

std::string_view StateName(v1::ConnectionState state);

// Caller input (an id, a name) quoted for a status message: whole in single
// quotes when at most kMaxQuotedInputBytes long, else its first bytes (cut
// at a UTF-8 character boundary) and its size: 'abc...'...(8192 bytes).
// Every status text that repeats caller input goes through it, so a large
// input cannot make a status too large for the client's metadata limit
// (gRPC sends the message as a trailer).
inline constexpr std::size_t kMaxQuotedInputBytes = 64;
std::string QuotedInput(std::string_view input);

grpc::Status MissingConnectionId(std::string_view field);
grpc::Status ConnectionNotFound(std::string_view connection_id);
grpc::Status NotActive(std::string_view connection_id, v1::ConnectionState state, std::string_view action);
// Joining `joining` more groups would take a connection that is in
// `member_of` past kMaxGroupsPerConnection.
// Cluster mode: the connection's owner is a member but did not answer.
grpc::Status OwnerUnreachable(std::string_view connection_id);
grpc::Status TooManyGroups(std::string_view connection_id, std::size_t member_of, std::size_t joining);

// A call to the Admin service without a bearer token while tokens are
// configured, and one with a token that is not among them.
grpc::Status MissingBearerToken();
grpc::Status BearerTokenNotAccepted();

// A piece of a fragmented text message that would make it invalid UTF-8.
grpc::Status InvalidFragmentText(std::string_view connection_id);

// What a status about one connection names besides the outcome.
struct StatusSubject {
  std::string_view connection_id = {};
  // What only ACTIVE connections do, for kNotActive: "accept messages",
  // "can be disconnected", ...
  std::string_view action = {};
  // send_queue_max_bytes, for kQueueFull.
  std::size_t queue_limit = 0;
  // For kTooManyGroups (GroupsResult).
  std::size_t member_of = 0;
  std::size_t joining = 0;
};

// The one mapping from what the data plane did to a connection to the
// status a call answers (OK for kOk).
grpc::Status ResultStatus(const ConnectionResult& result, const StatusSubject& subject);

// The status of queueing a frame for a connection in `state_before`.
grpc::Status EnqueueStatus(Outcome outcome, std::string_view connection_id, v1::ConnectionState state_before,
                           std::size_t queue_limit);

}  // namespace wsgateway::admin
