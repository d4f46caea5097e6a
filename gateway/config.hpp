#pragma once
// The gateway's configuration: plain values with their defaults. Filled by
// LoadConfig (config_loader.hpp) from flags, environment and YAML file.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

namespace wsgateway {

struct Config {
  // Listeners.
  std::string listen = "0.0.0.0:8080";
  std::string admin_listen = "127.0.0.1:50051";
  std::string metrics_listen = "0.0.0.0:9100";

  // gRPC target of the backend; empty runs without one (every upgrade is
  // then refused with 503 unless reject_upgrades_without_backend is off).
  std::string backend;

  // Event-loop threads; 0 means one per core.
  unsigned threads = 0;

  // WebSocket limits and timers.
  std::size_t max_message_bytes = 2 * 1024 * 1024;
  std::size_t send_queue_max_bytes = 4 * 1024 * 1024;
  std::size_t max_handshake_bytes = 16 * 1024;
  std::chrono::milliseconds handshake_timeout{10'000};
  std::chrono::milliseconds idle_timeout{60'000};
  // Offer permessage-deflate (RFC 7692) to clients that ask for it. Off by
  // default: compression costs CPU per message and memory per connection.
  bool permessage_deflate = false;

  // Backend link.
  std::size_t backend_buffer_bytes = 64 * 1024 * 1024;
  std::chrono::milliseconds backend_event_timeout{60'000};
  std::chrono::milliseconds backend_reconnect_min{100};
  std::chrono::milliseconds backend_reconnect_max{5'000};
  bool reject_upgrades_without_backend = true;

  // Logging.
  std::string log_level = "info";
  std::string log_format = "text";
};

}  // namespace wsgateway
