// The Python example backend (examples/python_backend) behind real gateways:
// echo, its presence view ("/who") learned from Open events, from the
// snapshot the gateway sends on every stream connect, and from node-loss
// reports in cluster mode. The backend runs as
// build/examples/python_backend/run (WSG_TEST_PYTHON_BACKEND overrides it).

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/cluster_stack.hpp"
#include "tests/support/poll_until.hpp"
#include "tests/support/processes.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

using namespace std::chrono_literals;
using Ids = std::vector<std::string>;

// The run script CMake writes next to the generated stubs, in the build
// tree of the gateway under test.
std::filesystem::path PythonBackendPath() {
  const char* configured = std::getenv("WSG_TEST_PYTHON_BACKEND");
  if (configured != nullptr && *configured != '\0') return configured;
  return std::filesystem::path(WsgatewayPath()).parent_path() / "examples" / "python_backend" / "run";
}

// examples/python_backend on 127.0.0.1:port (0 lets the OS choose).
class PythonBackendProcess {
 public:
  static std::unique_ptr<PythonBackendProcess> Start(std::uint16_t port, std::string* error) {
    const auto program = PythonBackendPath();
    if (!std::filesystem::exists(program)) {
      // CMake skipped the target and wrote why next to where it would be.
      std::ifstream why(program.parent_path() / "NOT_BUILT");
      std::stringstream reason;
      reason << why.rdbuf();
      *error = program.string() + " does not exist: build the python_backend target. " +
               (why ? "CMake skipped it: " + reason.str() : std::string());
      return nullptr;
    }
    ChildProcess::Options child;
    child.program = program.string();
    child.name = "python_backend";
    // The developer's Python settings must not reach it.
    child.unset_env = {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONWARNINGS"};
    child.args = {"--listen", "127.0.0.1:" + std::to_string(port), "--log-level", "debug"};
    auto backend = std::unique_ptr<PythonBackendProcess>(new PythonBackendProcess());
    try {
      backend->process_ = std::make_unique<ChildProcess>(child);
    } catch (const std::exception& e) {
      *error = "cannot start " + child.program + ": " + e.what();
      return nullptr;
    }
    const auto line = backend->process_->WaitForLine(R"(^listening on 127\.0\.0\.1:(\d+)$)", kStartTimeout);
    if (!line) {
      *error = "python_backend did not print its listen line:\n" + backend->process_->Tail();
      return nullptr;
    }
    backend->port_ = static_cast<std::uint16_t>(std::stoi(line->groups[1]));
    return backend;
  }

  std::uint16_t port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

// The ids of a "/who" answer, {"connections": ["id", ...]}, sorted; nullopt
// for anything else.
std::optional<Ids> ParseWho(const std::string& payload) {
  const std::string prefix = R"({"connections": [)";
  const std::string suffix = "]}";
  if (payload.rfind(prefix, 0) != 0 || payload.size() < prefix.size() + suffix.size() ||
      payload.compare(payload.size() - suffix.size(), suffix.size(), suffix) != 0) {
    return std::nullopt;
  }
  Ids ids;
  const auto list = payload.substr(prefix.size(), payload.size() - prefix.size() - suffix.size());
  std::size_t at = 0;
  while (at < list.size()) {
    const auto open = list.find('"', at);
    if (open == std::string::npos) break;
    const auto close = list.find('"', open + 1);
    if (close == std::string::npos) return std::nullopt;
    ids.push_back(list.substr(open + 1, close - open - 1));
    at = close + 1;
  }
  if (!std::is_sorted(ids.begin(), ids.end())) return std::nullopt;
  return ids;
}

Ids Sorted(Ids ids) {
  std::sort(ids.begin(), ids.end());
  return ids;
}

std::string Join(const Ids& ids) {
  std::string text;
  for (const auto& id : ids) text += (text.empty() ? "" : " ") + id;
  return "[" + text + "]";
}

// Sends "/who" on `client` and returns the ids of the answer; nullopt (and
// a test failure) when no well-formed answer comes.
std::optional<Ids> Who(WsClient& client) {
  if (const auto ec = client.SendText("/who")) {
    ADD_FAILURE() << "cannot send /who: " << ec.message();
    return std::nullopt;
  }
  const auto answer = client.Read();
  if (answer.ec) {
    ADD_FAILURE() << "no answer to /who: " << answer.ec.message();
    return std::nullopt;
  }
  auto ids = ParseWho(answer.payload);
  if (answer.binary || !ids) ADD_FAILURE() << "not a /who answer: " << answer.payload;
  return answer.binary ? std::nullopt : ids;
}

// A client on `port` at `path`, its echo checked; returns its connection id
// (found through the admin API by the unique path), empty on failure.
std::string ConnectAndEcho(WsClient& client, std::uint16_t ws_port, AdminClient& admin, const std::string& path) {
  const auto upgrade = client.Connect(ws_port, path);
  EXPECT_EQ(upgrade.http_status, 101u) << path;
  EXPECT_FALSE(client.SendText("hi"));
  const auto echoed = client.Read();
  EXPECT_FALSE(echoed.ec) << path << ": " << echoed.ec.message();
  EXPECT_FALSE(echoed.binary);
  EXPECT_EQ(echoed.payload, "hi") << path;
  const auto info = admin.WaitForOne(path, v1::CONNECTION_STATE_ACTIVE);
  EXPECT_TRUE(info.has_value()) << path;
  return info ? info->connection_id() : std::string();
}

// One gateway and the Python backend.
struct Stack {
  // Declared first so it is destroyed last: the gateway hands its final
  // Close events to a backend that is still there.
  std::unique_ptr<PythonBackendProcess> backend;
  std::unique_ptr<GatewayProcess> gateway;
  std::unique_ptr<AdminClient> admin;

  static std::unique_ptr<Stack> Start(std::string* error) {
    auto stack = std::make_unique<Stack>();
    stack->backend = PythonBackendProcess::Start(0, error);
    if (!stack->backend) return nullptr;
    GatewayProcess::Options options;
    options.backend = stack->backend->target();
    stack->gateway = GatewayProcess::Start(options, error);
    if (!stack->gateway) return nullptr;
    stack->admin = std::make_unique<AdminClient>(stack->gateway->admin_port());
    return stack;
  }

  std::uint16_t ws_port() const { return gateway->ws_port(); }
};

// Echo both ways, "/who" lists the one client, and SIGTERM stops the
// backend with exit status 0.
TEST(PythonBackendTest, EchoesMessagesAndListsTheOpenConnection) {
  std::string error;
  auto stack = Stack::Start(&error);
  ASSERT_NE(stack, nullptr) << error;

  WsClient client;
  const auto id = ConnectAndEcho(client, stack->ws_port(), *stack->admin, "/one");
  ASSERT_FALSE(id.empty());

  const std::string bytes("\x00\x01\xfe\xff", 4);
  ASSERT_FALSE(client.SendBinary(bytes));
  const auto echoed = client.Read();
  ASSERT_FALSE(echoed.ec) << echoed.ec.message();
  EXPECT_TRUE(echoed.binary);
  EXPECT_EQ(echoed.payload, bytes);

  EXPECT_EQ(Who(client), Ids{id});

  // SIGTERM ends it cleanly, its stream open or not.
  stack->backend->process().Signal(SIGTERM);
  const auto status = stack->backend->process().Wait(10s);
  ASSERT_TRUE(status.has_value()) << "still running 10 s after SIGTERM";
  EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 0) << "wait status " << *status;
}

// The backend is killed and started again on the same port: it learns the
// three connections, whose Opens the dead one acknowledged, only from the
// snapshot at the start of the new stream; a client that connects afterwards
// is listed too.
TEST(PythonBackendTest, ARestartedBackendLearnsTheOpenConnectionsFromTheSnapshot) {
  std::string error;
  auto stack = Stack::Start(&error);
  ASSERT_NE(stack, nullptr) << error;

  WsClient clients[3];
  Ids ids;
  for (std::size_t i = 0; i < 3; ++i) {
    // The echo means the batch of the Open was acknowledged too (the
    // acknowledgement is cumulative and travels with the push).
    ids.push_back(ConnectAndEcho(clients[i], stack->ws_port(), *stack->admin, "/before-" + std::to_string(i)));
    ASSERT_FALSE(ids.back().empty());
  }
  ids = Sorted(ids);
  ASSERT_EQ(Who(clients[0]), ids);

  auto& gateway = *stack->gateway;
  const std::uint16_t port = stack->backend->port();
  const auto before_kill = gateway.process().LineCount();
  stack->backend->process().Signal(SIGKILL);
  ASSERT_TRUE(stack->backend->process().Wait(10s).has_value());
  ASSERT_TRUE(gateway.WaitForBackendDown(before_kill)) << gateway.process().Tail();
  const auto before_restart = gateway.process().LineCount();
  stack->backend = PythonBackendProcess::Start(port, &error);
  ASSERT_NE(stack->backend, nullptr) << error;
  ASSERT_TRUE(gateway.WaitForBackendUp(before_restart)) << gateway.process().Tail();

  const auto after_restart = Who(clients[1]);
  EXPECT_EQ(after_restart, ids) << "the restarted backend lists " << (after_restart ? Join(*after_restart) : "nothing")
                                << ", the gateway holds " << Join(ids);

  WsClient newcomer;
  const auto newcomer_id = ConnectAndEcho(newcomer, stack->ws_port(), *stack->admin, "/after");
  ASSERT_FALSE(newcomer_id.empty());
  ids.push_back(newcomer_id);
  ids = Sorted(ids);
  const auto with_newcomer = Who(newcomer);
  EXPECT_EQ(with_newcomer, ids) << "the restarted backend lists " << (with_newcomer ? Join(*with_newcomer) : "nothing")
                                << ", the gateway holds " << Join(ids);
}

// Three gateway nodes, each with its own stream to the backend, two clients
// on each. Node 2 is killed (no drain, no Close events of its own): within
// 8 s a surviving node reports its connections lost, and "/who" no longer
// lists them.
TEST(PythonBackendTest, ALostNodesConnectionsLeaveThePresenceView) {
  constexpr std::size_t kNodes = 3;
  constexpr std::size_t kPerNode = 2;
  std::string error;
  // Declared first so it is destroyed last.
  auto backend = PythonBackendProcess::Start(0, &error);
  ASSERT_NE(backend, nullptr) << error;
  auto cluster = ClusterStack::Start({.nodes = kNodes, .backend = backend->target()}, &error);
  ASSERT_NE(cluster, nullptr) << error;

  std::vector<std::unique_ptr<WsClient>> clients;
  std::vector<Ids> ids_by_node(kNodes);
  Ids all;
  for (std::size_t node = 0; node < kNodes; ++node) {
    for (std::size_t k = 0; k < kPerNode; ++k) {
      auto& client = clients.emplace_back(std::make_unique<WsClient>());
      const auto path = "/n" + std::to_string(node) + "-" + std::to_string(k);
      const auto id = ConnectAndEcho(*client, cluster->node(node).ws_port(), cluster->admin(node), path);
      ASSERT_FALSE(id.empty()) << path;
      ids_by_node[node].push_back(id);
      all.push_back(id);
    }
  }
  all = Sorted(all);
  // Each node's Opens come on its own stream: they are all known once each
  // client's echo came back, but ask until the view says so.
  WsClient& asker = *clients[0];
  std::optional<Ids> known;
  PollUntil(10s, [&] { return (known = Who(asker)) == all; });
  ASSERT_EQ(known, all) << "the backend never listed every client: " << (known ? Join(*known) : "nothing");

  Ids survivors;
  for (std::size_t node = 0; node + 1 < kNodes; ++node) {
    survivors.insert(survivors.end(), ids_by_node[node].begin(), ids_by_node[node].end());
  }
  survivors = Sorted(survivors);

  const std::string lost = cluster->node_id(kNodes - 1);
  const auto killed_at = std::chrono::steady_clock::now();
  cluster->Forget(kNodes - 1);  // SIGKILL, by PID
  std::optional<Ids> seen;
  PollUntil(8s - std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - killed_at),
            [&] { return (seen = Who(asker)) == survivors; });
  EXPECT_EQ(seen, survivors) << "8 s after node " << lost << " was killed, /who through node " << cluster->node_id(0)
                             << " lists " << (seen ? Join(*seen) : "nothing") << "; the lost node held "
                             << Join(ids_by_node[kNodes - 1]);
  // The other survivor's stream says the same.
  EXPECT_EQ(Who(*clients[kPerNode]), survivors);
}

}  // namespace
}  // namespace wsgateway::testing
