#include "bench_common.hpp"

#include <netinet/in.h>
#include <sys/resource.h>

#include <boost/asio/ip/address.hpp>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

namespace wsbench {

namespace net = boost::asio;
using tcp = net::ip::tcp;

std::optional<Url> ParseLoopbackUrl(const std::string& text, std::string& error) {
  constexpr std::string_view kScheme = "ws://";
  if (text.rfind(kScheme, 0) != 0) {
    error = "URL must start with ws:// (wss is not supported)";
    return std::nullopt;
  }
  const std::string rest = text.substr(kScheme.size());
  const std::size_t slash = rest.find('/');
  const std::string authority = rest.substr(0, slash);
  Url url;
  url.text = text;
  url.target = slash == std::string::npos ? "/" : rest.substr(slash);

  std::string host;
  std::string port_text;
  if (!authority.empty() && authority.front() == '[') {
    const std::size_t close = authority.find(']');
    if (close == std::string::npos) {
      error = "unterminated [IPv6] host";
      return std::nullopt;
    }
    host = authority.substr(1, close - 1);
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') {
        error = "junk after ]";
        return std::nullopt;
      }
      port_text = authority.substr(close + 2);
    }
  } else {
    const std::size_t colon = authority.rfind(':');
    host = authority.substr(0, colon);
    if (colon != std::string::npos) port_text = authority.substr(colon + 1);
  }

  unsigned port = 80;
  if (!port_text.empty()) {
    const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 || port > 65535) {
      error = "bad port '" + port_text + "'";
      return std::nullopt;
    }
  }

  const std::string literal = host == "localhost" ? "127.0.0.1" : host;
  boost::system::error_code ec;
  const net::ip::address address = net::ip::make_address(literal, ec);
  if (ec) {
    error = "host '" + host + "' is not an IP address literal or localhost";
    return std::nullopt;
  }
  if (!address.is_loopback()) {
    error = "host '" + host + "' is not loopback (127.0.0.0/8 or ::1); wsbench only loads this machine";
    return std::nullopt;
  }
  url.endpoint = tcp::endpoint{address, static_cast<unsigned short>(port)};
  url.host_header = authority;
  return url;
}

std::optional<Clock::duration> ParseDuration(std::string_view text) {
  std::size_t unit_at = 0;
  while (unit_at < text.size() && (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  if (unit_at == 0) return std::nullopt;
  double number = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + unit_at, number);
  if (ec != std::errc{} || end != text.data() + unit_at || !std::isfinite(number)) return std::nullopt;
  const std::string_view unit = text.substr(unit_at);
  double seconds = 0;
  if (unit.empty() || unit == "s") {
    seconds = number;
  } else if (unit == "ms") {
    seconds = number / 1e3;
  } else if (unit == "us") {
    seconds = number / 1e6;
  } else if (unit == "m") {
    seconds = number * 60;
  } else {
    return std::nullopt;
  }
  if (seconds > 86400) return std::nullopt;
  return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
}

std::uint64_t RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

namespace {

std::optional<std::uint64_t> RssKib(int pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  if (!status) return std::nullopt;
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) {
      std::istringstream fields(line.substr(6));
      std::uint64_t kib = 0;
      if (fields >> kib) return kib;
      return std::nullopt;
    }
  }
  return 0;  // a kernel thread or a zombie has no VmRSS line
}

void CollectDescendants(int pid, std::set<int>& seen) {
  if (!seen.insert(pid).second) return;
  std::error_code ec;
  const std::filesystem::path tasks = "/proc/" + std::to_string(pid) + "/task";
  for (const auto& task : std::filesystem::directory_iterator(tasks, ec)) {
    std::ifstream children(task.path() / "children");
    int child = 0;
    while (children >> child) CollectDescendants(child, seen);
  }
}

}  // namespace

std::optional<std::uint64_t> ProcessTreeRssKib(int pid) {
  const auto own = RssKib(pid);
  if (!own) return std::nullopt;
  std::set<int> tree;
  CollectDescendants(pid, tree);
  std::uint64_t total = 0;
  for (const int member : tree) total += RssKib(member).value_or(0);  // children may exit meanwhile
  return total;
}

std::optional<std::uint64_t> OpenDescriptorCount(int pid) {
  std::error_code ec;
  std::filesystem::directory_iterator fds("/proc/" + std::to_string(pid) + "/fd", ec);
  if (ec) return std::nullopt;
  std::uint64_t count = 0;
  for (auto it = fds; it != std::filesystem::directory_iterator{}; it.increment(ec)) {
    if (ec) return std::nullopt;
    ++count;
  }
  return count;
}

void Stats::Merge(const Stats& other) {
  latency_ns.Merge(other.latency_ns);
  messages += other.messages;
  bytes += other.bytes;
  errors += other.errors;
  refused += other.refused;
  verify_wrong_connection += other.verify_wrong_connection;
  verify_out_of_order += other.verify_out_of_order;
  verify_corrupt += other.verify_corrupt;
  verify_unexpected += other.verify_unexpected;
  dropped += other.dropped;
}

namespace {
thread_local Stats* current_stats = nullptr;
}  // namespace

Stats& ThreadStats() { return *current_stats; }

Runner::Runner(unsigned threads)
    : threads_(threads == 0 ? 1 : threads), ioc_(static_cast<int>(threads_)), stats_(threads_) {}

void Runner::Run() {
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < threads_; ++i) {
    extra.emplace_back([this, i] {
      current_stats = &stats_[i];
      ioc_.run();
    });
  }
  current_stats = &stats_[0];
  ioc_.run();
  for (auto& thread : extra) thread.join();
  current_stats = nullptr;
}

Stats Runner::Merged() const {
  Stats merged;
  for (const auto& stats : stats_) merged.Merge(stats);
  return merged;
}

namespace {
constexpr std::uint64_t kMaxReportedFailures = 5;
}  // namespace

void FailureLog::Report(const std::string& message) {
  if (reported_.fetch_add(1) < kMaxReportedFailures) std::fprintf(stderr, "wsbench: %s\n", message.c_str());
}

JsonLine::JsonLine(std::string_view mode) : text_("{") { Add("mode", mode); }

void JsonLine::Key(std::string_view key) {
  if (text_.size() > 1) text_ += ',';
  text_ += '"';
  text_ += key;
  text_ += "\":";
}

JsonLine& JsonLine::Add(std::string_view key, std::string_view value) {
  Key(key);
  text_ += '"';
  for (const char c : value) {
    if (c == '"' || c == '\\') {
      text_ += '\\';
      text_ += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char escaped[8];
      std::snprintf(escaped, sizeof escaped, "\\u%04x", static_cast<unsigned>(c));
      text_ += escaped;
    } else {
      text_ += c;
    }
  }
  text_ += '"';
  return *this;
}

JsonLine& JsonLine::Add(std::string_view key, double value) {
  Key(key);
  char number[64];
  std::snprintf(number, sizeof number, "%.3f", std::isfinite(value) ? value : 0.0);
  text_ += number;
  return *this;
}

JsonLine& JsonLine::Add(std::string_view key, std::uint64_t value) {
  Key(key);
  text_ += std::to_string(value);
  return *this;
}

JsonLine& JsonLine::Add(std::string_view key, bool value) {
  Key(key);
  text_ += value ? "true" : "false";
  return *this;
}

namespace {
double Micros(std::uint64_t ns) { return static_cast<double>(ns) / 1e3; }
constexpr std::pair<const char*, double> kPercentiles[] = {
    {"p50", 50.0}, {"p90", 90.0}, {"p99", 99.0}, {"p99_9", 99.9}};
}  // namespace

std::string DescribeLatency(const Histogram& h) {
  char line[256];
  std::snprintf(line, sizeof line, "p50 %.1f us, p90 %.1f us, p99 %.1f us, p99.9 %.1f us, max %.1f us (%llu samples)",
                Micros(h.Percentile(50)), Micros(h.Percentile(90)), Micros(h.Percentile(99)),
                Micros(h.Percentile(99.9)), Micros(h.max()), static_cast<unsigned long long>(h.count()));
  return line;
}

void AddLatency(JsonLine& json, std::string_view prefix, const Histogram& h) {
  for (const auto& [name, percentile] : kPercentiles) {
    json.Add(std::string{prefix} + name + "_us", Micros(h.Percentile(percentile)));
  }
  json.Add(std::string{prefix} + "max_us", Micros(h.max()));
}

std::string DescribeEchoFailures(const Stats& s, bool unexpected_replies) {
  std::string text = "errors: " + std::to_string(s.errors) +
                     ", verification failures: " + std::to_string(s.VerifyFailures()) + " (wrong connection " +
                     std::to_string(s.verify_wrong_connection) + ", out of order " +
                     std::to_string(s.verify_out_of_order) + ", corrupt " + std::to_string(s.verify_corrupt);
  if (unexpected_replies) text += ", unexpected " + std::to_string(s.verify_unexpected);
  return text + "), dropped: " + std::to_string(s.dropped) + ", refused: " + std::to_string(s.refused);
}

void AddEchoFailures(JsonLine& json, const Stats& s, bool unexpected_replies) {
  json.Add("errors", s.errors)
      .Add("verify_failures", s.VerifyFailures())
      .Add("verify_wrong_connection", s.verify_wrong_connection)
      .Add("verify_out_of_order", s.verify_out_of_order)
      .Add("verify_corrupt", s.verify_corrupt);
  if (unexpected_replies) json.Add("verify_unexpected", s.verify_unexpected);
  json.Add("dropped", s.dropped).Add("refused", s.refused);
}

int PrintResult(JsonLine& json, bool ok) {
  json.Add("ok", ok);
  std::printf("%s\n", json.str().c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

void DisableNagle(tcp::socket& socket) {
  boost::system::error_code ignored;  // a socket that refuses it still works, only slower
  socket.set_option(tcp::no_delay(true), ignored);
}

bool BindLoopbackSource(tcp::socket& socket, std::uint64_t index, boost::system::error_code& ec) {
  const int yes = 1;
  if (setsockopt(socket.native_handle(), IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &yes, sizeof yes) != 0) {
    ec.assign(errno, boost::system::system_category());
    return false;
  }
  const net::ip::address_v4::bytes_type bytes{127, 0, static_cast<unsigned char>(index / 250 % 256),
                                              static_cast<unsigned char>(1 + index % 250)};
  socket.bind(tcp::endpoint{net::ip::address_v4{bytes}, 0}, ec);
  return !ec;
}

bool OpenFromLoopbackSource(tcp::socket& socket, const tcp::endpoint& endpoint, std::uint64_t index,
                            boost::system::error_code& ec) {
  socket.open(endpoint.protocol(), ec);
  if (!ec && endpoint.address().is_v4()) BindLoopbackSource(socket, index, ec);
  return !ec;
}

}  // namespace wsbench
