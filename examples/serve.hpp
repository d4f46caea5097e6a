// Process plumbing shared by the example backends: logging to stderr, the
// "listening on" line, and a clean shutdown on SIGINT / SIGTERM.
#pragma once

#include <chrono>
#include <csignal>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <string_view>

#include <pthread.h>

#include <grpcpp/grpcpp.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

namespace wsgateway_examples {

// Logs go to stderr: stdout carries only the "listening on" line that
// scripts and tests wait for.
inline void log_to_stderr(const std::string& logger_name) {
  spdlog::set_default_logger(spdlog::stderr_color_mt(logger_name));
}

// SIGINT and SIGTERM, blocked in every thread and taken synchronously with
// sigwait() by main: no signal handler, no global state. Create it first
// thing in main, before gRPC starts any thread, so the threads inherit the
// mask and the signals can only reach wait().
class TerminationSignals {
 public:
  TerminationSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }

  // Blocks until one of the signals arrives; returns it.
  int wait() const {
    int signal = 0;
    while (sigwait(&set_, &signal) != 0) {
    }
    return signal;
  }

 private:
  sigset_t set_{};
};

// "127.0.0.1:0" -> "127.0.0.1", "[::1]:50052" -> "[::1]".
inline std::string_view host_of(std::string_view address) { return address.substr(0, address.rfind(':')); }

// Serves `service` on `listen` (port 0: the OS picks one), prints
// "<name> listening on HOST:PORT" to stdout once it accepts calls, and
// returns when SIGINT or SIGTERM arrives. Returns the process exit code.
// `max_receive_bytes` is the largest message the server takes (-1: any).
inline int serve_until_signalled(std::string_view name, const std::string& listen, grpc::Service& service,
                                 const TerminationSignals& signals, int max_receive_bytes = -1) {
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(listen, grpc::InsecureServerCredentials(), &port);
  // An EventBatch can carry several 2 MiB messages, and a CommandBatch
  // echoes them all back.
  builder.SetMaxReceiveMessageSize(max_receive_bytes);
  builder.SetMaxSendMessageSize(-1);
  // A port already in use is an error, not a second server sharing it.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    spdlog::error("cannot listen on {}", listen);
    return 1;
  }
  std::cout << name << " listening on " << host_of(listen) << ':' << port << std::endl;

  const int signal = signals.wait();
  spdlog::info("{}: shutting down", strsignal(signal));
  // Cancel the event streams right away: they never end on their own, and
  // nothing is lost. Commands travel with their batch's ack, so a batch
  // whose commands did not reach the gateway is not acknowledged either and
  // is delivered again to the next backend.
  server->Shutdown(std::chrono::system_clock::now());
  return 0;
}

}  // namespace wsgateway_examples
