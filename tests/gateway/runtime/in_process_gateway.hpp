#pragma once
// The fixture of the runtime's in-process tests: a Gateway on loopback port
// 0 with two event loops and no backend, its control executor run on a
// thread of the test, and the shutdown order of server/main.cpp. A suite
// changes the configuration in Configure before the gateway starts.
//
// Thread-safety: the test's thread only; the gateway's loops run on their
// own threads.

#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <thread>

#include "gateway/config/config.hpp"
#include "gateway/runtime/gateway.hpp"
#include "metrics/gateway_metrics.hpp"

namespace wsgateway::testing {

class InProcessGatewayTest : public ::testing::Test {
 protected:
  InProcessGatewayTest() {
    using namespace std::chrono_literals;
    config_.listen = "127.0.0.1:0";
    config_.threads = 2;
    config_.backend.clear();
    config_.reject_upgrades_without_backend = false;
    config_.handshake_timeout = 5s;
    config_.ping_interval = 30s;
    config_.backend_event_timeout = 60s;
  }

  void SetUp() override {
    Configure(config_);
    gateway_ = std::make_unique<Gateway>(config_, metrics_, control_.get_executor());
    gateway_->Start();
    control_thread_ = std::thread([this] { control_.run(); });
    port_ = gateway_->websocket_endpoint().port();
    ASSERT_NE(port_, 0);
  }

  // The shutdown order of server/main.cpp: control stopped first, then the
  // gateway, then the cancelled accept and timers completed.
  void TearDown() override {
    control_.stop();
    if (control_thread_.joinable()) control_thread_.join();
    if (!gateway_) return;
    gateway_->Stop(std::chrono::seconds(2));
    control_.restart();
    control_.poll();
    gateway_.reset();
  }

  // Lets a suite change the configuration before the gateway starts.
  virtual void Configure(Config&) {}

  // For the slow-consumer suites (WithSmallSendQueue): a send queue that
  // two large frames fill. Kernel buffers take a few MiB before a client
  // that does not read stalls the writes; kMaxLargeFrames is far beyond
  // that.
  static constexpr std::size_t kSmallSendQueueBytes = 256 * 1024;
  static constexpr std::size_t kLargeFrameBytes = 128 * 1024;
  static constexpr int kMaxLargeFrames = 4096;

  Config config_;
  metrics::GatewayMetrics metrics_;
  boost::asio::io_context control_{1};
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> control_work_{control_.get_executor()};
  std::unique_ptr<Gateway> gateway_;
  std::thread control_thread_;
  std::uint16_t port_ = 0;
};

// `Suite` with a send queue of kSmallSendQueueBytes.
template <typename Suite>
class WithSmallSendQueue : public Suite {
 protected:
  void Configure(Config& config) override { config.send_queue_max_bytes = Suite::kSmallSendQueueBytes; }
};

}  // namespace wsgateway::testing
