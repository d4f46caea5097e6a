// Events encoded by hand on the message path must be exactly what the
// generated classes read back, and byte-for-byte what they would write.

#include "gateway/backend/event_wire.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wsgateway {
namespace {

v1::EventBatch Decode(std::uint64_t batch_sequence, const EventChunk& chunk, std::string_view node_id = {}) {
  v1::EventBatch batch;
  EXPECT_TRUE(batch.ParseFromString(EncodeBatchHeader(batch_sequence, node_id) + chunk.wire));
  return batch;
}

std::string GeneratedBytes(const v1::Event& event) {
  v1::EventBatch batch;
  *batch.add_events() = event;
  return batch.SerializeAsString();
}

v1::Event MessageEvent(const std::string& id, std::uint64_t sequence, v1::Opcode opcode, const std::string& payload) {
  v1::Event event;
  event.set_connection_id(id);
  event.set_sequence(sequence);
  event.mutable_message()->set_opcode(opcode);
  event.mutable_message()->set_payload(payload);
  return event;
}

TEST(EventWireTest, MessageEventMatchesTheGeneratedSerializer) {
  const std::string large(70000, '\xfe');  // a three-byte length prefix
  for (const auto& [id, sequence, opcode, payload] :
       {std::tuple{std::string("00000000000000ab-1-2"), std::uint64_t{1}, v1::OPCODE_TEXT, std::string("hello")},
        std::tuple{std::string("00000000000000ab-0-ffff"), std::uint64_t{1} << 40, v1::OPCODE_BINARY, large},
        std::tuple{std::string("x"), std::uint64_t{300}, v1::OPCODE_TEXT, std::string()},
        std::tuple{std::string(), std::uint64_t{0}, v1::OPCODE_UNSPECIFIED, std::string("\0\1", 2)}}) {
    EventChunk chunk;
    AppendMessageEvent(chunk, id, sequence, opcode, payload);
    EXPECT_EQ(chunk.events, 1u);
    EXPECT_EQ(chunk.wire, GeneratedBytes(MessageEvent(id, sequence, opcode, payload)));
  }
}

TEST(EventWireTest, ChunksConcatenateIntoOneBatchInOrder) {
  v1::Event open;
  open.set_connection_id("c-1");
  open.set_sequence(1);
  open.mutable_open()->set_path("/chat");
  (*open.mutable_open()->mutable_headers())["host"] = "example";
  v1::Event close;
  close.set_connection_id("c-1");
  close.set_sequence(3);
  close.mutable_close()->set_code(1000);
  close.mutable_close()->set_closed_by(v1::CLOSED_BY_CLIENT);

  EventChunk first;
  AppendEvent(first, open);
  AppendMessageEvent(first, "c-1", 2, v1::OPCODE_TEXT, "hi");
  EventChunk second;
  AppendEvent(second, close);
  EventChunk joined{first.wire + second.wire, first.events + second.events};

  const auto batch = Decode(42, joined);
  EXPECT_EQ(batch.batch_sequence(), 42u);
  ASSERT_EQ(batch.events_size(), 3);
  EXPECT_EQ(joined.events, 3u);
  EXPECT_EQ(batch.events(0).open().path(), "/chat");
  EXPECT_EQ(batch.events(0).open().headers().at("host"), "example");
  EXPECT_EQ(batch.events(1).message().payload(), "hi");
  EXPECT_EQ(batch.events(1).sequence(), 2u);
  EXPECT_EQ(batch.events(2).close().code(), 1000u);
  EXPECT_EQ(batch.events(2).close().closed_by(), v1::CLOSED_BY_CLIENT);
}

// Open events are encoded by hand too: every field the generated parser
// reads back, headers with the same name joined in order.
TEST(EventWireTest, OpenEventCarriesPathQueryAddressAndJoinedHeaders) {
  const std::vector<HeaderField> headers = {{"accept", "a"},   {"cookie", "x=1"},   {"cookie", "y=2"},
                                            {"cookie", "z=3"}, {"host", "example"}, {"sec-websocket-key", ""}};
  EventChunk chunk;
  AppendOpenEvent(chunk, "00000000000000ab-0-1", 1, "/chat", "room=7", "127.0.0.1:5555", headers);
  const auto batch = Decode(9, chunk);
  ASSERT_EQ(batch.events_size(), 1);
  const auto& event = batch.events(0);
  EXPECT_EQ(event.connection_id(), "00000000000000ab-0-1");
  EXPECT_EQ(event.open().node_id(), "00000000000000ab");
  EXPECT_EQ(event.sequence(), 1u);
  ASSERT_TRUE(event.has_open());
  EXPECT_EQ(event.open().path(), "/chat");
  EXPECT_EQ(event.open().query(), "room=7");
  EXPECT_EQ(event.open().remote_address(), "127.0.0.1:5555");
  const auto& map = event.open().headers();
  EXPECT_EQ(map.size(), 4u);
  EXPECT_EQ(map.at("accept"), "a");
  EXPECT_EQ(map.at("cookie"), "x=1, y=2, z=3");
  EXPECT_EQ(map.at("host"), "example");
  EXPECT_EQ(map.at("sec-websocket-key"), "");
}

TEST(EventWireTest, OpenEventCarriesWhatWasNegotiatedAndTheMetadata) {
  const std::vector<std::pair<std::string, std::string>> metadata = {{"tenant", "t1"}, {"user", "ann"}, {"x", ""}};
  const std::vector<std::string> groups = {"lobby", "room \xc3\xa9"};
  EventChunk chunk;
  AppendOpenEvent(chunk, "c", 1, "/", "", "", {}, {"chat.v1", "permessage-deflate", metadata, groups});
  const auto batch = Decode(1, chunk);
  ASSERT_EQ(batch.events_size(), 1);
  const auto& open = batch.events(0).open();
  EXPECT_EQ(open.subprotocol(), "chat.v1");
  ASSERT_EQ(open.extensions_size(), 1);
  EXPECT_EQ(open.extensions(0), "permessage-deflate");
  EXPECT_EQ(open.metadata().size(), 3u);
  EXPECT_EQ(open.metadata().at("tenant"), "t1");
  EXPECT_EQ(open.metadata().at("user"), "ann");
  EXPECT_EQ(open.metadata().at("x"), "");
  ASSERT_EQ(open.groups_size(), 2);
  EXPECT_EQ(open.groups(0), "lobby");
  EXPECT_EQ(open.groups(1), "room \xc3\xa9");
}

TEST(EventWireTest, OpenEventWithNothingButThePathIsStillAnOpenEvent) {
  EventChunk chunk;
  AppendOpenEvent(chunk, "c", 0, "", "", "", {});
  const auto batch = Decode(1, chunk);
  ASSERT_EQ(batch.events_size(), 1);
  EXPECT_TRUE(batch.events(0).has_open());
  EXPECT_TRUE(batch.events(0).open().headers().empty());
  EXPECT_TRUE(batch.events(0).open().node_id().empty());
}

TEST(EventWireTest, BatchHeaderRoundTripsWithinItsAllowance) {
  const std::string node_id = "0123456789abcdef";
  for (const std::uint64_t sequence : {std::uint64_t{1}, std::uint64_t{127}, std::uint64_t{128}, ~std::uint64_t{0}}) {
    EXPECT_EQ(Decode(sequence, EventChunk{}).batch_sequence(), sequence);
    const auto batch = Decode(sequence, EventChunk{}, node_id);
    EXPECT_EQ(batch.batch_sequence(), sequence);
    EXPECT_EQ(batch.node_id(), node_id);
    EXPECT_LE(EncodeBatchHeader(sequence, node_id).size(), kBatchHeaderBytes);
  }
}

}  // namespace
}  // namespace wsgateway
