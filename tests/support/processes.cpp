#include "tests/support/processes.hpp"

#include <cstdlib>

extern char** environ;

namespace wsgateway::testing {
namespace {

// Variables that must not leak from the developer's shell into the
// processes under test.
std::vector<std::string> HermeticUnset() {
  std::vector<std::string> names = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy",
                                    "no_proxy",   "NO_PROXY",    "all_proxy",  "ALL_PROXY"};
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry = *e;
    if (entry.rfind("WSGATEWAY_", 0) == 0) names.push_back(entry.substr(0, entry.find('=')));
  }
  return names;
}

std::string FromEnvOr(const char* variable, const char* fallback) {
  const char* v = std::getenv(variable);
  return v != nullptr && *v != '\0' ? v : fallback;
}

}  // namespace

std::string WsgatewayPath() { return FromEnvOr("WSG_TEST_WSGATEWAY", WSG_TEST_WSGATEWAY_BINARY); }
std::string EchoBackendPath() { return FromEnvOr("WSG_TEST_ECHO_BACKEND", WSG_TEST_ECHO_BACKEND_BINARY); }
std::string ChatBackendPath() { return FromEnvOr("WSG_TEST_CHAT_BACKEND", WSG_TEST_CHAT_BACKEND_BINARY); }

std::unique_ptr<GatewayProcess> GatewayProcess::Start(const Options& options, std::string* error) {
  ChildProcess::Options child;
  child.program = WsgatewayPath();
  child.name = "wsgateway";
  child.unset_env = HermeticUnset();
  child.env = options.env;
  child.args = {"--listen",  "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0",
                "--threads", "2",           "--log-level",    "info"};
  if (!options.backend.empty()) {
    child.args.push_back("--backend");
    child.args.push_back(options.backend);
    // Reconnect quickly so restart tests do not wait for backoff.
    child.args.insert(child.args.end(), {"--backend-reconnect-min", "20ms", "--backend-reconnect-max", "200ms"});
  }
  child.args.insert(child.args.end(), options.args.begin(), options.args.end());

  auto gateway = std::unique_ptr<GatewayProcess>(new GatewayProcess());
  try {
    gateway->process_ = std::make_unique<ChildProcess>(child, options.open_file_limit);
  } catch (const std::exception& e) {
    *error = std::string("cannot start ") + child.program + ": " + e.what();
    return nullptr;
  }
  auto& p = *gateway->process_;
  const auto ws = p.WaitForLine(R"(websocket listener on 127\.0\.0\.1:(\d+))", kStartTimeout);
  const auto admin = p.WaitForLine(R"(admin listener on 127\.0\.0\.1:(\d+))", kStartTimeout);
  const auto metrics = p.WaitForLine(R"(metrics listener on 127\.0\.0\.1:(\d+))", kStartTimeout);
  if (!ws || !admin || !metrics) {
    *error = "wsgateway did not print its three listener lines:\n" + p.Tail();
    return nullptr;
  }
  gateway->ws_port_ = static_cast<std::uint16_t>(std::stoi(ws->groups[1]));
  gateway->admin_port_ = static_cast<std::uint16_t>(std::stoi(admin->groups[1]));
  gateway->metrics_port_ = static_cast<std::uint16_t>(std::stoi(metrics->groups[1]));
  if (!options.backend.empty() && options.wait_for_backend && !gateway->WaitForBackendUp()) {
    *error = "wsgateway did not log 'backend stream up':\n" + p.Tail();
    return nullptr;
  }
  return gateway;
}

bool GatewayProcess::WaitForBackendUp(std::size_t from_line, std::chrono::milliseconds timeout) {
  return process_->WaitForLine("backend stream up", timeout, from_line).has_value();
}

bool GatewayProcess::WaitForBackendDown(std::size_t from_line, std::chrono::milliseconds timeout) {
  return process_->WaitForLine("backend stream down", timeout, from_line).has_value();
}

std::unique_ptr<EchoBackendProcess> EchoBackendProcess::Start(std::uint16_t port, std::string* error,
                                                              const std::vector<std::string>& args) {
  ChildProcess::Options child;
  child.program = EchoBackendPath();
  child.name = "echo_backend";
  child.unset_env = HermeticUnset();
  child.args = {"--listen", "127.0.0.1:" + std::to_string(port)};
  child.args.insert(child.args.end(), args.begin(), args.end());
  auto backend = std::unique_ptr<EchoBackendProcess>(new EchoBackendProcess());
  try {
    backend->process_ = std::make_unique<ChildProcess>(child);
  } catch (const std::exception& e) {
    *error = std::string("cannot start ") + child.program + ": " + e.what();
    return nullptr;
  }
  const auto line = backend->process_->WaitForLine(R"(echo backend listening on 127\.0\.0\.1:(\d+))", kStartTimeout);
  if (!line) {
    *error = "echo_backend did not print its listen line:\n" + backend->process_->Tail();
    return nullptr;
  }
  backend->port_ = static_cast<std::uint16_t>(std::stoi(line->groups[1]));
  return backend;
}

std::unique_ptr<ChatBackendProcess> ChatBackendProcess::Start(std::uint16_t port, const std::string& admin_target,
                                                              std::string* error) {
  ChildProcess::Options child;
  child.program = ChatBackendPath();
  child.name = "chat_backend";
  child.unset_env = HermeticUnset();
  child.args = {"--listen", "127.0.0.1:" + std::to_string(port), "--admin", admin_target};
  auto backend = std::unique_ptr<ChatBackendProcess>(new ChatBackendProcess());
  try {
    backend->process_ = std::make_unique<ChildProcess>(child);
  } catch (const std::exception& e) {
    *error = std::string("cannot start ") + child.program + ": " + e.what();
    return nullptr;
  }
  const auto line = backend->process_->WaitForLine(R"(chat backend listening on 127\.0\.0\.1:(\d+))", kStartTimeout);
  if (!line) {
    *error = "chat_backend did not print its listen line:\n" + backend->process_->Tail();
    return nullptr;
  }
  backend->port_ = static_cast<std::uint16_t>(std::stoi(line->groups[1]));
  return backend;
}

}  // namespace wsgateway::testing
