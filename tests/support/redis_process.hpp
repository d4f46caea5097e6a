#pragma once
// A redis-server of the test's own on a loopback port: no persistence, no
// other clients. Started and stopped by the test (ChildProcess kills it by
// PID); Restart brings up an empty one on the same port, as after a Redis
// pod lost its data.
//
// Thread-safety: the test's thread.

#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "tests/support/child_process.hpp"

namespace wsgateway::testing {

class RedisProcess {
 public:
  // Nullptr and *error when redis-server cannot be started. A `password`
  // makes the server require it (requirepass).
  static std::unique_ptr<RedisProcess> Start(std::string* error, const std::string& password = "");

  std::uint16_t port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_); }
  ChildProcess& process() { return *process_; }

  // Kills the server (its data goes with it).
  void Kill();
  // Starts an empty server on the same port; false and *error on failure.
  bool Restart(std::string* error);

 private:
  RedisProcess(std::uint16_t port, std::string password) : port_(port), password_(std::move(password)) {}
  bool Launch(std::string* error);

  std::uint16_t port_;
  std::string password_;
  std::unique_ptr<ChildProcess> process_;
};

}  // namespace wsgateway::testing
