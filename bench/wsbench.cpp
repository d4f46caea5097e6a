// wsbench: the project's WebSocket load generator (issue 3). Loopback only;
// every run is bounded by its duration, connection and message counts.
//
//   wsbench echo --url ws://127.0.0.1:8080/ --connections 100 --in-flight 1 --size 32 --duration 5s
//   wsbench echo --url ws://127.0.0.1:8080/ --connections 10 --count 100000 --warmup 0
//   wsbench hold --url ws://127.0.0.1:8080/ --connections 10000 --rate 2000 --hold 5s --pid $(pidof wsgateway)
//   wsbench fanout --url ws://127.0.0.1:8080/ -n 10000 -m 100 --trigger admin --admin 127.0.0.1:50051
//   wsbench fanout --url ws://127.0.0.1:9000/ -n 10000 -m 100 --trigger ws   # beast_echo_server's relay
//   wsbench fanout --url ws://127.0.0.1:8080/ --url ws://127.0.0.1:8081/ --trigger admin --admin 127.0.0.1:50051
//   wsbench push --url ws://127.0.0.1:8080/push --admin 127.0.0.1:50052 --ids-from 127.0.0.1:50051 -n 1000 -p 16
//   wsbench connect-rate --url ws://127.0.0.1:8080/ --concurrency 50 --duration 5s
//   wsbench soak --url ws://127.0.0.1:8080/soak --admin 127.0.0.1:50051 --clients 300 --duration 30m --pid $(pidof
//   wsgateway)
//
// echo: messages echoed and verified (throughput, latency; --count N for a
// fixed amount of work). hold: idle connections (server memory each).
// fanout: broadcasts to every connection, triggered through Admin.Broadcast
// or a /_broadcast control connection (deliveries/s, completion time);
// the receivers may be spread over several gateways (a cluster).
// push: Admin.Push calls, closed loop, to receivers on one gateway, made on
// it or on another node of its cluster (calls/s, call latency).
// connect-rate: connect, upgrade, one echo, close, again (connections/s).
// soak: reconnecting clients, echoes, pushes and broadcasts for a long time,
// everything verified, the server's memory and descriptors watched
// (scripts/soak).
//
// Prints human-readable lines, then one JSON line ({"mode":...}) for
// scripts. Exit status: 0 clean, 1 the run found a failure, 2 bad usage.

#include <cstdio>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include "modes.hpp"

namespace {

using wsbench::Clock;

// Parses --url and duration options after CLI11 is done; false (with a
// message) on bad input.
bool ResolveUrl(const std::string& text, wsbench::Url& url) {
  std::string error;
  auto parsed = wsbench::ParseLoopbackUrl(text, error);
  if (!parsed) {
    std::fprintf(stderr, "wsbench: --url %s: %s\n", text.c_str(), error.c_str());
    return false;
  }
  url = std::move(*parsed);
  return true;
}

bool ResolveDuration(const char* name, const std::string& text, Clock::duration& out) {
  const auto parsed = wsbench::ParseDuration(text);
  if (!parsed) {
    std::fprintf(stderr, "wsbench: %s %s: expected a duration such as 5s, 250ms or 1m\n", name, text.c_str());
    return false;
  }
  out = *parsed;
  return true;
}

// Turns --admin HOST:PORT (loopback; `name` is the option) into a gRPC
// target.
bool ResolveAdmin(const std::string& text, std::string& target, const char* name = "--admin") {
  std::string error;
  const auto parsed = wsbench::ParseLoopbackUrl("ws://" + text, error);
  if (!parsed || parsed->target != "/" || text.find('/') != std::string::npos || text.rfind(':') == std::string::npos) {
    std::fprintf(stderr, "wsbench: %s %s: expected HOST:PORT on loopback%s%s\n", name, text.c_str(),
                 error.empty() ? "" : ": ", error.c_str());
    return false;
  }
  const auto& endpoint = parsed->endpoint;
  target = endpoint.address().is_v4()
               ? "ipv4:" + endpoint.address().to_string() + ":" + std::to_string(endpoint.port())
               : "ipv6:[" + endpoint.address().to_string() + "]:" + std::to_string(endpoint.port());
  return true;
}

// The connections plus a margin must fit under the open-file limit.
bool FitsOpenFileLimit(std::uint64_t connections, std::uint64_t limit) {
  constexpr std::uint64_t kMargin = 64;
  if (connections + kMargin <= limit) return true;
  std::fprintf(stderr, "wsbench: %llu connections need more than the open-file limit of %llu\n",
               static_cast<unsigned long long>(connections), static_cast<unsigned long long>(limit));
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  const std::uint64_t open_file_limit = wsbench::RaiseOpenFileLimit();

  CLI::App app{"wsbench: WebSocket load generator for loopback servers."};
  app.require_subcommand(1);

  wsbench::EchoOptions echo;
  std::string echo_url;
  std::string echo_warmup = "1s";
  std::string echo_duration = "5s";
  std::string echo_drain = "2s";
  auto* echo_cmd =
      app.add_subcommand("echo", "Send messages, verify every echoed reply, report throughput and latency.");
  echo_cmd->add_option("--url", echo_url, "ws://HOST:PORT/PATH, HOST on loopback")->required();
  echo_cmd->add_option("-c,--connections", echo.connections, "connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 1000000u));
  echo_cmd->add_option("-p,--in-flight", echo.in_flight, "closed loop: messages outstanding per connection")
      ->capture_default_str()
      ->check(CLI::Range(1u, 65536u));
  echo_cmd->add_option("-r,--rate", echo.rate, "open loop: total messages per second (0: closed loop)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  echo_cmd->add_option("-s,--size", echo.size, "payload bytes")
      ->capture_default_str()
      ->check(CLI::Range(wsbench::kMinEchoSize, std::size_t{64} << 20));
  echo_cmd->add_flag("--binary", echo.binary, "binary messages (default text)");
  auto* echo_duration_option =
      echo_cmd->add_option("-d,--duration", echo_duration, "measured time")->capture_default_str();
  echo_cmd->add_option("-w,--warmup", echo_warmup, "unmeasured time before it")->capture_default_str();
  echo_cmd->add_option("--drain", echo_drain, "how long to wait for outstanding replies at the end")
      ->capture_default_str();
  echo_cmd
      ->add_option("--connect-rate", echo.connect_rate, "new connections per second while connecting (0: all at once)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e9));
  echo_cmd->add_option("-t,--threads", echo.threads, "threads running the connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  auto* echo_count =
      echo_cmd
          ->add_option("--count", echo.count,
                       "closed loop: stop after this many replies after the warm-up; --duration then only bounds "
                       "the run (default 60s with --count)")
          ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 48));

  wsbench::HoldOptions hold;
  std::string hold_url;
  std::string hold_time = "5s";
  auto* hold_cmd = app.add_subcommand("hold", "Open idle connections at a rate, hold them, report server memory each.");
  hold_cmd->add_option("--url", hold_url, "ws://HOST:PORT/PATH, HOST on loopback")->required();
  hold_cmd->add_option("-n,--connections", hold.connections, "connections")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000}));
  hold_cmd->add_option("-r,--rate", hold.rate, "new connections per second")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e9));
  hold_cmd->add_option("--hold", hold_time, "how long to keep them idle once all are up")->capture_default_str();
  hold_cmd->add_option("--pid", hold.pid, "server process whose VmRSS (children included) to measure")
      ->check(CLI::Range(1, 1 << 30));
  hold_cmd->add_flag("--permessage-deflate", hold.permessage_deflate,
                     "offer permessage-deflate; connections that do not get it count as refused");
  hold_cmd->add_option("-t,--threads", hold.threads, "threads running the connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));

  wsbench::FanoutOptions fanout;
  std::vector<std::string> fanout_urls;
  std::string fanout_trigger;
  std::string fanout_admin;
  std::string fanout_drain = "5s";
  auto* fanout_cmd = app.add_subcommand(
      "fanout", "Open receivers, trigger broadcasts to all of them, report deliveries/s and completion times.");
  fanout_cmd
      ->add_option("--url", fanout_urls,
                   "ws://HOST:PORT/PATH the receivers open, HOST on loopback; several (the nodes of a cluster): "
                   "receivers round robin over them")
      ->required();
  fanout_cmd->add_option("-n,--connections", fanout.connections, "receivers")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000}));
  fanout_cmd->add_option("-r,--rate", fanout.rate, "new receivers per second")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e9));
  fanout_cmd->add_option("-m,--messages", fanout.messages, "broadcasts")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1} << 40));
  fanout_cmd->add_option("-s,--size", fanout.size, "payload bytes (text)")
      ->capture_default_str()
      ->check(CLI::Range(wsbench::kPayloadHeaderSize, std::size_t{64} << 20));
  fanout_cmd
      ->add_option("-p,--in-flight", fanout.in_flight,
                   "broadcasts outstanding: one is triggered once the one this many before it reached everyone")
      ->capture_default_str()
      ->check(CLI::Range(1u, wsbench::kMaxFanoutInFlight));
  fanout_cmd
      ->add_option("--trigger", fanout_trigger,
                   "admin: Admin.Broadcast over gRPC (the gateway); ws: messages on a control connection to "
                   "/_broadcast (beast_echo_server)")
      ->required()
      ->check(CLI::IsMember({"admin", "ws"}));
  fanout_cmd->add_option("--admin", fanout_admin, "--trigger admin: the admin API's HOST:PORT, on loopback");
  fanout_cmd->add_option("--path-prefix", fanout.path_prefix,
                         "--trigger admin: broadcast only to connections under this path (default: all)");
  fanout_cmd
      ->add_option("--drain", fanout_drain, "end the run when no broadcast completes for this long; the rest dropped")
      ->capture_default_str();
  fanout_cmd->add_option("-t,--threads", fanout.threads, "threads running the connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));

  wsbench::PushOptions push;
  std::string push_url;
  std::string push_admin;
  std::string push_ids_from;
  std::string push_warmup = "1s";
  std::string push_duration = "5s";
  std::string push_drain = "5s";
  auto* push_cmd = app.add_subcommand(
      "push",
      "Open receivers on one gateway, call Admin.Push for them closed loop (on that gateway or another node of its "
      "cluster), verify every push arrives once; report calls/s and call latency.");
  push_cmd
      ->add_option("--url", push_url,
                   "ws://HOST:PORT/PATH, HOST on loopback; receiver i opens PATH/i (PATH is the listing's prefix)")
      ->required();
  push_cmd->add_option("--admin", push_admin, "HOST:PORT of the admin API the pushes are called on, on loopback")
      ->required();
  push_cmd->add_option("--ids-from", push_ids_from,
                       "HOST:PORT of the admin API that lists the receivers' ids (default: --admin)");
  push_cmd->add_option("-n,--connections", push.connections, "receivers")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, std::uint64_t{1000000}));
  push_cmd->add_option("-r,--rate", push.rate, "new receivers per second")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e9));
  push_cmd->add_option("-p,--in-flight", push.in_flight, "Admin.Push calls outstanding")
      ->capture_default_str()
      ->check(CLI::Range(1u, 4096u));
  push_cmd->add_option("-k,--ids-per-call", push.ids_per_call, "connection ids per call, round robin over receivers")
      ->capture_default_str()
      ->check(CLI::Range(1u, 10000u));
  push_cmd->add_option("-s,--size", push.size, "payload bytes (text)")
      ->capture_default_str()
      ->check(CLI::Range(wsbench::kPayloadHeaderSize, std::size_t{1} << 20));
  push_cmd->add_option("-d,--duration", push_duration, "measured time")->capture_default_str();
  push_cmd->add_option("-w,--warmup", push_warmup, "unmeasured time before it")->capture_default_str();
  push_cmd->add_option("--drain", push_drain, "how long the calls in flight and the pushes owed may take at the end")
      ->capture_default_str();
  push_cmd->add_option("-t,--threads", push.threads, "threads running the connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));

  wsbench::ConnectRateOptions connect;
  std::string connect_url;
  std::string connect_warmup = "1s";
  std::string connect_duration = "5s";
  std::string connect_drain = "2s";
  auto* connect_cmd = app.add_subcommand(
      "connect-rate", "Connect, upgrade, echo one message, close, repeat; report connections/s and latencies.");
  connect_cmd->add_option("--url", connect_url, "ws://HOST:PORT/PATH, HOST on loopback")->required();
  connect_cmd->add_option("-c,--concurrency", connect.concurrency, "workers, one connection at a time each")
      ->capture_default_str()
      ->check(CLI::Range(1u, 100000u));
  connect_cmd->add_option("-s,--size", connect.size, "payload bytes of the message (text)")
      ->capture_default_str()
      ->check(CLI::Range(wsbench::kPayloadHeaderSize, std::size_t{64} << 20));
  connect_cmd->add_option("-d,--duration", connect_duration, "measured time")->capture_default_str();
  connect_cmd->add_option("-w,--warmup", connect_warmup, "unmeasured time before it")->capture_default_str();
  connect_cmd->add_option("--drain", connect_drain, "how long the cycles in progress may take to finish at the end")
      ->capture_default_str();
  connect_cmd->add_option("-t,--threads", connect.threads, "threads running the connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));

  wsbench::SoakOptions soak;
  std::string soak_url;
  std::string soak_admin;
  std::string soak_duration = "10m";
  std::string soak_min_lifetime = "2s";
  std::string soak_max_lifetime = "60s";
  std::string soak_reply_timeout = "30s";
  std::string soak_report_interval = "10s";
  auto* soak_cmd = app.add_subcommand(
      "soak",
      "Reconnecting clients, echoes, pushes and broadcasts for a long time; verify everything, watch the "
      "server's memory and descriptors.");
  soak_cmd->add_option("--url", soak_url, "ws://HOST:PORT/PATH, HOST on loopback; clients connect to PATH/<n>/<gen>")
      ->required();
  soak_cmd->add_option("--admin", soak_admin,
                       "the admin API's HOST:PORT, on loopback (default: no pushes, broadcasts)");
  soak_cmd->add_option("-c,--clients", soak.clients, "client slots, each one connection at a time")
      ->capture_default_str()
      ->check(CLI::Range(std::uint64_t{1}, wsbench::kMaxSoakClients));
  soak_cmd->add_option("-d,--duration", soak_duration, "how long the load runs")->capture_default_str();
  soak_cmd->add_option("-r,--rate", soak.rate, "echo messages per second over all clients")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 1e6));
  soak_cmd->add_option("--max-size", soak.max_size, "largest echo payload in bytes")
      ->capture_default_str()
      ->check(CLI::Range(wsbench::kPayloadHeaderSize, std::size_t{1} << 20));
  soak_cmd->add_option("--max-in-flight", soak.max_in_flight, "echoes outstanding per connection")
      ->capture_default_str()
      ->check(CLI::Range(1u, 4096u));
  soak_cmd->add_option("--push-rate", soak.push_rate, "Admin.Push calls per second (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e5));
  soak_cmd->add_option("--broadcast-rate", soak.broadcast_rate, "Admin.Broadcast calls per second (0: none)")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1e3));
  soak_cmd->add_option("--connect-rate", soak.connect_rate, "first connections per second")
      ->capture_default_str()
      ->check(CLI::Range(0.001, 1e6));
  soak_cmd->add_option("--min-lifetime", soak_min_lifetime, "shortest connection lifetime")->capture_default_str();
  soak_cmd->add_option("--max-lifetime", soak_max_lifetime, "longest connection lifetime")->capture_default_str();
  soak_cmd->add_option("--deflate-share", soak.deflate_share, "share of connections offering permessage-deflate")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  soak_cmd->add_option("--reply-timeout", soak_reply_timeout, "an echo, push or broadcast owed longer is lost")
      ->capture_default_str();
  soak_cmd->add_option("--report-interval", soak_report_interval, "time between progress lines")->capture_default_str();
  soak_cmd->add_option("--pid", soak.pid, "server process whose VmRSS and open descriptors to watch")
      ->check(CLI::Range(1, 1 << 30));
  soak_cmd
      ->add_option("--rss-growth", soak.rss_growth,
                   "VmRSS growth (a fraction) in the steady window that fails the run; 0: not checked")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 100.0));
  soak_cmd->add_option("--seed", soak.seed, "random seed")->capture_default_str();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11's own codes are 100 and up; usage errors are 2 here (--help: 0).
    return app.exit(e) == 0 ? 0 : 2;
  }

  if (*echo_cmd) {
    // A --count run is a fixed amount of work, maybe under valgrind: a
    // generous bound unless one is given.
    if (echo_count->count() > 0 && echo_duration_option->count() == 0) echo_duration = "60s";
    if (!ResolveUrl(echo_url, echo.url) || !ResolveDuration("--duration", echo_duration, echo.duration) ||
        !ResolveDuration("--warmup", echo_warmup, echo.warmup) || !ResolveDuration("--drain", echo_drain, echo.drain) ||
        !FitsOpenFileLimit(echo.connections, open_file_limit)) {
      return 2;
    }
    if (echo.duration <= Clock::duration::zero()) {
      std::fprintf(stderr, "wsbench: --duration must be positive\n");
      return 2;
    }
    if (echo.count > 0 && echo.rate > 0) {
      std::fprintf(stderr, "wsbench: --count needs the closed loop (no --rate)\n");
      return 2;
    }
    return wsbench::RunEcho(echo);
  }
  if (*fanout_cmd) {
    fanout.trigger =
        fanout_trigger == "admin" ? wsbench::FanoutOptions::Trigger::kAdmin : wsbench::FanoutOptions::Trigger::kWs;
    const bool admin = fanout.trigger == wsbench::FanoutOptions::Trigger::kAdmin;
    if (admin && fanout_admin.empty()) {
      std::fprintf(stderr, "wsbench: --trigger admin needs --admin HOST:PORT\n");
      return 2;
    }
    if (!admin && (!fanout_admin.empty() || !fanout.path_prefix.empty())) {
      std::fprintf(stderr, "wsbench: --admin and --path-prefix go with --trigger admin\n");
      return 2;
    }
    if (!admin && fanout_urls.size() > 1) {
      std::fprintf(stderr, "wsbench: several --url need --trigger admin (the ws trigger relays on one server)\n");
      return 2;
    }
    for (const auto& text : fanout_urls) {
      if (!ResolveUrl(text, fanout.urls.emplace_back())) return 2;
    }
    // The receivers, plus the control connection of the ws trigger.
    if ((admin && !ResolveAdmin(fanout_admin, fanout.admin_target)) ||
        !ResolveDuration("--drain", fanout_drain, fanout.drain) ||
        !FitsOpenFileLimit(fanout.connections + 1, open_file_limit)) {
      return 2;
    }
    if (fanout.drain <= Clock::duration::zero()) {
      std::fprintf(stderr, "wsbench: --drain must be positive\n");
      return 2;
    }
    return wsbench::RunFanout(fanout);
  }
  if (*push_cmd) {
    if (push_ids_from.empty()) push_ids_from = push_admin;
    if (!ResolveUrl(push_url, push.url) || !ResolveAdmin(push_admin, push.admin_target) ||
        !ResolveAdmin(push_ids_from, push.ids_from_target, "--ids-from") ||
        !ResolveDuration("--duration", push_duration, push.duration) ||
        !ResolveDuration("--warmup", push_warmup, push.warmup) || !ResolveDuration("--drain", push_drain, push.drain) ||
        !FitsOpenFileLimit(push.connections, open_file_limit)) {
      return 2;
    }
    if (push.duration <= Clock::duration::zero() || push.drain <= Clock::duration::zero()) {
      std::fprintf(stderr, "wsbench: --duration and --drain must be positive\n");
      return 2;
    }
    if (push.ids_per_call > push.connections) {
      std::fprintf(stderr, "wsbench: --ids-per-call must not exceed --connections\n");
      return 2;
    }
    if (push.url.target.find('?') != std::string::npos) {
      std::fprintf(stderr, "wsbench: push --url takes a path without a query\n");
      return 2;
    }
    return wsbench::RunPush(push);
  }
  if (*connect_cmd) {
    if (!ResolveUrl(connect_url, connect.url) || !ResolveDuration("--duration", connect_duration, connect.duration) ||
        !ResolveDuration("--warmup", connect_warmup, connect.warmup) ||
        !ResolveDuration("--drain", connect_drain, connect.drain) ||
        !FitsOpenFileLimit(connect.concurrency, open_file_limit)) {
      return 2;
    }
    if (connect.duration <= Clock::duration::zero()) {
      std::fprintf(stderr, "wsbench: --duration must be positive\n");
      return 2;
    }
    return wsbench::RunConnectRate(connect);
  }
  if (*soak_cmd) {
    if (!ResolveUrl(soak_url, soak.url) || (!soak_admin.empty() && !ResolveAdmin(soak_admin, soak.admin_target)) ||
        !ResolveDuration("--duration", soak_duration, soak.duration) ||
        !ResolveDuration("--min-lifetime", soak_min_lifetime, soak.min_lifetime) ||
        !ResolveDuration("--max-lifetime", soak_max_lifetime, soak.max_lifetime) ||
        !ResolveDuration("--reply-timeout", soak_reply_timeout, soak.reply_timeout) ||
        !ResolveDuration("--report-interval", soak_report_interval, soak.report_interval) ||
        !FitsOpenFileLimit(soak.clients, open_file_limit)) {
      return 2;
    }
    if (soak.duration <= Clock::duration::zero() || soak.reply_timeout <= Clock::duration::zero() ||
        soak.report_interval <= Clock::duration::zero()) {
      std::fprintf(stderr, "wsbench: --duration, --reply-timeout and --report-interval must be positive\n");
      return 2;
    }
    if (soak.min_lifetime <= Clock::duration::zero() || soak.max_lifetime < soak.min_lifetime) {
      std::fprintf(stderr, "wsbench: lifetimes must be positive, --max-lifetime at least --min-lifetime\n");
      return 2;
    }
    if (soak.url.target.find('?') != std::string::npos) {
      std::fprintf(stderr, "wsbench: soak --url takes a path without a query\n");
      return 2;
    }
    return wsbench::RunSoak(soak);
  }
  if (!ResolveUrl(hold_url, hold.url) || !ResolveDuration("--hold", hold_time, hold.hold) ||
      !FitsOpenFileLimit(hold.connections, open_file_limit)) {
    return 2;
  }
  return wsbench::RunHold(hold);
}
