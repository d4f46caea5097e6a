// A client that stops reading is closed when its send queue passes
// --send-queue-max-bytes, and nobody else notices.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/admin_client.hpp"
#include "tests/support/client_swarm.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using grpc::StatusCode;

constexpr std::size_t kQueueLimit = 256 * 1024;
constexpr std::size_t kMessage = 64 * 1024;
// Far more than the slow client's socket buffers plus the queue can hold.
constexpr int kMaxMessages = 2000;

std::string Numbered(int i) {
  std::string payload = "message " + std::to_string(i) + " ";
  payload.resize(kMessage, '#');
  return payload;
}

class SlowConsumerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = EchoStack::Start({"--send-queue-max-bytes", "256KiB", "--max-message-bytes", "64KiB"}, &error_);
    ASSERT_NE(stack_, nullptr) << error_;
    admin_ = std::make_unique<AdminClient>(stack_->gateway->admin_port());
    // The slow client connects but never reads.
    slow_.SetReceiveBufferSize(4096);
    ASSERT_EQ(slow_.Connect(stack_->gateway->ws_port(), "/slow/0").http_status, 101u);
    const auto info = admin_->WaitForOne("/slow/0", v1::CONNECTION_STATE_ACTIVE);
    ASSERT_TRUE(info.has_value());
    slow_id_ = info->connection_id();
  }

  // The slow client's connection is gone, and counted as a slow consumer
  // closed with 1008.
  void ExpectSlowConsumerClosed() {
    EXPECT_TRUE(admin_->WaitForExist(slow_id_, false)) << "the slow client is still connected";
    std::optional<Scrape> scrape;
    PollUntil(std::chrono::seconds(20), [&] {
      scrape = ScrapeMetrics(stack_->gateway->metrics_port());
      return scrape && scrape->Value("wsgateway_slow_consumer_closes_total") >= 1 &&
             scrape->Sum("wsgateway_connections_closed_total", {{"code", "1008"}}) >= 1;
    });
    ASSERT_TRUE(scrape.has_value());
    EXPECT_EQ(scrape->Value("wsgateway_slow_consumer_closes_total"), 1);
    EXPECT_EQ(scrape->Sum("wsgateway_connections_closed_total", {{"code", "1008"}}), 1);
    // What the slow client eventually reads ends with the connection closing.
    WsMessage last;
    do {
      last = slow_.Read(std::chrono::seconds(20));
    } while (!last.ec);
    EXPECT_NE(last.ec, boost::asio::error::timed_out) << "the slow client's connection was never closed";
  }

  std::unique_ptr<EchoStack> stack_;
  std::string error_;
  std::unique_ptr<AdminClient> admin_;
  WsClient slow_;
  std::string slow_id_;
};

// Pushing to a client that never reads eventually fails with
// RESOURCE_EXHAUSTED, its queue never holds more than the bound, and it is
// closed; a reading client pushed the same messages receives all of them.
TEST_F(SlowConsumerTest, PushToAClientThatNeverReadsEndsInResourceExhausted) {
  ClientSwarm fast;
  ASSERT_EQ(fast.ConnectAll(stack_->gateway->ws_port(), {"/fast/0"}, 1, std::chrono::seconds(20)), 1u);
  const auto fast_info = admin_->WaitForOne("/fast/0", v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(fast_info.has_value());

  int pushed_to_fast = 0;
  grpc::Status slow_status;
  for (int i = 0; i < kMaxMessages; ++i) {
    const std::string payload = Numbered(i);
    const auto to_fast = admin_->Push({fast_info->connection_id()}, v1::OPCODE_BINARY, payload);
    ASSERT_TRUE(to_fast.ok()) << "the reading client was refused at message " << i << ": " << Describe(to_fast.status);
    ++pushed_to_fast;
    // A reading client keeps up however loaded the machine: it has what was
    // pushed before the next push.
    ASSERT_TRUE(fast.WaitForReceived(0, static_cast<std::size_t>(pushed_to_fast), std::chrono::seconds(20)))
        << "the reading client did not receive message " << i;
    const auto to_slow = admin_->Push({slow_id_}, v1::OPCODE_BINARY, payload);
    if (!to_slow.ok()) {
      slow_status = to_slow.status;
      break;
    }
    const auto info = admin_->GetClientInfo(slow_id_);
    ASSERT_TRUE(info.ok()) << Describe(info.status);
    ASSERT_LE(info.response.info().send_queue_bytes(), kQueueLimit) << "the queue passed its bound at message " << i;
  }
  EXPECT_EQ(slow_status.error_code(), StatusCode::RESOURCE_EXHAUSTED) << Describe(slow_status);
  ExpectSlowConsumerClosed();

  ASSERT_TRUE(fast.WaitForReceived(0, static_cast<std::size_t>(pushed_to_fast), std::chrono::seconds(60)))
      << "the reading client received " << fast.State(0).messages.size() << " of " << pushed_to_fast;
  const auto state = fast.State(0);
  EXPECT_FALSE(state.closed);
  ASSERT_EQ(state.messages.size(), static_cast<std::size_t>(pushed_to_fast));
  for (int i = 0; i < pushed_to_fast; ++i) ASSERT_EQ(state.messages[i].payload, Numbered(i)) << i;
}

// Broadcasting to a room with a client that never reads drops that client as
// a slow consumer while the other members receive every message in order.
TEST_F(SlowConsumerTest, BroadcastDropsTheClientThatNeverReadsAndOthersGetEverything) {
  // The slow client is on /slow/0; the room is "/" (everyone).
  constexpr std::size_t kReaders = 3;
  ClientSwarm readers;
  ASSERT_EQ(readers.ConnectAll(stack_->gateway->ws_port(), {"/room/1", "/room/2", "/room/3"}, kReaders,
                               std::chrono::seconds(20)),
            kReaders);
  v1::ConnectionFilter room;
  room.set_path_prefix("/room/");
  room.set_state(v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(admin_->WaitForCount(room, kReaders));

  int broadcasts = 0;
  std::uint32_t dropped = 0;
  for (int i = 0; i < kMaxMessages && dropped == 0; ++i) {
    const auto reply = admin_->Broadcast(v1::OPCODE_BINARY, Numbered(i));
    ASSERT_TRUE(reply.ok()) << Describe(reply.status);
    ++broadcasts;
    dropped = reply.response.dropped_slow_consumers();
    EXPECT_EQ(reply.response.queued() + dropped, kReaders + 1) << "broadcast " << i;
    // The readers keep up however loaded the machine: each has every
    // broadcast so far before the next one.
    ASSERT_TRUE(readers.WaitForTotalReceived(kReaders * static_cast<std::size_t>(broadcasts), std::chrono::seconds(20)))
        << "the readers did not all receive broadcast " << i;
  }
  EXPECT_EQ(dropped, 1u) << "the slow client was never dropped after " << broadcasts << " broadcasts";
  // After the drop, broadcasts reach only the readers.
  for (int k = 0; k < 5; ++k, ++broadcasts) {
    const auto reply = admin_->Broadcast(v1::OPCODE_BINARY, Numbered(broadcasts));
    ASSERT_TRUE(reply.ok()) << Describe(reply.status);
    EXPECT_EQ(reply.response.queued(), kReaders);
  }
  ExpectSlowConsumerClosed();

  const auto want = static_cast<std::size_t>(broadcasts);
  ASSERT_TRUE(readers.WaitForTotalReceived(kReaders * want, std::chrono::seconds(60)))
      << "readers received " << readers.TotalReceived() << " of " << kReaders * want;
  for (std::size_t c = 0; c < kReaders; ++c) {
    const auto state = readers.State(c);
    EXPECT_FALSE(state.closed) << "reader " << c;
    ASSERT_EQ(state.messages.size(), want) << "reader " << c;
    for (std::size_t i = 0; i < want; ++i) ASSERT_EQ(state.messages[i].payload, Numbered(static_cast<int>(i))) << i;
  }
}

}  // namespace
}  // namespace wsgateway::testing
