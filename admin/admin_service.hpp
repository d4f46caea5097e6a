#pragma once
// wsgateway.v1.Admin on gRPC's callback API: a thin caller of the data
// plane. Each call is validated on the gRPC thread, then handed to the
// DataPlane, whose answer (on whatever thread finished the work) finishes
// the call with a status from status_mapping; no gRPC thread ever waits for
// the data plane. Every method passes through Serve, which checks the
// caller's bearer token before the method sees the request.

#include <grpcpp/grpcpp.h>

#include <functional>
#include <vector>

#include "admin/bearer_tokens.hpp"
#include "gateway/config/config.hpp"
#include "gateway/data_plane/data_plane.hpp"
#include "metrics/gateway_metrics.hpp"
#include "wsgateway/v1/admin.grpc.pb.h"

namespace wsgateway::admin {

// The gateway's nodes as ListNodes answers them: in cluster mode the live
// members, alone this process. Any thread; quick.
using NodeDirectory = std::function<std::vector<v1::NodeInfo>()>;

class AdminService final : public v1::Admin::CallbackService {
 public:
  // `config`: the limits checked at this edge (max_message_bytes) and named
  // in statuses (send_queue_max_bytes).
  AdminService(DataPlane& data_plane, NodeDirectory nodes, const Config& config, metrics::GatewayMetrics& metrics,
               const BearerTokens& tokens);

  grpc::ServerUnaryReactor* Push(grpc::CallbackServerContext* context, const v1::PushRequest* request,
                                 v1::PushResponse* response) override;
  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* context, const v1::BroadcastRequest* request,
                                      v1::BroadcastResponse* response) override;
  grpc::ServerUnaryReactor* Disconnect(grpc::CallbackServerContext* context, const v1::DisconnectRequest* request,
                                       v1::DisconnectResponse* response) override;
  grpc::ServerUnaryReactor* Exist(grpc::CallbackServerContext* context, const v1::ExistRequest* request,
                                  v1::ExistResponse* response) override;
  grpc::ServerUnaryReactor* IsEstablished(grpc::CallbackServerContext* context, const v1::IsEstablishedRequest* request,
                                          v1::IsEstablishedResponse* response) override;
  grpc::ServerUnaryReactor* GetClientInfo(grpc::CallbackServerContext* context, const v1::GetClientInfoRequest* request,
                                          v1::GetClientInfoResponse* response) override;
  grpc::ServerUnaryReactor* ListConnections(grpc::CallbackServerContext* context,
                                            const v1::ListConnectionsRequest* request,
                                            v1::ListConnectionsResponse* response) override;
  grpc::ServerUnaryReactor* JoinGroup(grpc::CallbackServerContext* context, const v1::JoinGroupRequest* request,
                                      v1::JoinGroupResponse* response) override;
  grpc::ServerUnaryReactor* LeaveGroup(grpc::CallbackServerContext* context, const v1::LeaveGroupRequest* request,
                                       v1::LeaveGroupResponse* response) override;
  grpc::ServerUnaryReactor* ListNodes(grpc::CallbackServerContext* context, const v1::ListNodesRequest* request,
                                      v1::ListNodesResponse* response) override;

 private:
  // The one entrance of every method: starts the timed call, refuses it
  // with UNAUTHENTICATED unless the bearer token is accepted, and only then
  // runs `handle(call)`.
  template <typename Handle>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context, std::string_view method, Handle&& handle);

  DataPlane& data_plane_;
  const NodeDirectory nodes_;
  const Config& config_;
  metrics::GatewayMetrics& metrics_;
  const BearerTokens& tokens_;
};

}  // namespace wsgateway::admin
