// RedisClient's pipelining against a real redis-server: several commands in
// one round trip answer in order (error replies stay per command), and a
// server that is gone answers every command with the transport error.

#include "cluster/redis_client.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <csignal>
#include <memory>
#include <string>
#include <vector>

#include "tests/cluster/redis_test.hpp"
#include "tests/support/redis_process.hpp"

namespace wsgateway::cluster {
namespace {

using namespace std::chrono_literals;
using wsgateway::testing::RedisProcess;

class RedisClientTest : public RedisTest {};

TEST_F(RedisClientTest, APipelineAnswersInOrder) {
  RedisClient client(Endpoint(), 1s);
  const auto results = client.Pipeline({{"SET", "k", "v"},
                                        {"INCR", "n"},
                                        {"INCR", "k"},  // not a number: an error reply for this command only
                                        {"INCR", "n"},
                                        {"GET", "k"}});
  ASSERT_EQ(results.size(), 5u);
  EXPECT_TRUE(results[0].ok());
  ASSERT_TRUE(results[1].ok());
  EXPECT_EQ(results[1].value->integer, 1);
  EXPECT_FALSE(results[2].ok());
  ASSERT_NE(results[2].value, nullptr) << "an error reply is an answer, not a transport error";
  EXPECT_EQ(results[2].value->type, RedisValue::Type::kError);
  ASSERT_TRUE(results[3].ok());
  EXPECT_EQ(results[3].value->integer, 2);
  ASSERT_TRUE(results[4].ok());
  EXPECT_EQ(results[4].value->text, "v");
  // The connection is still in step: the next command gets its own answer.
  const auto next = client.Command({"GET", "n"});
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(next.value->text, "2");
}

TEST_F(RedisClientTest, AnEmptyPipelineAsksNothing) {
  RedisClient client(Endpoint(), 1s);
  EXPECT_TRUE(client.Pipeline({}).empty());
}

TEST_F(RedisClientTest, ADeadServerGivesEveryCommandTheError) {
  RedisClient client(Endpoint(), 500ms);
  ASSERT_TRUE(client.Command({"PING"}).ok());
  redis_->Kill();
  const auto results = client.Pipeline({{"SET", "a", "1"}, {"SET", "b", "2"}, {"GET", "a"}});
  ASSERT_EQ(results.size(), 3u);
  for (const auto& result : results) {
    EXPECT_FALSE(result.ok());
    EXPECT_EQ(result.value, nullptr);
    EXPECT_FALSE(result.error.empty());
  }
  // Not connected now: a fresh attempt fails the same way, at once.
  const auto again = client.Pipeline({{"PING"}, {"PING"}});
  ASSERT_EQ(again.size(), 2u);
  EXPECT_FALSE(again[0].error.empty());
  EXPECT_FALSE(again[1].error.empty());

  // And a server back on the port is reached again.
  std::string error;
  ASSERT_TRUE(redis_->Restart(&error)) << error;
  const auto back = client.Pipeline({{"SET", "a", "1"}, {"GET", "a"}});
  ASSERT_TRUE(back[1].ok());
  EXPECT_EQ(back[1].value->text, "1");
}

}  // namespace
}  // namespace wsgateway::cluster
