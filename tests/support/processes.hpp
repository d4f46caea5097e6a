#pragma once
// Starts the real binaries for integration tests on loopback ports chosen by
// the OS, and learns the ports from their log lines.
//
// Thread-safety: one object per test; ports are immutable after Start.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "tests/support/child_process.hpp"

namespace wsgateway::testing {

using namespace std::chrono_literals;

// How long a process may take to start and print its listen lines; generous
// for sanitizer builds on a loaded machine.
inline constexpr std::chrono::milliseconds kStartTimeout = 20s;

std::string WsgatewayPath();
std::string EchoBackendPath();
std::string ChatBackendPath();

// The wsgateway daemon with its three listeners on 127.0.0.1:0.
class GatewayProcess {
 public:
  struct Options {
    // gRPC target of the backend; empty starts without one.
    std::string backend{};
    // Wait for "backend stream up" before returning (when backend is set).
    bool wait_for_backend = true;
    // Extra flags, e.g. {"--max-message-bytes", "64KiB"}.
    std::vector<std::string> args{};
    // Extra environment, e.g. {{"WSGATEWAY_ADMIN_TOKENS", "secret"}}; the
    // test's own WSGATEWAY_* variables never reach the gateway.
    std::map<std::string, std::string> env{};
    // The gateway's open-file limit (soft and hard), when set.
    std::optional<std::uint64_t> open_file_limit{};
  };

  // Starts the gateway; on failure returns nullptr and sets *error (with the
  // process's last log lines).
  static std::unique_ptr<GatewayProcess> Start(const Options& options, std::string* error);

  std::uint16_t ws_port() const { return ws_port_; }
  std::uint16_t admin_port() const { return admin_port_; }
  std::uint16_t metrics_port() const { return metrics_port_; }
  ChildProcess& process() { return *process_; }

  // Waits for a "backend stream up"/"down" line after line `from_line`.
  bool WaitForBackendUp(std::size_t from_line = 0, std::chrono::milliseconds timeout = kStartTimeout);
  bool WaitForBackendDown(std::size_t from_line = 0, std::chrono::milliseconds timeout = kStartTimeout);

 private:
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t ws_port_ = 0;
  std::uint16_t admin_port_ = 0;
  std::uint16_t metrics_port_ = 0;
};

// examples/echo_backend on 127.0.0.1:port (0 lets the OS choose).
class EchoBackendProcess {
 public:
  // `args`: extra flags, e.g. {"--max-receive-bytes", "4194304"}.
  static std::unique_ptr<EchoBackendProcess> Start(std::uint16_t port, std::string* error,
                                                   const std::vector<std::string>& args = {});

  std::uint16_t port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

// examples/chat_backend on 127.0.0.1:port, calling the gateway's admin API
// at admin_target.
class ChatBackendProcess {
 public:
  static std::unique_ptr<ChatBackendProcess> Start(std::uint16_t port, const std::string& admin_target,
                                                   std::string* error);

  std::uint16_t port() const { return port_; }
  ChildProcess& process() { return *process_; }

 private:
  std::unique_ptr<ChildProcess> process_;
  std::uint16_t port_ = 0;
};

}  // namespace wsgateway::testing
