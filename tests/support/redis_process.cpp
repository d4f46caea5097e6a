#include "tests/support/redis_process.hpp"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdlib>

namespace wsgateway::testing {
namespace {

// A loopback port the OS had free a moment ago (redis-server cannot be
// given port 0 and tell which port it took).
std::uint16_t FreeLoopbackPort() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) == 0) {
    port = ntohs(address.sin_port);
  }
  ::close(fd);
  return port;
}

}  // namespace

std::unique_ptr<RedisProcess> RedisProcess::Start(std::string* error, const std::string& password) {
  const auto port = FreeLoopbackPort();
  if (port == 0) {
    *error = "no free loopback port";
    return nullptr;
  }
  std::unique_ptr<RedisProcess> redis(new RedisProcess(port, password));
  if (!redis->Launch(error)) return nullptr;
  return redis;
}

bool RedisProcess::Launch(std::string* error) {
  ChildProcess::Options options;
  // Debian's path; WSG_TEST_REDIS_SERVER points elsewhere.
  const char* program = std::getenv("WSG_TEST_REDIS_SERVER");
  options.program = program != nullptr ? program : "/usr/bin/redis-server";
  options.args = {"--port", std::to_string(port_), "--bind", "127.0.0.1",   "--save", "",           "--appendonly",
                  "no",     "--protected-mode",    "no",     "--daemonize", "no",     "--loglevel", "notice"};
  if (!password_.empty()) options.args.insert(options.args.end(), {"--requirepass", password_});
  options.name = "redis";
  try {
    process_ = std::make_unique<ChildProcess>(options);
  } catch (const std::exception& e) {
    *error = e.what();
    return false;
  }
  if (!process_->WaitForLine("Ready to accept connections", std::chrono::seconds(10))) {
    *error = "redis-server did not become ready:\n" + process_->Tail();
    return false;
  }
  return true;
}

void RedisProcess::Kill() {
  if (!process_) return;
  process_->Signal(SIGKILL);
  process_->Wait(std::chrono::seconds(10));
  process_.reset();
}

bool RedisProcess::Restart(std::string* error) {
  Kill();
  return Launch(error);
}

}  // namespace wsgateway::testing
