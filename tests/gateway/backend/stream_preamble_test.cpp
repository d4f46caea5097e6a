// The hello and snapshots a stream carries before the event log's batches:
// what is queued, when the log must wait, and that parts of a snapshot a
// stream no longer wants are dropped.

#include "gateway/backend/stream_preamble.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace wsgateway {
namespace {

v1::EventBatch Decode(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  EXPECT_TRUE(buffer.Dump(&slices).ok());
  std::string bytes;
  for (const auto& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  v1::EventBatch message;
  EXPECT_TRUE(message.ParseFromString(bytes));
  return message;
}

// Writes out everything queued, in order.
std::vector<v1::EventBatch> WriteAll(StreamPreamble& preamble) {
  std::vector<v1::EventBatch> written;
  while (const auto* buffer = preamble.StartWrite()) {
    written.push_back(Decode(*buffer));
    preamble.FinishWrite();
  }
  return written;
}

std::vector<v1::ClientInfo> Connections(int count, const std::string& prefix) {
  std::vector<v1::ClientInfo> connections(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i)
    connections[static_cast<std::size_t>(i)].set_connection_id(prefix + std::to_string(i));
  return connections;
}

v1::EventBatch Hello() {
  v1::EventBatch hello;
  hello.set_node_id("n1");
  hello.mutable_hello()->set_node_id("n1");
  return hello;
}

TEST(StreamPreambleTest, HelloThenEachLoopsPartThenTheLastChunk) {
  StreamPreamble preamble(2, "n1");
  const auto id = preamble.BeginStream(Hello());
  EXPECT_EQ(id, 1u);
  EXPECT_TRUE(preamble.holds_events());
  auto a = Connections(3, "a");
  EXPECT_TRUE(preamble.AddPart(id, EncodeSnapshotChunks(id, "n1", a, 1 << 20), 3));
  EXPECT_TRUE(preamble.holds_events()) << "one loop has not answered yet";
  EXPECT_EQ(preamble.open_snapshot(), id);
  auto b = Connections(2, "b");
  EXPECT_TRUE(preamble.AddPart(id, EncodeSnapshotChunks(id, "n1", b, 1 << 20), 2));
  EXPECT_EQ(preamble.open_snapshot(), 0u);
  const auto written = WriteAll(preamble);
  EXPECT_FALSE(preamble.holds_events());
  ASSERT_EQ(written.size(), 4u);
  EXPECT_TRUE(written[0].has_hello());
  EXPECT_EQ(written[1].snapshot().connections_size(), 3);
  EXPECT_EQ(written[2].snapshot().connections_size(), 2);
  EXPECT_TRUE(written[3].snapshot().last());
  EXPECT_EQ(written[3].snapshot().total(), 5u);
  for (const auto& message : written) {
    EXPECT_EQ(message.batch_sequence(), 0u);
    EXPECT_EQ(message.node_id(), "n1");
  }
}

TEST(StreamPreambleTest, ARequestWhileASnapshotIsOpenIsAnsweredByIt) {
  StreamPreamble preamble(1, "n1");
  const auto first = preamble.BeginStream(Hello());
  EXPECT_EQ(preamble.Request(), 0u);
  EXPECT_TRUE(preamble.AddPart(first, {}, 0));
  WriteAll(preamble);
  EXPECT_EQ(preamble.Request(), first + 1);
  EXPECT_TRUE(preamble.holds_events());
}

TEST(StreamPreambleTest, PartsOfAnEarlierStreamsSnapshotAreDropped) {
  StreamPreamble preamble(1, "n1");
  const auto old_id = preamble.BeginStream(Hello());
  const auto new_id = preamble.BeginStream(Hello());
  EXPECT_NE(old_id, new_id);
  auto stale = Connections(1, "old");
  EXPECT_FALSE(preamble.AddPart(old_id, EncodeSnapshotChunks(old_id, "n1", stale, 1 << 20), 1));
  EXPECT_TRUE(preamble.AddPart(new_id, {}, 0));
  const auto written = WriteAll(preamble);
  ASSERT_EQ(written.size(), 2u) << "one hello (the first stream's was dropped) and the last chunk";
  EXPECT_TRUE(written[0].has_hello());
  EXPECT_EQ(written[1].snapshot().snapshot_id(), new_id);
  EXPECT_EQ(written[1].snapshot().total(), 0u);
}

TEST(StreamPreambleTest, ChunksAreBoundedInCountAndBytes) {
  auto many = Connections(2500, "c");
  const auto by_count = EncodeSnapshotChunks(1, "n1", many, 1 << 30);
  ASSERT_EQ(by_count.size(), 3u);
  EXPECT_EQ(Decode(by_count[0]).snapshot().connections_size(), 1000);
  EXPECT_EQ(Decode(by_count[2]).snapshot().connections_size(), 500);
  auto big = Connections(10, "d");
  for (auto& info : big) info.set_query(std::string(1000, 'q'));
  const auto by_bytes = EncodeSnapshotChunks(1, "n1", big, 2500);
  EXPECT_EQ(by_bytes.size(), 5u);
  for (const auto& buffer : by_bytes) EXPECT_LE(buffer.Length(), 2500u + 64);
}

TEST(StreamPreambleTest, AWriteInFlightSurvivesANewStream) {
  StreamPreamble preamble(1, "n1");
  preamble.BeginStream(Hello());
  const auto* in_flight = preamble.StartWrite();
  ASSERT_NE(in_flight, nullptr);
  preamble.BeginStream(Hello());
  EXPECT_TRUE(Decode(*in_flight).has_hello()) << "the buffer gRPC is writing must stay valid";
  EXPECT_EQ(preamble.StartWrite(), nullptr) << "one write at a time";
  preamble.FinishWrite();
  EXPECT_NE(preamble.StartWrite(), nullptr);
}

}  // namespace
}  // namespace wsgateway
