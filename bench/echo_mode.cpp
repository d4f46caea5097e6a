// wsbench echo: C connections send messages that the server echoes; every
// reply is checked against what this connection sent, in order.
//
// Timeline (one clock for all connections): connect all, then send for
// warm-up + duration; only replies received inside the duration are
// counted. Afterwards each connection waits for its outstanding replies and
// closes; whatever is still unanswered at the drain deadline is dropped.
//
// Closed loop: each connection keeps `in_flight` messages outstanding.
// Open loop: each connection sends rate/C messages per second on a fixed
// schedule, and latency is measured from the scheduled time, so a stalled
// server is not hidden by the sender slowing down with it. One timer paces
// the whole run (OpenLoopPacer): a timer per connection made the generator
// spend a fifth of its core re-arming the kernel timer at 40k msg/s, and a
// load generator short of CPU shows its own queueing as server latency.
//
// With --count N (closed loop only) the run is a fixed amount of work, for
// counting instructions per message under callgrind: it stops after the Nth
// reply received after the warm-up, and the measured window runs from the
// first send after the warm-up to that reply. --duration then only bounds
// it; not reaching N in time is a failure.

#include <atomic>
#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdio>
#include <deque>
#include <memory>
#include <string>

#include "modes.hpp"
#include "paced_opener.hpp"
#include "payload.hpp"
#include "stream_timeouts.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

constexpr std::size_t kMaxOpenLoopBacklog = 1 << 16;  // per connection
// The open-loop pacer wakes at most this often and sends everything that
// fell due meanwhile, each message still timed from its scheduled moment.
constexpr auto kPacerTick = std::chrono::microseconds(100);

class EchoConnection;
class OpenLoopPacer;

// State shared by all connections of one run. Times are written once, by the
// last connection to finish its handshake, before Begin() is posted to every
// connection; they are read-only afterwards.
class EchoRun {
 public:
  EchoRun(const EchoOptions& options, net::io_context& ioc)
      : options(options), ioc(ioc), drain_timer(net::make_strand(ioc)) {}

  void ConnectDone();
  void ConnectionFinished();

  // True while connections should send more (closed loop).
  bool Sending(Clock::time_point now) const {
    return now < measure_end && !count_reached.load(std::memory_order_relaxed);
  }
  // Whether a reply received at `now` is measured; with --count, also counts
  // it towards N.
  bool Counts(Clock::time_point now);
  // With --count: notes the first send inside the measured window.
  void NoteSend(Clock::time_point sent_at) {
    if (sent_at < measure_start || first_send_seen.load(std::memory_order_relaxed)) return;
    // Threads racing here sent within microseconds of each other; the
    // winner's time is the window's start.
    if (!first_send_seen.exchange(true)) first_send_at = sent_at;
  }

  const EchoOptions& options;
  net::io_context& ioc;
  std::vector<std::shared_ptr<EchoConnection>> connections;
  std::atomic<std::size_t> connecting{0};
  std::atomic<std::size_t> active{0};  // connections up and not finished
  FailureLog failures;
  Clock::time_point begin, measure_start, measure_end, drain_deadline;
  net::steady_timer drain_timer;         // used only on its own strand
  std::shared_ptr<OpenLoopPacer> pacer;  // open loop only

  // --count: replies counted so far (may overshoot N; only N are measured),
  // and the window's ends, each written once by the thread that flipped the
  // flag before it and read after the run.
  std::atomic<std::uint64_t> counted{0};
  std::atomic<bool> count_reached{false};
  std::atomic<bool> first_send_seen{false};
  Clock::time_point first_send_at, count_end;

 private:
  void ArmDrain(Clock::time_point deadline);
};

class EchoConnection : public std::enable_shared_from_this<EchoConnection> {
 public:
  EchoConnection(EchoRun& run, std::uint64_t index) : run_(run), index_(index), ws_(net::make_strand(run.ioc)) {}

  void Connect() {
    beast::get_lowest_layer(ws_).expires_after(kConnectTimeout);
    beast::get_lowest_layer(ws_).async_connect(
        run_.options.url.endpoint, beast::bind_front_handler(&EchoConnection::OnConnect, shared_from_this()));
  }

  // Starts sending; posted to this connection's strand once all are up.
  void Begin() {
    if (!up_) return;
    DoRead();
    const auto& o = run_.options;
    if (o.rate > 0) return;  // the pacer calls Due()
    const auto now = Clock::now();
    for (unsigned i = 0; i < o.in_flight; ++i) Enqueue(now);
    Flush();
  }

  // Open loop: a message scheduled for `scheduled_at` is due now.
  void Due(Clock::time_point scheduled_at) {
    if (!up_ || finished_ || closing_) return;
    Enqueue(scheduled_at);
    if (inflight_.size() > kMaxOpenLoopBacklog) {
      return Fail("open loop", "more than " + std::to_string(kMaxOpenLoopBacklog) + " messages unanswered");
    }
    Flush();
  }

  // Open loop: the schedule has passed the end of the measured window.
  void ScheduleDone() {
    schedule_done_ = true;
    MaybeClose();
  }

  // Gives up on the connection at the drain deadline.
  void Abort() {
    if (!up_ || finished_) return;
    ThreadStats().dropped += inflight_.size();
    if (!inflight_.empty())
      Report("no reply for " + std::to_string(inflight_.size()) + " message(s) at the drain deadline");
    Finish();
  }

  net::any_io_executor executor() { return ws_.get_executor(); }

 private:
  struct Pending {
    std::uint64_t seq;
    Clock::time_point sent_at;  // scheduled time in open loop
  };

  void OnConnect(beast::error_code ec) {
    if (ec) return Refuse("connect", ec);
    beast::get_lowest_layer(ws_).expires_never();
    DisableNagle(beast::get_lowest_layer(ws_).socket());
    SetClientTimeouts(ws_, kConnectTimeout);
    ws_.binary(run_.options.binary);
    ws_.async_handshake(run_.options.url.host_header, run_.options.url.target,
                        beast::bind_front_handler(&EchoConnection::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) return Refuse("handshake", ec);
    up_ = true;
    run_.active.fetch_add(1);
    run_.ConnectDone();
  }

  void Refuse(const char* what, beast::error_code ec) {
    ++ThreadStats().refused;
    Report(std::string{what} + ": " + ec.message());
    Abandon(ws_);
    run_.ConnectDone();
  }

  void Enqueue(Clock::time_point sent_at) {
    if (run_.options.count > 0) run_.NoteSend(sent_at);
    inflight_.push_back({next_seq_++, sent_at});
  }

  // One write in flight; the messages [written_seq_, next_seq_) wait behind it.
  void Flush() {
    if (writing_ || finished_ || closing_ || written_seq_ == next_seq_) return;
    FillPayload(write_buffer_, run_.options.size, written_seq_, index_, run_.options.binary);
    writing_ = true;
    ws_.async_write(net::buffer(write_buffer_),
                    beast::bind_front_handler(&EchoConnection::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (finished_) return;
    if (ec) return Fail("write", ec.message());
    ++written_seq_;
    Flush();
    MaybeClose();
  }

  void DoRead() {
    ws_.async_read(read_buffer_, beast::bind_front_handler(&EchoConnection::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t bytes) {
    if (finished_) return;
    if (ec && closing_) return;  // the close handshake ends the read; OnClose finishes
    if (ec) return Fail("read", ec.message());
    const auto now = Clock::now();
    if (!Verify()) return;
    const Pending answered = inflight_.front();
    inflight_.pop_front();
    read_buffer_.consume(bytes);
    if (run_.Counts(now)) {
      auto& stats = ThreadStats();
      ++stats.messages;
      stats.bytes += bytes;
      stats.latency_ns.Record(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(now - answered.sent_at).count()));
    }
    if (run_.options.rate <= 0 && run_.Sending(now)) {
      Enqueue(now);
      Flush();
    }
    MaybeClose();
    DoRead();
  }

  // Checks the reply in read_buffer_ against the oldest outstanding message.
  bool Verify() {
    auto& stats = ThreadStats();
    const auto data = read_buffer_.cdata();
    const std::string_view reply{static_cast<const char*>(data.data()), data.size()};
    if (inflight_.empty()) {
      ++stats.verify_unexpected;
      return VerifyFailed("a reply with no message outstanding");
    }
    const std::uint64_t seq = inflight_.front().seq;
    FillPayload(expected_, run_.options.size, seq, index_, run_.options.binary);
    if (reply == expected_ && ws_.got_binary() == run_.options.binary) return true;
    const auto header = ParseHeader(reply);
    if (header && header->tag != (index_ & 0xffff)) {
      ++stats.verify_wrong_connection;
      return VerifyFailed("reply belongs to connection " + std::to_string(header->tag));
    }
    if (header && header->seq != (seq & 0xffffffffffffULL)) {
      ++stats.verify_out_of_order;
      return VerifyFailed("expected message " + std::to_string(seq) + ", got " + std::to_string(header->seq));
    }
    ++stats.verify_corrupt;
    return VerifyFailed("message " + std::to_string(seq) + " came back altered (" + std::to_string(reply.size()) +
                        " bytes, " + (ws_.got_binary() ? "binary" : "text") + ")");
  }

  bool VerifyFailed(const std::string& why) {
    Report("verification failed: " + why);
    Finish();
    return false;
  }

  // A connection error: what was outstanding is lost.
  void Fail(const char* what, const std::string& why) {
    auto& stats = ThreadStats();
    ++stats.errors;
    stats.dropped += inflight_.size();
    Report(std::string{what} + ": " + why);
    Finish();
  }

  // Starts the close handshake once the run is over and nothing is owed.
  void MaybeClose() {
    if (closing_ || finished_ || writing_ || !inflight_.empty() || run_.Sending(Clock::now())) return;
    if (run_.options.rate > 0 && !schedule_done_) return;
    closing_ = true;
    ws_.async_close(websocket::close_code::normal,
                    beast::bind_front_handler(&EchoConnection::OnClose, shared_from_this()));
  }

  void OnClose(beast::error_code ec) {
    if (finished_) return;
    if (ec) return Fail("close", ec.message());
    Finish();
  }

  void Finish() {
    if (finished_) return;
    finished_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    run_.ConnectionFinished();
  }

  void Report(const std::string& message) {
    run_.failures.Report("connection " + std::to_string(index_) + ": " + message);
  }

  EchoRun& run_;
  const std::uint64_t index_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer read_buffer_;
  std::string write_buffer_;
  std::string expected_;
  std::deque<Pending> inflight_;   // sent or queued, not yet answered; oldest first
  std::uint64_t next_seq_ = 0;     // next sequence number to enqueue
  std::uint64_t written_seq_ = 0;  // next sequence number to write
  bool schedule_done_ = false;     // open loop: no more Due() calls will come
  bool up_ = false;
  bool writing_ = false;
  bool closing_ = false;
  bool finished_ = false;
};

// The open loop's schedule: message m (0, 1, 2, ...) is due at
// begin + m / rate and is sent by connection m % C, so every connection
// sends once per C / rate seconds and the connections are evenly staggered.
class OpenLoopPacer : public std::enable_shared_from_this<OpenLoopPacer> {
 public:
  explicit OpenLoopPacer(EchoRun& run) : run_(run), timer_(net::make_strand(run.ioc)) {}

  void Start() {
    net::post(timer_.get_executor(), [self = shared_from_this()] { self->Wake(); });
  }

 private:
  Clock::time_point DueAt(std::uint64_t message) const {
    return run_.begin + std::chrono::duration_cast<Clock::duration>(
                            std::chrono::duration<double>(static_cast<double>(message) / run_.options.rate));
  }

  void Wake() {
    const auto now = Clock::now();
    const auto& connections = run_.connections;
    for (auto due = DueAt(next_); due <= now; due = DueAt(next_)) {
      if (due >= run_.measure_end) return Finish();
      const auto& connection = connections[next_ % connections.size()];
      net::post(connection->executor(), [connection, due] { connection->Due(due); });
      ++next_;
    }
    timer_.expires_at(std::max(DueAt(next_), now + kPacerTick));
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (!ec) self->Wake();
    });
  }

  void Finish() {
    for (const auto& connection : run_.connections) {
      net::post(connection->executor(), [connection] { connection->ScheduleDone(); });
    }
  }

  EchoRun& run_;
  net::steady_timer timer_;
  std::uint64_t next_ = 0;  // the next message to hand out
};

void EchoRun::ConnectDone() {
  if (connecting.fetch_sub(1) != 1) return;
  // The last handshake: fix the timeline, then start everyone.
  begin = Clock::now();
  measure_start = begin + options.warmup;
  measure_end = measure_start + options.duration;
  drain_deadline = measure_end + options.drain;
  ArmDrain(drain_deadline);
  for (auto& connection : connections) {
    net::post(connection->executor(), [connection] { connection->Begin(); });
  }
  // Posted after every Begin(), so on each connection's strand the first
  // Due() comes after its Begin().
  if (options.rate > 0) {
    pacer = std::make_shared<OpenLoopPacer>(*this);
    pacer->Start();
  }
}

bool EchoRun::Counts(Clock::time_point now) {
  if (now < measure_start || now >= measure_end) return false;
  if (options.count == 0) return true;
  const std::uint64_t before = counted.fetch_add(1, std::memory_order_relaxed);
  if (before + 1 == options.count) {
    count_end = now;
    count_reached.store(true);
    // The outstanding replies now have `drain` to come back, not the rest
    // of --duration.
    ArmDrain(now + options.drain);
  }
  return before < options.count;
}

// (Re)arms the drain deadline; setting a new expiry cancels the old wait.
// Runs on the timer's strand, where posts keep their order, so a later
// deadline never comes before an earlier one. If every connection finishes
// first, ConnectionFinished() has dropped `active` to 0 and its cancel may
// run before this; hence the check.
void EchoRun::ArmDrain(Clock::time_point deadline) {
  net::post(drain_timer.get_executor(), [this, deadline] {
    if (active.load() == 0) return;
    drain_timer.expires_at(deadline);
    drain_timer.async_wait([this](beast::error_code ec) {
      if (ec) return;
      for (auto& connection : connections) {
        net::post(connection->executor(), [connection] { connection->Abort(); });
      }
    });
  });
}

void EchoRun::ConnectionFinished() {
  if (active.fetch_sub(1) != 1) return;
  net::post(drain_timer.get_executor(), [this] { drain_timer.cancel(); });
}

}  // namespace

int RunEcho(const EchoOptions& o) {
  Runner runner(o.threads);
  EchoRun run(o, runner.ioc());
  run.connecting = o.connections;
  run.connections.reserve(o.connections);
  for (std::uint64_t i = 0; i < o.connections; ++i) {
    run.connections.push_back(std::make_shared<EchoConnection>(run, i));
  }
  PacedOpener opener(runner.ioc().get_executor());
  opener.Start(o.connections, o.connect_rate, [&run](std::uint64_t index) { run.connections[index]->Connect(); });
  runner.Run();
  run.connections.clear();

  const Stats s = runner.Merged();
  const bool counting = o.count > 0;
  const bool count_reached = counting && run.count_reached.load();
  // With --count the window ends at the Nth reply; should no send have been
  // seen inside it (impossible in a closed loop), the warm-up's end starts it.
  const Clock::time_point window_start = run.first_send_seen.load() ? run.first_send_at : run.measure_start;
  const double seconds = count_reached ? Seconds(run.count_end - window_start) : Seconds(o.duration);
  const double messages_per_s = static_cast<double>(s.messages) / seconds;
  const double bytes_per_s = static_cast<double>(s.bytes) / seconds;
  const std::string loop = o.rate > 0
                               ? "open loop at " + std::to_string(static_cast<std::uint64_t>(o.rate)) + " msg/s total"
                               : "closed loop, " + std::to_string(o.in_flight) + " in flight each";
  std::printf(
      "echo %s: %u connections (%llu refused), %s, %zu-byte %s messages, %.1f s after %.1f s warm-up, %u thread(s)\n",
      o.url.text.c_str(), o.connections, static_cast<unsigned long long>(s.refused), loop.c_str(), o.size,
      o.binary ? "binary" : "text", seconds, Seconds(o.warmup), o.threads);
  if (counting) {
    if (count_reached) {
      std::printf("count: %llu replies in %.3f s (first send after the warm-up to the last reply)\n",
                  static_cast<unsigned long long>(o.count), seconds);
    } else {
      std::printf("count: only %llu of %llu replies within the %.1f s limit (--duration)\n",
                  static_cast<unsigned long long>(s.messages), static_cast<unsigned long long>(o.count),
                  Seconds(o.duration));
    }
  }
  std::printf("throughput: %.0f msg/s, %.2f MB/s of echoed payload\n", messages_per_s, bytes_per_s / 1e6);
  std::printf("latency: %s\n", DescribeLatency(s.latency_ns).c_str());
  std::printf("%s\n", DescribeEchoFailures(s, /*unexpected_replies=*/true).c_str());

  const bool ok =
      s.errors == 0 && s.VerifyFailures() == 0 && s.dropped == 0 && s.refused == 0 && (!counting || count_reached);
  JsonLine json("echo");
  json.Add("url", o.url.text)
      .Add("connections", std::uint64_t{o.connections})
      .Add("loop", o.rate > 0 ? "open" : "closed")
      .Add("in_flight", std::uint64_t{o.in_flight})
      .Add("rate", o.rate)
      .Add("size", std::uint64_t{o.size})
      .Add("binary", o.binary)
      .Add("threads", std::uint64_t{o.threads})
      .Add("warmup_s", Seconds(o.warmup))
      .Add("duration_s", seconds)
      .Add("count", o.count)
      .Add("count_reached", count_reached)
      .Add("messages", s.messages)
      .Add("messages_per_s", messages_per_s)
      .Add("bytes_per_s", bytes_per_s);
  AddLatency(json, "latency_", s.latency_ns);
  AddEchoFailures(json, s, /*unexpected_replies=*/true);
  return PrintResult(json, ok);
}

}  // namespace wsbench
