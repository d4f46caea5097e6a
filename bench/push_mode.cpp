// wsbench push: Admin.Push calls, closed loop, to receivers on one gateway,
// made on that gateway's admin API or on another node of its cluster, which
// routes each call to the owner (issue 17): calls per second and the latency
// of a call.
//
// The receivers open PREFIX<i> (PREFIX: the path of --url, ending in '/') at
// --rate, each from a loopback source address of its own (as in hold and
// fanout). Once all are up, the run lists the ACTIVE connections under
// PREFIX on --ids-from until it has every receiver's id (the path says
// which receiver it is). Then it keeps --in-flight Admin.Push calls
// outstanding on --admin for warm-up + duration. Call s carries payload
// number s and names K = --ids-per-call receivers, the ones at positions
// s*K .. s*K+K-1 of a round robin over the N receivers (modulo N). The calls
// that complete inside the measured window count, with their latency (from
// the start of the call to its answer). Then the run waits, at most --drain,
// for the calls still in flight and for every push they queued to arrive,
// and closes the receivers.
//
// Verification: every call must succeed, with each id's result OK and the
// frame queued for all K. Each receiver checks every push it gets: intact
// (payload.hpp), sent (its number below the calls started), meant for it
// (the receiver sits at one of that call's positions) and new. The pushes
// meant for one receiver are its 0th, 1st, 2nd, ... (from the position); it
// keeps which it has, so a second copy is found whatever the order, and
// concurrent calls may deliver out of that order. Every push queued must
// arrive: the run ends with as many intact first copies as the calls
// queued, or the difference is dropped.
//
// The receivers run on their own strands, the run's state (listing, calls,
// timers) on the run's strand, where the admin clients post their answers.

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <charconv>
#include <cstdio>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "admin_client.hpp"
#include "held_connection.hpp"
#include "modes.hpp"
#include "paced_opener.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace v1 = ::wsgateway::v1;

constexpr std::uint64_t kPushTag = 0x9054;  // the header tag of every pushed payload
// How long the run lists the receivers until it has every id.
constexpr auto kListTimeout = std::chrono::seconds(20);
// Paces the listings while it waits; the condition decides, not the pause.
constexpr auto kListPause = std::chrono::milliseconds(20);
constexpr std::uint32_t kListPageSize = 1000;  // the API's maximum
// How often the end of the run checks whether everything owed is in.
constexpr auto kDrainPoll = std::chrono::milliseconds(5);

std::uint64_t Nanos(Clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

class PushReceiver;

class PushRun {
 public:
  PushRun(const PushOptions& options, net::io_context& ioc)
      : options(options),
        ioc(ioc),
        strand(net::make_strand(ioc)),
        opener(strand),
        prefix(options.url.target),
        lister_(strand, options.ids_from_target),
        admin_(strand, options.admin_target),
        timer_(strand) {
    if (prefix.empty() || prefix.back() != '/') prefix += '/';
    ids.resize(options.connections);
  }

  void Start();
  // A receiver is up or was refused (any thread).
  void ReceiverSettled();
  // Whether call `seq` has been started (any thread).
  bool Sent(std::uint64_t seq) const { return seq < started_.load(std::memory_order_acquire); }
  // Which of receiver `index`'s pushes call `seq` is, or nullopt when the
  // call did not name it (any thread).
  std::optional<std::uint64_t> Ordinal(std::uint64_t index, std::uint64_t seq) const {
    const std::uint64_t n = options.connections;
    const std::uint64_t k = options.ids_per_call;
    const std::uint64_t offset = (index + n - seq * k % n) % n;  // its place among the call's ids
    if (offset >= k) return std::nullopt;
    return (seq * k + offset - index) / n;  // that position is index + ordinal * n
  }
  // A receiver has an intact first copy of a push (any thread).
  void Delivered() { delivered_.fetch_add(1, std::memory_order_relaxed); }

  const PushOptions& options;
  net::io_context& ioc;
  RunStrand strand;
  PacedOpener opener;
  std::string prefix;
  std::vector<std::shared_ptr<PushReceiver>> receivers;
  std::atomic<std::uint64_t> unsettled{0};  // receivers neither up nor refused yet
  std::atomic<std::uint64_t> up{0};
  FailureLog failures;

  // On `strand`, read after the run.
  std::vector<std::string> ids;  // receiver index -> connection id
  std::uint64_t listed = 0;      // receivers whose id is known
  std::uint64_t receivers_up = 0;
  std::uint64_t calls_ok = 0;
  std::uint64_t calls_failed = 0;
  std::uint64_t id_failures = 0;  // per-id results other than OK in calls that succeeded
  std::uint64_t queued = 0;       // pushes the calls queued: what must arrive
  std::uint64_t measured = 0;     // calls answered inside the measured window
  Histogram latency_ns;           // of those
  Clock::time_point all_up_at, ids_at, measure_start, measure_end, stopped_at, finished_at;
  std::string stop_reason;
  std::uint64_t started() const { return started_.load(); }
  std::uint64_t delivered() const { return delivered_.load(); }

 private:
  void AllSettled();
  void ListPage(const std::string& page_token);
  void OnListed(const grpc::Status& status, const v1::ListConnectionsResponse& response);
  void BeginPushing();
  void Pump();
  void Fire();
  void OnAnswer(std::uint64_t seq, Clock::time_point at, const grpc::Status& status, const v1::PushResponse& response);
  void StopCalls();
  void Drain();
  void Finish(std::string reason);

  AdminClient lister_;
  AdminClient admin_;
  net::steady_timer timer_;
  Clock::time_point list_deadline_, drain_deadline_;
  std::atomic<std::uint64_t> started_{0};
  std::atomic<std::uint64_t> delivered_{0};
  unsigned outstanding_ = 0;
  bool stopping_ = false;
  bool finished_ = false;
};

// The URL of a receiver stays with it (HeldConnection keeps a reference);
// a base class so that it is built before HeldConnection.
struct UrlHolder {
  Url url;
};

class PushReceiver : private UrlHolder, public HeldConnection {
 public:
  PushReceiver(PushRun& run, std::uint64_t index, Url url)
      : UrlHolder{std::move(url)},
        HeldConnection(run.ioc, UrlHolder::url, index, /*permessage_deflate=*/false, "lost"),
        run_(run) {}

 private:
  void Upgraded() override { run_.up.fetch_add(1); }

  void Settled() override { run_.ReceiverSettled(); }

  void Received(std::string_view got, bool text) override {
    auto& stats = ThreadStats();
    const auto header = ParseHeader(got);
    if (!header || header->tag != kPushTag || !text || !Intact(got, header->seq)) {
      ++stats.verify_corrupt;
      return Report("a push arrived altered (" + std::to_string(got.size()) + " bytes, " + (text ? "text" : "binary") +
                    ")");
    }
    const std::uint64_t seq = header->seq;
    if (!run_.Sent(seq)) {
      ++stats.verify_unexpected;
      return Report("push " + std::to_string(seq) + " arrived but was never sent");
    }
    const auto ordinal = run_.Ordinal(index(), seq);
    if (!ordinal) {
      ++stats.verify_wrong_connection;
      return Report("push " + std::to_string(seq) + " arrived, but its call did not name this receiver");
    }
    if (*ordinal < next_ || ahead_.contains(*ordinal)) {
      ++stats.verify_unexpected;
      return Report("push " + std::to_string(seq) + " arrived twice");
    }
    if (*ordinal == next_) {
      ++next_;
      while (!ahead_.empty() && *ahead_.begin() == next_) {
        ahead_.erase(ahead_.begin());
        ++next_;
      }
    } else {
      ahead_.insert(*ordinal);  // an earlier call's push is still on its way
    }
    ++stats.messages;
    stats.bytes += got.size();
    run_.Delivered();
  }

  bool Intact(std::string_view got, std::uint64_t seq) const {
    thread_local std::string expected;
    FillPayload(expected, run_.options.size, seq, kPushTag, false);
    return got == expected;
  }

  void Report(const std::string& message) override {
    run_.failures.Report("receiver " + std::to_string(index()) + ": " + message);
  }

  PushRun& run_;
  std::uint64_t next_ = 0;         // the lowest of its pushes not received yet
  std::set<std::uint64_t> ahead_;  // received, above next_
};

void PushRun::Start() {
  net::post(strand, [this] {
    opener.Start(options.connections, options.rate, [this](std::uint64_t index) { receivers[index]->Open(); });
  });
}

void PushRun::ReceiverSettled() {
  if (unsettled.fetch_sub(1) != 1) return;
  net::post(strand, [this] { AllSettled(); });
}

void PushRun::AllSettled() {
  all_up_at = Clock::now();
  receivers_up = up.load();
  if (receivers_up < options.connections) {
    return Finish(std::to_string(options.connections - receivers_up) + " receiver(s) did not connect");
  }
  list_deadline_ = all_up_at + kListTimeout;
  ListPage("");
}

// ---- Learning the ids, on the strand ----

void PushRun::ListPage(const std::string& page_token) {
  v1::ListConnectionsRequest request;
  request.set_page_size(kListPageSize);
  request.set_page_token(page_token);
  request.mutable_filter()->set_state(v1::CONNECTION_STATE_ACTIVE);
  request.mutable_filter()->set_path_prefix(prefix);
  lister_.ListConnections(
      std::move(request),
      [this](const grpc::Status& status, v1::ListConnectionsResponse& response) { OnListed(status, response); });
}

void PushRun::OnListed(const grpc::Status& status, const v1::ListConnectionsResponse& response) {
  if (finished_) return;
  if (!status.ok()) {
    failures.Report(AdminClient::Describe("Admin.ListConnections", status));
    ++calls_failed;
    return Finish("the listing of the receivers failed");
  }
  for (const auto& info : response.connections()) {
    const std::string& path = info.path();
    if (path.size() <= prefix.size() || path.compare(0, prefix.size(), prefix) != 0) continue;
    std::uint64_t index = 0;
    const char* first = path.data() + prefix.size();
    const char* last = path.data() + path.size();
    const auto [end, ec] = std::from_chars(first, last, index);
    if (ec != std::errc{} || end != last || index >= ids.size() || !ids[index].empty()) continue;
    ids[index] = info.connection_id();
    ++listed;
  }
  if (!response.next_page_token().empty()) return ListPage(response.next_page_token());
  if (listed == ids.size()) return BeginPushing();
  if (Clock::now() >= list_deadline_) {
    return Finish("the gateway lists " + std::to_string(listed) + " of the " + std::to_string(ids.size()) +
                  " receivers under " + prefix + " as ACTIVE");
  }
  timer_.expires_after(kListPause);
  timer_.async_wait([this](beast::error_code ec) {
    if (!ec && !finished_) ListPage("");
  });
}

// ---- The calls, on the strand ----

void PushRun::BeginPushing() {
  ids_at = Clock::now();
  measure_start = ids_at + options.warmup;
  measure_end = measure_start + options.duration;
  timer_.expires_at(measure_end);
  timer_.async_wait([this](beast::error_code ec) {
    if (!ec) StopCalls();
  });
  Pump();
}

void PushRun::Pump() {
  while (!stopping_ && outstanding_ < options.in_flight) Fire();
}

void PushRun::Fire() {
  const std::uint64_t seq = started_.load(std::memory_order_relaxed);
  const std::uint64_t n = options.connections;
  const std::uint64_t first = seq * options.ids_per_call % n;
  v1::PushRequest request;
  for (std::uint64_t j = 0; j < options.ids_per_call; ++j) request.add_connection_ids(ids[(first + j) % n]);
  request.mutable_frame()->set_opcode(v1::OPCODE_TEXT);
  FillPayload(*request.mutable_frame()->mutable_payload(), options.size, seq, kPushTag, false);
  // Published before the call starts: a receiver may have it before the
  // answer comes back.
  started_.store(seq + 1, std::memory_order_release);
  ++outstanding_;
  const auto at = Clock::now();
  admin_.Push(std::move(request), [this, seq, at](const grpc::Status& status, v1::PushResponse& response) {
    OnAnswer(seq, at, status, response);
  });
}

void PushRun::OnAnswer(std::uint64_t seq, Clock::time_point at, const grpc::Status& status,
                       const v1::PushResponse& response) {
  const auto now = Clock::now();
  --outstanding_;
  if (finished_) return;
  if (!status.ok()) {
    ++calls_failed;
    failures.Report(AdminClient::Describe("Admin.Push", status) + " (call " + std::to_string(seq) + ")");
    return StopCalls();
  }
  ++calls_ok;
  queued += response.queued();
  bool complete = response.queued() == options.ids_per_call;
  for (const auto& result : response.results()) {
    if (result.code() == 0) continue;
    complete = false;
    ++id_failures;
    failures.Report("Admin.Push: " + result.connection_id() + ": " + std::to_string(result.code()) + " " +
                    result.message() + " (call " + std::to_string(seq) + ")");
  }
  if (!complete) {
    if (response.results().empty()) ++id_failures;
    failures.Report("Admin.Push queued call " + std::to_string(seq) + " for " + std::to_string(response.queued()) +
                    " of its " + std::to_string(options.ids_per_call) + " connections");
    return StopCalls();
  }
  if (now >= measure_start && now < measure_end) {
    ++measured;
    latency_ns.Record(Nanos(now - at));
  }
  if (stopping_) {
    if (outstanding_ == 0) Drain();
    return;
  }
  Pump();
}

// The window is over (or a call failed): no more calls; the ones in flight
// and the pushes owed have --drain to come in.
void PushRun::StopCalls() {
  if (stopping_) return;
  stopping_ = true;
  stopped_at = Clock::now();
  drain_deadline_ = stopped_at + options.drain;
  Drain();
}

void PushRun::Drain() {
  if (finished_) return;
  if (outstanding_ == 0 && delivered() >= queued) return Finish("");
  if (Clock::now() >= drain_deadline_) {
    char why[160];
    std::snprintf(why, sizeof why, "after %.3f s (--drain), %u call(s) unanswered and %llu push(es) not arrived",
                  Seconds(options.drain), outstanding_,
                  static_cast<unsigned long long>(queued > delivered() ? queued - delivered() : 0));
    return Finish(why);
  }
  timer_.expires_after(kDrainPoll);
  timer_.async_wait([this](beast::error_code ec) {
    if (!ec) Drain();
  });
}

void PushRun::Finish(std::string reason) {
  if (finished_) return;
  finished_ = true;
  finished_at = Clock::now();
  stop_reason = std::move(reason);
  timer_.cancel();
  lister_.CancelAll();
  admin_.CancelAll();
  for (auto& receiver : receivers) receiver->Close();
}

}  // namespace

int RunPush(const PushOptions& o) {
  Runner runner(o.threads);
  PushRun run(o, runner.ioc());
  run.unsettled = o.connections;
  run.receivers.reserve(o.connections);
  for (std::uint64_t i = 0; i < o.connections; ++i) {
    Url url = o.url;
    url.target = run.prefix + std::to_string(i);
    run.receivers.push_back(std::make_shared<PushReceiver>(run, i, std::move(url)));
  }
  run.Start();
  runner.Run();
  run.receivers.clear();

  const Stats s = runner.Merged();
  const bool pushed = run.ids_at != Clock::time_point{};
  const double seconds = Seconds(o.duration);
  const double calls_per_s = pushed ? static_cast<double>(run.measured) / seconds : 0;
  const double pushes_per_s = calls_per_s * o.ids_per_call;
  const std::uint64_t dropped = run.queued > s.messages ? run.queued - s.messages : 0;
  const std::uint64_t last_source = o.connections - 1;

  std::printf(
      "push %s: %llu receivers at %.0f/s from 127.0.0.1 .. 127.0.%llu.%llu; Admin.Push on %s (ids from %s), %u id(s) "
      "per call, %u call(s) in flight, %zu bytes, %.1f s after %.1f s warm-up, %u thread(s)\n",
      o.url.text.c_str(), static_cast<unsigned long long>(o.connections), o.rate,
      static_cast<unsigned long long>(last_source / 250 % 256), static_cast<unsigned long long>(1 + last_source % 250),
      o.admin_target.c_str(), o.ids_from_target.c_str(), o.ids_per_call, o.in_flight, o.size, seconds,
      Seconds(o.warmup), o.threads);
  std::printf("receivers: %llu up (refused %llu) in %.2f s, %llu ids listed in %.2f s\n",
              static_cast<unsigned long long>(run.receivers_up), static_cast<unsigned long long>(s.refused),
              Seconds(run.all_up_at - run.opener.start()), static_cast<unsigned long long>(run.listed),
              pushed ? Seconds(run.ids_at - run.all_up_at) : 0.0);
  std::printf("calls: %llu answered in the window: %.0f calls/s, %.0f pushes/s; %llu started in all\n",
              static_cast<unsigned long long>(run.measured), calls_per_s, pushes_per_s,
              static_cast<unsigned long long>(run.started()));
  std::printf("latency (call to answer): %s\n", DescribeLatency(run.latency_ns).c_str());
  std::printf("deliveries: %llu of %llu queued\n", static_cast<unsigned long long>(s.messages),
              static_cast<unsigned long long>(run.queued));
  if (!run.stop_reason.empty()) std::printf("stopped early: %s\n", run.stop_reason.c_str());
  std::printf(
      "errors: %llu (failed calls %llu, failed ids %llu), verification failures: %llu (corrupt %llu, wrong "
      "receiver %llu, duplicate or never sent %llu), dropped: %llu, refused: %llu\n",
      static_cast<unsigned long long>(s.errors + run.calls_failed + run.id_failures),
      static_cast<unsigned long long>(run.calls_failed), static_cast<unsigned long long>(run.id_failures),
      static_cast<unsigned long long>(s.VerifyFailures()), static_cast<unsigned long long>(s.verify_corrupt),
      static_cast<unsigned long long>(s.verify_wrong_connection), static_cast<unsigned long long>(s.verify_unexpected),
      static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(s.refused));

  const bool ok = s.errors == 0 && s.refused == 0 && run.calls_failed == 0 && run.id_failures == 0 &&
                  s.VerifyFailures() == 0 && dropped == 0 && run.stop_reason.empty() && run.measured > 0;
  JsonLine json("push");
  json.Add("url", o.url.text)
      .Add("admin", o.admin_target)
      .Add("ids_from", o.ids_from_target)
      .Add("connections", o.connections)
      .Add("established", run.receivers_up)
      .Add("rate", o.rate)
      .Add("in_flight", std::uint64_t{o.in_flight})
      .Add("ids_per_call", std::uint64_t{o.ids_per_call})
      .Add("size", std::uint64_t{o.size})
      .Add("threads", std::uint64_t{o.threads})
      .Add("connect_s", Seconds(run.all_up_at - run.opener.start()))
      .Add("warmup_s", Seconds(o.warmup))
      .Add("duration_s", seconds)
      .Add("calls", run.measured)
      .Add("calls_per_sec", calls_per_s)
      .Add("pushes_per_sec", pushes_per_s);
  AddLatency(json, "latency_", run.latency_ns);
  json.Add("calls_started", run.started())
      .Add("calls_ok", run.calls_ok)
      .Add("queued", run.queued)
      .Add("deliveries", s.messages)
      .Add("errors", s.errors + run.calls_failed + run.id_failures)
      .Add("call_errors", run.calls_failed)
      .Add("id_errors", run.id_failures)
      .Add("refused", s.refused)
      .Add("dropped", dropped)
      .Add("verify_failures", s.VerifyFailures())
      .Add("verify_corrupt", s.verify_corrupt)
      .Add("verify_wrong_connection", s.verify_wrong_connection)
      .Add("verify_unexpected", s.verify_unexpected);
  return PrintResult(json, ok);
}

}  // namespace wsbench
