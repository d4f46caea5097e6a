// wsbench hold: opens N idle connections at a fixed rate, keeps them for a
// while, and measures what they cost the server in resident memory.
//
// Each connection binds its own source address, 127.0.x.y (y in 1..250), with
// IP_BIND_ADDRESS_NO_PORT, so the ephemeral port is picked per 4-tuple at
// connect time and N can pass the ephemeral-port range.

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <cstdio>
#include <memory>
#include <string>

#include "held_connection.hpp"
#include "modes.hpp"
#include "paced_opener.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

class HoldConnection;

// State of one run. The opener and the hold timer live on `strand`; each
// connection on its own.
class HoldRun {
 public:
  HoldRun(const HoldOptions& options, net::io_context& ioc)
      : options(options), ioc(ioc), strand(net::make_strand(ioc)), opener(strand), timer(strand) {}

  void Start();
  void HandshakeDone();

  const HoldOptions& options;
  net::io_context& ioc;
  net::strand<net::io_context::executor_type> strand;
  PacedOpener opener;
  net::steady_timer timer;
  std::vector<std::shared_ptr<HoldConnection>> connections;
  std::atomic<std::uint64_t> outstanding{0};  // connections not yet up or refused
  FailureLog failures;
  std::optional<std::uint64_t> rss_after_kib;  // written on `strand`, read after the run

 private:
  void EndHold();
};

class HoldConnection : public HeldConnection {
 public:
  HoldConnection(HoldRun& run, std::uint64_t index)
      : HeldConnection(run.ioc, run.options.url, index, run.options.permessage_deflate, "lost while held"), run_(run) {}

  Clock::time_point up_at() const { return up_at_; }

 private:
  void Upgraded() override {
    up_at_ = Clock::now();
    ThreadStats().latency_ns.Record(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(up_at_ - opened_at()).count()));
  }

  void Settled() override { run_.HandshakeDone(); }

  void Report(const std::string& message) override {
    run_.failures.Report("connection " + std::to_string(index()) + ": " + message);
  }

  HoldRun& run_;
  Clock::time_point up_at_;
};

void HoldRun::Start() {
  net::post(strand, [this] {
    opener.Start(options.connections, options.rate, [this](std::uint64_t index) { connections[index]->Open(); });
  });
}

void HoldRun::HandshakeDone() {
  if (outstanding.fetch_sub(1) != 1) return;
  net::post(strand, [this] {
    timer.expires_after(options.hold);
    timer.async_wait([this](beast::error_code ec) {
      if (!ec) EndHold();
    });
  });
}

void HoldRun::EndHold() {
  if (options.pid > 0) rss_after_kib = ProcessTreeRssKib(options.pid);
  for (auto& connection : connections) connection->Close();
}

}  // namespace

int RunHold(const HoldOptions& o) {
  std::optional<std::uint64_t> rss_before_kib;
  if (o.pid > 0) {
    rss_before_kib = ProcessTreeRssKib(o.pid);
    if (!rss_before_kib) {
      std::fprintf(stderr, "wsbench: cannot read /proc/%d/status\n", o.pid);
      return 2;
    }
  }

  Runner runner(o.threads);
  HoldRun run(o, runner.ioc());
  run.outstanding = o.connections;
  run.connections.reserve(o.connections);
  for (std::uint64_t i = 0; i < o.connections; ++i) run.connections.push_back(std::make_shared<HoldConnection>(run, i));
  run.Start();
  runner.Run();

  std::uint64_t established = 0;
  Clock::time_point last_up = run.opener.start();
  for (const auto& connection : run.connections) {
    if (!connection->up()) continue;
    ++established;
    last_up = std::max(last_up, connection->up_at());
  }
  run.connections.clear();

  const Stats s = runner.Merged();
  const double open_seconds = Seconds(last_up - run.opener.start());
  const double handshakes_per_s = open_seconds > 0 ? static_cast<double>(established) / open_seconds : 0;
  const std::uint64_t last_source = o.connections == 0 ? 0 : o.connections - 1;
  std::printf("hold %s: %llu connections at %.0f/s from 127.0.0.1 .. 127.0.%llu.%llu, held %.1f s, %u thread(s)\n",
              o.url.text.c_str(), static_cast<unsigned long long>(o.connections), o.rate,
              static_cast<unsigned long long>(last_source / 250 % 256),
              static_cast<unsigned long long>(1 + last_source % 250), Seconds(o.hold), o.threads);
  std::printf("established: %llu (refused %llu) in %.2f s: %.0f handshakes/s\n",
              static_cast<unsigned long long>(established), static_cast<unsigned long long>(s.refused), open_seconds,
              handshakes_per_s);
  std::printf("handshake latency: %s\n", DescribeLatency(s.latency_ns).c_str());
  std::printf("lost while held: %llu\n", static_cast<unsigned long long>(s.errors));

  JsonLine json("hold");
  json.Add("url", o.url.text)
      .Add("connections", o.connections)
      .Add("rate", o.rate)
      .Add("hold_s", Seconds(o.hold))
      .Add("threads", std::uint64_t{o.threads})
      .Add("established", established)
      .Add("refused", s.refused)
      .Add("lost", s.errors)
      .Add("open_s", open_seconds)
      .Add("handshakes_per_s", handshakes_per_s);
  AddLatency(json, "handshake_", s.latency_ns);
  if (o.pid > 0) {
    json.Add("pid", std::uint64_t(o.pid));
    if (run.rss_after_kib && established > 0) {
      const double delta_kib = static_cast<double>(*run.rss_after_kib) - static_cast<double>(*rss_before_kib);
      const double per_connection_kib = delta_kib / static_cast<double>(established);
      std::printf("server pid %d (children included): VmRSS %llu KiB before, %llu KiB after: %.2f KiB per connection\n",
                  o.pid, static_cast<unsigned long long>(*rss_before_kib),
                  static_cast<unsigned long long>(*run.rss_after_kib), per_connection_kib);
      json.Add("rss_before_kib", *rss_before_kib)
          .Add("rss_after_kib", *run.rss_after_kib)
          .Add("rss_per_connection_kib", per_connection_kib);
    } else {
      std::printf("server pid %d: no memory figure (process gone or no connection up)\n", o.pid);
    }
  }
  return PrintResult(json, s.refused == 0 && s.errors == 0);
}

}  // namespace wsbench
