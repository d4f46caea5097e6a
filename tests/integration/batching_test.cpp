// How the gateway batches events for the backend (backend_batch_interval):
// a long interval spaces the batches of a busy connection, but a client that
// waits for each reply is not made to wait for the interval as well.

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "tests/support/shared_stack.hpp"

namespace wsgateway::testing {
namespace {

// The longest interval the configuration allows, so that waiting it out
// even once per round trip could not go unseen.
constexpr std::chrono::milliseconds kInterval{100};

class BatchingTest : public SharedEchoStack<BatchingTest> {
 public:
  static std::vector<std::string> Flags() {
    return {"--backend-batch-interval", std::to_string(kInterval.count()) + "ms"};
  }
};

// Request/response traffic: each message goes to the backend as soon as the
// previous one was acknowledged. Twenty round trips that each waited out the
// interval would take two seconds; the bound allows for a slow build
// (sanitizers) and still fails if the interval is waited out half the time.
TEST_F(BatchingTest, RoundTripsDoNotWaitOutTheInterval) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "batching"));
  constexpr int kRoundTrips = 20;
  const auto started = std::chrono::steady_clock::now();
  for (int i = 0; i < kRoundTrips; ++i) {
    const std::string text = "request " + std::to_string(i);
    ASSERT_FALSE(client.SendText(text));
    const auto echo = client.Read();
    ASSERT_FALSE(echo.ec) << echo.ec.message();
    ASSERT_EQ(echo.payload, text);
  }
  const auto elapsed = std::chrono::steady_clock::now() - started;
  EXPECT_LT(elapsed, kInterval * kRoundTrips / 2)
      << "round trips took " << std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count() << " ms";
}

// A burst larger than a small batch goes out in interval-spaced batches;
// every message still comes back, in order.
TEST_F(BatchingTest, BurstIsEchoedWholeAndInOrder) {
  WsClient client;
  ASSERT_NO_FATAL_FAILURE(Connect(client, "batching"));
  constexpr int kMessages = 500;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < kMessages; ++i) ASSERT_FALSE(client.SendText("burst " + std::to_string(i)));
    for (int i = 0; i < kMessages; ++i) {
      const auto echo = client.Read();
      ASSERT_FALSE(echo.ec) << echo.ec.message() << " after " << i << " replies";
      ASSERT_EQ(echo.payload, "burst " + std::to_string(i));
    }
  }
}

}  // namespace
}  // namespace wsgateway::testing
