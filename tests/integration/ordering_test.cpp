// Messages of one connection keep their order end to end: client, gateway,
// backend stream, echo backend's push, gateway, client.

#include <gtest/gtest.h>

#include <string>

#include "tests/support/client_swarm.hpp"
#include "tests/support/gateway_stack.hpp"

namespace wsgateway::testing {
namespace {

// Payloads of varying size so batching and frame boundaries move around.
std::string Payload(std::size_t client, std::size_t i) {
  return "c" + std::to_string(client) + " m" + std::to_string(i) + " " + std::string(i % 97, 'x');
}

class OrderingTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack_ = EchoStack::Start({}, &error_);
    ASSERT_NE(stack_, nullptr) << error_;
  }

  // Sends `count` messages on each client and checks every echo, in order.
  void SendAndCheck(ClientSwarm& swarm, std::size_t clients, std::size_t count, std::chrono::seconds timeout) {
    for (std::size_t i = 0; i < count; ++i) {
      for (std::size_t c = 0; c < clients; ++c) swarm.Send(c, Payload(c, i), /*binary=*/i % 3 == 0);
    }
    ASSERT_TRUE(swarm.WaitForTotalReceived(clients * count, timeout))
        << "received " << swarm.TotalReceived() << " of " << clients * count;
    for (std::size_t c = 0; c < clients; ++c) {
      const auto state = swarm.State(c);
      EXPECT_FALSE(state.closed) << "client " << c << " was closed: " << state.error.message();
      ASSERT_EQ(state.messages.size(), count) << "client " << c;
      for (std::size_t i = 0; i < count; ++i) {
        ASSERT_EQ(state.messages[i].payload, Payload(c, i)) << "client " << c << " message " << i;
        ASSERT_EQ(state.messages[i].binary, i % 3 == 0) << "client " << c << " message " << i;
      }
    }
  }

  std::unique_ptr<EchoStack> stack_;
  std::string error_;
};

// 10,000 messages sent back to back on one connection come back in order,
// each exactly once.
TEST_F(OrderingTest, TenThousandMessagesOnOneConnectionComeBackInOrder) {
  ClientSwarm swarm;
  ASSERT_EQ(swarm.ConnectAll(stack_->gateway->ws_port(), {"/order"}, 1, std::chrono::seconds(20)), 1u);
  SendAndCheck(swarm, 1, 10'000, std::chrono::seconds(120));
}

// Several connections sending at once each keep their own order, and no
// message reaches another connection.
TEST_F(OrderingTest, ConcurrentConnectionsEachKeepTheirOwnOrder) {
  ClientSwarm swarm;
  std::vector<std::string> targets;
  for (int i = 0; i < 20; ++i) targets.push_back("/order/" + std::to_string(i));
  ASSERT_EQ(swarm.ConnectAll(stack_->gateway->ws_port(), targets, 20, std::chrono::seconds(20)), targets.size());
  SendAndCheck(swarm, targets.size(), 500, std::chrono::seconds(120));
}

}  // namespace
}  // namespace wsgateway::testing
