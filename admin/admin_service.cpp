#include "admin/admin_service.hpp"

#include <algorithm>
#include <string>
#include <vector>

#include "admin/admin_call.hpp"
#include "admin/status_mapping.hpp"
#include "gateway/data_plane/connection_filter.hpp"
#include "gateway/data_plane/group_rules.hpp"
#include "gateway/websocket/protocol_rules.hpp"

namespace wsgateway::admin {
namespace {

constexpr int kMaxPushTargets = 10'000;
constexpr std::uint32_t kDefaultPageSize = 100;
constexpr std::uint32_t kMaxPageSize = 1000;

grpc::Status InvalidArgument(std::string message) { return {grpc::StatusCode::INVALID_ARGUMENT, std::move(message)}; }

// Refuses a call naming no connection; false when it did.
bool NamesConnection(const AdminCall& call, const std::string& connection_id) {
  if (!connection_id.empty()) return true;
  call.Finish(MissingConnectionId("connection_id"));
  return false;
}

using GroupNames = google::protobuf::RepeatedPtrField<std::string>;

// Empty when `groups` is a list a Join or Leave may name; otherwise what is
// wrong with it. A connection is never in more than
// kMaxGroupsPerConnection groups, so no call needs to name more.
std::string CheckGroupList(const GroupNames& groups) {
  if (groups.empty()) return "groups is empty: name at least one group";
  if (static_cast<std::size_t>(groups.size()) > kMaxGroupsPerConnection) {
    return "groups has " + std::to_string(groups.size()) + " entries; at most " +
           std::to_string(kMaxGroupsPerConnection) + " per call, as many as a connection can be in";
  }
  for (int i = 0; i < groups.size(); ++i) {
    if (auto error = CheckGroupName("groups[" + std::to_string(i) + "]", groups[i]); !error.empty()) return error;
  }
  return {};
}

// Sorted and without repeats, so the loop counts each name once.
std::vector<std::string> DistinctNames(const GroupNames& groups) {
  std::vector<std::string> names(groups.begin(), groups.end());
  std::sort(names.begin(), names.end());
  names.erase(std::unique(names.begin(), names.end()), names.end());
  return names;
}

// Checks the request on the gRPC thread, then has the data plane apply
// `kind` to the connection and answers its groups afterwards.
grpc::ServerUnaryReactor* ChangeGroups(DataPlane& data_plane, const AdminCall& call, const std::string& connection_id,
                                       const GroupNames& groups, GroupNames* answer, GroupChange::Kind kind,
                                       std::string_view action) {
  if (auto error = CheckGroupList(groups); !error.empty()) {
    call.Finish(InvalidArgument(std::move(error)));
    return call.reactor();
  }
  if (!NamesConnection(call, connection_id)) return call.reactor();
  data_plane.ChangeGroups(
      connection_id, GroupChange{kind, DistinctNames(groups)}, call.deadline(),
      [call, id = connection_id, answer, action](GroupsResult changed) {
        const auto status = ResultStatus(
            changed.result,
            {.connection_id = id, .action = action, .member_of = changed.member_of, .joining = changed.joining});
        if (status.ok()) answer->Assign(changed.groups.begin(), changed.groups.end());
        call.Finish(status);
      });
  return call.reactor();
}

}  // namespace

AdminService::AdminService(DataPlane& data_plane, NodeDirectory nodes, const Config& config,
                           metrics::GatewayMetrics& metrics, const BearerTokens& tokens)
    : data_plane_(data_plane), nodes_(std::move(nodes)), config_(config), metrics_(metrics), tokens_(tokens) {}

template <typename Handle>
grpc::ServerUnaryReactor* AdminService::Serve(grpc::CallbackServerContext* context, std::string_view method,
                                              Handle&& handle) {
  const AdminCall call(context, method, metrics_);
  if (auto refusal = tokens_.Check(*context); !refusal.ok()) {
    call.Finish(refusal);
    return call.reactor();
  }
  return handle(call);
}

grpc::ServerUnaryReactor* AdminService::Push(grpc::CallbackServerContext* context, const v1::PushRequest* request,
                                             v1::PushResponse* response) {
  return Serve(context, "Push", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    const auto& ids = request->connection_ids();
    if (ids.empty()) {
      call.Finish(InvalidArgument("connection_ids is empty: name at least one connection"));
      return call.reactor();
    }
    if (ids.size() > kMaxPushTargets) {
      call.Finish(InvalidArgument("connection_ids has " + std::to_string(ids.size()) + " entries; at most " +
                                  std::to_string(kMaxPushTargets) + " per call (use Broadcast for more)"));
      return call.reactor();
    }
    for (int i = 0; i < ids.size(); ++i) {
      if (ids[i].empty()) {
        call.Finish(MissingConnectionId("connection_ids[" + std::to_string(i) + "]"));
        return call.reactor();
      }
    }
    v1::Frame frame = request->frame();
    auto check = MakeOutboundFrame(std::move(frame), config_.max_message_bytes);
    if (!check.error.empty()) {
      call.Finish(InvalidArgument(std::move(check.error)));
      return call.reactor();
    }
    const auto queue_limit = config_.send_queue_max_bytes;
    // The request outlives the call, so the answer reads the ids from it.
    data_plane_.Push({ids.begin(), ids.end()}, std::move(check.frame), call.deadline(),
                     [call, request, response, queue_limit](std::vector<ConnectionResult> results) {
                       const auto& ids = request->connection_ids();
                       if (ids.size() == 1) {
                         // One connection: its status is the call's.
                         const auto status = EnqueueStatus(results[0].outcome, ids[0], results[0].state, queue_limit);
                         if (status.ok()) response->set_queued(1);
                         return call.Finish(status);
                       }
                       std::uint32_t queued = 0;
                       for (int i = 0; i < ids.size(); ++i) {
                         const auto& result = results[static_cast<std::size_t>(i)];
                         const auto status = EnqueueStatus(result.outcome, ids[i], result.state, queue_limit);
                         if (status.ok()) ++queued;
                         auto* answer = response->add_results();
                         answer->set_connection_id(ids[i]);
                         answer->set_code(static_cast<int>(status.error_code()));
                         answer->set_message(status.error_message());
                       }
                       response->set_queued(queued);
                       call.Finish(grpc::Status::OK);
                     });
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::Broadcast(grpc::CallbackServerContext* context,
                                                  const v1::BroadcastRequest* request,
                                                  v1::BroadcastResponse* response) {
  return Serve(context, "Broadcast", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    v1::Frame frame = request->frame();
    auto check = MakeOutboundFrame(std::move(frame), config_.max_message_bytes);
    if (!check.error.empty()) {
      call.Finish(InvalidArgument(std::move(check.error)));
      return call.reactor();
    }
    if (auto error = CheckBroadcastFilter(request->filter()); !error.empty()) {
      call.Finish(InvalidArgument(std::move(error)));
      return call.reactor();
    }
    const auto& exclude = request->exclude_connection_ids();
    data_plane_.Broadcast(
        request->filter(), std::move(check.frame), {exclude.begin(), exclude.end()}, call.deadline(),
        [call, response](BroadcastTally tally) {
          if (tally.refused_invalid_utf8 > 0) {
            return call.Finish({grpc::StatusCode::INVALID_ARGUMENT,
                                "this piece would make the fragmented text message open on " +
                                    std::to_string(tally.refused_invalid_utf8) +
                                    " connections invalid UTF-8 (or it ends the message inside a character); it was "
                                    "not sent to them and their message is still open (" +
                                    std::to_string(tally.queued) +
                                    " other connections took it): continue with valid UTF-8"});
          }
          response->set_queued(tally.queued);
          response->set_dropped_slow_consumers(tally.dropped_slow_consumers);
          for (auto& failure : tally.failed_nodes) {
            auto* failed = response->add_failed_nodes();
            failed->set_node_id(std::move(failure.node_id));
            failed->set_message(std::move(failure.message));
          }
          call.Finish(grpc::Status::OK);
        });
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::Disconnect(grpc::CallbackServerContext* context,
                                                   const v1::DisconnectRequest* request, v1::DisconnectResponse*) {
  return Serve(context, "Disconnect", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    if (auto error = CheckCloseRequest(request->code(), request->reason()); !error.empty()) {
      call.Finish(InvalidArgument(std::move(error)));
      return call.reactor();
    }
    if (!NamesConnection(call, request->connection_id())) return call.reactor();
    data_plane_.Close(request->connection_id(), static_cast<std::uint16_t>(request->code()), request->reason(),
                      call.deadline(), [call, request](ConnectionResult result) {
                        call.Finish(ResultStatus(
                            result, {.connection_id = request->connection_id(), .action = "can be disconnected"}));
                      });
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::Exist(grpc::CallbackServerContext* context, const v1::ExistRequest* request,
                                              v1::ExistResponse* response) {
  return Serve(context, "Exist", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    if (!NamesConnection(call, request->connection_id())) return call.reactor();
    data_plane_.Find(request->connection_id(), call.deadline(), [call, request, response](ConnectionResult result) {
      if (result.outcome == Outcome::kUnreachable) return call.Finish(OwnerUnreachable(request->connection_id()));
      response->set_exists(result.outcome != Outcome::kNotFound);
      call.Finish(grpc::Status::OK);
    });
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::IsEstablished(grpc::CallbackServerContext* context,
                                                      const v1::IsEstablishedRequest* request,
                                                      v1::IsEstablishedResponse* response) {
  return Serve(context, "IsEstablished", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    if (!NamesConnection(call, request->connection_id())) return call.reactor();
    data_plane_.Find(request->connection_id(), call.deadline(), [call, request, response](ConnectionResult result) {
      if (result.outcome == Outcome::kUnreachable) return call.Finish(OwnerUnreachable(request->connection_id()));
      response->set_established(result.outcome == Outcome::kOk && result.state == v1::CONNECTION_STATE_ACTIVE);
      call.Finish(grpc::Status::OK);
    });
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::GetClientInfo(grpc::CallbackServerContext* context,
                                                      const v1::GetClientInfoRequest* request,
                                                      v1::GetClientInfoResponse* response) {
  return Serve(context, "GetClientInfo", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    if (!NamesConnection(call, request->connection_id())) return call.reactor();
    data_plane_.Describe(request->connection_id(), call.deadline(),
                         [call, request, response](std::pair<ConnectionResult, v1::ClientInfo> described) {
                           const auto status =
                               ResultStatus(described.first, {.connection_id = request->connection_id()});
                           if (status.ok()) response->mutable_info()->Swap(&described.second);
                           call.Finish(status);
                         });
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::ListConnections(grpc::CallbackServerContext* context,
                                                        const v1::ListConnectionsRequest* request,
                                                        v1::ListConnectionsResponse* response) {
  return Serve(context, "ListConnections", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    if (request->page_size() > kMaxPageSize) {
      call.Finish(InvalidArgument("page_size " + std::to_string(request->page_size()) + " is above the maximum of " +
                                  std::to_string(kMaxPageSize)));
      return call.reactor();
    }
    if (auto error = CheckFilter(request->filter()); !error.empty()) {
      call.Finish(InvalidArgument(std::move(error)));
      return call.reactor();
    }
    const std::uint32_t page_size = request->page_size() == 0 ? kDefaultPageSize : request->page_size();
    data_plane_.List(
        request->filter(), page_size, request->page_token(), call.deadline(), [call, response](ListPage page) {
          if (page.bad_page_token) {
            return call.Finish(
                InvalidArgument("page_token was not issued by this gateway process; start again without one"));
          }
          if (!page.unreachable_node.empty()) {
            return call.Finish({grpc::StatusCode::UNAVAILABLE,
                                "node " + page.unreachable_node +
                                    ", whose connections come next, did not answer in time: retry with the same "
                                    "page_token"});
          }
          for (auto& info : page.connections) response->add_connections()->Swap(&info);
          response->set_next_page_token(std::move(page.next_page_token));
          call.Finish(grpc::Status::OK);
        });
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::JoinGroup(grpc::CallbackServerContext* context,
                                                  const v1::JoinGroupRequest* request,
                                                  v1::JoinGroupResponse* response) {
  return Serve(context, "JoinGroup", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    return ChangeGroups(data_plane_, call, request->connection_id(), request->groups(), response->mutable_groups(),
                        GroupChange::Kind::kJoin, "can join groups");
  });
}

grpc::ServerUnaryReactor* AdminService::LeaveGroup(grpc::CallbackServerContext* context,
                                                   const v1::LeaveGroupRequest* request,
                                                   v1::LeaveGroupResponse* response) {
  return Serve(context, "LeaveGroup", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    return ChangeGroups(data_plane_, call, request->connection_id(), request->groups(), response->mutable_groups(),
                        GroupChange::Kind::kLeave, "can leave groups");
  });
}

grpc::ServerUnaryReactor* AdminService::ListNodes(grpc::CallbackServerContext* context, const v1::ListNodesRequest*,
                                                  v1::ListNodesResponse* response) {
  return Serve(context, "ListNodes", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    for (auto& node : nodes_()) response->add_nodes()->Swap(&node);
    call.Finish(grpc::Status::OK);
    return call.reactor();
  });
}

}  // namespace wsgateway::admin
