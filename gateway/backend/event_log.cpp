#include "gateway/backend/event_log.hpp"

#include <algorithm>
#include <utility>

#include "gateway/backend/batch_policy.hpp"
#include "gateway/backend/event_wire.hpp"
#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {
namespace {

// Decodes a held batch again; only for the rare paths that need its events.
v1::EventBatch DecodeBatch(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  if (buffer.Dump(&slices).ok()) {
    for (const auto& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  }
  v1::EventBatch batch;
  batch.ParseFromString(bytes);
  return batch;
}

}  // namespace

EventLog::EventLog(std::size_t buffer_bytes, std::size_t batch_limit, std::string node_id)
    : buffer_bytes_(buffer_bytes), batch_limit_(batch_limit), node_id_(std::move(node_id)) {}

void EventLog::Append(grpc::Slice chunk, std::size_t events, Clock::time_point now) {
  if (waiting_.empty()) waiting_since_ = now;
  held_bytes_ += chunk.size();
  held_events_ += events;
  appended_events_ += events;
  waiting_.push_back({std::move(chunk), events});
  UpdatePause();
}

const grpc::ByteBuffer* EventLog::StartWrite(Clock::time_point now) {
  if (write_in_flight_) return nullptr;
  auto next = FirstFrom(next_send_sequence_);
  if (next == batches_.end()) {
    if (waiting_.empty()) return nullptr;
    Seal(now);
    next = std::prev(batches_.end());
  }
  write_in_flight_ = true;
  in_flight_sequence_ = next->sequence;
  next_send_sequence_ = next->sequence + 1;
  return &next->wire;
}

std::size_t EventLog::FinishWrite() {
  std::size_t events = 0;
  const auto written = FirstFrom(in_flight_sequence_);
  if (written != batches_.end() && written->sequence == in_flight_sequence_) events = written->events;
  write_in_flight_ = false;
  Trim();
  UpdatePause();
  return events;
}

EventLog::Ack EventLog::Acknowledge(std::uint64_t sequence) {
  if (sequence <= acknowledged_) return Ack::kDuplicate;
  acknowledged_ = std::min(sequence, last_sealed());
  Trim();
  UpdatePause();
  return sequence > last_sealed() ? Ack::kPastSent : Ack::kAdvanced;
}

std::deque<EventLog::Batch>::iterator EventLog::FirstFrom(std::uint64_t sequence) {
  // Usually the sequences held are consecutive, but giving up oversized
  // batches can leave gaps.
  return std::partition_point(batches_.begin(), batches_.end(),
                              [sequence](const Batch& batch) { return batch.sequence < sequence; });
}

void EventLog::Rewind() { next_send_sequence_ = first_held(); }

void EventLog::Seal(Clock::time_point now) {
  Batch batch;
  batch.sequence = next_sequence_++;
  batch.oldest_event_at = waiting_since_;
  std::vector<grpc::Slice> slices;
  slices.push_back(grpc::Slice(EncodeBatchHeader(batch.sequence, node_id_)));
  std::size_t taken = 0;
  while (taken < waiting_.size() &&
         (taken == 0 || BatchTakesChunk(batch.bytes, waiting_[taken].slice.size(), batch_limit_))) {
    batch.bytes += waiting_[taken].slice.size();
    batch.events += waiting_[taken].events;
    slices.push_back(std::move(waiting_[taken].slice));
    ++taken;
  }
  batch.wire = grpc::ByteBuffer(slices.data(), slices.size());
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(taken));
  if (!waiting_.empty()) waiting_since_ = now;
  batches_.push_back(std::move(batch));
}

void EventLog::Trim() {
  // The batch in flight stays: gRPC may still read its buffer.
  while (!batches_.empty() && batches_.front().sequence <= acknowledged_ && !InFlight(batches_.front())) {
    held_bytes_ -= std::min(held_bytes_, batches_.front().bytes);
    held_events_ -= std::min(held_events_, batches_.front().events);
    batches_.pop_front();
  }
}

bool EventLog::settled() const {
  // An acknowledged batch may still be the write in flight, so the batches
  // held cannot tell; the sequence numbers can.
  return waiting_.empty() && (batches_.empty() || acknowledged_ == last_sealed());
}

EventLog::GivenUp EventLog::Expire(Clock::time_point cutoff, Clock::time_point now) {
  GivenUp given_up;
  while (!waiting_.empty() && waiting_since_ < cutoff) Seal(now);
  while (!batches_.empty() && batches_.front().oldest_event_at < cutoff && !InFlight(batches_.front())) {
    GiveUp(batches_.front(), given_up);
    batches_.pop_front();
  }
  if (given_up.events == 0) return given_up;
  next_send_sequence_ = std::max(next_send_sequence_, first_held());
  UpdatePause();
  return given_up;
}

std::size_t EventLog::largest_batch_bytes() const {
  std::size_t largest = 0;
  for (const auto& batch : batches_) largest = std::max(largest, batch.bytes);
  return largest;
}

EventLog::GivenUp EventLog::GiveUpLargerThan(std::size_t limit) {
  GivenUp given_up;
  batch_limit_ = std::max<std::size_t>(std::min(batch_limit_, limit), 1);
  std::deque<Batch> kept;
  for (auto& batch : batches_) {
    if (BatchFits(batch.bytes, limit)) {
      kept.push_back(std::move(batch));
      continue;
    }
    GiveUp(batch, given_up);
  }
  batches_ = std::move(kept);
  Rewind();
  UpdatePause();
  return given_up;
}

void EventLog::GiveUp(const Batch& batch, GivenUp& given_up) {
  const v1::EventBatch decoded = DecodeBatch(batch.wire);
  for (const auto& event : decoded.events()) {
    if (!event.has_close()) given_up.connections.push_back(event.connection_id());
  }
  given_up.events += batch.events;
  held_bytes_ -= std::min(held_bytes_, batch.bytes);
  held_events_ -= std::min(held_events_, batch.events);
}

void EventLog::UpdatePause() {
  if (!paused_ && held_bytes_ > buffer_bytes_) {
    paused_ = true;
  } else if (paused_ && held_bytes_ <= buffer_bytes_ / 2) {
    paused_ = false;
  }
}

}  // namespace wsgateway
