#pragma once
// Events in their wire form. A loop appends each event straight into one
// buffer as an `events` field of EventBatch (field 2, length-delimited), so
// the bytes of several loop passes concatenate into a valid EventBatch
// without building, moving or destroying an Event object per message.
// Message events, the hot path, are encoded field by field from the
// session's own buffers (no copy of the payload besides the one into the
// wire buffer); the rarer open and close events go through the generated
// classes.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {

// Wire bytes of consecutive `events` fields and how many events they hold.
struct EventChunk {
  std::string wire;
  std::size_t events = 0;

  bool empty() const { return events == 0; }
};

// Appends Event{connection_id, sequence, message{opcode, payload}}.
void AppendMessageEvent(EventChunk& chunk, std::string_view connection_id, std::uint64_t sequence, v1::Opcode opcode,
                        std::string_view payload);

// Appends any event (open and close events).
void AppendEvent(EventChunk& chunk, const v1::Event& event);

// The EventBatch header field (batch_sequence) that goes with the events.
std::string EncodeBatchSequence(std::uint64_t batch_sequence);

}  // namespace wsgateway
