#pragma once
// The base of the cluster unit tests that talk to Redis: a redis-server of
// the test's own on a loopback port (tests/support/redis_process.hpp),
// started for each test and stopped with it.

#include <gtest/gtest.h>

#include <csignal>
#include <memory>
#include <string>

#include "gateway/config/redis_url.hpp"
#include "tests/support/redis_process.hpp"

namespace wsgateway::cluster {

class RedisTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // A write to a server that died must fail, not kill the test.
    std::signal(SIGPIPE, SIG_IGN);
    std::string error;
    redis_ = testing::RedisProcess::Start(&error);
    ASSERT_TRUE(redis_) << error;
  }

  RedisEndpoint Endpoint() const { return *ParseRedisUrl(redis_->url()).endpoint; }

  std::unique_ptr<testing::RedisProcess> redis_;
};

}  // namespace wsgateway::cluster
