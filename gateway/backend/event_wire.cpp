#include "gateway/backend/event_wire.hpp"

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/wire_format_lite.h>

namespace wsgateway {
namespace {

using google::protobuf::internal::WireFormatLite;
using google::protobuf::io::CodedOutputStream;

constexpr int kEventsField = v1::EventBatch::kEventsFieldNumber;
constexpr int kBatchSequenceField = v1::EventBatch::kBatchSequenceFieldNumber;

std::uint32_t Tag(int field, WireFormatLite::WireType type) { return WireFormatLite::MakeTag(field, type); }

std::size_t LengthDelimitedSize(int field, std::size_t length) {
  return CodedOutputStream::VarintSize32(Tag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED)) +
         CodedOutputStream::VarintSize32(static_cast<std::uint32_t>(length)) + length;
}

std::size_t VarintFieldSize(int field, std::uint64_t value) {
  return CodedOutputStream::VarintSize32(Tag(field, WireFormatLite::WIRETYPE_VARINT)) +
         CodedOutputStream::VarintSize64(value);
}

std::uint8_t* WriteLengthPrefix(int field, std::size_t length, std::uint8_t* target) {
  target = CodedOutputStream::WriteTagToArray(Tag(field, WireFormatLite::WIRETYPE_LENGTH_DELIMITED), target);
  return CodedOutputStream::WriteVarint32ToArray(static_cast<std::uint32_t>(length), target);
}

std::uint8_t* WriteBytes(int field, std::string_view bytes, std::uint8_t* target) {
  target = WriteLengthPrefix(field, bytes.size(), target);
  return CodedOutputStream::WriteRawToArray(bytes.data(), static_cast<int>(bytes.size()), target);
}

std::uint8_t* WriteVarint(int field, std::uint64_t value, std::uint8_t* target) {
  target = CodedOutputStream::WriteTagToArray(Tag(field, WireFormatLite::WIRETYPE_VARINT), target);
  return CodedOutputStream::WriteVarint64ToArray(value, target);
}

// Grows `out` by `size` bytes and returns where they start.
std::uint8_t* Extend(std::string& out, std::size_t size) {
  const std::size_t start = out.size();
  out.resize(start + size);
  return reinterpret_cast<std::uint8_t*>(out.data() + start);
}

// Appends the `events` field of one Event with its connection_id and
// sequence, and the length prefix of its oneof field `kind` (`kind_size`
// bytes); returns where the oneof's content goes.
std::uint8_t* AppendEnvelope(EventChunk& chunk, std::string_view connection_id, std::uint64_t sequence, int kind,
                             std::size_t kind_size) {
  std::size_t event_size = LengthDelimitedSize(kind, kind_size);
  if (!connection_id.empty()) {
    event_size += LengthDelimitedSize(v1::Event::kConnectionIdFieldNumber, connection_id.size());
  }
  if (sequence != 0) event_size += VarintFieldSize(v1::Event::kSequenceFieldNumber, sequence);
  std::uint8_t* target = Extend(chunk.wire, LengthDelimitedSize(kEventsField, event_size));
  target = WriteLengthPrefix(kEventsField, event_size, target);
  if (!connection_id.empty()) target = WriteBytes(v1::Event::kConnectionIdFieldNumber, connection_id, target);
  if (sequence != 0) target = WriteVarint(v1::Event::kSequenceFieldNumber, sequence, target);
  ++chunk.events;
  return WriteLengthPrefix(kind, kind_size, target);
}

}  // namespace

void AppendMessageEvent(EventChunk& chunk, std::string_view connection_id, std::uint64_t sequence, v1::Opcode opcode,
                        std::string_view payload) {
  // Proto3 leaves fields with default values off the wire; so do we, so the
  // bytes match what the generated serializer would write.
  std::size_t message_size = LengthDelimitedSize(v1::MessageEvent::kPayloadFieldNumber, payload.size());
  if (payload.empty()) message_size = 0;
  if (opcode != 0) message_size += VarintFieldSize(v1::MessageEvent::kOpcodeFieldNumber, opcode);
  std::uint8_t* target = AppendEnvelope(chunk, connection_id, sequence, v1::Event::kMessageFieldNumber, message_size);
  if (opcode != 0) target = WriteVarint(v1::MessageEvent::kOpcodeFieldNumber, opcode, target);
  if (!payload.empty()) WriteBytes(v1::MessageEvent::kPayloadFieldNumber, payload, target);
}

namespace {

// Calls `entry(name, first, last)` for each run of equal names.
template <typename Entry>
void ForEachHeaderEntry(std::span<const HeaderField> headers, Entry&& entry) {
  for (std::size_t first = 0; first < headers.size();) {
    std::size_t last = first + 1;
    while (last < headers.size() && headers[last].name == headers[first].name) ++last;
    entry(headers[first].name, first, last);
    first = last;
  }
}

std::size_t JoinedSize(std::span<const HeaderField> headers, std::size_t first, std::size_t last) {
  std::size_t size = 2 * (last - first - 1);
  for (std::size_t i = first; i < last; ++i) size += headers[i].value.size();
  return size;
}

std::size_t HeaderEntrySize(std::string_view name, std::size_t value_size) {
  return LengthDelimitedSize(1, name.size()) + LengthDelimitedSize(2, value_size);
}

std::size_t StringFieldSize(int field, std::string_view value) {
  return value.empty() ? 0 : LengthDelimitedSize(field, value.size());
}

std::uint8_t* WriteStringField(int field, std::string_view value, std::uint8_t* target) {
  return value.empty() ? target : WriteBytes(field, value, target);
}

}  // namespace

void AppendOpenEvent(EventChunk& chunk, std::string_view connection_id, std::uint64_t sequence, std::string_view path,
                     std::string_view query, std::string_view remote_address, std::span<const HeaderField> headers,
                     const OpenNegotiation& negotiated) {
  constexpr int kHeaders = v1::OpenEvent::kHeadersFieldNumber;
  constexpr int kExtensions = v1::OpenEvent::kExtensionsFieldNumber;
  // The owner's node id leads the connection id (connection_id.hpp).
  const auto dash = connection_id.find('-');
  const std::string_view node_id = dash == std::string_view::npos ? std::string_view{} : connection_id.substr(0, dash);
  std::size_t open_size = StringFieldSize(v1::OpenEvent::kNodeIdFieldNumber, node_id) +
                          StringFieldSize(v1::OpenEvent::kPathFieldNumber, path) +
                          StringFieldSize(v1::OpenEvent::kQueryFieldNumber, query) +
                          StringFieldSize(v1::OpenEvent::kRemoteAddressFieldNumber, remote_address) +
                          StringFieldSize(v1::OpenEvent::kSubprotocolFieldNumber, negotiated.subprotocol);
  // Repeated fields have no default to skip: an empty extension is absent.
  if (!negotiated.extension.empty()) open_size += LengthDelimitedSize(kExtensions, negotiated.extension.size());
  constexpr int kMetadata = v1::OpenEvent::kMetadataFieldNumber;
  for (const auto& [key, value] : negotiated.metadata) {
    open_size += LengthDelimitedSize(kMetadata, HeaderEntrySize(key, value.size()));
  }
  constexpr int kGroups = v1::OpenEvent::kGroupsFieldNumber;
  for (const auto& group : negotiated.groups) open_size += LengthDelimitedSize(kGroups, group.size());
  ForEachHeaderEntry(headers, [&](std::string_view name, std::size_t first, std::size_t last) {
    open_size += LengthDelimitedSize(kHeaders, HeaderEntrySize(name, JoinedSize(headers, first, last)));
  });
  std::uint8_t* target = AppendEnvelope(chunk, connection_id, sequence, v1::Event::kOpenFieldNumber, open_size);
  target = WriteStringField(v1::OpenEvent::kPathFieldNumber, path, target);
  target = WriteStringField(v1::OpenEvent::kQueryFieldNumber, query, target);
  ForEachHeaderEntry(headers, [&](std::string_view name, std::size_t first, std::size_t last) {
    const std::size_t value_size = JoinedSize(headers, first, last);
    target = WriteLengthPrefix(kHeaders, HeaderEntrySize(name, value_size), target);
    target = WriteBytes(1, name, target);
    target = WriteLengthPrefix(2, value_size, target);
    for (std::size_t i = first; i < last; ++i) {
      if (i != first) target = CodedOutputStream::WriteRawToArray(", ", 2, target);
      const auto value = headers[i].value;
      target = CodedOutputStream::WriteRawToArray(value.data(), static_cast<int>(value.size()), target);
    }
  });
  target = WriteStringField(v1::OpenEvent::kRemoteAddressFieldNumber, remote_address, target);
  target = WriteStringField(v1::OpenEvent::kSubprotocolFieldNumber, negotiated.subprotocol, target);
  if (!negotiated.extension.empty()) target = WriteBytes(kExtensions, negotiated.extension, target);
  // Map entries are messages {key = 1, value = 2}, like the headers.
  for (const auto& [key, value] : negotiated.metadata) {
    target = WriteLengthPrefix(kMetadata, HeaderEntrySize(key, value.size()), target);
    target = WriteBytes(1, key, target);
    target = WriteBytes(2, value, target);
  }
  target = WriteStringField(v1::OpenEvent::kNodeIdFieldNumber, node_id, target);
  for (const auto& group : negotiated.groups) target = WriteBytes(kGroups, group, target);
}

void AppendEvent(EventChunk& chunk, const v1::Event& event) {
  const std::size_t size = event.ByteSizeLong();
  std::uint8_t* target = Extend(chunk.wire, LengthDelimitedSize(kEventsField, size));
  target = WriteLengthPrefix(kEventsField, size, target);
  event.SerializeWithCachedSizesToArray(target);
  ++chunk.events;
}

std::string EncodeBatchHeader(std::uint64_t batch_sequence, std::string_view node_id) {
  constexpr int kNodeIdField = v1::EventBatch::kNodeIdFieldNumber;
  std::string out;
  std::uint8_t* target =
      Extend(out, VarintFieldSize(kBatchSequenceField, batch_sequence) + StringFieldSize(kNodeIdField, node_id));
  target = WriteVarint(kBatchSequenceField, batch_sequence, target);
  WriteStringField(kNodeIdField, node_id, target);
  return out;
}

}  // namespace wsgateway
