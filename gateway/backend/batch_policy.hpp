#pragma once
// The batching policy in one place: when a loop hands its events to a
// backend link, and how large the EventBatch messages the link seals may
// grow. Used by the loops (gateway/runtime/event_loop.cpp), the event
// encoding (event_wire.hpp) and the event log (event_log.hpp).
//
// A stream message costs the gateway, gRPC and the backend an order of
// magnitude more than an event in it, plus a thread wake on each side. Like
// Nagle's algorithm, with a clock: under load a loop hands its events over
// backend_batch_interval after its previous hand-over, so batches grow
// large. Traffic that only ever fills small batches, such as a few clients
// each waiting for its reply, would spend that interval waiting for
// nothing: its events go as soon as the backend has acknowledged everything
// sent before them.
//
// A loop's events go to the link as one chunk, and a chunk travels in one
// batch. The link seals chunks into batches of about kTargetBatchBytes,
// never past its batch limit (backend_max_message_bytes, or less once the
// backend refused a batch as too large).
//
// The measurements behind the numbers here are in docs/benchmarks.md
// ("What changed and what it bought").
//
// Constants and pure functions only: any thread.

#include <cstddef>

namespace wsgateway {

// Room an event batch needs around one message's payload: the batch's
// sequence, the event's id, sequence and opcode, and the length prefixes.
// A message of (backend_max_message_bytes - this) always fits a batch.
inline constexpr std::size_t kEventEnvelopeBytes = 1024;

// Batches below this many events do not wait out backend_batch_interval
// when the backend owes nothing. Request/response traffic of a few clients
// stays below it. Above it the interval holds: at the rates where batching
// pays (tens of events per millisecond), even batches clocked by
// acknowledgements alone are larger, and flushing on every acknowledgement
// would only add thread wakes.
inline constexpr std::size_t kSmallBatchEvents = 8;

// Batches grow to about this size under load (amortising the cost of a
// stream message), and never past the batch limit.
inline constexpr std::size_t kTargetBatchBytes = 1024 * 1024;

// The fields in front of a batch's events: batch_sequence (at most 11
// bytes) and node_id (18 bytes for FormatEpoch's 16 hex digits).
inline constexpr std::size_t kBatchHeaderBytes = 32;

// Whether a loop's chunk of `chunk_bytes` may take an event of about
// `event_bytes` and still travel in one batch; if not, the loop hands the
// chunk over first.
constexpr bool ChunkHasRoomFor(std::size_t chunk_bytes, std::size_t event_bytes, std::size_t max_message_bytes) {
  return chunk_bytes + event_bytes + kEventEnvelopeBytes <= max_message_bytes;
}

// Whether a hand-over of `events` events counts as small: the next one
// skips backend_batch_interval once the backend has acknowledged everything.
constexpr bool IsSmallBatch(std::size_t events) { return events < kSmallBatchEvents; }

// Whether a batch whose events take `batch_bytes` fits a stream message of
// `limit` bytes.
constexpr bool BatchFits(std::size_t batch_bytes, std::size_t limit) {
  return batch_bytes + kBatchHeaderBytes <= limit;
}

// Whether a batch being sealed with `batch_bytes` of events takes the next
// chunk of `chunk_bytes`. A batch's first chunk is always taken: a loop
// hands over chunks that fit one batch (ChunkHasRoomFor).
constexpr bool BatchTakesChunk(std::size_t batch_bytes, std::size_t chunk_bytes, std::size_t batch_limit) {
  return batch_bytes < kTargetBatchBytes && BatchFits(batch_bytes + chunk_bytes, batch_limit);
}

}  // namespace wsgateway
