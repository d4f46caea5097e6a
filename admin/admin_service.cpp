#include "admin/admin_service.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <unordered_set>
#include <vector>

#include "admin/admin_call.hpp"
#include "admin/connection_filter.hpp"
#include "admin/status_mapping.hpp"
#include "gateway/data_plane/group_rules.hpp"
#include "gateway/runtime/session.hpp"
#include "gateway/websocket/protocol_rules.hpp"

namespace wsgateway::admin {
namespace {

constexpr int kMaxPushTargets = 10'000;
constexpr std::uint32_t kDefaultPageSize = 100;
constexpr std::uint32_t kMaxPageSize = 1000;

grpc::Status InvalidArgument(std::string message) { return {grpc::StatusCode::INVALID_ARGUMENT, std::move(message)}; }

// Work fanned out to several loops; the last loop to finish ends the call.
template <typename Shared>
void FanOut(Gateway& gateway, const std::shared_ptr<Shared>& shared) {
  shared->remaining = static_cast<int>(gateway.loop_count());
  for (std::size_t i = 0; i < gateway.loop_count(); ++i) {
    auto& loop = gateway.loop(i);
    loop.Post([&loop, shared] {
      shared->RunOn(loop);
      if (shared->remaining.fetch_sub(1) == 1) shared->Done();
    });
  }
}

struct BroadcastWork {
  AdminCall call;
  v1::BroadcastResponse* response;
  OutboundFrame frame;
  v1::ConnectionFilter filter;
  std::unordered_set<std::string> excluded;
  std::atomic<int> remaining{0};
  std::atomic<std::uint32_t> queued{0};
  std::atomic<std::uint32_t> dropped{0};
  // Connections whose open text message this piece would make invalid.
  std::atomic<std::uint32_t> refused{0};

  void RunOn(EventLoop& loop) {
    std::uint32_t local_queued = 0;
    std::uint32_t local_dropped = 0;
    std::uint32_t local_refused = 0;
    const auto& sessions = loop.sessions();
    for (auto it = sessions.begin(); it != sessions.end();) {
      // A slow consumer unregisters itself while we are here; step first.
      Session& session = *(it++)->second;
      if (session.state() != v1::CONNECTION_STATE_ACTIVE || !Matches(session, filter)) continue;
      if (!excluded.empty() && excluded.contains(session.id())) continue;
      const auto result = session.Enqueue(frame);
      if (result == Session::EnqueueResult::kQueued) ++local_queued;
      if (result == Session::EnqueueResult::kQueueFull) ++local_dropped;
      if (result == Session::EnqueueResult::kInvalidUtf8) ++local_refused;
    }
    queued += local_queued;
    dropped += local_dropped;
    refused += local_refused;
  }

  void Done() {
    if (refused > 0) {
      return call.Finish({grpc::StatusCode::INVALID_ARGUMENT,
                          "this piece would make the fragmented text message open on " + std::to_string(refused) +
                              " connections invalid UTF-8 (or it ends the message inside a character); it was "
                              "not sent to them and their message is still open (" +
                              std::to_string(queued) + " other connections took it): continue with valid UTF-8"});
    }
    response->set_queued(queued);
    response->set_dropped_slow_consumers(dropped);
    call.Finish(grpc::Status::OK);
  }
};

struct MultiPushWork {
  AdminCall call;
  v1::PushResponse* response;
  OutboundFrame frame;
  std::size_t queue_limit;
  // Per loop: indexes into response->results owned by that loop.
  std::vector<std::vector<int>> targets;
  std::vector<std::uint64_t> counters;
  std::atomic<int> remaining{0};
  std::atomic<std::uint32_t> queued{0};

  void RunOn(EventLoop& loop) {
    std::uint32_t local_queued = 0;
    for (const int index : targets[loop.index()]) {
      auto* result = response->mutable_results(index);
      Session* session = loop.Find(counters[static_cast<std::size_t>(index)]);
      grpc::Status status = ConnectionNotFound(result->connection_id());
      if (session != nullptr) {
        const auto state = session->state();
        status = EnqueueStatus(session->Enqueue(frame), result->connection_id(), state, queue_limit);
      }
      if (status.ok()) ++local_queued;
      result->set_code(static_cast<int>(status.error_code()));
      result->set_message(status.error_message());
    }
    queued += local_queued;
  }

  void Done() {
    response->set_queued(queued);
    call.Finish(grpc::Status::OK);
  }
};

// Lists connections loop by loop, each loop's in id order; the page token
// is the id of the last connection returned.
struct ListWork : std::enable_shared_from_this<ListWork> {
  AdminCall call;
  v1::ListConnectionsResponse* response;
  Gateway& gateway;
  v1::ConnectionFilter filter;
  std::uint32_t page_size;
  std::size_t loop;
  std::uint64_t after;

  ListWork(AdminCall c, v1::ListConnectionsResponse* r, Gateway& g, v1::ConnectionFilter f, std::uint32_t size,
           std::size_t start_loop, std::uint64_t start_after)
      : call(c), response(r), gateway(g), filter(std::move(f)), page_size(size), loop(start_loop), after(start_after) {}

  void Step() {
    if (loop >= gateway.loop_count()) return call.Finish(grpc::Status::OK);
    auto& event_loop = gateway.loop(loop);
    event_loop.Post([self = shared_from_this(), &event_loop] { self->RunOn(event_loop); });
  }

  void RunOn(EventLoop& event_loop) {
    const auto& sessions = event_loop.sessions();
    for (auto it = sessions.upper_bound(after); it != sessions.end(); ++it) {
      if (!Matches(*it->second, filter)) continue;
      if (static_cast<std::uint32_t>(response->connections_size()) == page_size) {
        // One more matches: the page ends at the last one returned.
        response->set_next_page_token(response->connections(response->connections_size() - 1).connection_id());
        return call.Finish(grpc::Status::OK);
      }
      it->second->Describe(response->add_connections());
    }
    ++loop;
    after = 0;
    Step();
  }
};

// Refuses an empty id, else runs `work(session)` on the loop that owns it.
template <typename Work>
grpc::ServerUnaryReactor* OnConnection(Gateway& gateway, const AdminCall& call, const std::string& connection_id,
                                       Work&& work) {
  if (connection_id.empty()) {
    call.Finish(MissingConnectionId("connection_id"));
  } else {
    gateway.WithSession(connection_id, std::forward<Work>(work));
  }
  return call.reactor();
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

// All or nothing: the limit is checked before the first join.
grpc::Status JoinAll(std::string_view id, ConnectionTags& tags, const std::vector<std::string>& names) {
  const auto joining = static_cast<std::size_t>(
      std::count_if(names.begin(), names.end(), [&tags](const std::string& name) { return !tags.InGroup(name); }));
  if (tags.groups().size() + joining > kMaxGroupsPerConnection) {
    return TooManyGroups(id, tags.groups().size(), joining);
  }
  for (const auto& name : names) tags.Join(name);
  return grpc::Status::OK;
}

grpc::Status LeaveAll(std::string_view, ConnectionTags& tags, const std::vector<std::string>& names) {
  for (const auto& name : names) tags.Leave(name);
  return grpc::Status::OK;
}

// Checks the request on the gRPC thread, then applies `change` on the loop
// owning the connection if it is ACTIVE and answers its groups afterwards.
template <typename Change>
grpc::ServerUnaryReactor* ChangeGroups(Gateway& gateway, const AdminCall& call, const std::string& connection_id,
                                       const GroupNames& groups, GroupNames* answer, std::string_view action,
                                       Change change) {
  if (auto error = CheckGroupList(groups); !error.empty()) {
    call.Finish(InvalidArgument(std::move(error)));
    return call.reactor();
  }
  return OnConnection(
      gateway, call, connection_id,
      [call, id = connection_id, names = DistinctNames(groups), answer, action, change](Session* session) {
        if (session == nullptr) return call.Finish(ConnectionNotFound(id));
        if (session->state() != v1::CONNECTION_STATE_ACTIVE) {
          return call.Finish(NotActive(id, session->state(), action));
        }
        const auto status = change(id, session->tags(), names);
        if (status.ok()) answer->Assign(session->tags().groups().begin(), session->tags().groups().end());
        call.Finish(status);
      });
}

}  // namespace

AdminService::AdminService(Gateway& gateway, metrics::GatewayMetrics& metrics, const BearerTokens& tokens)
    : gateway_(gateway), metrics_(metrics), tokens_(tokens) {}

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
    auto check = MakeOutboundFrame(std::move(frame), gateway_.config().max_message_bytes);
    if (!check.error.empty()) {
      call.Finish(InvalidArgument(std::move(check.error)));
      return call.reactor();
    }
    const auto queue_limit = gateway_.config().send_queue_max_bytes;

    if (ids.size() == 1) {
      gateway_.WithSession(
          ids[0], [call, frame = std::move(check.frame), id = ids[0], response, queue_limit](Session* session) {
            if (session == nullptr) return call.Finish(ConnectionNotFound(id));
            const auto state = session->state();
            const auto status = EnqueueStatus(session->Enqueue(frame), id, state, queue_limit);
            if (status.ok()) response->set_queued(1);
            call.Finish(status);
          });
      return call.reactor();
    }

    auto work = std::make_shared<MultiPushWork>(call, response, std::move(check.frame), queue_limit);
    work->targets.resize(gateway_.loop_count());
    work->counters.resize(static_cast<std::size_t>(ids.size()));
    for (int i = 0; i < ids.size(); ++i) {
      auto* result = response->add_results();
      result->set_connection_id(ids[i]);
      const auto route = gateway_.Resolve(ids[i]);
      if (!route) {
        const auto status = ConnectionNotFound(ids[i]);
        result->set_code(static_cast<int>(status.error_code()));
        result->set_message(status.error_message());
        continue;
      }
      work->targets[route->loop].push_back(i);
      work->counters[static_cast<std::size_t>(i)] = route->counter;
    }
    FanOut(gateway_, work);
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::Broadcast(grpc::CallbackServerContext* context,
                                                  const v1::BroadcastRequest* request,
                                                  v1::BroadcastResponse* response) {
  return Serve(context, "Broadcast", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    v1::Frame frame = request->frame();
    auto check = MakeOutboundFrame(std::move(frame), gateway_.config().max_message_bytes);
    if (!check.error.empty()) {
      call.Finish(InvalidArgument(std::move(check.error)));
      return call.reactor();
    }
    if (auto error = CheckBroadcastFilter(request->filter()); !error.empty()) {
      call.Finish(InvalidArgument(std::move(error)));
      return call.reactor();
    }
    auto work = std::make_shared<BroadcastWork>(call, response, std::move(check.frame), request->filter());
    work->excluded.insert(request->exclude_connection_ids().begin(), request->exclude_connection_ids().end());
    FanOut(gateway_, work);
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
    const auto code = static_cast<std::uint16_t>(request->code() == 0 ? 1000 : request->code());
    return OnConnection(gateway_, call, request->connection_id(),
                        [call, code, reason = request->reason(), id = request->connection_id()](Session* session) {
                          if (session == nullptr) return call.Finish(ConnectionNotFound(id));
                          const auto state = session->state();
                          if (!session->RequestClose(code, reason, v1::CLOSED_BY_BACKEND)) {
                            return call.Finish(NotActive(id, state, "can be disconnected"));
                          }
                          call.Finish(grpc::Status::OK);
                        });
  });
}

grpc::ServerUnaryReactor* AdminService::Exist(grpc::CallbackServerContext* context, const v1::ExistRequest* request,
                                              v1::ExistResponse* response) {
  return Serve(context, "Exist", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    return OnConnection(gateway_, call, request->connection_id(), [call, response](Session* session) {
      response->set_exists(session != nullptr);
      call.Finish(grpc::Status::OK);
    });
  });
}

grpc::ServerUnaryReactor* AdminService::IsEstablished(grpc::CallbackServerContext* context,
                                                      const v1::IsEstablishedRequest* request,
                                                      v1::IsEstablishedResponse* response) {
  return Serve(context, "IsEstablished", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    return OnConnection(gateway_, call, request->connection_id(), [call, response](Session* session) {
      response->set_established(session != nullptr && session->state() == v1::CONNECTION_STATE_ACTIVE);
      call.Finish(grpc::Status::OK);
    });
  });
}

grpc::ServerUnaryReactor* AdminService::GetClientInfo(grpc::CallbackServerContext* context,
                                                      const v1::GetClientInfoRequest* request,
                                                      v1::GetClientInfoResponse* response) {
  return Serve(context, "GetClientInfo", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    return OnConnection(gateway_, call, request->connection_id(),
                        [call, response, id = request->connection_id()](Session* session) {
                          if (session == nullptr) return call.Finish(ConnectionNotFound(id));
                          session->Describe(response->mutable_info());
                          call.Finish(grpc::Status::OK);
                        });
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
    std::size_t start_loop = 0;
    std::uint64_t start_after = 0;
    if (!request->page_token().empty()) {
      const auto route = gateway_.Resolve(request->page_token());
      if (!route) {
        call.Finish(InvalidArgument("page_token was not issued by this gateway process; start again without one"));
        return call.reactor();
      }
      start_loop = route->loop;
      start_after = route->counter;
    }
    std::make_shared<ListWork>(call, response, gateway_, request->filter(), page_size, start_loop, start_after)->Step();
    return call.reactor();
  });
}

grpc::ServerUnaryReactor* AdminService::JoinGroup(grpc::CallbackServerContext* context,
                                                  const v1::JoinGroupRequest* request,
                                                  v1::JoinGroupResponse* response) {
  return Serve(context, "JoinGroup", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    return ChangeGroups(gateway_, call, request->connection_id(), request->groups(), response->mutable_groups(),
                        "can join groups", JoinAll);
  });
}

grpc::ServerUnaryReactor* AdminService::LeaveGroup(grpc::CallbackServerContext* context,
                                                   const v1::LeaveGroupRequest* request,
                                                   v1::LeaveGroupResponse* response) {
  return Serve(context, "LeaveGroup", [&](const AdminCall& call) -> grpc::ServerUnaryReactor* {
    return ChangeGroups(gateway_, call, request->connection_id(), request->groups(), response->mutable_groups(),
                        "can leave groups", LeaveAll);
  });
}

}  // namespace wsgateway::admin
