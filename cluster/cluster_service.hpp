#pragma once
// wsgateway.v1.Cluster: what another replica asks of this one about the
// connections it owns. Every method acts through the local data plane
// only, so a forwarded call is never forwarded again, whatever it names.
// Calls are authorized by the replicas' shared token before anything runs,
// and carry the caller's deadline on to the data plane.
//
// Thread-safety: gRPC's callback threads; the data plane answers on its
// own threads and finishes the call there.

#include <grpcpp/grpcpp.h>

#include <cstddef>
#include <functional>

#include "gateway/data_plane/data_plane.hpp"
#include "wsgateway/v1/cluster.grpc.pb.h"

namespace wsgateway::cluster {

// OK to let a call in; otherwise the status it is refused with.
using Authorize = std::function<grpc::Status(const grpc::ServerContextBase&)>;

class ClusterService final : public v1::Cluster::CallbackService {
 public:
  // `local`: this node's own data plane. `max_message_bytes`: the largest
  // frame payload accepted (a peer with a larger limit is misconfigured).
  ClusterService(DataPlane& local, Authorize authorize, std::size_t max_message_bytes);

  grpc::ServerUnaryReactor* Deliver(grpc::CallbackServerContext* context, const v1::ClusterDeliverRequest* request,
                                    v1::ClusterResults* response) override;
  grpc::ServerUnaryReactor* Broadcast(grpc::CallbackServerContext* context, const v1::ClusterBroadcastRequest* request,
                                      v1::ClusterBroadcastResponse* response) override;
  grpc::ServerUnaryReactor* Close(grpc::CallbackServerContext* context, const v1::ClusterCloseRequest* request,
                                  v1::ClusterResult* response) override;
  grpc::ServerUnaryReactor* Find(grpc::CallbackServerContext* context, const v1::ClusterFindRequest* request,
                                 v1::ClusterResult* response) override;
  grpc::ServerUnaryReactor* Describe(grpc::CallbackServerContext* context, const v1::ClusterFindRequest* request,
                                     v1::ClusterDescribeResponse* response) override;
  grpc::ServerUnaryReactor* List(grpc::CallbackServerContext* context, const v1::ClusterListRequest* request,
                                 v1::ClusterListResponse* response) override;
  grpc::ServerUnaryReactor* ChangeGroups(grpc::CallbackServerContext* context,
                                         const v1::ClusterChangeGroupsRequest* request,
                                         v1::ClusterChangeGroupsResponse* response) override;

 private:
  // The one entrance: refuses an unauthorized call, else runs
  // `handle(reactor, deadline)`.
  template <typename Handle>
  grpc::ServerUnaryReactor* Serve(grpc::CallbackServerContext* context, Handle&& handle);
  // Empty when `frame` may be queued; otherwise why not.
  std::string CheckFrame(const v1::ClusterFrame& frame) const;

  DataPlane& local_;
  const Authorize authorize_;
  const std::size_t max_message_bytes_;
};

}  // namespace wsgateway::cluster
