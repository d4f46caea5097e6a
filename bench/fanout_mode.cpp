// wsbench fanout: N receiver connections, M broadcasts to all of them, and
// how fast and how completely they arrive.
//
// The receivers open at --rate (each from its own source address, as in
// hold), round robin over the --url given (several: the nodes of a cluster,
// the admin trigger calling one of them). Once all are up and the trigger
// (broadcast_trigger.hpp: Admin.Broadcast, which first waits until the
// gateway lists them all as ACTIVE, or a /_broadcast control connection) is
// ready, it sends the broadcasts. A broadcast is complete when every
// receiver has it intact; broadcast `seq` is triggered only once broadcast
// seq - W has completed (a window of W = --in-flight). Its completion time
// runs from the trigger to the last receiver getting it. The run ends when
// all are complete, or when none has completed for --drain: whatever is
// still missing then is dropped.
//
// Every payload carries its broadcast number (payload.hpp), and each
// receiver checks that every broadcast arrives once, intact, and (with the
// ws trigger, whose one connection orders them) in order. Admin.Broadcast
// calls that are in flight together may reach the gateway's event loops in
// either order, so with the admin trigger a receiver accepts any order
// inside the window.

#include <atomic>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <cstdio>
#include <limits>
#include <memory>
#include <string>

#include "broadcast_trigger.hpp"
#include "held_connection.hpp"
#include "modes.hpp"
#include "paced_opener.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;

constexpr std::uint64_t kBroadcastTag = 0xfa17;  // the header tag of every broadcast payload
constexpr std::uint64_t kNoBroadcast = std::numeric_limits<std::uint64_t>::max();

std::uint64_t Nanos(Clock::duration d) {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(d).count());
}

// A broadcast in the window; slot seq % W. Receivers on any thread read
// `seq` and count `remaining` down; the rest belongs to the run's strand.
struct Slot {
  std::atomic<std::uint64_t> seq{kNoBroadcast};
  std::atomic<std::uint64_t> remaining{0};  // receivers that do not have it yet
  Clock::time_point triggered_at;
  bool complete = false;
};

class FanoutReceiver;

// State of one run. The opener, the trigger, the window and the watchdog
// live on `strand`; each receiver on its own.
class FanoutRun {
 public:
  FanoutRun(const FanoutOptions& options, net::io_context& ioc)
      : options(options),
        ioc(ioc),
        strand(net::make_strand(ioc)),
        opener(strand),
        slots(options.in_flight),
        timer_(strand) {}

  void Start();
  // A receiver is up or was refused (any thread).
  void ReceiverSettled();
  // Whether `seq` has been triggered and its slot not reused (any thread).
  bool Triggered(std::uint64_t seq) const {
    return slots[seq % slots.size()].seq.load(std::memory_order_acquire) == seq;
  }
  // A receiver has broadcast `seq` intact since `at` (any thread).
  void Delivered(std::uint64_t seq, Clock::time_point at);

  const FanoutOptions& options;
  net::io_context& ioc;
  RunStrand strand;
  PacedOpener opener;
  std::vector<std::shared_ptr<FanoutReceiver>> receivers;
  std::shared_ptr<BroadcastTrigger> trigger;
  std::atomic<std::uint64_t> unsettled{0};  // receivers neither up nor refused yet
  std::atomic<std::uint64_t> up{0};
  FailureLog failures;
  std::vector<Slot> slots;

  // On `strand`, read after the run.
  std::uint64_t receivers_up = 0;  // when the broadcasts began
  std::uint64_t triggered = 0;     // broadcasts sent to the trigger
  std::uint64_t completed = 0;
  std::uint64_t lowest_incomplete = 0;
  std::uint64_t trigger_errors = 0;
  std::uint64_t short_queued = 0;  // admin: broadcasts queued for fewer connections than were up
  Clock::time_point all_up_at, first_trigger, last_delivery;
  Histogram completion_ns;
  std::string stop_reason;

 private:
  void AllSettled();
  void Pump();
  void Fire(std::uint64_t seq);
  void OnSent(const TriggerResult& result);
  void Complete(std::uint64_t seq, Clock::time_point at);
  void ArmWatchdog();
  void Finish(std::string reason);

  net::steady_timer timer_;  // the watchdog
  bool finished_ = false;
};

class FanoutReceiver : public HeldConnection {
 public:
  FanoutReceiver(FanoutRun& run, std::uint64_t index)
      : HeldConnection(run.ioc, run.options.urls[index % run.options.urls.size()], index, /*permessage_deflate=*/false,
                       "lost"),
        run_(run) {}

 private:
  void Upgraded() override { run_.up.fetch_add(1); }

  void Settled() override { run_.ReceiverSettled(); }

  // Checks one delivery and, when it is a first and intact copy of a
  // triggered broadcast, counts it.
  void Received(std::string_view got, bool text) override {
    const auto now = Clock::now();
    auto& stats = ThreadStats();
    const auto header = ParseHeader(got);
    if (!header || header->tag != kBroadcastTag || !text || !Intact(got, header->seq)) {
      ++stats.verify_corrupt;
      return Report("a broadcast arrived altered (" + std::to_string(got.size()) + " bytes, " +
                    (text ? "text" : "binary") + ")");
    }
    const std::uint64_t seq = header->seq;
    // Every triggered broadcast is below the lowest incomplete one plus W,
    // and base_ is at least that lowest incomplete one (this receiver has
    // all the complete ones), so anything legitimate is below base_ + 64.
    if (seq < base_ || (seq - base_ < 64 && (seen_ >> (seq - base_)) & 1)) {
      ++stats.verify_unexpected;
      return Report("broadcast " + std::to_string(seq) + " arrived twice");
    }
    if (seq - base_ >= 64 || !run_.Triggered(seq)) {
      ++stats.verify_unexpected;
      return Report("broadcast " + std::to_string(seq) + " arrived but was never sent");
    }
    if (run_.options.trigger == FanoutOptions::Trigger::kWs && seq < next_) {
      // Counted as delivered all the same: it did arrive, intact.
      ++stats.verify_out_of_order;
      Report("broadcast " + std::to_string(seq) + " arrived after " + std::to_string(next_ - 1));
    }
    next_ = std::max(next_, seq + 1);
    seen_ |= std::uint64_t{1} << (seq - base_);
    while (seen_ & 1) {
      seen_ >>= 1;
      ++base_;
    }
    ++stats.messages;
    stats.bytes += got.size();
    run_.Delivered(seq, now);
  }

  bool Intact(std::string_view got, std::uint64_t seq) const {
    thread_local std::string expected;
    FillPayload(expected, run_.options.size, seq, kBroadcastTag, false);
    return got == expected;
  }

  void Report(const std::string& message) override {
    run_.failures.Report("receiver " + std::to_string(index()) + ": " + message);
  }

  FanoutRun& run_;
  std::uint64_t base_ = 0;  // the lowest broadcast not received yet
  std::uint64_t seen_ = 0;  // bit i: broadcast base_ + i received
  std::uint64_t next_ = 0;  // one past the highest broadcast received
};

void FanoutRun::Start() {
  net::post(strand, [this] {
    opener.Start(options.connections, options.rate, [this](std::uint64_t index) { receivers[index]->Open(); });
  });
}

void FanoutRun::ReceiverSettled() {
  if (unsettled.fetch_sub(1) != 1) return;
  net::post(strand, [this] { AllSettled(); });
}

void FanoutRun::AllSettled() {
  all_up_at = Clock::now();
  receivers_up = up.load();
  if (receivers_up == 0) return Finish("no receiver connected");
  // Start has its own time limits; the watchdog counts from the first
  // trigger.
  trigger->Start(receivers_up, [this](const TriggerResult& result) {
    if (finished_) return;
    if (!result.error.empty()) {
      ++trigger_errors;
      failures.Report(result.error);
      return Finish("the trigger failed");
    }
    ArmWatchdog();
    Pump();
  });
}

void FanoutRun::Pump() {
  while (triggered < options.messages && triggered < lowest_incomplete + slots.size()) Fire(triggered++);
}

void FanoutRun::Fire(std::uint64_t seq) {
  Slot& slot = slots[seq % slots.size()];
  slot.triggered_at = Clock::now();
  slot.complete = false;
  slot.remaining.store(receivers_up, std::memory_order_relaxed);
  slot.seq.store(seq, std::memory_order_release);  // publishes `remaining` to the receivers
  if (seq == 0) first_trigger = slot.triggered_at;
  auto payload = std::make_shared<std::string>();
  FillPayload(*payload, options.size, seq, kBroadcastTag, false);
  trigger->Send(std::move(payload), [this](const TriggerResult& result) { OnSent(result); });
}

void FanoutRun::OnSent(const TriggerResult& result) {
  if (finished_) return;
  if (!result.error.empty()) {
    ++trigger_errors;
    failures.Report(result.error);
    return Finish("the trigger failed");
  }
  if (result.queued && *result.queued < receivers_up) {
    if (short_queued++ == 0) {
      failures.Report("Admin.Broadcast queued a broadcast for " + std::to_string(*result.queued) + " connections, " +
                      std::to_string(receivers_up) + " receivers are up");
    }
  }
}

void FanoutRun::Delivered(std::uint64_t seq, Clock::time_point at) {
  Slot& slot = slots[seq % slots.size()];
  if (slot.remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  net::post(strand, [this, seq, at] { Complete(seq, at); });
}

void FanoutRun::Complete(std::uint64_t seq, Clock::time_point at) {
  Slot& slot = slots[seq % slots.size()];
  slot.complete = true;
  ++completed;
  completion_ns.Record(Nanos(at - slot.triggered_at));
  last_delivery = std::max(last_delivery, at);
  while (lowest_incomplete < triggered && slots[lowest_incomplete % slots.size()].complete) ++lowest_incomplete;
  if (finished_) return;
  if (completed == options.messages) return Finish("");
  ArmWatchdog();
  Pump();
}

// Ends the run when no broadcast completes for --drain. A new expiry
// cancels the previous wait.
void FanoutRun::ArmWatchdog() {
  timer_.expires_after(options.drain);
  timer_.async_wait([this](beast::error_code ec) {
    if (ec || finished_) return;
    char why[96];
    std::snprintf(why, sizeof why, "no broadcast completed for %.3f s (--drain)", Seconds(options.drain));
    Finish(why);
  });
}

void FanoutRun::Finish(std::string reason) {
  if (finished_) return;
  finished_ = true;
  stop_reason = std::move(reason);
  timer_.cancel();
  if (trigger) trigger->Stop();
  for (auto& receiver : receivers) receiver->Close();
}

}  // namespace

int RunFanout(const FanoutOptions& o) {
  Runner runner(o.threads);
  FanoutRun run(o, runner.ioc());
  const bool admin = o.trigger == FanoutOptions::Trigger::kAdmin;
  run.trigger = admin ? MakeAdminTrigger(run.strand, o.admin_target, o.path_prefix)
                      : MakeWsTrigger(run.strand, o.urls.front(), o.connections);  // the next source address
  run.unsettled = o.connections;
  run.receivers.reserve(o.connections);
  for (std::uint64_t i = 0; i < o.connections; ++i) run.receivers.push_back(std::make_shared<FanoutReceiver>(run, i));
  run.Start();
  runner.Run();
  run.receivers.clear();
  run.trigger.reset();

  const Stats s = runner.Merged();
  std::uint64_t dropped = 0;
  for (const Slot& slot : run.slots) {
    if (slot.seq.load() != kNoBroadcast) dropped += slot.remaining.load();
  }
  const std::uint64_t not_sent = o.messages - run.triggered;
  const std::uint64_t errors = s.errors + run.trigger_errors;
  const double seconds = run.completed > 0 ? Seconds(run.last_delivery - run.first_trigger) : 0;
  const double deliveries_per_s = seconds > 0 ? static_cast<double>(s.messages) / seconds : 0;
  const double broadcasts_per_s = seconds > 0 ? static_cast<double>(run.completed) / seconds : 0;
  const std::uint64_t last_source = o.connections - 1;
  const std::string trigger_text = admin ? "admin " + o.admin_target : "ws /_broadcast";
  std::string urls;
  for (const Url& url : o.urls) urls += (urls.empty() ? "" : " ") + url.text;

  std::printf(
      "fanout %s: %llu receivers at %.0f/s from 127.0.0.1 .. 127.0.%llu.%llu, %llu broadcasts of %zu bytes, "
      "%u in flight, trigger %s, %u thread(s)\n",
      urls.c_str(), static_cast<unsigned long long>(o.connections), o.rate,
      static_cast<unsigned long long>(last_source / 250 % 256), static_cast<unsigned long long>(1 + last_source % 250),
      static_cast<unsigned long long>(o.messages), o.size, o.in_flight, trigger_text.c_str(), o.threads);
  std::printf("receivers: %llu up (refused %llu) in %.2f s\n", static_cast<unsigned long long>(run.receivers_up),
              static_cast<unsigned long long>(s.refused), Seconds(run.all_up_at - run.opener.start()));
  std::printf("broadcasts: %llu triggered, %llu complete in %.3f s: %.0f broadcasts/s\n",
              static_cast<unsigned long long>(run.triggered), static_cast<unsigned long long>(run.completed), seconds,
              broadcasts_per_s);
  std::printf("deliveries: %llu of %llu: %.0f deliveries/s\n", static_cast<unsigned long long>(s.messages),
              static_cast<unsigned long long>(run.receivers_up * o.messages), deliveries_per_s);
  std::printf("completion (trigger to last receiver): %s\n", DescribeLatency(run.completion_ns).c_str());
  if (!run.stop_reason.empty()) std::printf("stopped early: %s\n", run.stop_reason.c_str());
  std::printf(
      "errors: %llu (trigger %llu), verification failures: %llu (corrupt %llu, out of order %llu, duplicate or "
      "never sent %llu), dropped: %llu, not sent: %llu, refused: %llu\n",
      static_cast<unsigned long long>(errors), static_cast<unsigned long long>(run.trigger_errors),
      static_cast<unsigned long long>(s.VerifyFailures()), static_cast<unsigned long long>(s.verify_corrupt),
      static_cast<unsigned long long>(s.verify_out_of_order), static_cast<unsigned long long>(s.verify_unexpected),
      static_cast<unsigned long long>(dropped), static_cast<unsigned long long>(not_sent),
      static_cast<unsigned long long>(s.refused));

  const bool ok = errors == 0 && s.refused == 0 && dropped == 0 && not_sent == 0 && s.VerifyFailures() == 0 &&
                  run.completed == o.messages;
  JsonLine json("fanout");
  json.Add("url", urls)
      .Add("urls", std::uint64_t{o.urls.size()})
      .Add("trigger", admin ? "admin" : "ws")
      .Add("connections", o.connections)
      .Add("established", run.receivers_up)
      .Add("rate", o.rate)
      .Add("messages", o.messages)
      .Add("size", std::uint64_t{o.size})
      .Add("in_flight", std::uint64_t{o.in_flight})
      .Add("threads", std::uint64_t{o.threads})
      .Add("connect_s", Seconds(run.all_up_at - run.opener.start()))
      .Add("triggered", run.triggered)
      .Add("completed", run.completed)
      .Add("deliveries", s.messages)
      .Add("duration_s", seconds)
      .Add("deliveries_per_sec", deliveries_per_s)
      .Add("broadcasts_per_sec", broadcasts_per_s);
  AddLatency(json, "completion_", run.completion_ns);
  json.Add("errors", errors)
      .Add("trigger_errors", run.trigger_errors)
      .Add("refused", s.refused)
      .Add("dropped", dropped)
      .Add("not_sent", not_sent)
      .Add("verify_failures", s.VerifyFailures())
      .Add("verify_corrupt", s.verify_corrupt)
      .Add("verify_out_of_order", s.verify_out_of_order)
      .Add("verify_unexpected", s.verify_unexpected);
  if (admin) json.Add("admin_short_queued", run.short_queued);
  return PrintResult(json, ok);
}

}  // namespace wsbench
