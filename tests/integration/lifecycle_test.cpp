// Start-up and shutdown of the daemon as an operator sees them: bad
// configuration fails fast with exit code 2, a taken port fails start-up,
// and SIGTERM closes clients with 1001 and exits 0.

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <string>

#include "tests/support/gateway_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

// Runs wsgateway with `args` to completion; returns its wait status and output.
std::pair<int, std::string> RunToExit(const std::vector<std::string>& args) {
  ChildProcess child({WsgatewayPath(), args, {}, {}, "wsgateway"});
  const auto status = child.Wait(std::chrono::seconds(30));
  std::string output;
  for (const auto& line : child.Lines()) output += line + "\n";
  return {status.value_or(-1), output};
}

// A value that is not a size stops start-up with exit code 2 and names the flag.
TEST(LifecycleTest, BadFlagValueExitsWithCode2NamingTheFlag) {
  const auto [status, output] = RunToExit({"--max-message-bytes", "lots", "--listen", "127.0.0.1:0"});
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 2) << output;
  EXPECT_NE(output.find("max-message-bytes"), std::string::npos) << output;
}

// An unknown flag stops start-up with exit code 2.
TEST(LifecycleTest, UnknownFlagExitsWithCode2) {
  const auto [status, output] = RunToExit({"--no-such-flag", "1"});
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 2) << output;
}

// --help prints the flags and exits 0.
TEST(LifecycleTest, HelpExitsZero) {
  const auto [status, output] = RunToExit({"--help"});
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("--admin-listen"), std::string::npos) << output;
}

// A listener address already in use fails start-up with a non-zero exit and
// a message naming the address.
TEST(LifecycleTest, PortInUseFailsStartUp) {
  std::string error;
  auto first = GatewayProcess::Start({}, &error);
  ASSERT_NE(first, nullptr) << error;
  const std::string taken = "127.0.0.1:" + std::to_string(first->ws_port());
  const auto [status, output] =
      RunToExit({"--listen", taken, "--admin-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"});
  ASSERT_TRUE(WIFEXITED(status)) << "the second gateway did not exit: " << output;
  EXPECT_NE(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find(std::to_string(first->ws_port())), std::string::npos) << output;
}

// SIGTERM closes WebSocket clients with 1001 Going Away and the process exits
// with status 0 (in sanitizer builds, also without leaks).
TEST(LifecycleTest, SigtermClosesClientsWith1001AndExitsZero) {
  std::string error;
  auto stack = EchoStack::Start({}, &error);
  ASSERT_NE(stack, nullptr) << error;
  WsClient client;
  ASSERT_EQ(client.Connect(stack->gateway->ws_port(), "/bye").http_status, 101u);
  ASSERT_FALSE(client.SendText("before"));
  ASSERT_EQ(client.Read().payload, "before");

  stack->gateway->process().Signal(SIGTERM);
  const auto closed = client.Read();
  EXPECT_TRUE(closed.ec);
  EXPECT_EQ(client.CloseCode(), 1001);
  const auto status = stack->gateway->process().Wait(std::chrono::seconds(30));
  ASSERT_TRUE(status.has_value()) << "wsgateway did not exit after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status)) << "killed by signal " << (WIFSIGNALED(*status) ? WTERMSIG(*status) : 0);
  if (WIFEXITED(*status)) {
    EXPECT_EQ(WEXITSTATUS(*status), 0) << stack->gateway->process().Tail();
  }
}

}  // namespace
}  // namespace wsgateway::testing
