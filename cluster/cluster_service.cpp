#include "cluster/cluster_service.hpp"

#include <chrono>
#include <string>
#include <utility>
#include <vector>

#include "cluster/cluster_wire.hpp"
#include "gateway/data_plane/deadline.hpp"

namespace wsgateway::cluster {
namespace {

void AddResults(const std::vector<ConnectionResult>& results, v1::ClusterResults* response) {
  response->mutable_results()->Reserve(static_cast<int>(results.size()));
  for (const auto& result : results) ToWire(result, response->add_results());
}

}  // namespace

ClusterService::ClusterService(DataPlane& local, Authorize authorize, std::size_t max_message_bytes)
    : local_(local), authorize_(std::move(authorize)), max_message_bytes_(max_message_bytes) {}

template <typename Handle>
grpc::ServerUnaryReactor* ClusterService::Serve(grpc::CallbackServerContext* context, Handle&& handle) {
  auto* reactor = context->DefaultReactor();
  if (auto refusal = authorize_(*context); !refusal.ok()) {
    reactor->Finish(refusal);
    return reactor;
  }
  handle(reactor, SteadyDeadline(context->deadline()));
  return reactor;
}

std::string ClusterService::CheckFrame(const v1::ClusterFrame& frame) const {
  if (frame.payload().size() <= max_message_bytes_) return {};
  return "a frame of " + std::to_string(frame.payload().size()) + " bytes is above this node's max_message_bytes (" +
         std::to_string(max_message_bytes_) + "): give every replica the same limits";
}

grpc::ServerUnaryReactor* ClusterService::Deliver(grpc::CallbackServerContext* context,
                                                  const v1::ClusterDeliverRequest* request,
                                                  v1::ClusterResults* response) {
  return Serve(context, [&](grpc::ServerUnaryReactor* reactor, DataPlane::Deadline deadline) {
    // Each frame is made once and shared by every delivery that names it.
    std::vector<OutboundFrame> frames;
    frames.reserve(static_cast<std::size_t>(request->frames_size()));
    for (const auto& wire : request->frames()) {
      if (auto error = CheckFrame(wire); !error.empty()) {
        return reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, error});
      }
      v1::ClusterFrame frame = wire;
      frames.push_back(FromWire(std::move(frame)));
    }
    std::vector<Delivery> deliveries;
    deliveries.reserve(static_cast<std::size_t>(request->deliveries_size()));
    for (const auto& delivery : request->deliveries()) {
      if (delivery.frame() >= frames.size()) {
        return reactor->Finish(
            {grpc::StatusCode::INVALID_ARGUMENT,
             "delivery names frame " + std::to_string(delivery.frame()) + " of " + std::to_string(frames.size())});
      }
      const auto& frame = frames[delivery.frame()];
      const auto kind = frame.type == FrameType::kClose ? Delivery::Kind::kClose : Delivery::Kind::kPush;
      deliveries.push_back({delivery.connection_id(), kind, frame});
    }
    local_.Deliver(std::move(deliveries), deadline, [reactor, response](std::vector<ConnectionResult> results) {
      AddResults(results, response);
      reactor->Finish(grpc::Status::OK);
    });
  });
}

grpc::ServerUnaryReactor* ClusterService::Broadcast(grpc::CallbackServerContext* context,
                                                    const v1::ClusterBroadcastRequest* request,
                                                    v1::ClusterBroadcastResponse* response) {
  return Serve(context, [&](grpc::ServerUnaryReactor* reactor, DataPlane::Deadline deadline) {
    if (auto error = CheckFrame(request->frame()); !error.empty()) {
      return reactor->Finish({grpc::StatusCode::INVALID_ARGUMENT, error});
    }
    v1::ClusterFrame frame = request->frame();
    const auto& exclude = request->exclude_connection_ids();
    local_.Broadcast(request->filter(), FromWire(std::move(frame)), {exclude.begin(), exclude.end()}, deadline,
                     [reactor, response](BroadcastTally tally) {
                       response->set_queued(tally.queued);
                       response->set_dropped_slow_consumers(tally.dropped_slow_consumers);
                       response->set_refused_invalid_utf8(tally.refused_invalid_utf8);
                       reactor->Finish(grpc::Status::OK);
                     });
  });
}

grpc::ServerUnaryReactor* ClusterService::Close(grpc::CallbackServerContext* context,
                                                const v1::ClusterCloseRequest* request, v1::ClusterResult* response) {
  return Serve(context, [&](grpc::ServerUnaryReactor* reactor, DataPlane::Deadline deadline) {
    local_.Close(request->connection_id(), static_cast<std::uint16_t>(request->code()), request->reason(), deadline,
                 [reactor, response](ConnectionResult result) {
                   ToWire(result, response);
                   reactor->Finish(grpc::Status::OK);
                 });
  });
}

grpc::ServerUnaryReactor* ClusterService::Find(grpc::CallbackServerContext* context,
                                               const v1::ClusterFindRequest* request, v1::ClusterResult* response) {
  return Serve(context, [&](grpc::ServerUnaryReactor* reactor, DataPlane::Deadline deadline) {
    local_.Find(request->connection_id(), deadline, [reactor, response](ConnectionResult result) {
      ToWire(result, response);
      reactor->Finish(grpc::Status::OK);
    });
  });
}

grpc::ServerUnaryReactor* ClusterService::Describe(grpc::CallbackServerContext* context,
                                                   const v1::ClusterFindRequest* request,
                                                   v1::ClusterDescribeResponse* response) {
  return Serve(context, [&](grpc::ServerUnaryReactor* reactor, DataPlane::Deadline deadline) {
    local_.Describe(request->connection_id(), deadline,
                    [reactor, response](std::pair<ConnectionResult, v1::ClientInfo> described) {
                      ToWire(described.first, response->mutable_result());
                      if (described.first.outcome == Outcome::kOk) response->mutable_info()->Swap(&described.second);
                      reactor->Finish(grpc::Status::OK);
                    });
  });
}

grpc::ServerUnaryReactor* ClusterService::List(grpc::CallbackServerContext* context,
                                               const v1::ClusterListRequest* request,
                                               v1::ClusterListResponse* response) {
  return Serve(context, [&](grpc::ServerUnaryReactor* reactor, DataPlane::Deadline deadline) {
    local_.List(request->filter(), request->page_size(), request->page_token(), deadline,
                [reactor, response](ListPage page) {
                  response->set_bad_page_token(page.bad_page_token);
                  response->mutable_connections()->Reserve(static_cast<int>(page.connections.size()));
                  for (auto& info : page.connections) response->add_connections()->Swap(&info);
                  response->set_next_page_token(std::move(page.next_page_token));
                  reactor->Finish(grpc::Status::OK);
                });
  });
}

grpc::ServerUnaryReactor* ClusterService::ChangeGroups(grpc::CallbackServerContext* context,
                                                       const v1::ClusterChangeGroupsRequest* request,
                                                       v1::ClusterChangeGroupsResponse* response) {
  return Serve(context, [&](grpc::ServerUnaryReactor* reactor, DataPlane::Deadline deadline) {
    GroupChange change{request->leave() ? GroupChange::Kind::kLeave : GroupChange::Kind::kJoin,
                       {request->names().begin(), request->names().end()}};
    local_.ChangeGroups(request->connection_id(), std::move(change), deadline,
                        [reactor, response](GroupsResult changed) {
                          ToWire(changed.result, response->mutable_result());
                          response->mutable_groups()->Assign(changed.groups.begin(), changed.groups.end());
                          response->set_member_of(changed.member_of);
                          response->set_joining(changed.joining);
                          reactor->Finish(grpc::Status::OK);
                        });
  });
}

}  // namespace wsgateway::cluster
