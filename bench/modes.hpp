#pragma once
// The wsbench modes. Each runs to completion and returns the process exit
// code: 0 when the run was clean, 1 when it found a failure (see each mode),
// 2 when it could not start.

#include <cstdint>
#include <string>

#include "bench_common.hpp"
#include "payload.hpp"

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
  // New connections per second while connecting (0: all at once). Some
  // servers refuse a burst of a thousand simultaneous opens.
  double connect_rate = 0;
  // Closed loop only: stop after this many measured replies (0: run for
  // `duration`, which then only bounds the run).
  std::uint64_t count = 0;
};

// Every payload carries its sequence number and connection number in a
// 16-character header (payload.hpp).
inline constexpr std::size_t kMinEchoSize = kPayloadHeaderSize;

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
  // Offer permessage-deflate; a connection whose server does not accept it
  // counts as refused, so the memory reported is that of compressed ones.
  bool permessage_deflate = false;
};

// Fails (1) when any connection was refused or lost while held.
int RunHold(const HoldOptions& options);

struct FanoutOptions {
  enum class Trigger { kAdmin, kWs };

  Url url;
  std::uint64_t connections = 100;  // receivers
  double rate = 5000;               // new receivers per second
  std::uint64_t messages = 100;     // broadcasts
  std::size_t size = 32;            // payload bytes, at least kPayloadHeaderSize
  unsigned in_flight = 4;           // broadcasts outstanding, at most kMaxFanoutInFlight
  Trigger trigger = Trigger::kWs;
  std::string admin_target;                         // kAdmin: gRPC target of the admin API, a loopback address
  std::string path_prefix;                          // kAdmin: broadcast filter; empty: every connection
  Clock::duration drain = std::chrono::seconds(5);  // longest wait for any broadcast to complete
  unsigned threads = 1;
};

// A receiver tracks which of the outstanding broadcasts it has seen in one
// 64-bit mask.
inline constexpr unsigned kMaxFanoutInFlight = 64;

// Fails (1) on any refused or lost connection, trigger error, missing,
// duplicate, out-of-order or altered delivery, or broadcast not sent.
int RunFanout(const FanoutOptions& options);

struct ConnectRateOptions {
  Url url;
  unsigned concurrency = 50;  // workers, each one connection at a time
  std::size_t size = 32;      // bytes of the one message per connection, at least kPayloadHeaderSize
  Clock::duration warmup = std::chrono::seconds(1);
  Clock::duration duration = std::chrono::seconds(5);
  Clock::duration drain = std::chrono::seconds(2);  // wait for the cycles in progress after the run
  unsigned threads = 1;
};

// Fails (1) on any refused connection, error, unanswered or altered echo.
int RunConnectRate(const ConnectRateOptions& options);

}  // namespace wsbench
