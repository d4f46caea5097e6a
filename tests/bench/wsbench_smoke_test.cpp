// Smoke tests for bench/wsbench: a tiny clean run of every mode exits 0 and
// says ok, and the faults that faulty_ws_server injects (an altered echo, a
// dropped one, a refused handshake; the same for broadcasts) each make the
// run fail with the right counter. One fanout run goes through a real
// gateway with the admin trigger, and two push runs through one. Runs are a
// few connections for a few hundred milliseconds, so the file stays quick
// under sanitizers. The runs against a single server are one table,
// SmokeCases(), each case a test.
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
#include <ostream>
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"
#include "tests/support/gateway_stack.hpp"

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

// ---- one run per case -------------------------------------------------------

// An expectation on a number of the JSON line.
struct Counter {
  enum class Is { kEqualTo, kAbove };
  std::string key;
  Is is;
  double value;
};

// One wsbench run against one server: the flags, and what it must report.
struct SmokeCase {
  std::string name;   // the test's name: <Mode>_<What>
  std::string fault;  // faulty_ws_server's --fault; "" runs beast_echo_server
  std::string mode;
  std::string path;               // appended to the server's URL
  std::vector<std::string> args;  // after the mode and --url
  int exit_code;
  std::optional<bool> ok;                  // the JSON's "ok", when checked
  std::vector<Counter> counters;           // numbers of the JSON line
  std::vector<std::string> json_has = {};  // fragments the JSON line holds
};

void PrintTo(const SmokeCase& c, std::ostream* out) { *out << c.name; }

constexpr auto kEq = Counter::Is::kEqualTo;
constexpr auto kGt = Counter::Is::kAbove;

// clang-format off
// A two-second soak: no admin API (faulty_ws_server has none) and no
// compression (nor that).
const std::vector<std::string> kSoakArgs = {
    "--clients", "3", "--duration", "2s", "--rate", "100", "--reply-timeout", "1s", "--deflate-share", "0",
    "--min-lifetime", "500ms", "--max-lifetime", "1s"};

std::vector<SmokeCase> SmokeCases() {
  return {
      // ---- echo
      {"Echo_CleanRunAgainstTheBeastEchoServer", "", "echo", "",
       {"--connections", "2", "--in-flight", "2", "--warmup", "0", "--duration", "300ms"},
       0, true, {{"messages", kGt, 0}, {"verify_failures", kEq, 0}}},
      {"Echo_CountStopsAfterExactlyNReplies", "none", "echo", "",
       {"--connections", "3", "--count", "500", "--warmup", "0"},
       0, true, {{"messages", kEq, 500}, {"duration_s", kGt, 0}}, {"\"count_reached\":true"}},
      {"Echo_FindsAnAlteredReply", "wrong-reply", "echo", "",
       {"--connections", "2", "--warmup", "0", "--duration", "300ms"},
       1, false, {{"verify_failures", kGt, 0}}},
      {"Echo_FindsADroppedReply", "drop", "echo", "",
       {"--connections", "2", "--warmup", "0", "--duration", "300ms", "--drain", "300ms"},
       1, std::nullopt, {{"dropped", kGt, 0}, {"verify_failures", kEq, 0}}},
      {"Echo_FindsARefusedHandshake", "refuse", "echo", "",
       {"--connections", "3", "--warmup", "0", "--duration", "200ms"},
       1, std::nullopt, {{"refused", kEq, 1}}},
      // ---- hold
      {"Hold_CleanRun", "none", "hold", "",
       {"--connections", "5", "--hold", "100ms"},
       0, true, {{"established", kEq, 5}}},
      {"Hold_FindsARefusedHandshake", "refuse", "hold", "",
       {"--connections", "3", "--hold", "100ms"},
       1, std::nullopt, {{"refused", kEq, 1}, {"established", kEq, 2}}},
      // ---- fanout (the admin trigger runs through a gateway, below)
      {"Fanout_CleanRunThroughTheBeastEchoServersRelay", "", "fanout", "",
       {"--connections", "5", "--messages", "20", "--trigger", "ws", "--drain", "5s"},
       0, true, {{"deliveries", kEq, 100}, {"dropped", kEq, 0}, {"completion_max_us", kGt, 0}}},
      {"Fanout_FindsAMissingDelivery", "drop", "fanout", "",
       {"--connections", "3", "--messages", "10", "--trigger", "ws", "--drain", "300ms"},
       1, std::nullopt, {{"dropped", kGt, 0}, {"verify_failures", kEq, 0}}},
      {"Fanout_FindsAnAlteredDelivery", "wrong-reply", "fanout", "",
       {"--connections", "3", "--messages", "10", "--trigger", "ws", "--drain", "300ms"},
       1, std::nullopt, {{"verify_failures", kGt, 0}}},
      // ---- connect-rate
      {"ConnectRate_CleanRun", "none", "connect-rate", "",
       {"--concurrency", "2", "--warmup", "0", "--duration", "300ms"},
       0, true, {{"completed", kGt, 0}, {"handshake_p50_us", kGt, 0}}},
      {"ConnectRate_FindsARefusedHandshake", "refuse", "connect-rate", "",
       {"--concurrency", "2", "--warmup", "0", "--duration", "300ms"},
       1, std::nullopt, {{"refused", kGt, 0}}},
      {"ConnectRate_FindsAnAlteredEcho", "wrong-reply", "connect-rate", "",
       {"--concurrency", "2", "--warmup", "0", "--duration", "300ms"},
       1, std::nullopt, {{"verify_failures", kGt, 0}}},
      // ---- soak
      {"Soak_CleanRunWithReconnects", "none", "soak", "soak", kSoakArgs,
       0, true, {{"opened", kGt, 3}, {"echoed", kGt, 0}, {"failures", kEq, 0}}},
      {"Soak_FindsALostEcho", "drop", "soak", "soak", kSoakArgs,
       1, std::nullopt, {{"lost", kGt, 0}, {"corrupt", kEq, 0}}},
      {"Soak_FindsAnAlteredEcho", "wrong-reply", "soak", "soak", kSoakArgs,
       1, std::nullopt, {{"corrupt", kGt, 0}}},
      // A 503 is what the gateway answers while its backend is away: retried,
      // not a failure.
      {"Soak_RetriesA503", "refuse", "soak", "soak", kSoakArgs,
       0, std::nullopt, {{"refused_503", kGt, 0}, {"failures", kEq, 0}}},
  };
}
// clang-format on

class WsbenchRun : public ::testing::TestWithParam<SmokeCase> {};

TEST_P(WsbenchRun, ReportsWhatTheServerDid) {
  const SmokeCase& c = GetParam();
  auto server = c.fault.empty() ? Server::BeastEcho() : Server::Faulty(c.fault);
  ASSERT_TRUE(server);
  std::vector<std::string> args = {c.mode, "--url", server->Url() + c.path};
  args.insert(args.end(), c.args.begin(), c.args.end());
  const auto run = RunWsbench(args);
  EXPECT_EQ(run.exit_code, c.exit_code) << run;
  if (c.ok) {
    EXPECT_EQ(run.Ok(), *c.ok) << run;
  }
  for (const auto& counter : c.counters) {
    if (counter.is == kEq) {
      EXPECT_EQ(run.N(counter.key), counter.value) << counter.key << "; " << run;
    } else {
      EXPECT_GT(run.N(counter.key), counter.value) << counter.key << "; " << run;
    }
  }
  for (const auto& fragment : c.json_has) EXPECT_NE(run.json.find(fragment), std::string::npos) << run;
}

INSTANTIATE_TEST_SUITE_P(Wsbench, WsbenchRun, ::testing::ValuesIn(SmokeCases()),
                         [](const ::testing::TestParamInfo<SmokeCase>& info) { return info.param.name; });

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

// Admin.Push on the gateway that holds the receivers (the local case of the
// cluster benchmark): every call answered, every push arrives once.
TEST(WsbenchPush, LocalPushesThroughTheGateway) {
  std::string error;
  auto stack = EchoStack::Start({}, &error);
  ASSERT_TRUE(stack) << error;
  const std::string url = "ws://127.0.0.1:" + std::to_string(stack->gateway->ws_port()) + "/push";
  const std::string admin = "127.0.0.1:" + std::to_string(stack->gateway->admin_port());
  for (const char* ids_per_call : {"1", "3"}) {
    SCOPED_TRACE(std::string("--ids-per-call ") + ids_per_call);
    const auto run =
        RunWsbench({"push", "--url", url, "--admin", admin, "--ids-from", admin, "--connections", "20", "--in-flight",
                    "4", "--ids-per-call", ids_per_call, "--warmup", "100ms", "--duration", "300ms", "--drain", "5s"});
    EXPECT_EQ(run.exit_code, 0) << run;
    EXPECT_TRUE(run.Ok()) << run;
    EXPECT_EQ(run.N("established"), 20) << run;
    EXPECT_GT(run.N("calls"), 0) << run;
    EXPECT_GT(run.N("latency_p99_us"), 0) << run;
    EXPECT_EQ(run.N("queued"), run.N("calls_started") * std::stod(ids_per_call)) << run;
    EXPECT_EQ(run.N("deliveries"), run.N("queued")) << run;
    EXPECT_EQ(run.N("dropped"), 0) << run;
    EXPECT_EQ(run.N("verify_failures"), 0) << run;
  }
}

// ---- soak -------------------------------------------------------------------

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
      {"fanout", "--url", "ws://127.0.0.1:9/", "--url", "ws://127.0.0.1:10/", "--trigger", "ws"},
      {"push", "--url", "ws://127.0.0.1:9/", "--admin", "127.0.0.1:9", "--connections", "2", "--ids-per-call", "3"},
      {"push", "--url", "ws://127.0.0.1:9/", "--admin", "127.0.0.1:9", "--ids-from", "192.0.2.1:9"},
      {"push", "--url", "ws://127.0.0.1:9/"},
  };
  for (const auto& args : cases) {
    const auto run = RunWsbench(args);
    EXPECT_EQ(run.exit_code, 2) << args[0] << " " << args[args.size() - 2] << " " << args.back() << ": " << run;
  }
}

}  // namespace
}  // namespace wsgateway::testing
