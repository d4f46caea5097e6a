#pragma once
// Pieces shared by the wsbench modes: URL and duration parsing (loopback
// only), the open-file limit, server memory from /proc, the per-thread
// statistics and the thread pool that runs one io_context, failure messages,
// and the summary with its final JSON line.

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "histogram.hpp"

namespace wsbench {

using Clock = std::chrono::steady_clock;

// The strand a run's own state (opener, trigger, timers) lives on.
using RunStrand = boost::asio::strand<boost::asio::io_context::executor_type>;

// A ws:// URL whose host is a loopback address literal (127.0.0.0/8 or ::1;
// "localhost" means 127.0.0.1).
struct Url {
  boost::asio::ip::tcp::endpoint endpoint;
  std::string host_header;  // host[:port] as sent in the handshake
  std::string target;       // path and query, at least "/"
  std::string text;         // as given
};

// Parses `text`; on failure returns nullopt and sets `error`.
std::optional<Url> ParseLoopbackUrl(const std::string& text, std::string& error);

// "5s", "250ms", "2m", "1.5s"; a bare number is seconds.
std::optional<Clock::duration> ParseDuration(std::string_view text);

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the new soft
// limit.
std::uint64_t RaiseOpenFileLimit();

// VmRSS in KiB of `pid` plus all its descendants (found through
// /proc/PID/task/*/children); nullopt when `pid` cannot be read.
std::optional<std::uint64_t> ProcessTreeRssKib(int pid);

// The open file descriptors of `pid` (entries of /proc/PID/fd); nullopt when
// they cannot be read.
std::optional<std::uint64_t> OpenDescriptorCount(int pid);

// Counters one runner thread collects; merged when the run ends.
struct Stats {
  Histogram latency_ns;
  std::uint64_t messages = 0;  // replies received inside the measured window
  std::uint64_t bytes = 0;     // payload bytes of those replies
  std::uint64_t errors = 0;    // transport/protocol errors after the connection was up
  std::uint64_t refused = 0;   // connections that failed to connect or handshake
  std::uint64_t verify_wrong_connection = 0;
  std::uint64_t verify_out_of_order = 0;
  std::uint64_t verify_corrupt = 0;
  std::uint64_t verify_unexpected = 0;  // a reply with nothing in flight
  std::uint64_t dropped = 0;            // sent but never answered

  void Merge(const Stats& other);
  std::uint64_t VerifyFailures() const {
    return verify_wrong_connection + verify_out_of_order + verify_corrupt + verify_unexpected;
  }
};

// The Stats of the calling runner thread. Only valid inside handlers run by
// a Runner.
Stats& ThreadStats();

// Runs one io_context on `threads` threads (the caller's included), each
// with its own Stats, until the io_context runs out of work.
class Runner {
 public:
  explicit Runner(unsigned threads);
  boost::asio::io_context& ioc() { return ioc_; }
  void Run();
  Stats Merged() const;

 private:
  unsigned threads_;
  boost::asio::io_context ioc_;
  std::vector<Stats> stats_;
};

// Prints a run's failures to stderr, only the first few: one server fault
// can fail thousands of connections alike, and the summary counts them all.
class FailureLog {
 public:
  // "wsbench: `message`" (any thread).
  void Report(const std::string& message);

 private:
  std::atomic<std::uint64_t> reported_{0};
};

// Builds the final {"mode":...} line for scripts.
class JsonLine {
 public:
  explicit JsonLine(std::string_view mode);
  JsonLine& Add(std::string_view key, std::string_view value);
  JsonLine& Add(std::string_view key, const char* value) { return Add(key, std::string_view{value}); }
  JsonLine& Add(std::string_view key, double value);
  JsonLine& Add(std::string_view key, std::uint64_t value);
  JsonLine& Add(std::string_view key, bool value);
  std::string str() const { return text_ + "}"; }

 private:
  void Key(std::string_view key);
  std::string text_;
};

// Seconds as a double.
inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// The human-readable latency line and the JSON fields for a histogram of
// nanoseconds (`prefix` + p50_us, p90_us, ...).
std::string DescribeLatency(const Histogram& h);
void AddLatency(JsonLine& json, std::string_view prefix, const Histogram& h);

// The failure counts of a mode that checks echoes (echo, connect-rate): the
// summary's "errors: ..." line and the JSON fields. connect-rate reads one
// reply per message it sent, so it has no unexpected replies to count
// (`unexpected_replies` false leaves them out).
std::string DescribeEchoFailures(const Stats& s, bool unexpected_replies);
void AddEchoFailures(JsonLine& json, const Stats& s, bool unexpected_replies);

// Ends a mode's summary: adds "ok" to `json`, prints it as the last line and
// returns the exit code for it.
int PrintResult(JsonLine& json, bool ok);

// Sets IP_BIND_ADDRESS_NO_PORT and binds an open socket to 127.0.x.y for
// source address number `index` (x = index / 250 % 256, y = 1 + index % 250),
// so that the port is chosen at connect time per 4-tuple. False on failure.
bool BindLoopbackSource(boost::asio::ip::tcp::socket& socket, std::uint64_t index, boost::system::error_code& ec);

// Opens `socket` for connecting to `endpoint` and, when that is IPv4, binds
// it to source address number `index` (an IPv6 loopback connection has only
// ::1 to come from). False on failure.
bool OpenFromLoopbackSource(boost::asio::ip::tcp::socket& socket, const boost::asio::ip::tcp::endpoint& endpoint,
                            std::uint64_t index, boost::system::error_code& ec);

// Turns Nagle off on a connected client socket, as browsers and WebSocket
// libraries do: with it on, a small message written while the previous one
// is unacknowledged waits for that ack (up to the peer's 40 ms delayed ack),
// which would show in the latency as the client's doing, not the server's.
void DisableNagle(boost::asio::ip::tcp::socket& socket);

}  // namespace wsbench
