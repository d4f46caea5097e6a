#pragma once
// The one face of the data plane: everything the admin API and the
// backend's commands do to client connections. Callers check their input
// at their own edge (ids present, frames and close codes valid, group
// names well formed) and then only call this; they never see a loop or a
// session.
//
// The local implementation (runtime/local_data_plane.hpp) fans a call out to
// the event loops owning the connections, once per loop. A cluster router
// implements the same interface by sending a call to the replica that owns
// a connection, so no caller changes when connections live elsewhere.
//
// Every call answers exactly once through its callback, on whatever thread
// finished the work: a loop's, or the caller's when no loop had to run
// (an id this data plane could not have issued). Callbacks must be quick
// and must not block; they may call the data plane again.

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "gateway/websocket/outbound_frame.hpp"
#include "wsgateway/v1/admin.pb.h"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway {

// What became of an operation on one connection.
enum class Outcome : std::uint8_t {
  kOk,
  // No such connection: it closed, it never existed, or the id was not
  // issued by this data plane.
  kNotFound,
  // The connection is not ACTIVE (its handshake is under way, or it is
  // closing); ConnectionResult::state says which.
  kNotActive,
  // Its unwritten bytes would pass send_queue_max_bytes: it was closed as a
  // slow consumer (1008) and the frame dropped.
  kQueueFull,
  // A continuation frame with no fragmented message open, or of another
  // opcode than the open one.
  kNoMessageToContinue,
  // A piece after which the open fragmented text message could no longer be
  // valid UTF-8; the message stays open for a valid piece.
  kInvalidUtf8,
  // Joining would take the connection past kMaxGroupsPerConnection; it
  // joined none of the groups.
  kTooManyGroups,
  // Cluster mode: the connection's owner is a live member but did not
  // answer before the deadline. Whether the operation happened is unknown.
  kUnreachable,
};

struct ConnectionResult {
  Outcome outcome = Outcome::kNotFound;
  // The connection's state when the operation ran (UNSPECIFIED when it was
  // not found): what a kNotActive answer names.
  v1::ConnectionState state = v1::CONNECTION_STATE_UNSPECIFIED;
};

// One operation of a backend's command batch.
struct Delivery {
  enum class Kind : std::uint8_t { kPush, kClose };
  std::string connection_id;
  Kind kind = Kind::kPush;
  // kPush: the frame, already checked (MakeOutboundFrame). kClose: a close
  // frame (MakeCloseFrame) whose code and reason start the close handshake,
  // after the frames already queued, as Close does; code 0 stands for 1000.
  OutboundFrame frame;
};

// A replica a cluster-wide call could not complete on.
struct NodeFailure {
  std::string node_id;
  std::string message;
};

struct BroadcastTally {
  std::uint32_t queued = 0;
  // Closed as slow consumers (1008) instead of taking the frame.
  std::uint32_t dropped_slow_consumers = 0;
  // Connections whose open text message this piece would make invalid UTF-8;
  // they did not take it and their message is still open.
  std::uint32_t refused_invalid_utf8 = 0;
  // Cluster mode: replicas that did not answer; the counts leave them out.
  std::vector<NodeFailure> failed_nodes;
};

struct GroupChange {
  enum class Kind : std::uint8_t { kJoin, kLeave };
  Kind kind = Kind::kJoin;
  // Checked group names (CheckGroupName), sorted, without repeats.
  std::vector<std::string> names;
};

struct GroupsResult {
  ConnectionResult result;
  // The connection's groups after the change (when kOk).
  std::vector<std::string> groups;
  // kTooManyGroups: groups it is in, and how many of the names it is not in.
  std::size_t member_of = 0;
  std::size_t joining = 0;
};

struct ListPage {
  // Set when the page token was not issued by this data plane; the other
  // fields are then empty.
  bool bad_page_token = false;
  // Cluster mode: the node whose connections were next and that did not
  // answer in time; the other fields are then empty, and the same page
  // token may be tried again.
  std::string unreachable_node;
  std::vector<v1::ClientInfo> connections;
  // Empty on the last page.
  std::string next_page_token;
};

class DataPlane {
 public:
  template <typename Result>
  using Done = std::function<void(Result)>;
  // When the caller stops waiting for the answer. Local work never waits
  // on the network and ignores it; a call that must reach another replica
  // answers kUnreachable before it rather than late.
  using Deadline = std::chrono::steady_clock::time_point;

  virtual ~DataPlane() = default;

  // Queues `frame` for each connection; results in the order of the ids.
  virtual void Push(std::vector<std::string> connection_ids, OutboundFrame frame, Deadline deadline,
                    Done<std::vector<ConnectionResult>> done) = 0;

  // A backend's command batch: pushes and closes, applied in order for each
  // connection. Results in the order of the deliveries.
  virtual void Deliver(std::vector<Delivery> deliveries, Deadline deadline,
                       Done<std::vector<ConnectionResult>> done) = 0;

  // Queues `frame` for every ACTIVE connection matching `filter` (checked
  // with CheckBroadcastFilter) except those in `exclude`.
  virtual void Broadcast(v1::ConnectionFilter filter, OutboundFrame frame, std::vector<std::string> exclude,
                         Deadline deadline, Done<BroadcastTally> done) = 0;

  // Starts the close handshake after the frames already queued, as the
  // backend's close. `code` 0 stands for 1000.
  virtual void Close(std::string connection_id, std::uint16_t code, std::string reason, Deadline deadline,
                     Done<ConnectionResult> done) = 0;

  // Whether the connection exists, and its state.
  virtual void Find(std::string connection_id, Deadline deadline, Done<ConnectionResult> done) = 0;

  // What GetClientInfo answers about the connection (filled when kOk).
  virtual void Describe(std::string connection_id, Deadline deadline,
                        Done<std::pair<ConnectionResult, v1::ClientInfo>> done) = 0;

  // One page of the connections matching `filter` (checked with
  // CheckFilter), `page_size` at most, from `page_token` (empty: the
  // first page).
  virtual void List(v1::ConnectionFilter filter, std::uint32_t page_size, std::string page_token, Deadline deadline,
                    Done<ListPage> done) = 0;

  // Joins or leaves groups on an ACTIVE connection, all or nothing.
  virtual void ChangeGroups(std::string connection_id, GroupChange change, Deadline deadline,
                            Done<GroupsResult> done) = 0;
};

}  // namespace wsgateway
