#pragma once
// What a Backend.Connect stream carries besides the event log's batches:
// the hello that opens every stream and the snapshots of the connections
// this link serves (one at every stream's start, one more whenever the
// backend asks). While a snapshot is being taken the log's batches wait,
// so that no event reaches the backend before its connection was in the
// snapshot or had its Open event: each event loop lists its connections at
// one instant, and whatever it hands over later goes after the snapshot's
// last chunk.
//
// Pure and single-threaded, like EventLog: the BackendLink holds its mutex
// around every call. The messages are EventBatch messages with
// batch_sequence 0, which the backend does not acknowledge.

#include <grpcpp/support/byte_buffer.h>

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {

class StreamPreamble {
 public:
  // How many parts (one per event loop) make a snapshot whole; the node
  // every message names (EventBatch.node_id).
  StreamPreamble(std::size_t parts, std::string node_id) : parts_(parts), node_id_(std::move(node_id)) {}

  // A new stream: drops what an earlier stream had not written, queues
  // `hello` and starts a snapshot. Returns the snapshot's id.
  std::uint64_t BeginStream(const v1::EventBatch& hello);
  // The backend asked for a snapshot: its id, or 0 when one is already
  // being taken (that one answers the request).
  std::uint64_t Request();

  // A loop's part of snapshot `snapshot_id`, already cut into messages.
  // False (and nothing queued) when that snapshot is no longer wanted: the
  // stream it was for has ended.
  bool AddPart(std::uint64_t snapshot_id, std::vector<grpc::ByteBuffer>&& messages, std::size_t connections);

  // The next message to write, marked in flight; null when none is queued
  // or a write is in flight. Stays valid until FinishWrite.
  const grpc::ByteBuffer* StartWrite();
  void FinishWrite() { in_flight_.reset(); }
  bool write_in_flight() const { return in_flight_.has_value(); }

  // The log's batches must wait: a snapshot is being taken or written.
  bool holds_events() const { return open_snapshot_ != 0 || !queue_.empty(); }
  // The snapshot being taken (parts still missing); 0 when none.
  std::uint64_t open_snapshot() const { return open_snapshot_; }
  std::uint64_t last_snapshot() const { return last_snapshot_; }
  const std::string& node_id() const { return node_id_; }
  void set_node_id(std::string node_id) { node_id_ = std::move(node_id); }

 private:
  std::uint64_t StartSnapshot();

  const std::size_t parts_;
  std::string node_id_;
  std::deque<grpc::ByteBuffer> queue_;
  // Moved out of the queue while gRPC writes it.
  std::optional<grpc::ByteBuffer> in_flight_;
  std::uint64_t last_snapshot_ = 0;
  std::uint64_t open_snapshot_ = 0;
  std::size_t parts_missing_ = 0;
  std::uint64_t total_ = 0;
};

// The messages that carry `connections` as parts of snapshot
// `snapshot_id`, at most kSnapshotChunkConnections each and each below
// `byte_limit` unless a single connection is larger.
std::vector<grpc::ByteBuffer> EncodeSnapshotChunks(std::uint64_t snapshot_id, std::string_view node_id,
                                                   std::vector<v1::ClientInfo>& connections, std::size_t byte_limit);

inline constexpr std::size_t kSnapshotChunkConnections = 1000;

// One EventBatch message as a ByteBuffer that owns its bytes.
grpc::ByteBuffer SerializeToBuffer(const v1::EventBatch& message);

}  // namespace wsgateway
