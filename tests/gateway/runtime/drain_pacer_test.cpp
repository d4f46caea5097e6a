#include "gateway/runtime/drain_pacer.hpp"

#include <gtest/gtest.h>

namespace wsgateway {
namespace {

using namespace std::chrono_literals;
using Clock = DrainPacer::Clock;

// The first connection may go at once; then `per_second` of them a second.
TEST(DrainPacerTest, OneAtOnceThenAtTheRate) {
  const auto start = Clock::time_point{} + 1h;
  DrainPacer pacer(100, start);
  EXPECT_EQ(pacer.Take(start), 1u);
  EXPECT_EQ(pacer.Take(start), 0u);
  EXPECT_EQ(pacer.NextDue(), start + 10ms);
  EXPECT_EQ(pacer.Take(start + 9ms), 0u);
  EXPECT_EQ(pacer.Take(start + 10ms), 1u);
  EXPECT_EQ(pacer.Take(start + 1s), 99u);
  EXPECT_EQ(pacer.NextDue(), start + 1010ms);
}

// Over any span the total taken is the rate times the span, plus the first.
TEST(DrainPacerTest, TotalFollowsTheRateWhateverTheTicks) {
  const auto start = Clock::time_point{} + 1h;
  DrainPacer pacer(250, start);
  std::size_t total = 0;
  for (auto t = start; t <= start + 2s; t += 7ms) total += pacer.Take(t);
  // 1 + floor(250 * 1.995) at the last tick (2s is not a multiple of 7ms).
  EXPECT_EQ(total, 1u + 498u);
}

// A time before the start (a clock read on another thread) takes just the first.
TEST(DrainPacerTest, TimeBeforeStartTakesOnlyTheFirst) {
  const auto start = Clock::time_point{} + 1h;
  DrainPacer pacer(10, start);
  EXPECT_EQ(pacer.Take(start - 5s), 1u);
  EXPECT_EQ(pacer.Take(start - 1s), 0u);
}

// A rate below one a second still drains, slowly.
TEST(DrainPacerTest, SlowRatesStillMoveForward) {
  const auto start = Clock::time_point{} + 1h;
  DrainPacer pacer(0.5, start);
  EXPECT_EQ(pacer.Take(start), 1u);
  EXPECT_EQ(pacer.NextDue(), start + 2s);
  EXPECT_EQ(pacer.Take(start + 2s), 1u);
}

}  // namespace
}  // namespace wsgateway
