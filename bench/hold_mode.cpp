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
#include <boost/beast/websocket.hpp>
#include <cmath>
#include <cstdio>
#include <memory>
#include <string>

#include "modes.hpp"
#include "stream_timeouts.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

constexpr auto kConnectTimeout = std::chrono::seconds(5);
constexpr std::uint64_t kMaxReportedFailures = 5;

class HoldConnection;

// State of one run. The opener and the hold timer live on `strand`; each
// connection on its own.
class HoldRun {
 public:
  HoldRun(const HoldOptions& options, net::io_context& ioc)
      : options(options), ioc(ioc), strand(net::make_strand(ioc)), timer(strand) {}

  void Start();
  void HandshakeDone();

  const HoldOptions& options;
  net::io_context& ioc;
  net::strand<net::io_context::executor_type> strand;
  net::steady_timer timer;
  std::vector<std::shared_ptr<HoldConnection>> connections;
  std::atomic<std::uint64_t> outstanding{0};  // connections not yet up or refused
  std::atomic<std::uint64_t> reported_failures{0};
  std::uint64_t opened = 0;                    // on `strand`
  Clock::time_point open_start;                // written on `strand` before the first connection opens
  std::optional<std::uint64_t> rss_after_kib;  // written on `strand`, read after the run

 private:
  void OpenDue();
  void EndHold();
};

class HoldConnection : public std::enable_shared_from_this<HoldConnection> {
 public:
  HoldConnection(HoldRun& run, std::uint64_t index) : run_(run), index_(index), ws_(net::make_strand(run.ioc)) {}

  net::any_io_executor executor() { return ws_.get_executor(); }
  bool up() const { return up_; }
  Clock::time_point up_at() const { return up_at_; }

  void Open() {
    started_ = Clock::now();
    auto& stream = beast::get_lowest_layer(ws_);
    const auto& endpoint = run_.options.url.endpoint;
    beast::error_code ec;
    stream.socket().open(endpoint.protocol(), ec);
    if (!ec && endpoint.address().is_v4()) BindLoopbackSource(stream.socket(), index_, ec);
    if (ec) return Refuse("bind", ec);
    stream.expires_after(kConnectTimeout);
    stream.async_connect(endpoint, beast::bind_front_handler(&HoldConnection::OnConnect, shared_from_this()));
  }

  // Ends the hold with a close handshake.
  void Close() {
    if (!up_ || lost_) return;
    closing_ = true;
    ws_.async_close(websocket::close_code::normal,
                    beast::bind_front_handler(&HoldConnection::OnClose, shared_from_this()));
  }

 private:
  void OnConnect(beast::error_code ec) {
    if (ec) return Refuse("connect", ec);
    beast::get_lowest_layer(ws_).expires_never();
    websocket::stream_base::timeout timeout = websocket::stream_base::timeout::suggested(beast::role_type::client);
    timeout.handshake_timeout = kConnectTimeout;
    ws_.set_option(timeout);
    if (run_.options.permessage_deflate) {
      websocket::permessage_deflate deflate;
      deflate.client_enable = true;
      ws_.set_option(deflate);
    }
    ws_.async_handshake(response_, run_.options.url.host_header, run_.options.url.target,
                        beast::bind_front_handler(&HoldConnection::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) return Refuse("handshake", ec);
    const bool deflate_accepted =
        response_[beast::http::field::sec_websocket_extensions].find("permessage-deflate") != beast::string_view::npos;
    response_ = {};
    if (run_.options.permessage_deflate && !deflate_accepted) {
      return Refuse("handshake: the server did not accept permessage-deflate");
    }
    up_ = true;
    up_at_ = Clock::now();
    ThreadStats().latency_ns.Record(
        static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(up_at_ - started_).count()));
    DoRead();
    run_.HandshakeDone();
  }

  void Refuse(const char* what, beast::error_code ec) { Refuse(std::string{what} + ": " + ec.message()); }

  void Refuse(const std::string& reason) {
    ++ThreadStats().refused;
    Report(reason);
    DisarmTimeouts(ws_);
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    run_.HandshakeDone();
  }

  // Keeps a read pending to answer pings and see the server close.
  void DoRead() { ws_.async_read(buffer_, beast::bind_front_handler(&HoldConnection::OnRead, shared_from_this())); }

  void OnRead(beast::error_code ec, std::size_t bytes) {
    if (ec == websocket::error::closed && closing_) return;
    if (ec) {
      if (closing_) return;  // OnClose reports it
      lost_ = true;
      ++ThreadStats().errors;
      Report("lost while held: " + ec.message());
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return;
    }
    buffer_.consume(bytes);  // the server is not expected to talk; ignore it
    DoRead();
  }

  void OnClose(beast::error_code ec) {
    if (!ec) return;
    Report("close: " + ec.message());
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

  void Report(const std::string& message) {
    if (run_.reported_failures.fetch_add(1) < kMaxReportedFailures) {
      std::fprintf(stderr, "wsbench: connection %llu: %s\n", static_cast<unsigned long long>(index_), message.c_str());
    }
  }

  HoldRun& run_;
  const std::uint64_t index_;
  websocket::stream<beast::tcp_stream> ws_;
  websocket::response_type response_;  // only during the handshake
  beast::flat_buffer buffer_;
  Clock::time_point started_;
  Clock::time_point up_at_;
  bool up_ = false;
  bool lost_ = false;
  bool closing_ = false;
};

void HoldRun::Start() {
  net::post(strand, [this] {
    open_start = Clock::now();
    OpenDue();
  });
}

// Opens every connection due by now at `rate`, then waits for the next one.
void HoldRun::OpenDue() {
  const double elapsed = Seconds(Clock::now() - open_start);
  const auto due =
      std::min<std::uint64_t>(options.connections, static_cast<std::uint64_t>(std::floor(elapsed * options.rate)) + 1);
  for (; opened < due; ++opened) {
    auto connection = connections[opened];
    net::post(connection->executor(), [connection] { connection->Open(); });
  }
  if (opened == options.connections) return;
  timer.expires_at(open_start + std::chrono::duration_cast<Clock::duration>(
                                    std::chrono::duration<double>(static_cast<double>(opened) / options.rate)));
  timer.async_wait([this](beast::error_code ec) {
    if (!ec) OpenDue();
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
  for (auto& connection : connections) {
    net::post(connection->executor(), [connection] { connection->Close(); });
  }
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
  Clock::time_point last_up = run.open_start;
  for (const auto& connection : run.connections) {
    if (!connection->up()) continue;
    ++established;
    last_up = std::max(last_up, connection->up_at());
  }
  run.connections.clear();

  const Stats s = runner.Merged();
  const double open_seconds = Seconds(last_up - run.open_start);
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
  const bool ok = s.refused == 0 && s.errors == 0;
  json.Add("ok", ok);
  std::printf("%s\n", json.str().c_str());
  std::fflush(stdout);
  return ok ? 0 : 1;
}

}  // namespace wsbench
