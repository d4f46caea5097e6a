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
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "gateway/backend/batch_policy.hpp"
#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {

// Wire bytes of consecutive `events` fields and how many events they hold.
// Sized by the batching policy (batch_policy.hpp): a chunk fits one batch.
struct EventChunk {
  std::string wire;
  std::size_t events = 0;

  bool empty() const { return events == 0; }
};

// Appends Event{connection_id, sequence, message{opcode, payload}}.
void AppendMessageEvent(EventChunk& chunk, std::string_view connection_id, std::uint64_t sequence, v1::Opcode opcode,
                        std::string_view payload);

// One request header for an OpenEvent: the name already in lower case.
struct HeaderField {
  std::string_view name;
  std::string_view value;
};

// The negotiated parts of an OpenEvent; empty strings are left out.
struct OpenNegotiation {
  std::string_view subprotocol;
  std::string_view extension;
  // Metadata from the handshake hook, as (key, value) pairs.
  std::span<const std::pair<std::string, std::string>> metadata;
  // Groups the handshake hook put the connection in.
  std::span<const std::string> groups;
};

// Appends Event{connection_id, sequence, open{path, query, headers,
// remote_address, subprotocol, extensions}}. `headers` must be sorted by name; fields with the same
// name become one map entry with their values joined by ", " in the order
// given (RFC 9110, section 5.3). Encoded directly: a map built per
// connection costs a dozen allocations.
void AppendOpenEvent(EventChunk& chunk, std::string_view connection_id, std::uint64_t sequence, std::string_view path,
                     std::string_view query, std::string_view remote_address, std::span<const HeaderField> headers,
                     const OpenNegotiation& negotiated = {});

// Appends any event (close events, and whatever is not on a hot path).
void AppendEvent(EventChunk& chunk, const v1::Event& event);

// The EventBatch header fields (batch_sequence, node_id) that go in front
// of the events; at most kBatchHeaderBytes.
std::string EncodeBatchHeader(std::uint64_t batch_sequence, std::string_view node_id);

}  // namespace wsgateway
