// max_connections and max_connections_per_address: slots taken at the
// accept, given back by whoever ends the connection, on any thread.

#include "gateway/runtime/connection_limits.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <thread>
#include <vector>

namespace wsgateway {
namespace {

using Verdict = ConnectionLimits::Verdict;

boost::asio::ip::address Address(const char* text) { return boost::asio::ip::make_address(text); }

TEST(ConnectionLimitsTest, WithoutLimitsEveryoneIsAdmitted) {
  ConnectionLimits limits(0, 0);
  std::vector<ConnectionLimits::Admission> held;
  for (int i = 0; i < 1000; ++i) {
    held.push_back(limits.Admit(Address("10.0.0.1")));
    EXPECT_EQ(held.back().verdict, Verdict::kAdmitted);
  }
  EXPECT_EQ(limits.tracked_addresses(), 0u) << "nothing is tracked without a limit";
}

TEST(ConnectionLimitsTest, TotalLimitRefusesPastItAndAdmitsAgainAfterARelease) {
  ConnectionLimits limits(2, 0);
  auto a = limits.Admit(Address("10.0.0.1"));
  auto b = limits.Admit(Address("10.0.0.2"));
  EXPECT_EQ(a.verdict, Verdict::kAdmitted);
  EXPECT_EQ(b.verdict, Verdict::kAdmitted);
  EXPECT_EQ(limits.Admit(Address("10.0.0.3")).verdict, Verdict::kOverTotal);
  EXPECT_EQ(limits.total(), 2u) << "a refusal holds no slot";
  a.slot.Release();
  EXPECT_EQ(limits.total(), 1u);
  EXPECT_EQ(limits.Admit(Address("10.0.0.3")).verdict, Verdict::kAdmitted);
}

TEST(ConnectionLimitsTest, AddressLimitIsPerAddress) {
  ConnectionLimits limits(0, 2);
  std::vector<ConnectionLimits::Admission> held;
  held.push_back(limits.Admit(Address("127.0.0.2")));
  held.push_back(limits.Admit(Address("127.0.0.2")));
  EXPECT_EQ(limits.Admit(Address("127.0.0.2")).verdict, Verdict::kOverAddress);
  held.push_back(limits.Admit(Address("127.0.0.3")));
  EXPECT_EQ(held.back().verdict, Verdict::kAdmitted) << "another address has its own count";
  EXPECT_EQ(limits.CountFor(Address("127.0.0.2")), 2u);
  EXPECT_EQ(limits.CountFor(Address("127.0.0.3")), 1u);
  EXPECT_EQ(limits.total(), 3u);
}

// When the gateway is full everyone hears 503, even a client under its own
// limit.
TEST(ConnectionLimitsTest, TotalLimitIsCheckedFirst) {
  ConnectionLimits limits(1, 1);
  auto held = limits.Admit(Address("10.0.0.1"));
  EXPECT_EQ(limits.Admit(Address("10.0.0.1")).verdict, Verdict::kOverTotal);
  EXPECT_EQ(limits.Admit(Address("10.0.0.2")).verdict, Verdict::kOverTotal);
}

// An address whose last connection ended is forgotten: the map is as large
// as the set of connected clients.
TEST(ConnectionLimitsTest, AddressesAtZeroAreForgotten) {
  ConnectionLimits limits(0, 5);
  {
    std::vector<ConnectionLimits::Admission> held;
    for (int i = 1; i <= 100; ++i) {
      held.push_back(limits.Admit(Address(("10.1.0." + std::to_string(i)).c_str())));
    }
    EXPECT_EQ(limits.tracked_addresses(), 100u);
  }
  EXPECT_EQ(limits.tracked_addresses(), 0u);
  EXPECT_EQ(limits.total(), 0u);
  // Refusals leave nothing behind either.
  auto a = limits.Admit(Address("10.2.0.1"));
  for (int i = 0; i < 4; ++i) limits.Admit(Address("10.2.0.1"));
  EXPECT_EQ(limits.tracked_addresses(), 1u);
}

// A dual-stack listener sees IPv4 clients as ::ffff:a.b.c.d; they count as
// the IPv4 address.
TEST(ConnectionLimitsTest, V4MappedAddressesCountAsIpv4) {
  ConnectionLimits limits(0, 1);
  auto held = limits.Admit(Address("::ffff:192.0.2.7"));
  EXPECT_EQ(limits.Admit(Address("192.0.2.7")).verdict, Verdict::kOverAddress);
  EXPECT_EQ(limits.CountFor(Address("192.0.2.7")), 1u);
  EXPECT_EQ(limits.Admit(Address("2001:db8::7")).verdict, Verdict::kAdmitted);
}

// The slot is a token: moving it moves the place, releasing twice gives it
// back once, destroying it gives it back.
TEST(ConnectionLimitsTest, SlotIsGivenBackExactlyOnce) {
  ConnectionLimits limits(3, 3);
  auto first = limits.Admit(Address("10.0.0.1"));
  ConnectionLimits::Slot moved = std::move(first.slot);
  first.slot.Release();
  EXPECT_EQ(limits.total(), 1u);
  moved.Release();
  moved.Release();
  EXPECT_EQ(limits.total(), 0u);
  {
    auto scoped = limits.Admit(Address("10.0.0.1"));
    auto other = limits.Admit(Address("10.0.0.1"));
    scoped.slot = std::move(other.slot);  // gives back the slot it held
    EXPECT_EQ(limits.total(), 1u);
  }
  EXPECT_EQ(limits.total(), 0u);
  EXPECT_EQ(limits.tracked_addresses(), 0u);
}

// Accepts on one thread, ends on others, as the gateway does: the count
// stays exact and never passes the limit.
TEST(ConnectionLimitsTest, CountsStayExactAcrossThreads) {
  constexpr std::size_t kLimit = 8;
  ConnectionLimits limits(kLimit, 4);
  constexpr int kThreads = 4;
  constexpr int kRounds = 2000;
  std::atomic<std::size_t> admitted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const auto address = Address(t % 2 == 0 ? "10.0.0.1" : "10.0.0.2");
      for (int i = 0; i < kRounds; ++i) {
        auto admission = limits.Admit(address);
        if (admission.verdict != Verdict::kAdmitted) continue;
        ++admitted;
        EXPECT_LE(limits.total(), kLimit);
        EXPECT_LE(limits.CountFor(address), 4u);
        // Handed to another thread that ends the connection.
        std::thread([slot = std::move(admission.slot)]() mutable { slot.Release(); }).join();
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_GT(admitted.load(), 0u);
  EXPECT_EQ(limits.total(), 0u);
  EXPECT_EQ(limits.tracked_addresses(), 0u);
}

}  // namespace
}  // namespace wsgateway
