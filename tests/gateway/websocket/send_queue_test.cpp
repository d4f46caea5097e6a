#include "gateway/websocket/send_queue.hpp"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "gateway/websocket/deflate_codec.hpp"
#include "gateway/websocket/frame_codec.hpp"
#include "gateway/websocket/loop_compression.hpp"

namespace wsgateway {
namespace {

namespace fc = frame_codec;
namespace net = boost::asio;
using Result = SendQueue::Result;

constexpr std::size_t kLarge = 1024 * 1024;

OutboundFrame Frame(FrameType type, std::string payload, bool fin = true, bool continuation = false,
                    CompressMode compress = CompressMode::kBySize) {
  OutboundFrame frame;
  frame.type = type;
  frame.payload = std::make_shared<const std::string>(std::move(payload));
  frame.fin = fin;
  frame.continuation = continuation;
  frame.compress = compress;
  return frame;
}

OutboundFrame Text(std::string payload, bool fin = true, bool continuation = false) {
  return Frame(FrameType::kText, std::move(payload), fin, continuation);
}

OutboundFrame Binary(std::string payload, bool fin = true, bool continuation = false) {
  return Frame(FrameType::kBinary, std::move(payload), fin, continuation);
}

// A frame as the server puts it on the wire, encoded by the codec.
std::string ServerFrame(std::uint8_t opcode, std::string payload, bool fin = true, bool rsv1 = false) {
  fc::Frame frame;
  frame.fin = fin;
  frame.rsv1 = rsv1;
  frame.opcode = opcode;
  frame.payload = std::move(payload);
  return fc::Pack(frame);
}

std::string Wire(std::span<const net::const_buffer> buffers) {
  std::string out;
  for (const auto& buffer : buffers) out.append(static_cast<const char*>(buffer.data()), buffer.size());
  return out;
}

// One write as the session does it: the gather list's bytes, then what
// Complete reported.
struct Write {
  std::string wire;
  std::vector<FrameType> reported;
  std::vector<std::size_t> reported_sizes;
  bool close_written = false;
};

Write WriteOnce(SendQueue& queue) {
  Write write;
  write.wire = Wire(queue.PrepareWrite());
  write.close_written = queue.Complete([&write](const OutboundFrame& frame) {
    write.reported.push_back(frame.type);
    write.reported_sizes.push_back(frame.size());
  });
  return write;
}

SendQueue::Options Limit(std::size_t max_bytes) { return {.max_bytes = max_bytes, .compression_threshold = 256}; }

// ---- Byte accounting and the limit -------------------------------------------

TEST(SendQueueTest, CountsDataAndControlFramesButNotClose) {
  SendQueue queue(Limit(kLarge));
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.Enqueue(Text("hello")), Result::kQueued);
  EXPECT_EQ(queue.EnqueueControl(FrameType::kPing, "abc"), Result::kQueued);
  EXPECT_EQ(queue.EnqueueControl(FrameType::kPong, "xy"), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Frame(FrameType::kPong, "z")), Result::kQueued);
  EXPECT_EQ(queue.queued_bytes(), 11u);
  queue.QueueClose(MakeCloseFrame(1000, "bye"));
  EXPECT_EQ(queue.queued_bytes(), 11u);
  EXPECT_EQ(queue.unwritten_bytes(), 11u);
  EXPECT_FALSE(queue.empty());

  // Bytes in flight stay counted until the write completes.
  ASSERT_FALSE(queue.PrepareWrite().empty());
  EXPECT_EQ(queue.queued_bytes(), 11u);
  EXPECT_TRUE(queue.Complete([](const OutboundFrame&) {}));
  EXPECT_EQ(queue.queued_bytes(), 0u);
  EXPECT_TRUE(queue.empty());
}

TEST(SendQueueTest, TheLimitIncludesItsLastByte) {
  SendQueue queue(Limit(10));
  EXPECT_EQ(queue.Enqueue(Text("12345")), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("67890")), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("x")), Result::kQueueFull);
  EXPECT_EQ(queue.queued_bytes(), 10u);
}

TEST(SendQueueTest, AnEmptyQueueAlwaysTakesOneFrame) {
  SendQueue queue(Limit(10));
  EXPECT_EQ(queue.Enqueue(Text(std::string(100, 'a'))), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("x")), Result::kQueueFull);
  EXPECT_EQ(queue.queued_bytes(), 100u);

  // A frame in flight keeps the queue from being empty.
  ASSERT_FALSE(queue.PrepareWrite().empty());
  EXPECT_EQ(queue.Enqueue(Text("x")), Result::kQueueFull);

  queue.Complete([](const OutboundFrame&) {});
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.Enqueue(Text(std::string(100, 'b'))), Result::kQueued);
}

TEST(SendQueueTest, ControlFramesOfASlowConsumerAreRefusedToo) {
  SendQueue queue(Limit(10));
  ASSERT_EQ(queue.Enqueue(Text(std::string(10, 'a'))), Result::kQueued);
  // An empty ping still fits; one byte more does not.
  EXPECT_EQ(queue.EnqueueControl(FrameType::kPing, ""), Result::kQueued);
  EXPECT_EQ(queue.EnqueueControl(FrameType::kPing, "p"), Result::kQueueFull);
  EXPECT_EQ(queue.EnqueueControl(FrameType::kPong, "p"), Result::kQueueFull);
  EXPECT_EQ(queue.Enqueue(Frame(FrameType::kPong, "p")), Result::kQueueFull);
  EXPECT_EQ(queue.queued_bytes(), 10u);
}

TEST(SendQueueTest, DeferredMessagesCountTowardsTheLimitOnceDeferred) {
  SendQueue queue(Limit(10));
  ASSERT_EQ(queue.Enqueue(Binary("ab", /*fin=*/false)), Result::kQueued);
  // Deferring does not check the limit...
  EXPECT_EQ(queue.Enqueue(Text("123456789")), Result::kQueued);
  EXPECT_EQ(queue.deferred_bytes(), 9u);
  EXPECT_EQ(queue.unwritten_bytes(), 11u);
  // ...but what comes next is checked with the deferred bytes.
  EXPECT_EQ(queue.EnqueueControl(FrameType::kPing, ""), Result::kQueueFull);
  EXPECT_EQ(queue.Enqueue(Binary("c", true, /*continuation=*/true)), Result::kQueueFull);
}

// ---- Pong coalescing ----------------------------------------------------------

TEST(SendQueueTest, EveryPingIsAnsweredWhileSixteenPongsWait) {
  SendQueue queue(Limit(kLarge));
  std::string expected;
  std::size_t bytes = 0;
  for (int i = 0; i < 16; ++i) {
    const std::string payload = "p" + std::to_string(i);
    ASSERT_EQ(queue.EnqueueControl(FrameType::kPong, payload), Result::kQueued);
    if (i < 15) expected += ServerFrame(fc::kPong, payload);
    bytes += payload.size();
  }
  EXPECT_EQ(queue.queued_bytes(), bytes);
  // The seventeenth answer replaces the last waiting pong's payload.
  EXPECT_EQ(queue.EnqueueControl(FrameType::kPong, "newest!"), Result::kQueued);
  EXPECT_EQ(queue.queued_bytes(), bytes - 3 + 7);
  expected += ServerFrame(fc::kPong, "newest!");
  const auto write = WriteOnce(queue);
  EXPECT_EQ(write.wire, expected);
  EXPECT_EQ(write.reported.size(), 16u);
  EXPECT_EQ(queue.queued_bytes(), 0u);
}

TEST(SendQueueTest, PongsInFlightAreNotCoalesced) {
  SendQueue queue(Limit(kLarge));
  for (int i = 0; i < 16; ++i) ASSERT_EQ(queue.EnqueueControl(FrameType::kPong, "a"), Result::kQueued);
  ASSERT_FALSE(queue.PrepareWrite().empty());
  // All sixteen are being written: the next answers queue anew.
  for (int i = 0; i < 16; ++i) ASSERT_EQ(queue.EnqueueControl(FrameType::kPong, "b"), Result::kQueued);
  EXPECT_EQ(queue.EnqueueControl(FrameType::kPong, "c"), Result::kQueued);
  EXPECT_EQ(queue.queued_bytes(), 32u);
  std::vector<FrameType> first;
  queue.Complete([&first](const OutboundFrame& frame) { first.push_back(frame.type); });
  EXPECT_EQ(first.size(), 16u);
  std::string expected;
  for (int i = 0; i < 15; ++i) expected += ServerFrame(fc::kPong, "b");
  expected += ServerFrame(fc::kPong, "c");
  EXPECT_EQ(WriteOnce(queue).wire, expected);
}

TEST(SendQueueTest, AFrameBehindThePongsStopsCoalescing) {
  SendQueue queue(Limit(kLarge));
  for (int i = 0; i < 16; ++i) ASSERT_EQ(queue.EnqueueControl(FrameType::kPong, "a"), Result::kQueued);
  ASSERT_EQ(queue.EnqueueControl(FrameType::kPing, ""), Result::kQueued);
  ASSERT_EQ(queue.EnqueueControl(FrameType::kPong, "b"), Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).reported.size(), 18u);
}

TEST(SendQueueTest, PushedPongsAreNeverCoalescedButCountAsWaiting) {
  SendQueue queue(Limit(kLarge));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(queue.Enqueue(Frame(FrameType::kPong, "a")), Result::kQueued);
  EXPECT_EQ(queue.queued_bytes(), 20u);
  // The gateway's own answer then takes the place of the last one.
  ASSERT_EQ(queue.EnqueueControl(FrameType::kPong, "bc"), Result::kQueued);
  EXPECT_EQ(queue.queued_bytes(), 21u);
  const auto write = WriteOnce(queue);
  EXPECT_EQ(write.reported.size(), 20u);
  EXPECT_EQ(write.reported_sizes.back(), 2u);
}

// ---- Fragmented messages --------------------------------------------------------

TEST(SendQueueTest, MessagesPushedDuringAFragmentedOneFollowItsEnd) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Binary("a", false)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Text("whole")), Result::kQueued);
  EXPECT_EQ(queue.deferred_bytes(), 5u);
  EXPECT_EQ(queue.queued_bytes(), 1u);
  // Control frames may go between the pieces (RFC 6455 section 5.4).
  ASSERT_EQ(queue.EnqueueControl(FrameType::kPing, "p"), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Binary("b", false, true)), Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kBinary, "a", false) + ServerFrame(fc::kPing, "p") +
                                       ServerFrame(fc::kContinuation, "b", false));

  ASSERT_EQ(queue.Enqueue(Binary("c", true, true)), Result::kQueued);
  EXPECT_EQ(queue.deferred_bytes(), 0u);
  EXPECT_EQ(queue.queued_bytes(), 6u);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kContinuation, "c") + ServerFrame(fc::kText, "whole"));
}

TEST(SendQueueTest, AReleasedFragmentedMessageHoldsBackTheRest) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("A1", false)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Binary("B1", false)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Text("C")), Result::kQueued);
  EXPECT_EQ(queue.deferred_bytes(), 3u);

  ASSERT_EQ(queue.Enqueue(Text("A2", true, true)), Result::kQueued);
  // B1 opened its message on release; C waits again.
  EXPECT_EQ(queue.deferred_bytes(), 1u);
  EXPECT_EQ(queue.Enqueue(Text("x", true, true)), Result::kNoMessageToContinue);
  ASSERT_EQ(queue.Enqueue(Binary("B2", true, true)), Result::kQueued);
  EXPECT_EQ(queue.deferred_bytes(), 0u);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kText, "A1", false) + ServerFrame(fc::kContinuation, "A2") +
                                       ServerFrame(fc::kBinary, "B1", false) + ServerFrame(fc::kContinuation, "B2") +
                                       ServerFrame(fc::kText, "C"));
}

TEST(SendQueueTest, AContinuationNeedsItsMessageOpen) {
  SendQueue queue(Limit(kLarge));
  EXPECT_EQ(queue.Enqueue(Text("x", true, true)), Result::kNoMessageToContinue);
  EXPECT_EQ(queue.Enqueue(Binary("x", false, true)), Result::kNoMessageToContinue);
  ASSERT_EQ(queue.Enqueue(Binary("a", false)), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("x", true, true)), Result::kNoMessageToContinue);
  EXPECT_EQ(queue.Enqueue(Binary("b", true, true)), Result::kQueued);
  // Ended: nothing to continue any more.
  EXPECT_EQ(queue.Enqueue(Binary("c", true, true)), Result::kNoMessageToContinue);
  EXPECT_EQ(queue.queued_bytes(), 2u);
}

TEST(SendQueueTest, AReleaseThatPassesTheLimitReportsTheSlowConsumer) {
  SendQueue queue(Limit(10));
  ASSERT_EQ(queue.Enqueue(Binary("abcd", false)), Result::kQueued);
  WriteOnce(queue);
  ASSERT_EQ(queue.Enqueue(Binary("11111111")), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Binary("22222222")), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Binary("33333333")), Result::kQueued);
  EXPECT_EQ(queue.deferred_bytes(), 24u);

  // The empty queue takes the last piece; the first waiting message fits
  // behind it, the second does not, and the third goes with it.
  EXPECT_EQ(queue.Enqueue(Binary("z", true, true)), Result::kQueuedReleaseFull);
  EXPECT_EQ(queue.deferred_bytes(), 0u);
  EXPECT_EQ(queue.queued_bytes(), 9u);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kContinuation, "z") + ServerFrame(fc::kBinary, "11111111"));
}

TEST(SendQueueTest, DroppedDeferredMessagesAreNotSent) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("a", false)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Text("later")), Result::kQueued);
  // The session closing: deferred messages go, the close follows the queue.
  queue.DropDeferred();
  EXPECT_EQ(queue.deferred_bytes(), 0u);
  queue.QueueClose(MakeCloseFrame(1001, "away"));
  const auto write = WriteOnce(queue);
  EXPECT_EQ(write.wire,
            ServerFrame(fc::kText, "a", false) + ServerFrame(fc::kClose, std::string("\x03\xe9", 2) + "away"));
  EXPECT_TRUE(write.close_written);
}

// ---- UTF-8 of fragmented text ---------------------------------------------------

TEST(SendQueueTest, ACharacterMaySpanPieces) {
  SendQueue queue(Limit(kLarge));
  EXPECT_EQ(queue.Enqueue(Text("\xE2\x82", false)), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("\xAC", true, true)), Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kText, "\xE2\x82", false) + ServerFrame(fc::kContinuation, "\xAC"));
}

TEST(SendQueueTest, AnInvalidPieceIsRefusedAndTheMessageStaysOpen) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("\xE2\x82", false)), Result::kQueued);
  // Not a continuation byte: no later piece could make this valid.
  EXPECT_EQ(queue.Enqueue(Text("A", false, true)), Result::kInvalidUtf8);
  EXPECT_EQ(queue.Enqueue(Text("A", true, true)), Result::kInvalidUtf8);
  EXPECT_EQ(queue.queued_bytes(), 2u);
  // The refused pieces left no trace: the open character still ends well.
  EXPECT_EQ(queue.Enqueue(Text("\xAC", false, true)), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("ok", true, true)), Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kText, "\xE2\x82", false) +
                                       ServerFrame(fc::kContinuation, "\xAC", false) +
                                       ServerFrame(fc::kContinuation, "ok"));
}

TEST(SendQueueTest, ALastPieceMustEndACharacter) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("a", false)), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("\xE2", true, true)), Result::kInvalidUtf8);
  EXPECT_EQ(queue.Enqueue(Text("\xE2", false, true)), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("\x82\xAC", true, true)), Result::kQueued);
}

TEST(SendQueueTest, AFirstPieceIsCheckedAsAPrefix) {
  SendQueue queue(Limit(kLarge));
  EXPECT_EQ(queue.Enqueue(Text("\xFF", false)), Result::kInvalidUtf8);
  // Refused, it opened nothing.
  EXPECT_EQ(queue.Enqueue(Text("a", true, true)), Result::kNoMessageToContinue);
  EXPECT_EQ(queue.Enqueue(Text("\xE2", false)), Result::kQueued);
  // A new message starts from a clean state.
  EXPECT_EQ(queue.Enqueue(Text("\x82\xAC", true, true)), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text("\x82", false)), Result::kInvalidUtf8);
}

TEST(SendQueueTest, WholeMessagesAreCheckedWhereTheyAreMade) {
  // MakeOutboundFrame checks a whole text message; the queue does not
  // again.
  SendQueue queue(Limit(kLarge));
  EXPECT_EQ(queue.Enqueue(Text("\xFF")), Result::kQueued);
}

// ---- Compression ------------------------------------------------------------------

class SendQueueCompressionTest : public ::testing::Test {
 protected:
  static std::string Deflated(const std::string& payload) {
    MessageDeflater deflater(15);
    std::string out;
    EXPECT_TRUE(deflater.Compress(payload, out, /*reset_after=*/true));
    return out;
  }

  LoopCompression compression_{MessageDeflater::kDefaultLevel};
};

TEST_F(SendQueueCompressionTest, WholeMessagesFromTheThresholdOnAreDeflated) {
  SendQueue queue(Limit(kLarge));
  queue.EnableCompression(compression_, 15);
  const std::string small(255, 'a');
  const std::string large(256, 'b');
  ASSERT_EQ(queue.Enqueue(Text(small)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Text(large)), Result::kQueued);
  const std::string deflated = Deflated(large);
  EXPECT_EQ(queue.queued_bytes(), small.size() + deflated.size());
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kText, small) + ServerFrame(fc::kText, deflated, true, true));
}

TEST_F(SendQueueCompressionTest, ThePushDecidesOverTheSize) {
  SendQueue queue(Limit(kLarge));
  queue.EnableCompression(compression_, 15);
  const std::string small(20, 'a');
  const std::string large(1000, 'b');
  ASSERT_EQ(queue.Enqueue(Frame(FrameType::kBinary, small, true, false, CompressMode::kAlways)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Frame(FrameType::kBinary, large, true, false, CompressMode::kNever)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Frame(FrameType::kBinary, "", true, false, CompressMode::kAlways)), Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kBinary, Deflated(small), true, true) +
                                       ServerFrame(fc::kBinary, large) + ServerFrame(fc::kBinary, ""));
}

TEST_F(SendQueueCompressionTest, WhatDeflatingWouldGrowGoesAsItIs) {
  SendQueue queue(Limit(kLarge));
  queue.EnableCompression(compression_, 15);
  std::mt19937 random(7);
  std::string noise(1000, '\0');
  for (auto& c : noise) c = static_cast<char>(random());
  ASSERT_EQ(queue.Enqueue(Frame(FrameType::kBinary, noise, true, false, CompressMode::kAlways)), Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kBinary, noise));
}

TEST_F(SendQueueCompressionTest, FragmentsAndControlFramesAreNotDeflated) {
  SendQueue queue(Limit(kLarge));
  queue.EnableCompression(compression_, 15);
  const std::string large(1000, 'c');
  ASSERT_EQ(queue.Enqueue(Frame(FrameType::kText, large, false, false, CompressMode::kAlways)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Frame(FrameType::kText, large, true, true, CompressMode::kAlways)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Frame(FrameType::kPing, std::string(100, 'p'), true, false, CompressMode::kAlways)),
            Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kText, large, false) + ServerFrame(fc::kContinuation, large) +
                                       ServerFrame(fc::kPing, std::string(100, 'p')));
}

TEST_F(SendQueueCompressionTest, NothingIsDeflatedWithoutAnAgreement) {
  SendQueue queue(Limit(kLarge));
  const std::string large(1000, 'd');
  ASSERT_EQ(queue.Enqueue(Frame(FrameType::kText, large, true, false, CompressMode::kAlways)), Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kText, large));
}

TEST_F(SendQueueCompressionTest, TheLimitCountsDeflatedBytes) {
  SendQueue queue(Limit(100));
  queue.EnableCompression(compression_, 15);
  ASSERT_EQ(queue.Enqueue(Text("x")), Result::kQueued);
  EXPECT_EQ(queue.Enqueue(Text(std::string(1000, 'e'))), Result::kQueued);
  EXPECT_LT(queue.queued_bytes(), 100u);
}

TEST_F(SendQueueCompressionTest, AMessageIsDeflatedWhenItsWaitEnds) {
  SendQueue queue(Limit(kLarge));
  queue.EnableCompression(compression_, 15);
  const std::string large(1000, 'f');
  ASSERT_EQ(queue.Enqueue(Text("a", false)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Text(large)), Result::kQueued);
  EXPECT_EQ(queue.deferred_bytes(), large.size());
  ASSERT_EQ(queue.Enqueue(Text("b", true, true)), Result::kQueued);
  const std::string deflated = Deflated(large);
  EXPECT_EQ(queue.queued_bytes(), 2 + deflated.size());
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kText, "a", false) + ServerFrame(fc::kContinuation, "b") +
                                       ServerFrame(fc::kText, deflated, true, true));
}

// ---- The gather list -----------------------------------------------------------------

TEST(SendQueueTest, TheGatherListHoldsCodecHeadersAndReferencesPayloads) {
  SendQueue queue(Limit(kLarge));
  std::vector<OutboundFrame> frames{Text("hi"), Binary(std::string(300, 'm')), Binary(std::string(70000, 'l')),
                                    Frame(FrameType::kPing, "")};
  std::vector<const char*> payloads;
  for (auto& frame : frames) {
    payloads.push_back(frame.payload->data());
    ASSERT_EQ(queue.Enqueue(std::move(frame)), Result::kQueued);
  }
  queue.QueueClose(MakeCloseFrame(1001, "bye"));

  const auto buffers = queue.PrepareWrite();
  // Header and payload per frame; an empty payload has no buffer.
  ASSERT_EQ(buffers.size(), 9u);
  EXPECT_EQ(buffers[1].data(), payloads[0]);
  EXPECT_EQ(buffers[3].data(), payloads[1]);
  EXPECT_EQ(buffers[5].data(), payloads[2]);
  EXPECT_EQ(buffers[5].size(), 70000u);
  EXPECT_EQ(Wire(buffers), ServerFrame(fc::kText, "hi") + ServerFrame(fc::kBinary, std::string(300, 'm')) +
                               ServerFrame(fc::kBinary, std::string(70000, 'l')) + ServerFrame(fc::kPing, "") +
                               ServerFrame(fc::kClose, std::string("\x03\xe9", 2) + "bye"));
  // The close code travels with the header, the reason is referenced.
  EXPECT_EQ(buffers[7].size(), 4u);
  EXPECT_EQ(buffers[8].size(), 3u);
}

TEST(SendQueueTest, ACloseWithoutACodeIsAHeaderAlone) {
  SendQueue queue(Limit(kLarge));
  queue.QueueClose(MakeCloseFrame(0, {}));
  const auto buffers = queue.PrepareWrite();
  ASSERT_EQ(buffers.size(), 1u);
  EXPECT_EQ(Wire(buffers), ServerFrame(fc::kClose, ""));
}

TEST(SendQueueTest, AWriteEndsAtACloseFrame) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("last")), Result::kQueued);
  queue.QueueClose(MakeCloseFrame(1000, {}));
  ASSERT_EQ(queue.EnqueueControl(FrameType::kPing, "late"), Result::kQueued);
  const auto write = WriteOnce(queue);
  EXPECT_TRUE(write.close_written);
  EXPECT_EQ(write.reported, std::vector<FrameType>{FrameType::kText});
  EXPECT_EQ(queue.queued_bytes(), 4u);
  // After the close the session drops the rest.
  queue.DropUnsent();
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.queued_bytes(), 0u);
}

TEST(SendQueueTest, AWriteCarriesAtMostSixtyFourFrames) {
  SendQueue queue(Limit(kLarge));
  for (int i = 0; i < 100; ++i) ASSERT_EQ(queue.Enqueue(Text("m")), Result::kQueued);
  EXPECT_EQ(queue.PrepareWrite().size(), 2 * SendQueue::kMaxFramesPerWrite);
  std::size_t released = 0;
  queue.Complete([&released](const OutboundFrame&) { ++released; });
  EXPECT_EQ(released, 64u);
  EXPECT_EQ(queue.queued_bytes(), 36u);
  EXPECT_EQ(WriteOnce(queue).reported.size(), 36u);
  EXPECT_TRUE(queue.PrepareWrite().empty());
}

TEST(SendQueueTest, AWriteEndsWithTheFramePastTheByteBound) {
  SendQueue queue(Limit(kLarge));
  for (int i = 0; i < 4; ++i) ASSERT_EQ(queue.Enqueue(Binary(std::string(100 * 1024, 'x'))), Result::kQueued);
  EXPECT_EQ(WriteOnce(queue).reported.size(), 3u);
  EXPECT_EQ(WriteOnce(queue).reported.size(), 1u);
}

TEST(SendQueueTest, FramesQueuedDuringAWriteGoInTheNext) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("one")), Result::kQueued);
  ASSERT_EQ(Wire(queue.PrepareWrite()), ServerFrame(fc::kText, "one"));
  ASSERT_EQ(queue.Enqueue(Text("two")), Result::kQueued);
  std::vector<std::size_t> sizes;
  EXPECT_FALSE(queue.Complete([&sizes](const OutboundFrame& frame) { sizes.push_back(frame.size()); }));
  EXPECT_EQ(sizes, std::vector<std::size_t>{3});
  EXPECT_EQ(queue.queued_bytes(), 3u);
  EXPECT_EQ(WriteOnce(queue).wire, ServerFrame(fc::kText, "two"));
}

TEST(SendQueueTest, CompleteReportsEachFrameAndReleasesIt) {
  SendQueue queue(Limit(kLarge));
  auto shared = std::make_shared<const std::string>("broadcast");
  OutboundFrame frame;
  frame.payload = shared;
  ASSERT_EQ(queue.Enqueue(frame), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Binary("b", false)), Result::kQueued);
  ASSERT_EQ(queue.EnqueueControl(FrameType::kPing, "p"), Result::kQueued);
  EXPECT_EQ(shared.use_count(), 3);  // here, `frame`, the queue
  frame = OutboundFrame{};
  const auto write = WriteOnce(queue);
  EXPECT_EQ(write.reported, (std::vector<FrameType>{FrameType::kText, FrameType::kBinary, FrameType::kPing}));
  EXPECT_EQ(write.reported_sizes, (std::vector<std::size_t>{9, 1, 1}));
  EXPECT_FALSE(write.close_written);
  EXPECT_EQ(shared.use_count(), 1);
}

// async_write either writes the whole gather list or fails; a failure
// releases nothing, and the session then drops the connection.
TEST(SendQueueTest, AFailedWriteReleasesNothing) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("one")), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Text("two")), Result::kQueued);
  const std::string first = Wire(queue.PrepareWrite());
  // Failed after some bytes: no Complete. The frames stay, and another
  // write would start over from the oldest.
  EXPECT_EQ(queue.queued_bytes(), 6u);
  EXPECT_EQ(Wire(queue.PrepareWrite()), first);
  queue.Clear();
  EXPECT_TRUE(queue.empty());
  EXPECT_EQ(queue.unwritten_bytes(), 0u);
  EXPECT_TRUE(queue.PrepareWrite().empty());
}

TEST(SendQueueTest, DropUnsentKeepsTheWriteInFlight) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("one")), Result::kQueued);
  ASSERT_FALSE(queue.PrepareWrite().empty());
  ASSERT_EQ(queue.Enqueue(Text("two", false)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Text("three")), Result::kQueued);
  queue.QueueClose(MakeCloseFrame(1000, "closing"));
  EXPECT_EQ(queue.unwritten_bytes(), 11u);
  // The session failing the connection: only the frame being written stays.
  queue.DropUnsent();
  EXPECT_EQ(queue.queued_bytes(), 3u);
  EXPECT_EQ(queue.deferred_bytes(), 0u);
  queue.QueueClose(MakeCloseFrame(1002, {}));
  EXPECT_FALSE(queue.Complete([](const OutboundFrame&) {}));
  const auto write = WriteOnce(queue);
  EXPECT_TRUE(write.close_written);
  EXPECT_EQ(write.wire, ServerFrame(fc::kClose, std::string("\x03\xea", 2)));
  EXPECT_EQ(queue.queued_bytes(), 0u);
}

TEST(SendQueueTest, ClearForgetsTheOpenMessage) {
  SendQueue queue(Limit(kLarge));
  ASSERT_EQ(queue.Enqueue(Text("a", false)), Result::kQueued);
  ASSERT_EQ(queue.Enqueue(Text("b")), Result::kQueued);
  queue.Clear();
  EXPECT_EQ(queue.unwritten_bytes(), 0u);
  EXPECT_EQ(queue.Enqueue(Text("c", true, true)), Result::kNoMessageToContinue);
}

}  // namespace
}  // namespace wsgateway
