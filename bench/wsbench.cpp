// wsbench: the project's WebSocket load generator (issue 3). Loopback only;
// every run is bounded by its duration and connection count.
//
//   wsbench echo --url ws://127.0.0.1:8080/ --connections 100 --in-flight 1 --size 32 --duration 5s
//   wsbench hold --url ws://127.0.0.1:8080/ --connections 10000 --rate 2000 --hold 5s --pid $(pidof wsgateway)
//
// Prints human-readable lines, then one JSON line ({"mode":...}) for
// scripts. Exit status: 0 clean, 1 the run found a failure, 2 bad usage.

#include <cstdio>
#include <string>

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
  echo_cmd->add_option("-d,--duration", echo_duration, "measured time")->capture_default_str();
  echo_cmd->add_option("-w,--warmup", echo_warmup, "unmeasured time before it")->capture_default_str();
  echo_cmd->add_option("--drain", echo_drain, "how long to wait for outstanding replies at the end")
      ->capture_default_str();
  echo_cmd->add_option("-t,--threads", echo.threads, "threads running the connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));

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
  hold_cmd->add_option("-t,--threads", hold.threads, "threads running the connections")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));

  CLI11_PARSE(app, argc, argv);

  if (*echo_cmd) {
    if (!ResolveUrl(echo_url, echo.url) || !ResolveDuration("--duration", echo_duration, echo.duration) ||
        !ResolveDuration("--warmup", echo_warmup, echo.warmup) || !ResolveDuration("--drain", echo_drain, echo.drain) ||
        !FitsOpenFileLimit(echo.connections, open_file_limit)) {
      return 2;
    }
    if (echo.duration <= Clock::duration::zero()) {
      std::fprintf(stderr, "wsbench: --duration must be positive\n");
      return 2;
    }
    return wsbench::RunEcho(echo);
  }
  if (!ResolveUrl(hold_url, hold.url) || !ResolveDuration("--hold", hold_time, hold.hold) ||
      !FitsOpenFileLimit(hold.connections, open_file_limit)) {
    return 2;
  }
  return wsbench::RunHold(hold);
}
