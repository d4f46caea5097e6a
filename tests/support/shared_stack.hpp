#pragma once
// A test suite whose tests share one GatewayStack (a backend and a gateway in
// front of it), started once with the suite's flags: Suite::Flags(), called
// when the suite starts (so it may prepare files the flags name). Flags()
// may throw a std::exception when it cannot prepare them; the suite's tests
// then fail with its message instead of starting a gateway that cannot
// work. Suites without flags leave Flags() out. CRTP keeps one stack per
// suite. SharedEchoStack and SharedScriptedStack name the two backends.
//
// With a ScriptedBackend, the backend is back to its default answers and
// holds no call after every test, so that no test's script answers for the
// next one.
//
// Thread-safety: gtest's main thread only.

#include <gtest/gtest.h>

#include <concepts>
#include <cstdint>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/gateway_stack.hpp"
#include "tests/support/unique_path.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {

template <typename Suite, typename Backend>
class SharedStack : public ::testing::Test {
 public:
  using Stack = GatewayStack<Backend>;

  static void SetUpTestSuite() {
    try {
      stack_ = Stack::Start(Suite::Flags(), &error_);
    } catch (const std::exception& e) {
      error_ = e.what();
    }
    if (stack_ != nullptr) admin_ = std::make_unique<AdminClient>(admin_port());
  }
  static void TearDownTestSuite() {
    admin_.reset();
    stack_.reset();
  }

  static std::vector<std::string> Flags() { return {}; }

 protected:
  void SetUp() override { ASSERT_NE(stack_, nullptr) << error_; }
  void TearDown() override {
    if constexpr (std::is_same_v<Backend, ScriptedBackend>) {
      if (!started()) return;
      backend().ResetHandlers();
      backend().ReleaseHeld();
    }
  }

  // False when the stack failed to start (then every SetUp fails).
  static bool started() { return stack_ != nullptr; }
  static Stack& stack() { return *stack_; }
  static Backend& backend() { return *stack_->backend; }
  static std::uint16_t port() { return stack_->gateway->ws_port(); }
  static std::uint16_t admin_port() { return stack_->gateway->admin_port(); }
  static std::uint16_t metrics_port() { return stack_->gateway->metrics_port(); }
  // A client of the gateway's admin API, without credentials.
  static AdminClient& admin() { return *admin_; }

  // Upgrades `client` on a path no other test uses, under `prefix`.
  static void Connect(WsClient& client, const std::string& prefix) {
    const auto upgrade = client.Connect(port(), UniquePath(prefix));
    ASSERT_FALSE(upgrade.ec) << upgrade.ec.message() << " (HTTP " << upgrade.http_status << ")";
    ASSERT_EQ(upgrade.http_status, 101u);
  }

  // Upgrades `client` on `target` ("/path?query") and waits until the admin
  // API lists the connection on its path as ACTIVE, so that the test can
  // address it. Returns its id; "" (and a failure recorded) when either
  // step fails.
  static std::string ConnectAndGetId(WsClient& client, const std::string& target) {
    const auto upgrade = client.Connect(port(), target);
    EXPECT_EQ(upgrade.http_status, 101u) << upgrade.ec.message();
    const auto info = admin().WaitForOne(target.substr(0, target.find('?')), v1::CONNECTION_STATE_ACTIVE);
    EXPECT_TRUE(info.has_value()) << "connection on " << target << " never listed as ACTIVE";
    return info ? info->connection_id() : std::string();
  }

  // Proves that nothing else is queued for the client: its next message is
  // the echo of a fresh marker. Only the echo backend answers with echoes.
  static void ExpectNothingMoreThan(WsClient& client) requires std::same_as<Backend, EchoBackendProcess> {
    const std::string marker = "marker-" + UniquePath();
    ASSERT_FALSE(client.SendText(marker));
    const auto next = client.Read();
    ASSERT_FALSE(next.ec) << next.ec.message();
    EXPECT_EQ(next.payload, marker) << "an unexpected message arrived before the marker";
  }

 private:
  static inline std::unique_ptr<Stack> stack_;
  static inline std::unique_ptr<AdminClient> admin_;
  static inline std::string error_;
};

template <typename Suite>
using SharedEchoStack = SharedStack<Suite, EchoBackendProcess>;
template <typename Suite>
using SharedScriptedStack = SharedStack<Suite, ScriptedBackend>;

}  // namespace wsgateway::testing
