#pragma once
// The wsbench modes. Each runs to completion and returns the process exit
// code: 0 when the run was clean, 1 when it found a failure (see each mode),
// 2 when it could not start.

#include <cstdint>

#include "bench_common.hpp"

namespace wsbench {

struct EchoOptions {
  Url url;
  unsigned connections = 1;
  unsigned in_flight = 1;  // closed loop: messages outstanding per connection
  double rate = 0;         // open loop when > 0: total messages per second over all connections
  std::size_t size = 32;   // payload bytes, at least kMinEchoSize
  bool binary = false;
  Clock::duration warmup = std::chrono::seconds(1);
  Clock::duration duration = std::chrono::seconds(5);
  Clock::duration drain = std::chrono::seconds(2);  // wait for outstanding replies after the run
  unsigned threads = 1;
};

// Every payload carries its sequence number and connection number in a
// 16-character header.
inline constexpr std::size_t kMinEchoSize = 16;

// Fails (1) on any verification failure, dropped message, refused
// connection or connection error.
int RunEcho(const EchoOptions& options);

struct HoldOptions {
  Url url;
  std::uint64_t connections = 1000;
  double rate = 2000;  // new connections per second
  Clock::duration hold = std::chrono::seconds(5);
  int pid = 0;  // server process to measure; 0: none
  unsigned threads = 1;
};

// Fails (1) when any connection was refused or lost while held.
int RunHold(const HoldOptions& options);

}  // namespace wsbench
