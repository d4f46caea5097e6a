#include "cluster/cluster_data_plane.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <map>
#include <optional>
#include <utility>

#include "cluster/cluster_wire.hpp"
#include "cluster/delivery_pipe.hpp"
#include "gateway/data_plane/connection_id.hpp"

namespace wsgateway::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using Results = std::vector<ConnectionResult>;

// What a forwarded call leaves the caller for its own answer: a tenth of
// its time, at least this much.
constexpr auto kAnswerMargin = std::chrono::milliseconds(20);

const v1::NodeInfo* FindNode(const Membership::View& view, std::string_view node_id) {
  const auto it = std::lower_bound(view.nodes.begin(), view.nodes.end(), node_id,
                                   [](const v1::NodeInfo& node, std::string_view id) { return node.node_id() < id; });
  return it != view.nodes.end() && it->node_id() == node_id ? &*it : nullptr;
}

// A forwarded call in flight: gRPC needs its context, request and response
// until it finishes.
template <typename Request, typename Response>
struct Forwarded {
  grpc::ClientContext context;
  Request request;
  Response response;
};

// The results of one call gathered from several owners; the last part to
// finish answers. Parts fill disjoint positions.
struct Gather {
  Gather(std::size_t size, int parts, DataPlane::Done<Results> done)
      : results(size), pending(parts), done(std::move(done)) {}
  void Fill(const std::vector<std::size_t>& positions, const Results& part) {
    for (std::size_t i = 0; i < positions.size(); ++i) {
      results[positions[i]] = i < part.size() ? part[i] : ConnectionResult{Outcome::kUnreachable, {}};
    }
    Finish();
  }
  void FillAll(const std::vector<std::size_t>& positions, ConnectionResult result) {
    for (const auto position : positions) results[position] = result;
    Finish();
  }
  void Finish() {
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) done(std::move(results));
  }
  Results results;
  std::atomic<int> pending;
  DataPlane::Done<Results> done;
};

std::string FailureText(const grpc::Status& status) {
  return status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ? "did not answer in time"
                                                                    : "failed: " + status.error_message();
}

}  // namespace

// Warnings only for what is not a timeout or a refused connection, at most
// once a second: anything else is a misconfiguration (a token that differs
// between replicas, different limits), said where an operator looks.
struct ClusterDataPlane::FailureLog {
  void Note(const std::string& node_id, const grpc::Status& status) {
    if (status.error_code() == grpc::StatusCode::DEADLINE_EXCEEDED ||
        status.error_code() == grpc::StatusCode::UNAVAILABLE) {
      spdlog::debug("cluster: node {} {}", node_id, FailureText(status));
      return;
    }
    {
      std::lock_guard lock(mutex);
      const auto now = Clock::now();
      if (now - last_warning < std::chrono::seconds(1)) return;
      last_warning = now;
    }
    spdlog::warn("cluster: a call to node {} {}", node_id, FailureText(status));
  }
  std::mutex mutex;
  Clock::time_point last_warning;
};

struct ClusterDataPlane::InFlight {
  void Add() {
    std::lock_guard lock(mutex);
    ++calls;
  }
  void Done() {
    std::lock_guard lock(mutex);
    if (--calls == 0) idle.notify_all();
  }
  void WaitIdle() {
    std::unique_lock lock(mutex);
    idle.wait(lock, [this] { return calls == 0; });
  }
  std::mutex mutex;
  std::condition_variable idle;
  std::size_t calls = 0;
};

struct ClusterDataPlane::ListWalk {
  v1::ConnectionFilter filter;
  std::uint32_t page_size = 0;
  Deadline deadline;
  Done<ListPage> done;
  ListPage page;
};

namespace {

// A node id (FormatEpoch's 16 hex digits) as its epoch; 0 for anything else.
std::uint64_t EpochOf(std::string_view node_id) {
  std::uint64_t epoch = 0;
  const auto [end, error] = std::from_chars(node_id.data(), node_id.data() + node_id.size(), epoch, 16);
  return error == std::errc() && end == node_id.data() + node_id.size() ? epoch : 0;
}

}  // namespace

ClusterDataPlane::ClusterDataPlane(DataPlane& local, ViewSource view, RouterOptions options)
    : local_(local),
      view_(std::move(view)),
      options_(std::move(options)),
      self_epoch_(EpochOf(options_.self_id)),
      token_(options_.token),
      failures_(std::make_shared<FailureLog>()),
      in_flight_(std::make_shared<InFlight>()) {}

ClusterDataPlane::~ClusterDataPlane() { in_flight_->WaitIdle(); }

std::string ClusterDataPlane::ListCursor(std::string_view node_id, std::string_view local_token) {
  std::string cursor(node_id);
  cursor += '/';
  cursor += local_token;
  return cursor;
}

bool ClusterDataPlane::IsSelf(std::string_view node_id) const {
  return EpochOf(node_id) == self_epoch_.load(std::memory_order_relaxed);
}

std::string ClusterDataPlane::SelfId() const { return FormatEpoch(self_epoch_.load(std::memory_order_relaxed)); }

void ClusterDataPlane::SetSelfId(std::string_view self_id) {
  self_epoch_.store(EpochOf(self_id), std::memory_order_relaxed);
}

ClusterDataPlane::Owner ClusterDataPlane::OwnerOf(std::string_view connection_id, const Membership::View& view) const {
  const auto node_id = NodeIdOf(connection_id);
  // Text that names no node is for the local data plane to refuse.
  if (node_id.empty() || IsSelf(node_id)) return {Owner::Kind::kSelf, {}, {}};
  const auto* node = FindNode(view, node_id);
  if (node == nullptr) return {Owner::Kind::kGone, std::string(node_id), {}};
  return {Owner::Kind::kPeer, node->node_id(), node->advertised_address()};
}

void ClusterDataPlane::PruneFor(const Membership::View& view) {
  if (view.renewals == pruned_at_renewal_) return;
  // Channels and pipes to nodes that left go with them.
  pruned_at_renewal_ = view.renewals;
  const auto gone = [&view](const auto& entry) {
    return std::none_of(view.nodes.begin(), view.nodes.end(),
                        [&entry](const v1::NodeInfo& node) { return node.advertised_address() == entry.first; });
  };
  std::erase_if(stubs_, gone);
  std::erase_if(pipes_, gone);
}

std::shared_ptr<v1::Cluster::Stub> ClusterDataPlane::StubFor(const std::string& address, const Membership::View& view) {
  std::lock_guard lock(mutex_);
  PruneFor(view);
  auto& stub = stubs_[address];
  if (!stub) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(options_.max_receive_bytes);
    args.SetMaxSendMessageSize(-1);
    stub = v1::Cluster::NewStub(grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  return stub;
}

void ClusterDataPlane::SetToken(std::string token) {
  std::lock_guard lock(mutex_);
  token_ = std::move(token);
}

void ClusterDataPlane::Prepare(grpc::ClientContext& context, Deadline deadline) {
  auto budget = std::chrono::duration_cast<Clock::duration>(options_.default_timeout);
  if (deadline != Deadline::max()) {
    const auto left = deadline - Clock::now();
    budget = std::min(budget, left - std::max<Clock::duration>(left / 10, kAnswerMargin));
  }
  budget = std::max<Clock::duration>(budget, std::chrono::milliseconds(1));
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::duration_cast<std::chrono::system_clock::duration>(budget));
  std::string authorization;
  {
    std::lock_guard lock(mutex_);
    authorization = "Bearer " + token_;
  }
  context.AddMetadata("authorization", authorization);
  context.AddMetadata("wsgateway-forwarded-by", SelfId());
}

template <typename Request, typename Response, typename Start, typename Finish>
void ClusterDataPlane::Forward(std::string_view method, const Owner& owner, const Membership::View& view,
                               Deadline deadline, Request request, Start start, Finish finish) {
  auto call = std::make_shared<Forwarded<Request, Response>>();
  call->request = std::move(request);
  Prepare(call->context, deadline);
  const auto stub = StubFor(owner.address, view);
  in_flight_->Add();
  start(*stub->async(), &call->context, &call->request, &call->response,
        [failures = failures_, in_flight = in_flight_, call, node_id = owner.node_id, method,
         on_forwarded = options_.on_forwarded, finish = std::move(finish)](grpc::Status status) mutable {
          if (on_forwarded) on_forwarded(method, static_cast<int>(status.error_code()));
          if (!status.ok()) failures->Note(node_id, status);
          finish(status, call->response);
          // Last: the data plane may be destroyed once no call is in flight
          // (what this lambda still holds never points into it).
          in_flight->Done();
        });
}

template <typename Item, typename KeyOf, typename Send>
void ClusterDataPlane::Scatter(std::vector<Item> items, KeyOf key_of, Done<Results> done, Send send) {
  const auto view = view_();
  // Positions of the items by owner; the local ones first.
  std::vector<std::size_t> local;
  std::vector<std::size_t> gone;
  std::map<std::string, std::pair<Owner, std::vector<std::size_t>>> peers;
  for (std::size_t i = 0; i < items.size(); ++i) {
    auto owner = OwnerOf(key_of(items[i]), *view);
    switch (owner.kind) {
      case Owner::Kind::kSelf:
        local.push_back(i);
        break;
      case Owner::Kind::kGone:
        gone.push_back(i);
        break;
      case Owner::Kind::kPeer: {
        auto& entry = peers[owner.node_id];
        if (entry.second.empty()) entry.first = std::move(owner);
        entry.second.push_back(i);
        break;
      }
    }
  }
  // The single-node shape costs no regrouping.
  if (local.size() == items.size()) return send(nullptr, *view, std::move(items), std::move(done));
  const int parts = (local.empty() ? 0 : 1) + (gone.empty() ? 0 : 1) + static_cast<int>(peers.size());
  auto gather = std::make_shared<Gather>(items.size(), parts, std::move(done));
  const auto take = [&items](const std::vector<std::size_t>& positions) {
    std::vector<Item> part;
    part.reserve(positions.size());
    for (const auto position : positions) part.push_back(std::move(items[position]));
    return part;
  };
  for (auto& [node_id, entry] : peers) {
    send(&entry.first, *view, take(entry.second),
         [gather, positions = entry.second](Results results) { gather->Fill(positions, results); });
  }
  if (!local.empty()) {
    send(nullptr, *view, take(local), [gather, local](Results results) { gather->Fill(local, results); });
  }
  if (!gone.empty()) gather->FillAll(gone, {Outcome::kNotFound, {}});
}

void ClusterDataPlane::Push(std::vector<std::string> connection_ids, OutboundFrame frame, Deadline deadline,
                            Done<Results> done) {
  // The frame goes on the wire once per peer, however many of its ids.
  Scatter(
      std::move(connection_ids), [](const std::string& id) -> std::string_view { return id; }, std::move(done),
      [this, &frame, deadline](const Owner* owner, const Membership::View& view, std::vector<std::string> ids,
                               Done<Results> answer) {
        if (owner == nullptr) return local_.Push(std::move(ids), frame, deadline, std::move(answer));
        std::vector<Delivery> deliveries;
        deliveries.reserve(ids.size());
        for (auto& id : ids) deliveries.push_back({std::move(id), Delivery::Kind::kPush, frame});
        PipeTo(*owner, view)->Deliver(std::move(deliveries), deadline, std::move(answer));
      });
}

void ClusterDataPlane::Deliver(std::vector<Delivery> deliveries, Deadline deadline, Done<Results> done) {
  // One connection's deliveries all go to its owner, in order.
  Scatter(
      std::move(deliveries), [](const Delivery& delivery) -> std::string_view { return delivery.connection_id; },
      std::move(done),
      [this, deadline](const Owner* owner, const Membership::View& view, std::vector<Delivery> part,
                       Done<Results> answer) {
        if (owner == nullptr) return local_.Deliver(std::move(part), deadline, std::move(answer));
        PipeTo(*owner, view)->Deliver(std::move(part), deadline, std::move(answer));
      });
}

std::shared_ptr<DeliveryPipe> ClusterDataPlane::PipeTo(const Owner& owner, const Membership::View& view) {
  std::lock_guard lock(mutex_);
  PruneFor(view);
  auto& pipe = pipes_[owner.address];
  if (!pipe) {
    pipe = std::make_shared<DeliveryPipe>(
        [this, owner](v1::ClusterDeliverRequest request, Deadline deadline, DeliveryPipe::Answer answer) {
          Forward<v1::ClusterDeliverRequest, v1::ClusterResults>(
              "Deliver", owner, *view_(), deadline, std::move(request),
              [](auto& async, auto* context, auto* request, auto* response, auto callback) {
                async.Deliver(context, request, response, std::move(callback));
              },
              std::move(answer));
        });
  }
  return pipe;
}

void ClusterDataPlane::Broadcast(v1::ConnectionFilter filter, OutboundFrame frame, std::vector<std::string> exclude,
                                 Deadline deadline, Done<BroadcastTally> done) {
  const auto view = view_();
  // Each node is told only of the exclusions it owns.
  std::vector<std::string> local_exclude;
  std::map<std::string, std::vector<std::string>> peer_exclude;
  for (auto& id : exclude) {
    const auto node_id = NodeIdOf(id);
    if (node_id.empty() || IsSelf(node_id)) {
      local_exclude.push_back(std::move(id));
    } else {
      peer_exclude[std::string(node_id)].push_back(std::move(id));
    }
  }
  std::vector<const v1::NodeInfo*> peers;
  for (const auto& node : view->nodes) {
    if (!IsSelf(node.node_id())) peers.push_back(&node);
  }
  if (peers.empty())
    return local_.Broadcast(std::move(filter), std::move(frame), std::move(local_exclude), deadline, std::move(done));

  struct Sum {
    std::mutex mutex;
    BroadcastTally tally;
    int pending = 0;
    Done<BroadcastTally> done;
    void Add(const BroadcastTally& part, std::optional<NodeFailure> failure) {
      bool last = false;
      {
        std::lock_guard lock(mutex);
        tally.queued += part.queued;
        tally.dropped_slow_consumers += part.dropped_slow_consumers;
        tally.refused_invalid_utf8 += part.refused_invalid_utf8;
        if (failure) tally.failed_nodes.push_back(std::move(*failure));
        last = --pending == 0;
      }
      if (!last) return;
      std::sort(tally.failed_nodes.begin(), tally.failed_nodes.end(),
                [](const NodeFailure& a, const NodeFailure& b) { return a.node_id < b.node_id; });
      done(std::move(tally));
    }
  };
  auto sum = std::make_shared<Sum>();
  sum->pending = static_cast<int>(peers.size()) + 1;
  sum->done = std::move(done);
  v1::ClusterFrame wire_frame;
  ToWire(frame, &wire_frame);
  for (const auto* node : peers) {
    v1::ClusterBroadcastRequest request;
    *request.mutable_filter() = filter;
    *request.mutable_frame() = wire_frame;
    if (auto it = peer_exclude.find(node->node_id()); it != peer_exclude.end()) {
      request.mutable_exclude_connection_ids()->Assign(it->second.begin(), it->second.end());
    }
    Forward<v1::ClusterBroadcastRequest, v1::ClusterBroadcastResponse>(
        "Broadcast", {Owner::Kind::kPeer, node->node_id(), node->advertised_address()}, *view, deadline,
        std::move(request),
        [](auto& async, auto* context, auto* request, auto* response, auto callback) {
          async.Broadcast(context, request, response, std::move(callback));
        },
        [sum, node_id = node->node_id()](const grpc::Status& status, const v1::ClusterBroadcastResponse& response) {
          if (!status.ok()) return sum->Add({}, NodeFailure{node_id, "node " + node_id + " " + FailureText(status)});
          sum->Add({response.queued(), response.dropped_slow_consumers(), response.refused_invalid_utf8(), {}},
                   std::nullopt);
        });
  }
  local_.Broadcast(std::move(filter), std::move(frame), std::move(local_exclude), deadline,
                   [sum](BroadcastTally tally) { sum->Add(tally, std::nullopt); });
}

void ClusterDataPlane::Close(std::string connection_id, std::uint16_t code, std::string reason, Deadline deadline,
                             Done<ConnectionResult> done) {
  const auto view = view_();
  const auto owner = OwnerOf(connection_id, *view);
  if (owner.kind == Owner::Kind::kSelf) {
    return local_.Close(std::move(connection_id), code, std::move(reason), deadline, std::move(done));
  }
  if (owner.kind == Owner::Kind::kGone) return done({Outcome::kNotFound, {}});
  v1::ClusterCloseRequest request;
  request.set_connection_id(std::move(connection_id));
  request.set_code(code);
  request.set_reason(std::move(reason));
  Forward<v1::ClusterCloseRequest, v1::ClusterResult>(
      "Close", owner, *view, deadline, std::move(request),
      [](auto& async, auto* context, auto* request, auto* response, auto callback) {
        async.Close(context, request, response, std::move(callback));
      },
      [done = std::move(done)](const grpc::Status& status, const v1::ClusterResult& response) {
        done(status.ok() ? FromWire(response) : ConnectionResult{Outcome::kUnreachable, {}});
      });
}

void ClusterDataPlane::Find(std::string connection_id, Deadline deadline, Done<ConnectionResult> done) {
  const auto view = view_();
  const auto owner = OwnerOf(connection_id, *view);
  if (owner.kind == Owner::Kind::kSelf) return local_.Find(std::move(connection_id), deadline, std::move(done));
  if (owner.kind == Owner::Kind::kGone) return done({Outcome::kNotFound, {}});
  v1::ClusterFindRequest request;
  request.set_connection_id(std::move(connection_id));
  Forward<v1::ClusterFindRequest, v1::ClusterResult>(
      "Find", owner, *view, deadline, std::move(request),
      [](auto& async, auto* context, auto* request, auto* response, auto callback) {
        async.Find(context, request, response, std::move(callback));
      },
      [done = std::move(done)](const grpc::Status& status, const v1::ClusterResult& response) {
        done(status.ok() ? FromWire(response) : ConnectionResult{Outcome::kUnreachable, {}});
      });
}

void ClusterDataPlane::Describe(std::string connection_id, Deadline deadline,
                                Done<std::pair<ConnectionResult, v1::ClientInfo>> done) {
  const auto view = view_();
  const auto owner = OwnerOf(connection_id, *view);
  if (owner.kind == Owner::Kind::kSelf) return local_.Describe(std::move(connection_id), deadline, std::move(done));
  if (owner.kind == Owner::Kind::kGone) return done({{Outcome::kNotFound, {}}, {}});
  v1::ClusterFindRequest request;
  request.set_connection_id(std::move(connection_id));
  Forward<v1::ClusterFindRequest, v1::ClusterDescribeResponse>(
      "Describe", owner, *view, deadline, std::move(request),
      [](auto& async, auto* context, auto* request, auto* response, auto callback) {
        async.Describe(context, request, response, std::move(callback));
      },
      [done = std::move(done)](const grpc::Status& status, v1::ClusterDescribeResponse& response) {
        if (!status.ok()) return done({{Outcome::kUnreachable, {}}, {}});
        std::pair<ConnectionResult, v1::ClientInfo> described{FromWire(response.result()), {}};
        described.second.Swap(response.mutable_info());
        done(std::move(described));
      });
}

void ClusterDataPlane::ChangeGroups(std::string connection_id, GroupChange change, Deadline deadline,
                                    Done<GroupsResult> done) {
  const auto view = view_();
  const auto owner = OwnerOf(connection_id, *view);
  if (owner.kind == Owner::Kind::kSelf) {
    return local_.ChangeGroups(std::move(connection_id), std::move(change), deadline, std::move(done));
  }
  if (owner.kind == Owner::Kind::kGone) return done({{Outcome::kNotFound, {}}, {}, 0, 0});
  v1::ClusterChangeGroupsRequest request;
  request.set_connection_id(std::move(connection_id));
  request.set_leave(change.kind == GroupChange::Kind::kLeave);
  request.mutable_names()->Assign(std::make_move_iterator(change.names.begin()),
                                  std::make_move_iterator(change.names.end()));
  Forward<v1::ClusterChangeGroupsRequest, v1::ClusterChangeGroupsResponse>(
      "ChangeGroups", owner, *view, deadline, std::move(request),
      [](auto& async, auto* context, auto* request, auto* response, auto callback) {
        async.ChangeGroups(context, request, response, std::move(callback));
      },
      [done = std::move(done)](const grpc::Status& status, const v1::ClusterChangeGroupsResponse& response) {
        if (!status.ok()) return done({{Outcome::kUnreachable, {}}, {}, 0, 0});
        done({FromWire(response.result()),
              {response.groups().begin(), response.groups().end()},
              static_cast<std::size_t>(response.member_of()),
              static_cast<std::size_t>(response.joining())});
      });
}

void ClusterDataPlane::List(v1::ConnectionFilter filter, std::uint32_t page_size, std::string page_token,
                            Deadline deadline, Done<ListPage> done) {
  std::string node_from;
  std::string local_token;
  if (!page_token.empty()) {
    const auto slash = page_token.find('/');
    if (slash == std::string::npos || slash == 0) {
      ListPage refused;
      refused.bad_page_token = true;
      return done(std::move(refused));
    }
    node_from = page_token.substr(0, slash);
    local_token = page_token.substr(slash + 1);
  }
  auto walk = std::make_shared<ListWalk>();
  walk->filter = std::move(filter);
  walk->page_size = page_size;
  walk->deadline = deadline;
  walk->done = std::move(done);
  ContinueList(std::move(walk), std::move(node_from), std::move(local_token));
}

void ClusterDataPlane::ContinueList(std::shared_ptr<ListWalk> walk, std::string node_from, std::string local_token) {
  const auto view = view_();
  // The nodes in id order, this one among them even before it registered.
  std::vector<Owner> nodes;
  for (const auto& node : view->nodes) {
    if (!IsSelf(node.node_id())) nodes.push_back({Owner::Kind::kPeer, node.node_id(), node.advertised_address()});
  }
  nodes.push_back({Owner::Kind::kSelf, SelfId(), {}});
  std::sort(nodes.begin(), nodes.end(), [](const Owner& a, const Owner& b) { return a.node_id < b.node_id; });
  const auto it = std::lower_bound(nodes.begin(), nodes.end(), node_from,
                                   [](const Owner& node, const std::string& id) { return node.node_id < id; });
  if (it == nodes.end()) return walk->done(std::move(walk->page));
  // The node the cursor named has left: its successor from the start.
  if (it->node_id != node_from) local_token.clear();
  const auto owner = *it;
  const std::string next_node = it + 1 != nodes.end() ? (it + 1)->node_id : std::string{};
  const auto remaining = walk->page_size - static_cast<std::uint32_t>(walk->page.connections.size());

  auto on_page = [this, walk, node_id = owner.node_id, next_node](ListPage part) mutable {
    if (part.bad_page_token || !part.unreachable_node.empty()) {
      ListPage failed;
      failed.bad_page_token = part.bad_page_token;
      failed.unreachable_node = part.unreachable_node;
      return walk->done(std::move(failed));
    }
    auto& page = walk->page;
    for (auto& info : part.connections) page.connections.push_back(std::move(info));
    if (!part.next_page_token.empty()) {
      page.next_page_token = ListCursor(node_id, part.next_page_token);
      return walk->done(std::move(page));
    }
    if (next_node.empty()) return walk->done(std::move(page));
    if (page.connections.size() >= walk->page_size) {
      page.next_page_token = ListCursor(next_node, {});
      return walk->done(std::move(page));
    }
    ContinueList(std::move(walk), next_node, {});
  };
  if (owner.kind == Owner::Kind::kSelf) {
    return local_.List(walk->filter, remaining, std::move(local_token), walk->deadline, std::move(on_page));
  }
  v1::ClusterListRequest request;
  *request.mutable_filter() = walk->filter;
  request.set_page_size(remaining);
  request.set_page_token(std::move(local_token));
  Forward<v1::ClusterListRequest, v1::ClusterListResponse>(
      "List", owner, *view, walk->deadline, std::move(request),
      [](auto& async, auto* context, auto* request, auto* response, auto callback) {
        async.List(context, request, response, std::move(callback));
      },
      [on_page = std::move(on_page), node_id = owner.node_id](const grpc::Status& status,
                                                              v1::ClusterListResponse& response) mutable {
        ListPage part;
        if (!status.ok()) {
          part.unreachable_node = node_id;
        } else {
          part.bad_page_token = response.bad_page_token();
          part.connections.reserve(static_cast<std::size_t>(response.connections_size()));
          for (auto& info : *response.mutable_connections()) part.connections.push_back(std::move(info));
          part.next_page_token = std::move(*response.mutable_next_page_token());
        }
        on_page(std::move(part));
      });
}

}  // namespace wsgateway::cluster
