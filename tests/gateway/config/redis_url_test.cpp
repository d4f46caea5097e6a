#include "gateway/config/redis_url.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace wsgateway {
namespace {

using ::testing::HasSubstr;

TEST(RedisUrlTest, HostAndPortWithDefaults) {
  const auto parsed = ParseRedisUrl("redis://redis.default.svc:6380");
  ASSERT_TRUE(parsed.endpoint) << parsed.error;
  EXPECT_EQ(parsed.endpoint->host, "redis.default.svc");
  EXPECT_EQ(parsed.endpoint->port, 6380);
  EXPECT_EQ(parsed.endpoint->password, "");
  EXPECT_EQ(parsed.endpoint->database, 0);

  const auto bare = ParseRedisUrl("redis://localhost");
  ASSERT_TRUE(bare.endpoint) << bare.error;
  EXPECT_EQ(bare.endpoint->port, 6379);
}

TEST(RedisUrlTest, PasswordUserAndDatabase) {
  const auto password_only = ParseRedisUrl("redis://:s3cr:et@10.0.0.5:6379/2");
  ASSERT_TRUE(password_only.endpoint) << password_only.error;
  EXPECT_EQ(password_only.endpoint->user, "");
  EXPECT_EQ(password_only.endpoint->password, "s3cr:et");
  EXPECT_EQ(password_only.endpoint->database, 2);

  const auto with_user = ParseRedisUrl("redis://gateway:pw@[::1]:7000");
  ASSERT_TRUE(with_user.endpoint) << with_user.error;
  EXPECT_EQ(with_user.endpoint->user, "gateway");
  EXPECT_EQ(with_user.endpoint->password, "pw");
  EXPECT_EQ(with_user.endpoint->host, "::1");
  EXPECT_EQ(with_user.endpoint->port, 7000);
}

// Every refusal names the URL and what is wrong with it.
TEST(RedisUrlTest, RefusalsSayWhatIsWrong) {
  EXPECT_THAT(ParseRedisUrl("http://redis:6379").error, HasSubstr("does not start with redis://"));
  EXPECT_THAT(ParseRedisUrl("redis://:6379").error, HasSubstr("names no host"));
  EXPECT_THAT(ParseRedisUrl("redis://redis:0").error, HasSubstr("port must be 1-65535"));
  EXPECT_THAT(ParseRedisUrl("redis://redis:70000").error, HasSubstr("port must be 1-65535"));
  EXPECT_THAT(ParseRedisUrl("redis://redis:6379/x").error, HasSubstr("database"));
  EXPECT_THAT(ParseRedisUrl("redis://[::1:6379").error, HasSubstr("'[' without ']'"));
  EXPECT_THAT(ParseRedisUrl("redis://redis:x").error, HasSubstr("'redis://redis:x'"));
}

// Logs never carry the password.
TEST(RedisUrlTest, RedactedHidesThePassword) {
  const auto parsed = ParseRedisUrl("redis://gateway:hunter2@redis:6379/3");
  ASSERT_TRUE(parsed.endpoint);
  EXPECT_EQ(RedactedRedisUrl(*parsed.endpoint), "redis://gateway:***@redis:6379/3");
  EXPECT_EQ(RedactedRedisUrl(*ParseRedisUrl("redis://[::1]").endpoint), "redis://[::1]:6379");
}

}  // namespace
}  // namespace wsgateway
