#include "gateway/backend/stream_preamble.hpp"

#include <utility>

#include "gateway/backend/owning_slice.hpp"

namespace wsgateway {

grpc::ByteBuffer SerializeToBuffer(const v1::EventBatch& message) {
  grpc::Slice slice = OwningSlice(message.SerializeAsString());
  return grpc::ByteBuffer(&slice, 1);
}

std::vector<grpc::ByteBuffer> EncodeSnapshotChunks(std::uint64_t snapshot_id, std::string_view node_id,
                                                   std::vector<v1::ClientInfo>& connections, std::size_t byte_limit) {
  std::vector<grpc::ByteBuffer> messages;
  v1::EventBatch message;
  message.set_node_id(std::string(node_id));
  auto* chunk = message.mutable_snapshot();
  chunk->set_snapshot_id(snapshot_id);
  std::size_t bytes = 0;
  const auto flush = [&] {
    if (chunk->connections_size() == 0) return;
    messages.push_back(SerializeToBuffer(message));
    chunk->clear_connections();
    bytes = 0;
  };
  for (auto& info : connections) {
    const std::size_t size = info.ByteSizeLong() + 8;
    if (chunk->connections_size() == static_cast<int>(kSnapshotChunkConnections) || bytes + size > byte_limit) flush();
    bytes += size;
    *chunk->add_connections() = std::move(info);
  }
  flush();
  return messages;
}

std::uint64_t StreamPreamble::BeginStream(const v1::EventBatch& hello) {
  queue_.clear();
  queue_.push_back(SerializeToBuffer(hello));
  return StartSnapshot();
}

std::uint64_t StreamPreamble::Request() { return open_snapshot_ != 0 ? 0 : StartSnapshot(); }

std::uint64_t StreamPreamble::StartSnapshot() {
  open_snapshot_ = ++last_snapshot_;
  parts_missing_ = parts_;
  total_ = 0;
  return open_snapshot_;
}

bool StreamPreamble::AddPart(std::uint64_t snapshot_id, std::vector<grpc::ByteBuffer>&& messages,
                             std::size_t connections) {
  if (snapshot_id == 0 || snapshot_id != open_snapshot_) return false;
  for (auto& message : messages) queue_.push_back(std::move(message));
  total_ += connections;
  if (--parts_missing_ > 0) return true;
  v1::EventBatch last;
  last.set_node_id(node_id_);
  auto* chunk = last.mutable_snapshot();
  chunk->set_snapshot_id(snapshot_id);
  chunk->set_last(true);
  chunk->set_total(total_);
  queue_.push_back(SerializeToBuffer(last));
  open_snapshot_ = 0;
  return true;
}

const grpc::ByteBuffer* StreamPreamble::StartWrite() {
  if (in_flight_ || queue_.empty()) return nullptr;
  in_flight_ = std::move(queue_.front());
  queue_.pop_front();
  return &*in_flight_;
}

}  // namespace wsgateway
