#pragma once
// The wsbench modes. Each runs to completion and returns the process exit
// code: 0 when the run was clean, 1 when it found a failure (see each mode),
// 2 when it could not start.

#include <cstdint>
#include <string>
#include <vector>

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

  // Receiver i opens urls[i % urls.size()] (several: the nodes of a
  // cluster); the ws trigger takes the first.
  std::vector<Url> urls;
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

struct PushOptions {
  Url url;                          // its path is the receivers' prefix: receiver i opens PREFIX<i>
  std::string admin_target;         // gRPC target of the admin API the pushes go to
  std::string ids_from_target;      // gRPC target of the admin API that lists the receivers' ids
  std::uint64_t connections = 100;  // receivers
  double rate = 5000;               // new receivers per second
  unsigned in_flight = 16;          // Admin.Push calls outstanding (closed loop)
  std::uint32_t ids_per_call = 1;   // connection ids per call, at most `connections`
  std::size_t size = 32;            // payload bytes (text), at least kPayloadHeaderSize
  Clock::duration warmup = std::chrono::seconds(1);
  Clock::duration duration = std::chrono::seconds(5);
  Clock::duration drain = std::chrono::seconds(5);  // longest wait for the calls and deliveries owed at the end
  unsigned threads = 1;
};

// Fails (1) on any refused or lost receiver, failed call or per-id result,
// id not listed, missing, duplicate, misdirected or altered delivery.
int RunPush(const PushOptions& options);

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

struct SoakOptions {
  Url url;                   // its path is the prefix of every client's path
  std::string admin_target;  // gRPC target of the admin API; empty: no pushes or broadcasts
  std::uint64_t clients = 300;
  Clock::duration duration = std::chrono::minutes(10);
  double rate = 2000;            // echo messages per second over all clients
  std::size_t max_size = 32768;  // echo payload bytes: kPayloadHeaderSize to this, log-uniform
  unsigned max_in_flight = 16;   // echoes outstanding per connection
  double push_rate = 200;        // Admin.Push calls per second
  double broadcast_rate = 2;     // Admin.Broadcast calls per second, one in flight
  double connect_rate = 200;     // first connections per second
  Clock::duration min_lifetime = std::chrono::seconds(2);
  Clock::duration max_lifetime = std::chrono::seconds(60);
  double deflate_share = 0.5;                                // of the connections that offer permessage-deflate
  Clock::duration reply_timeout = std::chrono::seconds(30);  // owed and not here after this: lost
  Clock::duration report_interval = std::chrono::seconds(10);
  int pid = 0;  // server process whose VmRSS and descriptors to watch; 0: none
  // Growth of the server's VmRSS (a fraction) that fails the run; 0: not
  // checked (a sanitizer's quarantine grows it by design).
  double rss_growth = 0.2;
  std::uint64_t seed = 1;
};

// Every echo's tag is its client's number, which must stay clear of the
// push and broadcast tags.
inline constexpr std::uint64_t kMaxSoakClients = 60000;

// Fails (1) on any lost, duplicated, reordered, altered or unexpected
// message, connection error or refusal other than 503, failed admin call,
// growth of the server's memory or descriptors, descriptors not back to
// where they were, or a run with no traffic of some kind.
int RunSoak(const SoakOptions& options);

}  // namespace wsbench
