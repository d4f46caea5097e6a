#pragma once
// The backend link's log of events. Loops hand over chunks (consecutive
// EventBatch `events` fields, event_wire.hpp); the log seals them, without
// copying their bytes, into numbered EventBatch messages as the stream asks
// for the next write, and holds every batch until the backend acknowledges
// it, so the batches unacknowledged when a stream broke are written again,
// in order, on the next one (Rewind). Everything held counts against
// backend_buffer_bytes: above it the log is paused(), and it is resumed
// once at most half of it is held. Batches held too long, or larger than
// the backend accepts, are given up on.
//
// Pure and single-threaded: no gRPC calls, no timers, no clock. The caller
// (BackendLink) holds its mutex around every call and passes the time in.
// grpc::Slice and grpc::ByteBuffer serve only as reference-counted byte
// containers: a sealed batch refers to the loops' chunks, and gRPC may
// still hold a reference after the write completed.

#include <grpcpp/support/byte_buffer.h>
#include <grpcpp/support/slice.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <utility>
#include <vector>

namespace wsgateway {

class EventLog {
 public:
  using Clock = std::chrono::steady_clock;

  // `buffer_bytes`: backend_buffer_bytes; `batch_limit`: the largest stream
  // message, backend_max_message_bytes; `node_id`: what every batch names
  // as its node (EventBatch.node_id).
  EventLog(std::size_t buffer_bytes, std::size_t batch_limit, std::string node_id = {});

  // Adds a loop's chunk of `events` events.
  void Append(grpc::Slice chunk, std::size_t events, Clock::time_point now);

  // The batch to write next and marks it in flight: the oldest batch not
  // yet written on this stream, else a new one sealed from the waiting
  // chunks. Null while a write is in flight or nothing is waiting. The
  // buffer stays put until FinishWrite.
  const grpc::ByteBuffer* StartWrite(Clock::time_point now);
  // The write in flight ended. Returns how many events its batch held
  // (0 if the batch is no longer held).
  std::size_t FinishWrite();
  bool write_in_flight() const { return write_in_flight_; }

  enum class Ack {
    kAdvanced,
    // At or below an earlier acknowledgement: nothing changes.
    kDuplicate,
    // Past the last batch sealed, which no stream was given: taken as
    // acknowledging every batch sealed so far.
    kPastSent,
  };
  // The backend processed every batch up to `sequence`: they are dropped,
  // except the batch in flight, which goes once its write ended.
  Ack Acknowledge(std::uint64_t sequence);

  // For a new stream: writing starts again from the oldest unacknowledged
  // batch.
  void Rewind();

  // Events given up on, and their connections (open and message events;
  // in batch order, possibly repeated).
  struct GivenUp {
    std::vector<std::string> connections;
    std::size_t events = 0;
  };
  // Gives up events held since before `cutoff`: waiting chunks are sealed
  // first, then the oldest batches go (not one in flight).
  GivenUp Expire(Clock::time_point cutoff, Clock::time_point now);
  // The backend refused a batch as larger than `limit` bytes: gives up the
  // batches that do not fit it, seals later batches to it, and rewinds.
  GivenUp GiveUpLargerThan(std::size_t limit);
  std::size_t largest_batch_bytes() const;

  // Above backend_buffer_bytes held; until at most half of it is held.
  bool paused() const { return paused_; }
  // Every event appended so far is acknowledged (or given up on).
  bool settled() const;
  // Nothing held: no batch, no waiting chunk.
  bool empty() const { return batches_.empty() && waiting_.empty(); }

  std::size_t held_bytes() const { return held_bytes_; }
  std::size_t held_events() const { return held_events_; }
  // Sealed batches held (written or not).
  std::size_t batches() const { return batches_.size(); }
  std::uint64_t last_sealed() const { return next_sequence_ - 1; }
  // The highest batch the backend acknowledged (StreamHello.acknowledged).
  std::uint64_t acknowledged() const { return acknowledged_; }
  // Events appended since the log was made. Every event appended before
  // the n-th is out of the log (acknowledged or given up) once
  // appended_events() - held_events() >= n, unless a batch in the middle
  // was given up as too large.
  std::uint64_t appended_events() const { return appended_events_; }
  // A node that rejoined under a new id names it on later batches.
  void set_node_id(std::string node_id) { node_id_ = std::move(node_id); }
  std::size_t batch_limit() const { return batch_limit_; }

 private:
  // One EventBatch in wire form: the batch_sequence field followed by the
  // events of the chunks sealed into it, as slices that own their bytes.
  struct Batch {
    std::uint64_t sequence = 0;
    grpc::ByteBuffer wire;
    std::size_t events = 0;
    std::size_t bytes = 0;
    Clock::time_point oldest_event_at;
  };
  struct Chunk {
    grpc::Slice slice;
    std::size_t events;
  };

  // The oldest batch held from `sequence` on, or end().
  std::deque<Batch>::iterator FirstFrom(std::uint64_t sequence);
  void Seal(Clock::time_point now);
  // Drops acknowledged batches from the front, up to the one in flight.
  void Trim();
  void GiveUp(const Batch& batch, GivenUp& given_up);
  void UpdatePause();
  std::uint64_t first_held() const { return batches_.empty() ? next_sequence_ : batches_.front().sequence; }
  bool InFlight(const Batch& batch) const { return write_in_flight_ && batch.sequence == in_flight_sequence_; }

  const std::size_t buffer_bytes_;
  // Largest batch sealed: backend_max_message_bytes, or less once the
  // backend refused a batch as too large.
  std::size_t batch_limit_;
  std::string node_id_;
  std::deque<Batch> batches_;
  std::vector<Chunk> waiting_;
  Clock::time_point waiting_since_;
  std::size_t held_bytes_ = 0;
  std::size_t held_events_ = 0;
  std::uint64_t appended_events_ = 0;
  std::uint64_t next_sequence_ = 1;
  // The stream has been given every batch before this one.
  std::uint64_t next_send_sequence_ = 1;
  std::uint64_t acknowledged_ = 0;
  bool write_in_flight_ = false;
  std::uint64_t in_flight_sequence_ = 0;
  bool paused_ = false;
};

}  // namespace wsgateway
