#include "gateway/runtime/token_bucket.hpp"

#include <gtest/gtest.h>

namespace wsgateway {
namespace {

using namespace std::chrono_literals;
using Clock = TokenBucket::Clock;

// A fresh bucket lets the whole burst through at once, and not one more.
TEST(TokenBucketTest, BurstPassesAtOnceAndTheNextDrawWaits) {
  TokenBucket bucket;
  const auto now = Clock::now();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(bucket.Draw(1, 100, 10, now), Clock::duration::zero()) << i;
  // One over the burst at 100 per second: 10 ms until it is paid for.
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(bucket.Draw(1, 100, 10, now)), 10ms);
}

// Time refills the bucket at the rate, never above the burst.
TEST(TokenBucketTest, RefillsAtTheRateUpToTheBurst) {
  TokenBucket bucket;
  const auto start = Clock::now();
  EXPECT_EQ(bucket.Draw(10, 100, 10, start), Clock::duration::zero());
  // 50 ms at 100 per second is 5 back.
  EXPECT_EQ(bucket.Draw(5, 100, 10, start + 50ms), Clock::duration::zero());
  EXPECT_GT(bucket.Draw(1, 100, 10, start + 50ms), Clock::duration::zero());
  // A long pause refills to the burst only.
  bucket = TokenBucket();
  EXPECT_EQ(bucket.Draw(10, 100, 10, start + 1h), Clock::duration::zero());
  EXPECT_GT(bucket.Draw(1, 100, 10, start + 1h), Clock::duration::zero());
}

// One draw larger than the burst goes through and is paid for afterwards.
TEST(TokenBucketTest, DrawLargerThanTheBurstIsPaidForByWaiting) {
  TokenBucket bucket;
  const auto now = Clock::now();
  const auto wait = bucket.Draw(1000, 100, 10, now);
  EXPECT_EQ(std::chrono::duration_cast<std::chrono::milliseconds>(wait), 9900ms);
}

}  // namespace
}  // namespace wsgateway
