#pragma once
// The data plane of a cluster: DataPlane over every replica. A call naming
// connections goes to the replica that owns each of them, known from the id
// alone (its first part is the owner's node id): this node's own through the
// local data plane, another live member's over wsgateway.v1.Cluster, and an
// id whose owner is not a live member answers kNotFound. A forwarded call
// carries the caller's deadline, shortened so that an owner that does not
// answer is reported (kUnreachable) before the caller gives up, never as a
// wrong kNotFound. Broadcast goes to every live member at once; List walks
// the members in node id order with a cursor naming the node and its own
// page token.
//
// Routing reads the membership's cached view, so it goes on while Redis is
// away; a call never touches Redis.
//
// Thread-safety: every method from any thread.

#include <absl/base/thread_annotations.h>
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "cluster/membership.hpp"
#include "gateway/data_plane/data_plane.hpp"
#include "wsgateway/v1/cluster.grpc.pb.h"

namespace wsgateway::cluster {

class DeliveryPipe;

struct RouterOptions {
  // This node's id (FormatEpoch of its epoch).
  std::string self_id;
  // The replicas' shared token, sent as "authorization: Bearer <token>".
  std::string token;
  // The longest a forwarded call waits when its caller set no deadline.
  std::chrono::milliseconds default_timeout{5000};
  // The largest message a peer may answer with (a page of ClientInfo).
  int max_receive_bytes = 64 * 1024 * 1024;
  // Told of every forwarded call's end: its method and gRPC status code
  // (metrics). On a gRPC thread; may be empty.
  std::function<void(std::string_view method, int code)> on_forwarded;
};

// The live members as the membership last saw them.
using ViewSource = std::function<std::shared_ptr<const Membership::View>()>;

class ClusterDataPlane final : public DataPlane {
 public:
  ClusterDataPlane(DataPlane& local, ViewSource view, RouterOptions options);
  // Waits for the forwarded calls in flight (each ends by its deadline):
  // their answers may still use this data plane and the local one.
  ~ClusterDataPlane() override;

  void Push(std::vector<std::string> connection_ids, OutboundFrame frame, Deadline deadline,
            Done<std::vector<ConnectionResult>> done) override;
  void Deliver(std::vector<Delivery> deliveries, Deadline deadline, Done<std::vector<ConnectionResult>> done) override;
  void Broadcast(v1::ConnectionFilter filter, OutboundFrame frame, std::vector<std::string> exclude, Deadline deadline,
                 Done<BroadcastTally> done) override;
  void Close(std::string connection_id, std::uint16_t code, std::string reason, Deadline deadline,
             Done<ConnectionResult> done) override;
  void Find(std::string connection_id, Deadline deadline, Done<ConnectionResult> done) override;
  void Describe(std::string connection_id, Deadline deadline,
                Done<std::pair<ConnectionResult, v1::ClientInfo>> done) override;
  void List(v1::ConnectionFilter filter, std::uint32_t page_size, std::string page_token, Deadline deadline,
            Done<ListPage> done) override;
  void ChangeGroups(std::string connection_id, GroupChange change, Deadline deadline, Done<GroupsResult> done) override;

  // The token sent from now on (the token file was re-read). Any thread.
  void SetToken(std::string token);
  // This node continues under a new id (it was fenced). Any thread.
  void SetSelfId(std::string_view self_id);

 private:
  // The page token of the first page of `node_id`'s connections after
  // `local_token` (its own page token): what List hands out.
  static std::string ListCursor(std::string_view node_id, std::string_view local_token);
  // Where a connection lives.
  struct Owner {
    enum class Kind : std::uint8_t { kSelf, kPeer, kGone };
    Kind kind = Kind::kGone;
    std::string node_id;
    std::string address;
  };
  struct ListWalk;
  // Logs peers' failed answers; shared with the calls in flight, which may
  // finish after this data plane is gone.
  struct FailureLog;
  // Forwarded calls not yet finished.
  struct InFlight;

  Owner OwnerOf(std::string_view connection_id, const Membership::View& view) const;
  // Whether `node_id` (a connection id's first part, or a member's id) is
  // this node: compared as a number, without formatting ours per call.
  bool IsSelf(std::string_view node_id) const;
  std::string SelfId() const;
  std::shared_ptr<v1::Cluster::Stub> StubFor(const std::string& address, const Membership::View& view);
  // The ordered, batching pipe of pushes and closes to `owner`.
  std::shared_ptr<DeliveryPipe> PipeTo(const Owner& owner, const Membership::View& view);
  // Drops the channels and pipes of nodes no longer in `view`.
  void PruneFor(const Membership::View& view) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mutex_);
  // Sets the deadline, the token and the forwarded mark on a call to a peer.
  void Prepare(grpc::ClientContext& context, Deadline deadline);
  // Sends `request` to `owner` through `start`, then runs `finish(status,
  // response)` on a gRPC thread.
  template <typename Request, typename Response, typename Start, typename Finish>
  void Forward(std::string_view method, const Owner& owner, const Membership::View& view, Deadline deadline,
               Request request, Start start, Finish finish);
  template <typename Item, typename KeyOf, typename Send>
  // Splits `items` by the owner of each (`key_of` names its connection)
  // and has `send(owner or null for this node, view, part, answer)` deliver
  // each part; answers the results in the order of `items`.
  void Scatter(std::vector<Item> items, KeyOf key_of, Done<std::vector<ConnectionResult>> done, Send send);
  void ContinueList(std::shared_ptr<ListWalk> walk, std::string node_from, std::string local_token);

  DataPlane& local_;
  const ViewSource view_;
  const RouterOptions options_;
  // This node's epoch (options_.self_id as a number); a fenced node gets a
  // new one.
  std::atomic<std::uint64_t> self_epoch_;

  std::mutex mutex_;
  std::string token_ ABSL_GUARDED_BY(mutex_);
  // By peer address.
  std::unordered_map<std::string, std::shared_ptr<v1::Cluster::Stub>> stubs_ ABSL_GUARDED_BY(mutex_);
  std::unordered_map<std::string, std::shared_ptr<DeliveryPipe>> pipes_ ABSL_GUARDED_BY(mutex_);
  // The view (its renewal count) the stubs were last pruned against.
  std::uint64_t pruned_at_renewal_ ABSL_GUARDED_BY(mutex_) = 0;
  std::shared_ptr<FailureLog> failures_;
  std::shared_ptr<InFlight> in_flight_;
};

}  // namespace wsgateway::cluster
