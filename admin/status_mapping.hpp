#pragma once
// The admin API's gRPC statuses, one place for their codes and wording.

#include <grpcpp/grpcpp.h>

#include <string>
#include <string_view>

#include "gateway/session.hpp"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway::admin {

std::string_view StateName(v1::ConnectionState state);

grpc::Status MissingConnectionId(std::string_view field);
grpc::Status ConnectionNotFound(std::string_view connection_id);
grpc::Status NotActive(std::string_view connection_id, v1::ConnectionState state, std::string_view action);
// Joining `joining` more groups would take a connection that is in
// `member_of` past kMaxGroupsPerConnection.
grpc::Status TooManyGroups(std::string_view connection_id, std::size_t member_of, std::size_t joining);

// A call to the Admin service without a bearer token while tokens are
// configured, and one with a token that is not among them.
grpc::Status MissingBearerToken();
grpc::Status BearerTokenNotAccepted();

// The status of queueing a frame for a connection in `state_before`.
grpc::Status EnqueueStatus(Session::EnqueueResult result, std::string_view connection_id,
                           v1::ConnectionState state_before, std::size_t queue_limit);

}  // namespace wsgateway::admin
