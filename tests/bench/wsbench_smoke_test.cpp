// Smoke tests for bench/wsbench: a tiny clean run of every mode exits 0 and
// says ok, and the faults that faulty_ws_server injects (an altered echo, a
// dropped one, a refused handshake; the same for broadcasts) each make the
// run fail with the right counter. One fanout run goes through a real
// gateway with the admin trigger. Runs are a few connections for a few
// hundred milliseconds, so the file stays quick under sanitizers.
//
// SoakScript runs scripts/soak itself for about a minute, backend restart
// included (ctest label `soak`, not `bench`).

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"
#include "tests/support/echo_stack.hpp"

namespace wsgateway::testing {
namespace {

using namespace std::chrono_literals;

// Bounds a whole wsbench run; a hang shows up as a failure, not a ctest
// timeout.
constexpr auto kRunTimeout = 60s;

std::string FromEnvOr(const char* variable, const char* fallback) {
  const char* v = std::getenv(variable);
  return v != nullptr && *v != '\0' ? v : fallback;
}

std::string WsbenchPath() { return FromEnvOr("WSG_TEST_WSBENCH", WSG_TEST_WSBENCH_BINARY); }
std::string BeastEchoServerPath() { return FromEnvOr("WSG_TEST_BEAST_ECHO_SERVER", WSG_TEST_BEAST_ECHO_SERVER_BINARY); }
std::string FaultyServerPath() { return FromEnvOr("WSG_TEST_FAULTY_SERVER", WSG_TEST_FAULTY_SERVER_BINARY); }
std::string SoakScriptPath() { return FromEnvOr("WSG_TEST_SOAK_SCRIPT", WSG_TEST_SOAK_SCRIPT); }
// Where scripts/soak finds wsgateway, echo_backend and wsbench.
std::string BuildDir() { return FromEnvOr("WSG_TEST_BUILD_DIR", WSG_TEST_BUILD_DIR); }

// A WebSocket server on a loopback port it chose, learnt from its
// "listening on" line.
class Server {
 public:
  static std::unique_ptr<Server> Start(const std::string& program, const std::string& name,
                                       std::vector<std::string> args) {
    auto server = std::unique_ptr<Server>(new Server());
    args.insert(args.begin(), {"--listen", "127.0.0.1:0"});
    server->process_ = std::make_unique<ChildProcess>(ChildProcess::Options{program, args, {}, {}, name});
    const auto line = server->process_->WaitForLine(R"(listening on 127\.0\.0\.1:(\d+))", kStartTimeout);
    if (!line) {
      ADD_FAILURE() << name << " did not print its listen line:\n" << server->process_->Tail();
      return nullptr;
    }
    server->port_ = static_cast<std::uint16_t>(std::stoi(line->groups[1]));
    return server;
  }

  static std::unique_ptr<Server> Faulty(const std::string& fault) {
    return Start(FaultyServerPath(), "faulty_ws_server " + fault, {"--fault", fault});
  }
  static std::unique_ptr<Server> BeastEcho() { return Start(BeastEchoServerPath(), "beast_echo_server", {}); }

  std::string Url() const { return "ws://127.0.0.1:" + std::to_string(port_) + "/"; }

 private:
  Server() = default;
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

// What one wsbench run printed and how it ended.
struct BenchRun {
  int exit_code = -1;  // -1: no normal exit in time
  std::string json;    // the final {"mode":...} line, if any
  std::string output;  // everything, for failure messages

  // A number from the JSON line; nullopt when the key is missing.
  std::optional<double> Number(const std::string& key) const {
    const std::string quoted = "\"" + key + "\":";
    const std::size_t at = json.find(quoted);
    if (at == std::string::npos) return std::nullopt;
    const char* start = json.c_str() + at + quoted.size();
    char* end = nullptr;
    const double value = std::strtod(start, &end);
    if (end == start) return std::nullopt;
    return value;
  }
  double N(const std::string& key) const { return Number(key).value_or(-1); }
  bool Ok() const { return json.find("\"ok\":true") != std::string::npos; }
};

std::ostream& operator<<(std::ostream& out, const BenchRun& run) {
  return out << "wsbench exit " << run.exit_code << ", output:\n" << run.output;
}

// Runs `program` (wsbench, or a script that runs it) to its end, at most
// `timeout`; one that overruns gets SIGTERM, so a script can stop what it
// started.
BenchRun RunBench(const std::string& program, const std::vector<std::string>& args,
                  std::chrono::milliseconds timeout = kRunTimeout) {
  ChildProcess child(ChildProcess::Options{program, args, {}, {}, "wsbench"});
  BenchRun run;
  // The JSON line comes last; when the output ends without it (bad usage),
  // WaitForLine returns as soon as the pipes close.
  const auto json = child.WaitForLine(R"(^\{"mode":)", timeout);
  if (json) run.json = json->line;
  auto status = child.Wait(json ? timeout : std::chrono::milliseconds(1));
  if (!status) {
    child.Signal(SIGTERM);
    status = child.Wait(30s);
  }
  if (status && WIFEXITED(*status)) run.exit_code = WEXITSTATUS(*status);
  run.output = child.Tail(100);
  return run;
}

BenchRun RunWsbench(const std::vector<std::string>& args) { return RunBench(WsbenchPath(), args); }

// ---- echo -------------------------------------------------------------------

TEST(WsbenchEcho, CleanRunAgainstTheBeastEchoServer) {
  auto server = Server::BeastEcho();
  ASSERT_TRUE(server);
  const auto run = RunWsbench({"echo", "--url", server->Url(), "--connections", "2", "--in-flight", "2", "--warmup",
                               "0", "--duration", "300ms"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(run.Ok()) << run;
  EXPECT_GT(run.N("messages"), 0) << run;
  EXPECT_EQ(run.N("verify_failures"), 0) << run;
}

TEST(WsbenchEcho, CountStopsAfterExactlyNReplies) {
  auto server = Server::Faulty("none");
  ASSERT_TRUE(server);
  const auto run =
      RunWsbench({"echo", "--url", server->Url(), "--connections", "3", "--count", "500", "--warmup", "0"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(run.Ok()) << run;
  EXPECT_EQ(run.N("messages"), 500) << run;
  EXPECT_NE(run.json.find("\"count_reached\":true"), std::string::npos) << run;
  EXPECT_GT(run.N("duration_s"), 0) << run;
}

TEST(WsbenchEcho, FindsAnAlteredReply) {
  auto server = Server::Faulty("wrong-reply");
  ASSERT_TRUE(server);
  const auto run =
      RunWsbench({"echo", "--url", server->Url(), "--connections", "2", "--warmup", "0", "--duration", "300ms"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_FALSE(run.Ok()) << run;
  EXPECT_GT(run.N("verify_failures"), 0) << run;
}

TEST(WsbenchEcho, FindsADroppedReply) {
  auto server = Server::Faulty("drop");
  ASSERT_TRUE(server);
  const auto run = RunWsbench({"echo", "--url", server->Url(), "--connections", "2", "--warmup", "0", "--duration",
                               "300ms", "--drain", "300ms"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_GT(run.N("dropped"), 0) << run;
  EXPECT_EQ(run.N("verify_failures"), 0) << run;
}

TEST(WsbenchEcho, FindsARefusedHandshake) {
  auto server = Server::Faulty("refuse");
  ASSERT_TRUE(server);
  const auto run =
      RunWsbench({"echo", "--url", server->Url(), "--connections", "3", "--warmup", "0", "--duration", "200ms"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_EQ(run.N("refused"), 1) << run;
}

// ---- hold -------------------------------------------------------------------

TEST(WsbenchHold, CleanRun) {
  auto server = Server::Faulty("none");
  ASSERT_TRUE(server);
  const auto run = RunWsbench({"hold", "--url", server->Url(), "--connections", "5", "--hold", "100ms"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(run.Ok()) << run;
  EXPECT_EQ(run.N("established"), 5) << run;
}

TEST(WsbenchHold, FindsARefusedHandshake) {
  auto server = Server::Faulty("refuse");
  ASSERT_TRUE(server);
  const auto run = RunWsbench({"hold", "--url", server->Url(), "--connections", "3", "--hold", "100ms"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_EQ(run.N("refused"), 1) << run;
  EXPECT_EQ(run.N("established"), 2) << run;
}

// ---- fanout -----------------------------------------------------------------

TEST(WsbenchFanout, CleanRunThroughTheBeastEchoServersRelay) {
  auto server = Server::BeastEcho();
  ASSERT_TRUE(server);
  const auto run = RunWsbench(
      {"fanout", "--url", server->Url(), "--connections", "5", "--messages", "20", "--trigger", "ws", "--drain", "5s"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(run.Ok()) << run;
  EXPECT_EQ(run.N("deliveries"), 100) << run;
  EXPECT_EQ(run.N("dropped"), 0) << run;
  EXPECT_GT(run.N("completion_max_us"), 0) << run;
}

TEST(WsbenchFanout, FindsAMissingDelivery) {
  auto server = Server::Faulty("drop");
  ASSERT_TRUE(server);
  const auto run = RunWsbench({"fanout", "--url", server->Url(), "--connections", "3", "--messages", "10", "--trigger",
                               "ws", "--drain", "300ms"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_GT(run.N("dropped"), 0) << run;
  EXPECT_EQ(run.N("verify_failures"), 0) << run;
}

TEST(WsbenchFanout, FindsAnAlteredDelivery) {
  auto server = Server::Faulty("wrong-reply");
  ASSERT_TRUE(server);
  const auto run = RunWsbench({"fanout", "--url", server->Url(), "--connections", "3", "--messages", "10", "--trigger",
                               "ws", "--drain", "300ms"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_GT(run.N("verify_failures"), 0) << run;
}

TEST(WsbenchFanout, AdminTriggerThroughTheGateway) {
  std::string error;
  auto stack = EchoStack::Start({}, &error);
  ASSERT_TRUE(stack) << error;
  const std::string url = "ws://127.0.0.1:" + std::to_string(stack->gateway->ws_port()) + "/";
  const std::string admin = "127.0.0.1:" + std::to_string(stack->gateway->admin_port());
  const auto run = RunWsbench({"fanout", "--url", url, "--connections", "50", "--messages", "20", "--trigger", "admin",
                               "--admin", admin, "--drain", "10s"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(run.Ok()) << run;
  EXPECT_EQ(run.N("deliveries"), 1000) << run;
  EXPECT_EQ(run.N("admin_short_queued"), 0) << run;
}

// ---- connect-rate -----------------------------------------------------------

TEST(WsbenchConnectRate, CleanRun) {
  auto server = Server::Faulty("none");
  ASSERT_TRUE(server);
  const auto run = RunWsbench(
      {"connect-rate", "--url", server->Url(), "--concurrency", "2", "--warmup", "0", "--duration", "300ms"});
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(run.Ok()) << run;
  EXPECT_GT(run.N("completed"), 0) << run;
  EXPECT_GT(run.N("handshake_p50_us"), 0) << run;
}

TEST(WsbenchConnectRate, FindsARefusedHandshake) {
  auto server = Server::Faulty("refuse");
  ASSERT_TRUE(server);
  const auto run = RunWsbench(
      {"connect-rate", "--url", server->Url(), "--concurrency", "2", "--warmup", "0", "--duration", "300ms"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_GT(run.N("refused"), 0) << run;
}

TEST(WsbenchConnectRate, FindsAnAlteredEcho) {
  auto server = Server::Faulty("wrong-reply");
  ASSERT_TRUE(server);
  const auto run = RunWsbench(
      {"connect-rate", "--url", server->Url(), "--concurrency", "2", "--warmup", "0", "--duration", "300ms"});
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_GT(run.N("verify_failures"), 0) << run;
}

// ---- soak -------------------------------------------------------------------

// A two-second soak against faulty_ws_server with `fault`: no admin API
// (the server has none) and no compression (nor that); exit code -1 when
// the server did not start.
BenchRun SoakAgainst(const std::string& fault) {
  auto server = Server::Faulty(fault);
  if (!server) return {};
  // clang-format off
  return RunWsbench({"soak", "--url", server->Url() + "soak", "--clients", "3", "--duration", "2s", "--rate", "100",
                     "--reply-timeout", "1s", "--deflate-share", "0", "--min-lifetime", "500ms",
                     "--max-lifetime", "1s"});
  // clang-format on
}

TEST(WsbenchSoak, CleanRunWithReconnects) {
  const auto run = SoakAgainst("none");
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(run.Ok()) << run;
  EXPECT_GT(run.N("opened"), 3) << run;
  EXPECT_GT(run.N("echoed"), 0) << run;
  EXPECT_EQ(run.N("failures"), 0) << run;
}

TEST(WsbenchSoak, FindsALostEcho) {
  const auto run = SoakAgainst("drop");
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_GT(run.N("lost"), 0) << run;
  EXPECT_EQ(run.N("corrupt"), 0) << run;
}

TEST(WsbenchSoak, FindsAnAlteredEcho) {
  const auto run = SoakAgainst("wrong-reply");
  EXPECT_EQ(run.exit_code, 1) << run;
  EXPECT_GT(run.N("corrupt"), 0) << run;
}

// A 503 is what the gateway answers while its backend is away: retried, not
// a failure.
TEST(WsbenchSoak, RetriesA503) {
  const auto run = SoakAgainst("refuse");
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_GT(run.N("refused_503"), 0) << run;
  EXPECT_EQ(run.N("failures"), 0) << run;
}

// Under AddressSanitizer the gateway's RSS grows with ASan's quarantine of
// freed memory (up to 256 MiB), so only descriptors are checked for growth.
#if defined(__SANITIZE_ADDRESS__)
constexpr const char* kSoakRssGrowth = "0";
#else
constexpr const char* kSoakRssGrowth = "0.2";
#endif

// scripts/soak for 45 s against this build: clients reconnecting, pushes,
// broadcasts, the backend killed and started again halfway, and every reply
// verified.
TEST(SoakScript, PassesWithABackendRestart) {
  // clang-format off
  const std::vector<std::string> args = {
      "--seconds", "45", "--clients", "40", "--rate", "300",
      "--build-dir", BuildDir(), "--no-build", "--out", BuildDir() + "/soak-test-logs",
      "--",  // the rest goes to wsbench soak
      "--min-lifetime", "1s", "--max-lifetime", "10s", "--push-rate", "50", "--broadcast-rate", "4",
      "--report-interval", "5s", "--rss-growth", kSoakRssGrowth};
  // clang-format on
  const auto run = RunBench(SoakScriptPath(), args, 240s);
  EXPECT_EQ(run.exit_code, 0) << run;
  EXPECT_TRUE(run.Ok()) << run;
  EXPECT_EQ(run.N("backend_restarts"), 1) << run;
  EXPECT_GT(run.N("opened"), 40) << run;
  EXPECT_GT(run.N("echoed"), 1000) << run;
  EXPECT_GT(run.N("pushes_verified"), 0) << run;
  EXPECT_GT(run.N("broadcast_deliveries"), 0) << run;
  EXPECT_EQ(run.N("failures"), 0) << run;
  EXPECT_NE(run.output.find("scripts/soak: PASS"), std::string::npos) << run;
}

// ---- usage ------------------------------------------------------------------

TEST(WsbenchUsage, BadArgumentsExitTwo) {
  const std::vector<std::vector<std::string>> cases = {
      {"fanout", "--url", "ws://192.0.2.1:80/", "--trigger", "ws"},
      {"fanout", "--url", "ws://127.0.0.1:9/", "--trigger", "admin"},
      {"fanout", "--url", "ws://127.0.0.1:9/", "--trigger", "ws", "--admin", "127.0.0.1:9"},
      {"fanout", "--url", "ws://127.0.0.1:9/", "--trigger", "ws", "--in-flight", "65"},
      {"echo", "--url", "ws://127.0.0.1:9/", "--count", "10", "--rate", "100"},
      {"connect-rate", "--url", "ws://127.0.0.1:9/", "--duration", "0"},
      {"soak", "--url", "ws://127.0.0.1:9/", "--min-lifetime", "5s", "--max-lifetime", "1s"},
  };
  for (const auto& args : cases) {
    const auto run = RunWsbench(args);
    EXPECT_EQ(run.exit_code, 2) << args[0] << " " << args[args.size() - 2] << " " << args.back() << ": " << run;
  }
}

}  // namespace
}  // namespace wsgateway::testing
