// The event log on its own: sealing, acknowledgement, replay, giving up
// and the watermarks, with the time passed in.

#include "gateway/backend/event_log.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "gateway/backend/batch_policy.hpp"
#include "gateway/backend/event_wire.hpp"

namespace wsgateway {
namespace {

using ::testing::ElementsAre;
using ::testing::UnorderedElementsAre;
using Clock = EventLog::Clock;
using namespace std::chrono_literals;

constexpr std::size_t kLargeBuffer = 64 * 1024 * 1024;
constexpr std::size_t kLargeLimit = 4 * 1024 * 1024;

const Clock::time_point t0 = Clock::time_point{} + 1h;

// A loop's chunk: one message event per connection, `payload_bytes` each.
EventChunk Chunk(const std::vector<std::string>& connections, std::size_t payload_bytes = 10) {
  EventChunk chunk;
  for (const auto& id : connections) {
    AppendMessageEvent(chunk, id, 1, v1::OPCODE_TEXT, std::string(payload_bytes, 'x'));
  }
  return chunk;
}

void Append(EventLog& log, EventChunk chunk, Clock::time_point now = t0) {
  const std::size_t events = chunk.events;
  log.Append(grpc::Slice(chunk.wire), events, now);
}

v1::EventBatch Decode(const grpc::ByteBuffer* buffer) {
  std::vector<grpc::Slice> slices;
  std::string bytes;
  EXPECT_TRUE(buffer->Dump(&slices).ok());
  for (const auto& slice : slices) bytes.append(reinterpret_cast<const char*>(slice.begin()), slice.size());
  v1::EventBatch batch;
  EXPECT_TRUE(batch.ParseFromString(bytes));
  return batch;
}

std::vector<std::string> Connections(const v1::EventBatch& batch) {
  std::vector<std::string> ids;
  for (const auto& event : batch.events()) ids.push_back(event.connection_id());
  return ids;
}

// Writes the next batch to completion; returns its sequence (0 if none).
std::uint64_t WriteNext(EventLog& log, Clock::time_point now = t0) {
  const grpc::ByteBuffer* buffer = log.StartWrite(now);
  if (buffer == nullptr) return 0;
  const std::uint64_t sequence = Decode(buffer).batch_sequence();
  log.FinishWrite();
  return sequence;
}

std::set<std::string> Unique(const std::vector<std::string>& ids) { return {ids.begin(), ids.end()}; }

TEST(EventLogTest, SealsTheWaitingChunksIntoOneBatchWhenTheStreamAsks) {
  EventLog log(kLargeBuffer, kLargeLimit);
  Append(log, Chunk({"a", "b"}));
  Append(log, Chunk({"c"}));
  EXPECT_EQ(log.batches(), 0u);
  EXPECT_EQ(log.held_events(), 3u);

  const grpc::ByteBuffer* buffer = log.StartWrite(t0);
  ASSERT_NE(buffer, nullptr);
  const v1::EventBatch batch = Decode(buffer);
  EXPECT_EQ(batch.batch_sequence(), 1u);
  EXPECT_THAT(Connections(batch), ElementsAre("a", "b", "c"));
  EXPECT_TRUE(log.write_in_flight());

  // One write at a time.
  Append(log, Chunk({"d"}));
  EXPECT_EQ(log.StartWrite(t0), nullptr);
  EXPECT_EQ(log.FinishWrite(), 3u);

  buffer = log.StartWrite(t0);
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(Decode(buffer).batch_sequence(), 2u);
  EXPECT_EQ(log.FinishWrite(), 1u);
  EXPECT_EQ(log.StartWrite(t0), nullptr);  // nothing waits
}

TEST(EventLogTest, BatchesStopAtTheBatchLimit) {
  const EventChunk sample = Chunk({"a"}, 100);
  const std::size_t chunk_bytes = sample.wire.size();
  // Room for two chunks and the batch sequence, not for three.
  EventLog log(kLargeBuffer, 2 * chunk_bytes + kBatchHeaderBytes);
  for (const char* id : {"a", "b", "c", "d", "e"}) Append(log, Chunk({id}, 100));

  std::vector<std::vector<std::string>> batches;
  while (const grpc::ByteBuffer* buffer = log.StartWrite(t0)) {
    batches.push_back(Connections(Decode(buffer)));
    log.FinishWrite();
  }
  EXPECT_THAT(batches, ElementsAre(ElementsAre("a", "b"), ElementsAre("c", "d"), ElementsAre("e")));
}

TEST(EventLogTest, AChunkLargerThanTheLimitStillTravelsAlone) {
  EventLog log(kLargeBuffer, 64);
  Append(log, Chunk({"a"}, 200));
  Append(log, Chunk({"b"}, 200));
  EXPECT_EQ(WriteNext(log), 1u);
  EXPECT_EQ(WriteNext(log), 2u);
  EXPECT_EQ(log.batches(), 2u);
}

TEST(EventLogTest, BatchesStopGrowingPastTheTargetSize) {
  EventLog log(kLargeBuffer, 4 * kTargetBatchBytes);
  Append(log, Chunk({"a"}, kTargetBatchBytes));
  Append(log, Chunk({"b"}, 10));
  const grpc::ByteBuffer* buffer = log.StartWrite(t0);
  ASSERT_NE(buffer, nullptr);
  EXPECT_THAT(Connections(Decode(buffer)), ElementsAre("a"));
}

TEST(EventLogTest, AcknowledgementsTrimInOrder) {
  EventLog log(kLargeBuffer, kLargeLimit);
  Append(log, Chunk({"a"}));
  EXPECT_EQ(WriteNext(log), 1u);
  Append(log, Chunk({"b", "c"}));
  EXPECT_EQ(WriteNext(log), 2u);
  EXPECT_EQ(log.held_events(), 3u);

  EXPECT_EQ(log.Acknowledge(1), EventLog::Ack::kAdvanced);
  EXPECT_EQ(log.batches(), 1u);
  EXPECT_EQ(log.held_events(), 2u);
  EXPECT_FALSE(log.settled());

  EXPECT_EQ(log.Acknowledge(2), EventLog::Ack::kAdvanced);
  EXPECT_EQ(log.batches(), 0u);
  EXPECT_EQ(log.held_events(), 0u);
  EXPECT_EQ(log.held_bytes(), 0u);
  EXPECT_TRUE(log.empty());
  EXPECT_TRUE(log.settled());
}

TEST(EventLogTest, AnAcknowledgementPastWhatWasSentCoversOnlyWhatWasSent) {
  EventLog log(kLargeBuffer, kLargeLimit);
  Append(log, Chunk({"a"}));
  EXPECT_EQ(WriteNext(log), 1u);
  Append(log, Chunk({"b"}));  // waiting, not sent

  EXPECT_EQ(log.Acknowledge(7), EventLog::Ack::kPastSent);
  EXPECT_EQ(log.batches(), 0u);
  EXPECT_EQ(log.held_events(), 1u);
  EXPECT_FALSE(log.settled());

  // The waiting chunk is sent as batch 2 and still needs its own ack.
  EXPECT_EQ(WriteNext(log), 2u);
  EXPECT_FALSE(log.settled());
  EXPECT_EQ(log.Acknowledge(2), EventLog::Ack::kAdvanced);
  EXPECT_TRUE(log.settled());
}

TEST(EventLogTest, AnOldAcknowledgementChangesNothing) {
  EventLog log(kLargeBuffer, kLargeLimit);
  for (const char* id : {"a", "b", "c"}) {
    Append(log, Chunk({id}));
    WriteNext(log);
  }
  EXPECT_EQ(log.Acknowledge(2), EventLog::Ack::kAdvanced);
  EXPECT_EQ(log.Acknowledge(2), EventLog::Ack::kDuplicate);
  EXPECT_EQ(log.Acknowledge(1), EventLog::Ack::kDuplicate);
  EXPECT_EQ(log.Acknowledge(0), EventLog::Ack::kDuplicate);
  EXPECT_EQ(log.batches(), 1u);
  EXPECT_EQ(log.held_events(), 1u);
}

TEST(EventLogTest, TheBatchInFlightIsKeptUntilItsWriteEnds) {
  EventLog log(kLargeBuffer, kLargeLimit);
  Append(log, Chunk({"a"}));
  const grpc::ByteBuffer* buffer = log.StartWrite(t0);
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(log.Acknowledge(1), EventLog::Ack::kAdvanced);
  EXPECT_TRUE(log.settled());
  EXPECT_EQ(log.batches(), 1u);  // gRPC may still read it
  EXPECT_EQ(Decode(buffer).batch_sequence(), 1u);
  log.FinishWrite();
  EXPECT_EQ(log.batches(), 0u);
  EXPECT_TRUE(log.empty());
}

TEST(EventLogTest, ANewStreamReplaysExactlyTheUnacknowledgedBatchesInOrder) {
  EventLog log(kLargeBuffer, kLargeLimit);
  for (const char* id : {"a", "b", "c"}) {
    Append(log, Chunk({id}));
    WriteNext(log);
  }
  Append(log, Chunk({"d"}));  // waiting when the stream broke
  log.Rewind();

  std::vector<std::uint64_t> replayed;
  while (const std::uint64_t sequence = WriteNext(log)) replayed.push_back(sequence);
  EXPECT_THAT(replayed, ElementsAre(1u, 2u, 3u, 4u));
}

TEST(EventLogTest, ReplayAfterTrimStartsAtTheOldestUnacknowledgedBatch) {
  EventLog log(kLargeBuffer, kLargeLimit);
  for (const char* id : {"a", "b", "c"}) {
    Append(log, Chunk({id}));
    WriteNext(log);
  }
  log.Acknowledge(2);
  log.Rewind();

  const grpc::ByteBuffer* buffer = log.StartWrite(t0);
  ASSERT_NE(buffer, nullptr);
  const v1::EventBatch batch = Decode(buffer);
  EXPECT_EQ(batch.batch_sequence(), 3u);
  EXPECT_THAT(Connections(batch), ElementsAre("c"));
  log.FinishWrite();
  EXPECT_EQ(log.StartWrite(t0), nullptr);
}

TEST(EventLogTest, ExpiryGivesUpTheOldEventsAndTheirConnections) {
  EventLog log(kLargeBuffer, kLargeLimit);
  EventChunk old_chunk = Chunk({"a", "b"});
  v1::Event close;
  close.set_connection_id("c");
  close.mutable_close()->set_code(1000);
  AppendEvent(old_chunk, close);  // a closed connection needs no closing
  Append(log, std::move(old_chunk), t0);
  EXPECT_EQ(WriteNext(log, t0), 1u);
  Append(log, Chunk({"d"}), t0 + 5s);
  Append(log, Chunk({"e"}), t0 + 6s);

  // Only batch 1 is older than the cutoff.
  EventLog::GivenUp given_up = log.Expire(t0 + 2s, t0 + 12s);
  EXPECT_EQ(given_up.events, 3u);
  EXPECT_THAT(given_up.connections, UnorderedElementsAre("a", "b"));
  EXPECT_EQ(log.held_events(), 2u);

  // Nothing to give up: the same cutoff again.
  EXPECT_EQ(log.Expire(t0 + 2s, t0 + 12s).events, 0u);

  // The waiting chunks are sealed and go too.
  given_up = log.Expire(t0 + 10s, t0 + 12s);
  EXPECT_EQ(given_up.events, 2u);
  EXPECT_EQ(Unique(given_up.connections), (std::set<std::string>{"d", "e"}));
  EXPECT_TRUE(log.empty());
  EXPECT_EQ(log.held_bytes(), 0u);
  EXPECT_TRUE(log.settled());
  EXPECT_EQ(log.StartWrite(t0 + 12s), nullptr);
}

TEST(EventLogTest, ExpirySparesTheBatchInFlightAndTheYoungerBatches) {
  EventLog log(kLargeBuffer, kLargeLimit);
  Append(log, Chunk({"a"}), t0);
  ASSERT_NE(log.StartWrite(t0), nullptr);
  EXPECT_EQ(log.Expire(t0 + 1s, t0 + 2s).events, 0u);
  log.FinishWrite();

  Append(log, Chunk({"b"}), t0 + 3s);
  WriteNext(log, t0 + 3s);
  const EventLog::GivenUp given_up = log.Expire(t0 + 1s, t0 + 4s);
  EXPECT_THAT(given_up.connections, ElementsAre("a"));

  // A new stream starts at the batch that is left.
  log.Rewind();
  EXPECT_EQ(WriteNext(log, t0 + 4s), 2u);
}

TEST(EventLogTest, GivingUpOversizedBatchesKeepsTheOthersAndCutsLaterBatches) {
  EventLog log(kLargeBuffer, kLargeLimit);
  Append(log, Chunk({"small"}, 10));
  WriteNext(log);
  Append(log, Chunk({"large1", "large2"}, 400));
  WriteNext(log);
  Append(log, Chunk({"small2"}, 10));
  WriteNext(log);
  ASSERT_EQ(log.batches(), 3u);
  const std::size_t largest = log.largest_batch_bytes();

  EventLog::GivenUp given_up = log.GiveUpLargerThan(200);
  EXPECT_EQ(given_up.events, 2u);
  EXPECT_THAT(given_up.connections, ElementsAre("large1", "large2"));
  EXPECT_EQ(log.batches(), 2u);
  EXPECT_EQ(log.batch_limit(), 200u);
  EXPECT_LT(log.largest_batch_bytes(), largest);

  // Rewound: the kept batches are replayed in order.
  EXPECT_EQ(WriteNext(log), 1u);
  EXPECT_EQ(WriteNext(log), 3u);

  // Later batches are sealed to the new limit.
  const std::size_t chunk_bytes = Chunk({"x"}, 100).wire.size();
  ASSERT_GT(2 * chunk_bytes + kBatchHeaderBytes, 200u);
  Append(log, Chunk({"x"}, 100));
  Append(log, Chunk({"y"}, 100));
  const grpc::ByteBuffer* buffer = log.StartWrite(t0);
  ASSERT_NE(buffer, nullptr);
  EXPECT_EQ(Decode(buffer).batch_sequence(), 4u);
  EXPECT_THAT(Connections(Decode(buffer)), ElementsAre("x"));
}

TEST(EventLogTest, PausesAboveTheBufferAndResumesAtHalf) {
  const std::size_t chunk_bytes = Chunk({"a"}, 500).wire.size();
  // Two chunks exceed the buffer; one is more than half of it.
  EventLog log(chunk_bytes * 2 - 1, kLargeLimit);
  Append(log, Chunk({"a"}, 500));
  EXPECT_FALSE(log.paused());
  WriteNext(log);
  Append(log, Chunk({"b"}, 500));
  EXPECT_TRUE(log.paused());
  WriteNext(log);

  log.Acknowledge(1);
  EXPECT_EQ(log.held_bytes(), chunk_bytes);
  EXPECT_TRUE(log.paused());  // above half
  log.Acknowledge(2);
  EXPECT_FALSE(log.paused());
}

TEST(EventLogTest, GivingUpResumes) {
  const std::size_t chunk_bytes = Chunk({"a"}, 500).wire.size();
  EventLog log(chunk_bytes, kLargeLimit);
  Append(log, Chunk({"a"}, 500), t0);
  Append(log, Chunk({"b"}, 500), t0);
  EXPECT_TRUE(log.paused());
  log.Expire(t0 + 1s, t0 + 1s);
  EXPECT_FALSE(log.paused());
}

TEST(EventLogTest, SettledFollowsWhatTheBackendOwes) {
  EventLog log(kLargeBuffer, kLargeLimit);
  EXPECT_TRUE(log.settled());
  Append(log, Chunk({"a"}));
  EXPECT_FALSE(log.settled());  // waiting
  WriteNext(log);
  EXPECT_FALSE(log.settled());  // sent, unacknowledged
  Append(log, Chunk({"b"}));
  log.Acknowledge(1);
  EXPECT_FALSE(log.settled());  // b still waits
  WriteNext(log);
  log.Acknowledge(2);
  EXPECT_TRUE(log.settled());
}

}  // namespace
}  // namespace wsgateway
