#pragma once
// A test suite whose tests share one echo stack (echo backend + gateway),
// started once with the suite's flags: Suite::Flags(), called when the
// suite starts (so it may prepare files the flags name). CRTP keeps one
// stack per suite.

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/echo_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {

template <typename Suite>
class SharedEchoStack : public ::testing::Test {
 public:
  static void SetUpTestSuite() { stack_ = EchoStack::Start(Suite::Flags(), &error_).release(); }
  static void TearDownTestSuite() {
    delete stack_;
    stack_ = nullptr;
  }

 protected:
  void SetUp() override { ASSERT_NE(stack_, nullptr) << error_; }
  static EchoStack& stack() { return *stack_; }
  static std::uint16_t port() { return stack_->gateway->ws_port(); }
  static std::uint16_t admin_port() { return stack_->gateway->admin_port(); }
  static std::uint16_t metrics_port() { return stack_->gateway->metrics_port(); }
  // Upgrades `client` on a path no other test uses, under `prefix`.
  static void Connect(WsClient& client, const std::string& prefix) {
    const auto upgrade = client.Connect(port(), UniquePath(prefix));
    ASSERT_FALSE(upgrade.ec) << upgrade.ec.message() << " (HTTP " << upgrade.http_status << ")";
    ASSERT_EQ(upgrade.http_status, 101u);
  }

 private:
  static inline EchoStack* stack_ = nullptr;
  static inline std::string error_;
};

}  // namespace wsgateway::testing
