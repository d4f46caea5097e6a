// wsbench connect-rate: K workers, each running whole connection lifetimes
// back to back: TCP connect, WebSocket handshake, one message and its
// verified echo, close handshake; then the next. It measures what a
// connection costs the server from start to end, not what holding one does
// (that is hold).
//
// Timeline: all workers start together; cycles that end inside the measured
// window (after the warm-up, for the duration) count. No cycle starts after
// the window; those in progress get --drain to finish, and whatever is still
// going then is cut off (an unanswered echo is dropped).
//
// Each cycle binds the next loopback source address (127.0.x.y, rotating
// through 64,000 of them), so TIME_WAIT entries and ephemeral ports spread
// over many 4-tuples and a long run does not run out of ports.

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "modes.hpp"
#include "stream_timeouts.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

constexpr auto kStepTimeout = std::chrono::seconds(5);  // connect, handshake, close
constexpr std::uint64_t kSourceAddresses = 250 * 256;   // BindLoopbackSource's distinct addresses

std::uint64_t Nanos(Clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// Handshake latencies, one histogram per runner thread: Stats has room for
// one latency histogram, which holds the full cycles. A thread registers its
// histogram on first use, the only time it takes the lock.
class PerThreadHistograms {
 public:
  Histogram& Mine() {
    thread_local const PerThreadHistograms* owner = nullptr;
    thread_local Histogram* mine = nullptr;
    if (owner != this) {
      std::lock_guard lock(mutex_);
      all_.push_back(std::make_unique<Histogram>());
      owner = this;
      mine = all_.back().get();
    }
    return *mine;
  }

  // After the run, when no thread records any more.
  Histogram Merged() const {
    Histogram merged;
    for (const auto& histogram : all_) merged.Merge(*histogram);
    return merged;
  }

 private:
  std::mutex mutex_;
  std::vector<std::unique_ptr<Histogram>> all_;
};

class Worker;

// State of one run: the timeline is fixed before the workers start and
// read-only afterwards; the drain timer runs on its own strand.
class ConnectRun {
 public:
  ConnectRun(const ConnectRateOptions& options, net::io_context& ioc)
      : options(options), ioc(ioc), drain_timer(net::make_strand(ioc)) {}

  void Start();
  void WorkerFinished();
  bool Measured(Clock::time_point t) const { return t >= measure_start && t < measure_end; }

  const ConnectRateOptions& options;
  net::io_context& ioc;
  std::vector<std::shared_ptr<Worker>> workers;
  std::atomic<std::uint64_t> next_source{0};
  std::atomic<std::size_t> active{0};  // workers not finished
  FailureLog failures;
  PerThreadHistograms handshake_ns;
  Clock::time_point begin, measure_start, measure_end;
  net::steady_timer drain_timer;  // used only on its own strand
};

class Worker : public std::enable_shared_from_this<Worker> {
 public:
  Worker(ConnectRun& run, std::uint64_t index) : run_(run), index_(index), strand_(net::make_strand(run.ioc)) {}

  net::any_io_executor executor() { return strand_; }

  // Starts the next cycle, unless the window is over.
  void Next() {
    if (aborted_ || finished_) return Finish();
    const auto now = Clock::now();
    if (now >= run_.measure_end) return Finish();
    ++cycle_;
    started_ = now;
    stage_ = Stage::kConnecting;
    ws_.emplace(strand_);
    auto& stream = beast::get_lowest_layer(*ws_);
    const auto& endpoint = run_.options.url.endpoint;
    beast::error_code ec;
    if (!OpenFromLoopbackSource(stream.socket(), endpoint, run_.next_source.fetch_add(1) % kSourceAddresses, ec)) {
      return Refuse("bind", ec);
    }
    stream.expires_after(kStepTimeout);
    stream.async_connect(endpoint, beast::bind_front_handler(&Worker::OnConnect, shared_from_this()));
  }

  // Cuts off the cycle in progress at the drain deadline.
  void Abort() {
    if (finished_) return;
    aborted_ = true;
    if (stage_ == Stage::kIdle) return Finish();
    if (stage_ == Stage::kReading) {
      ++ThreadStats().dropped;
      Report("no echo at the drain deadline");
    } else {
      ++ThreadStats().errors;
      Report("cycle still in progress at the drain deadline");
    }
    CloseSocket();  // the pending handler sees aborted_ and finishes
  }

 private:
  enum class Stage { kIdle, kConnecting, kHandshaking, kWriting, kReading, kClosing };

  void OnConnect(beast::error_code ec) {
    if (aborted_) return Finish();
    if (ec) return Refuse("connect", ec);
    beast::get_lowest_layer(*ws_).expires_never();
    DisableNagle(beast::get_lowest_layer(*ws_).socket());
    SetClientTimeouts(*ws_, kStepTimeout);
    ws_->text(true);
    stage_ = Stage::kHandshaking;
    ws_->async_handshake(run_.options.url.host_header, run_.options.url.target,
                         beast::bind_front_handler(&Worker::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    if (aborted_) return Finish();
    if (ec) return Refuse("handshake", ec);
    upgraded_ = Clock::now();
    FillPayload(payload_, run_.options.size, cycle_, index_, false);
    stage_ = Stage::kWriting;
    ws_->async_write(net::buffer(payload_), beast::bind_front_handler(&Worker::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    if (aborted_) return Finish();
    if (ec) return Fail("write", ec);
    stage_ = Stage::kReading;
    ws_->async_read(buffer_, beast::bind_front_handler(&Worker::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (aborted_) return Finish();
    if (ec) return Fail("read", ec);
    if (!Verify()) {
      CloseSocket();
      return NextSoon();
    }
    stage_ = Stage::kClosing;
    ws_->async_close(websocket::close_code::normal, beast::bind_front_handler(&Worker::OnClose, shared_from_this()));
  }

  void OnClose(beast::error_code ec) {
    if (aborted_) return Finish();
    if (ec) return Fail("close", ec);
    const auto now = Clock::now();
    if (run_.Measured(now)) {
      auto& stats = ThreadStats();
      ++stats.messages;
      stats.bytes += payload_.size();
      stats.latency_ns.Record(Nanos(now - started_));
      run_.handshake_ns.Mine().Record(Nanos(upgraded_ - started_));
    }
    CloseSocket();
    NextSoon();
  }

  // Checks the echo in buffer_ against what this cycle sent.
  bool Verify() {
    const auto data = buffer_.cdata();
    const std::string_view reply{static_cast<const char*>(data.data()), data.size()};
    const bool intact = reply == payload_ && ws_->got_text();
    buffer_.consume(buffer_.size());
    if (intact) return true;
    auto& stats = ThreadStats();
    const auto header = ParseHeader(reply);
    if (header && header->tag != (index_ & 0xffff)) {
      ++stats.verify_wrong_connection;
      Report("echo belongs to worker " + std::to_string(header->tag));
    } else if (header && header->seq != (cycle_ & 0xffffffffffffULL)) {
      ++stats.verify_out_of_order;
      Report("echo belongs to cycle " + std::to_string(header->seq) + ", not " + std::to_string(cycle_));
    } else {
      ++stats.verify_corrupt;
      Report("echo came back altered (" + std::to_string(reply.size()) + " bytes, " +
             (ws_->got_text() ? "text" : "binary") + ")");
    }
    return false;
  }

  void Refuse(const char* what, beast::error_code ec) {
    ++ThreadStats().refused;
    Report(std::string{what} + ": " + ec.message());
    CloseSocket();
    NextSoon();
  }

  void Fail(const char* what, beast::error_code ec) {
    ++ThreadStats().errors;
    Report(std::string{what} + ": " + ec.message());
    CloseSocket();
    NextSoon();
  }

  // Through the strand's queue rather than recursively: a server that
  // refuses at once must not grow the stack.
  void NextSoon() {
    stage_ = Stage::kIdle;
    net::post(strand_, [self = shared_from_this()] { self->Next(); });
  }

  void CloseSocket() {
    if (ws_) Abandon(*ws_);
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    stage_ = Stage::kIdle;
    CloseSocket();
    run_.WorkerFinished();
  }

  void Report(const std::string& message) {
    run_.failures.Report("worker " + std::to_string(index_) + ", cycle " + std::to_string(cycle_) + ": " + message);
  }

  ConnectRun& run_;
  const std::uint64_t index_;
  net::strand<net::io_context::executor_type> strand_;
  std::optional<websocket::stream<beast::tcp_stream>> ws_;  // a new one each cycle
  beast::flat_buffer buffer_;
  std::string payload_;
  std::uint64_t cycle_ = 0;
  Clock::time_point started_, upgraded_;
  Stage stage_ = Stage::kIdle;
  bool aborted_ = false;
  bool finished_ = false;
};

// Called before the runner threads start, so nothing races with it.
void ConnectRun::Start() {
  begin = Clock::now();
  measure_start = begin + options.warmup;
  measure_end = measure_start + options.duration;
  active = workers.size();
  drain_timer.expires_at(measure_end + options.drain);
  drain_timer.async_wait([this](beast::error_code ec) {
    if (ec) return;
    for (auto& worker : workers) net::post(worker->executor(), [worker] { worker->Abort(); });
  });
  for (auto& worker : workers) net::post(worker->executor(), [worker] { worker->Next(); });
}

void ConnectRun::WorkerFinished() {
  if (active.fetch_sub(1) != 1) return;
  net::post(drain_timer.get_executor(), [this] { drain_timer.cancel(); });
}

}  // namespace

int RunConnectRate(const ConnectRateOptions& o) {
  Runner runner(o.threads);
  ConnectRun run(o, runner.ioc());
  run.workers.reserve(o.concurrency);
  for (std::uint64_t i = 0; i < o.concurrency; ++i) run.workers.push_back(std::make_shared<Worker>(run, i));
  run.Start();
  runner.Run();
  run.workers.clear();

  const Stats s = runner.Merged();
  const Histogram handshake = run.handshake_ns.Merged();
  const double seconds = Seconds(o.duration);
  const double per_s = static_cast<double>(s.messages) / seconds;
  std::printf("connect-rate %s: %u workers, %zu-byte text echo each, %.1f s after %.1f s warm-up, %u thread(s)\n",
              o.url.text.c_str(), o.concurrency, o.size, seconds, Seconds(o.warmup), o.threads);
  std::printf("completed: %llu connections (connect, upgrade, echo, close): %.0f connections/s\n",
              static_cast<unsigned long long>(s.messages), per_s);
  std::printf("handshake (connect start to upgrade done): %s\n", DescribeLatency(handshake).c_str());
  std::printf("full cycle: %s\n", DescribeLatency(s.latency_ns).c_str());
  std::printf("%s\n", DescribeEchoFailures(s, /*unexpected_replies=*/false).c_str());

  const bool ok = s.errors == 0 && s.VerifyFailures() == 0 && s.dropped == 0 && s.refused == 0;
  JsonLine json("connect-rate");
  json.Add("url", o.url.text)
      .Add("concurrency", std::uint64_t{o.concurrency})
      .Add("size", std::uint64_t{o.size})
      .Add("threads", std::uint64_t{o.threads})
      .Add("warmup_s", Seconds(o.warmup))
      .Add("duration_s", seconds)
      .Add("completed", s.messages)
      .Add("connections_per_sec", per_s);
  AddLatency(json, "handshake_", handshake);
  AddLatency(json, "cycle_", s.latency_ns);
  AddEchoFailures(json, s, /*unexpected_replies=*/false);
  return PrintResult(json, ok);
}

}  // namespace wsbench
