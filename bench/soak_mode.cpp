// wsbench soak: many clients for a long time, every reply verified, and the
// server's memory and descriptors watched (issue 15; scripts/soak runs it
// against a gateway whose backend it restarts in the middle).
//
// Each of --clients client slots keeps one connection at a time to
// PREFIX<slot>/<generation> (a path of its own, so the admin listing maps
// connection ids to clients), with a random lifetime, offering
// permessage-deflate on a share of them. When a lifetime ends the connection
// drains (sends nothing more, waits for every reply owed to it) and closes,
// or closes at once with a close handshake, or just drops its socket; then
// the slot reconnects. A 503 refusal (the gateway without its backend) is
// counted and retried after a pause.
//
// Traffic, all verified byte for byte on arrival (payload.hpp headers; the
// tag says what a message is):
//   - echoes: each connection sends numbered messages of random size (16
//     bytes to --max-size, log-uniform), text or binary, at most
//     --max-in-flight outstanding; each must come back exactly once, in
//     order, with the same opcode and bytes;
//   - pushes (--admin): Admin.Push of numbered messages to a random
//     connection, one in flight per connection, to connections the admin
//     listing named and that have had an echo (so are ACTIVE); each must
//     arrive once, in order, unless the call failed because the connection
//     was already closing;
//   - broadcasts (--admin): Admin.Broadcast under the prefix, numbered, one
//     in flight at a time. A connection receives them in order without gaps,
//     and every broadcast started after its first echo arrived and before
//     it began to drain must arrive.
// Anything owed and not there within --reply-timeout is lost. A connection
// that closes without draining abandons what it had in flight (counted, not
// lost).
//
// Every second the server's (--pid) VmRSS and open descriptors are sampled
// and every --report-interval a line is printed. SIGUSR1 announces a backend
// restart (scripts/soak sends it). At --duration every connection drains and
// closes; then the server's descriptors must come back to within
// kDescriptorMargin of what they were before the first client connected.
// Growth rule, over the samples from the later of 25% of the run and 10% of
// the run after the last restart, to the end of the load: split them in
// thirds; growth fails the run when the last third's minimum passes the
// first third's maximum by more than --rss-growth (VmRSS) or kDescriptorMargin
// plus 5% of the clients (descriptors). Minimum against maximum, so noise
// and the churn of connections do not trip it; steady growth over a third
// of the window does.
//
// Everything runs on one thread (each connection on its strand, the run's
// timers and the admin answers on the run's), so the state they share (the
// clients, the broadcasts, the counters) needs no lock: one thread touches
// it.

#include <signal.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <cmath>
#include <cstdio>
#include <deque>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "admin_client.hpp"
#include "held_connection.hpp"
#include "modes.hpp"
#include "paced_opener.hpp"
#include "stream_timeouts.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace v1 = ::wsgateway::v1;
using namespace std::chrono_literals;

constexpr std::uint64_t kPushTag = 0xf0f0;
constexpr std::uint64_t kBroadcastTag = 0xfa17;
constexpr std::size_t kMaxAdminPayload = 4096;  // pushes and broadcasts: 16 bytes to this
constexpr auto kSampleInterval = 1s;
constexpr auto kListInterval = 1s;
constexpr auto kDrainTick = 200ms;
constexpr std::uint32_t kListPageSize = 1000;
constexpr std::uint64_t kKeptBroadcasts = 100000;  // records kept for checking late arrivals
constexpr std::uint64_t kDescriptorMargin = 16;
constexpr auto kDescriptorWait = 30s;  // for the server to close its side after the last client

double Ms(Clock::duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

// A message sent and not yet received back.
struct Sent {
  std::uint64_t seq;
  std::uint32_t size;
  bool binary;
  Clock::time_point at;
};

struct BroadcastRecord {
  std::uint32_t size;
  bool binary;
  std::optional<Clock::time_point> acked_at;
};

struct Counters {
  std::uint64_t attempts = 0, opened = 0, refused_503 = 0, refused = 0;
  std::uint64_t drained = 0, closed = 0, aborted = 0, lost_connections = 0;
  std::uint64_t sent = 0, echoed = 0, echoes_abandoned = 0;
  std::uint64_t pushes = 0, pushes_queued = 0, pushes_verified = 0, pushes_missed_close = 0, pushes_abandoned = 0;
  std::uint64_t broadcasts = 0, broadcasts_queued = 0, broadcast_deliveries = 0;
  std::uint64_t lost = 0, duplicated = 0, reordered = 0, corrupt = 0, unexpected = 0, errors = 0;

  std::uint64_t Failures() const { return lost + duplicated + reordered + corrupt + unexpected + errors; }
};

struct Sample {
  Clock::time_point at;
  std::optional<std::uint64_t> rss_kib;
  std::optional<std::uint64_t> fds;
  std::uint64_t connected;
};

class SoakConnection;

// One client slot: a connection at a time, then the next.
struct SoakClient {
  SoakClient(std::uint64_t index, const RunStrand& strand) : index(index), retry(strand) {}
  const std::uint64_t index;
  std::uint64_t generation = 0;
  std::shared_ptr<SoakConnection> connection;  // the current one
  net::steady_timer retry;
};

class SoakRun {
 public:
  SoakRun(const SoakOptions& options, net::io_context& ioc);

  void Start();
  // A connection is over (refused or ended); the slot reconnects after
  // `pause` unless the run is stopping.
  void ConnectionGone(SoakClient& client, Clock::duration pause);
  // A connection failure or verification failure: counted in `counter`,
  // the first few printed.
  void Fail(std::uint64_t& counter, std::uint64_t amount, const std::string& message);
  const BroadcastRecord* FindBroadcast(std::uint64_t seq) const;
  std::size_t RandomSize(std::size_t max);
  double Uniform() { return std::uniform_real_distribution<double>(0, 1)(rng); }
  std::uint64_t Pick(std::uint64_t n) { return std::uniform_int_distribution<std::uint64_t>(0, n - 1)(rng); }
  Clock::duration Between(Clock::duration low, Clock::duration high);

  const SoakOptions& options;
  net::io_context& ioc;
  RunStrand strand;
  std::mt19937_64 rng;
  Counters c;
  FailureLog failures;
  std::string prefix;  // every client path starts with it
  std::vector<std::unique_ptr<SoakClient>> clients;
  std::unique_ptr<AdminClient> admin;
  std::map<std::uint64_t, BroadcastRecord> broadcasts;
  std::optional<std::uint64_t> last_broadcast_started;
  std::uint64_t connected = 0;  // upgraded and not yet ended
  bool stopping = false;

  // Read after the run.
  Clock::time_point started_at, stopped_at;
  std::vector<Sample> samples;
  std::vector<Clock::time_point> restarts;
  std::optional<std::uint64_t> baseline_fds, baseline_rss_kib, final_fds;
  bool interrupted = false;
  bool stuck = false;  // connections that did not end in time after the stop

 private:
  void OpenNext(SoakClient& client);
  void PushTick();
  void BroadcastTick();
  void ListTick();
  void ListPage(const std::string& token);
  void SampleTick();
  void Print(const Sample& s);
  void WaitForSignal();
  void Stop();
  void StopWatchdog();
  void Finish();
  void CheckDescriptors();

  PacedOpener opener_;
  net::steady_timer push_timer_, broadcast_timer_, list_timer_, sample_timer_, end_timer_, watchdog_;
  net::signal_set signals_;
  std::uint64_t live_ = 0;  // connections opened and not yet gone
  std::uint64_t next_broadcast_ = 0;
  bool broadcast_in_flight_ = false;
  bool listing_ = false;
  bool finished_ = false;
  bool sampling_done_ = false;
  Clock::time_point last_print_, descriptor_deadline_;
};

// The URL of a connection stays with it (HeldConnection keeps a reference);
// a base class so that it is built before HeldConnection.
struct UrlHolder {
  Url url;
};

class SoakConnection : private UrlHolder, public HeldConnection {
 public:
  SoakConnection(SoakRun& run, SoakClient& client, Url url, bool deflate)
      : UrlHolder{std::move(url)},
        HeldConnection(run.ioc, UrlHolder::url, client.index, deflate, "lost"),
        run_(run),
        client_(client),
        generation_(client.generation),
        tag_(client.index & 0xffff),
        timer_(executor()) {}

  std::uint64_t generation() const { return generation_; }
  bool connected() const { return phase_ == Phase::kUp || phase_ == Phase::kDraining; }
  bool CanPush() const { return phase_ == Phase::kUp && got_echo_ && !connection_id_.empty() && !push_in_flight_; }
  void SetConnectionId(const std::string& id) { connection_id_ = id; }

  void StartPush();
  // The run is ending: drain and close (on the connection's strand).
  void Finish() {
    net::post(executor(), [self = std::static_pointer_cast<SoakConnection>(shared_from_this())] {
      if (self->phase_ == Phase::kUp) self->BeginClose(CloseStyle::kDrain);
    });
  }

 private:
  enum class Phase { kOpening, kUp, kDraining, kClosing, kEnded };
  enum class CloseStyle { kDrain, kClose, kAbort };

  void Upgraded() override;
  void Settled() override;
  void Refused(const std::string& reason, unsigned http_status) override;
  void Ended() override;
  void Report(const std::string& message) override { Fail(run_.c.errors, 1, message); }
  void Received(std::string_view got, bool text) override;

  void Fail(std::uint64_t& counter, std::uint64_t amount, const std::string& message) {
    run_.Fail(counter, amount,
              "client " + std::to_string(client_.index) + "/" + std::to_string(generation_) + ": " + message);
  }
  void ScheduleTick(Clock::duration after);
  void Tick();
  void SendOne();
  void CheckTimeouts(Clock::time_point now);
  void BeginClose(CloseStyle style);
  bool BroadcastsComplete() const;
  void CheckDrained();
  void DrainTimedOut();
  void OnEcho(std::string_view got, bool text, std::uint64_t seq);
  void Consume(std::deque<Sent>& owed, const char* what, std::uint64_t next, std::uint64_t tag, std::string_view got,
               bool text, std::uint64_t seq, std::uint64_t& verified);
  void OnPush(std::string_view got, bool text, std::uint64_t seq);
  void OnPushed(const grpc::Status& status, std::uint64_t seq);
  void OnBroadcast(std::string_view got, bool text, std::uint64_t seq);
  bool Matches(std::string_view got, bool text, std::uint64_t seq, std::uint32_t size, bool binary, std::uint64_t tag);
  std::shared_ptr<SoakConnection> self() { return std::static_pointer_cast<SoakConnection>(shared_from_this()); }

  SoakRun& run_;
  SoakClient& client_;
  const std::uint64_t generation_;
  const std::uint64_t tag_;
  net::steady_timer timer_;
  Phase phase_ = Phase::kOpening;
  bool busy_ = false;  // refused with 503
  CloseStyle style_ = CloseStyle::kDrain;
  Clock::time_point close_at_, drain_deadline_;
  std::string scratch_;

  std::uint64_t next_seq_ = 0;
  std::deque<Sent> echoes_;  // sent, not yet echoed
  bool got_echo_ = false;

  std::string connection_id_;  // from the admin listing
  std::uint64_t next_push_ = 0;
  std::deque<Sent> pushes_;  // pushed (or being pushed), not yet received
  bool push_in_flight_ = false;

  std::optional<std::uint64_t> bc_from_;  // every broadcast from this one on is owed
  std::optional<std::uint64_t> bc_to_;    // ... up to this one (set when draining)
  std::optional<std::uint64_t> bc_last_;  // the last one received
};

// ---- SoakConnection --------------------------------------------------------

void SoakConnection::Upgraded() {
  phase_ = Phase::kUp;
  ++run_.c.opened;
  ++run_.connected;
  const auto& o = run_.options;
  close_at_ = Clock::now() + run_.Between(o.min_lifetime, o.max_lifetime);
  const double style = run_.Uniform();
  style_ = style < 0.6 ? CloseStyle::kDrain : style < 0.85 ? CloseStyle::kClose : CloseStyle::kAbort;
  if (run_.stopping) return BeginClose(CloseStyle::kDrain);
  SendOne();  // the first echo shows the connection ACTIVE
  Tick();
}

void SoakConnection::Settled() {
  if (!up()) run_.ConnectionGone(client_, busy_ ? run_.Between(500ms, 1500ms) : 100ms);
}

void SoakConnection::Refused(const std::string& reason, unsigned http_status) {
  if (http_status == 503) {
    // The gateway without its backend (or over a limit): retry later.
    ++run_.c.refused_503;
    busy_ = true;  // Settled: retry after a pause
    return;
  }
  ++run_.c.refused;
  Fail(run_.c.errors, 1, "refused: " + reason);
}

void SoakConnection::Ended() {
  const Phase was = phase_;
  phase_ = Phase::kEnded;
  timer_.cancel();
  --run_.connected;
  if (was == Phase::kUp || was == Phase::kDraining) {
    ++run_.c.lost_connections;  // HeldConnection reported it
  } else {
    run_.c.echoes_abandoned += echoes_.size();
    run_.c.pushes_abandoned += pushes_.size();
  }
  echoes_.clear();
  pushes_.clear();
  run_.ConnectionGone(client_, run_.Between(0ms, 500ms));
}

void SoakConnection::ScheduleTick(Clock::duration after) {
  timer_.expires_after(after);
  timer_.async_wait([self = self()](beast::error_code ec) {
    if (!ec) self->Tick();
  });
}

void SoakConnection::Tick() {
  const auto now = Clock::now();
  if (phase_ == Phase::kDraining) {
    if (now >= drain_deadline_) return DrainTimedOut();
    return ScheduleTick(kDrainTick);
  }
  if (phase_ != Phase::kUp) return;
  CheckTimeouts(now);
  if (phase_ != Phase::kUp) return;
  if (now >= close_at_) return BeginClose(style_);
  if (echoes_.size() < run_.options.max_in_flight) SendOne();
  // Exponential gaps: each connection sends rate / clients per second.
  const double mean_s = static_cast<double>(run_.options.clients) / run_.options.rate;
  const double gap_s = std::min(1.0, -std::log(1.0 - run_.Uniform()) * mean_s);
  ScheduleTick(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap_s)));
}

void SoakConnection::SendOne() {
  const std::size_t size = run_.RandomSize(run_.options.max_size);
  const bool binary = run_.Uniform() < 0.5;
  auto payload = std::make_shared<std::string>();
  FillPayload(*payload, size, next_seq_, tag_, binary);
  echoes_.push_back(Sent{next_seq_++, static_cast<std::uint32_t>(size), binary, Clock::now()});
  ++run_.c.sent;
  Write(std::move(payload), !binary);
}

// While up: anything owed for longer than the reply timeout is lost; the
// connection then starts afresh (it drops its socket).
void SoakConnection::CheckTimeouts(Clock::time_point now) {
  const auto timeout = run_.options.reply_timeout;
  std::string what;
  std::uint64_t missing = 0;
  if (!echoes_.empty() && now - echoes_.front().at > timeout) {
    what = "echo " + std::to_string(echoes_.front().seq);
    missing = echoes_.size();
  } else if (!pushes_.empty() && now - pushes_.front().at > timeout) {
    what = "push " + std::to_string(pushes_.front().seq);
    missing = pushes_.size();
  } else if (bc_from_) {
    const std::uint64_t next = bc_last_ ? *bc_last_ + 1 : *bc_from_;
    const BroadcastRecord* record = run_.FindBroadcast(next);
    if (record != nullptr && record->acked_at && now - *record->acked_at > timeout) {
      what = "broadcast " + std::to_string(next);
      missing = 1;
    }
  }
  if (missing == 0) return;
  Fail(run_.c.lost, missing,
       what + " not received within " + std::to_string(Ms(timeout) / 1000) + " s (" + std::to_string(missing) +
           " counted lost)");
  echoes_.clear();
  pushes_.clear();
  BeginClose(CloseStyle::kAbort);
}

void SoakConnection::BeginClose(CloseStyle style) {
  switch (style) {
    case CloseStyle::kDrain:
      phase_ = Phase::kDraining;
      bc_to_ = run_.last_broadcast_started;
      drain_deadline_ = Clock::now() + run_.options.reply_timeout;
      CheckDrained();
      if (phase_ == Phase::kDraining) ScheduleTick(kDrainTick);
      return;
    case CloseStyle::kClose:
      phase_ = Phase::kClosing;
      ++run_.c.closed;
      return Close();
    case CloseStyle::kAbort:
      phase_ = Phase::kClosing;
      ++run_.c.aborted;
      return Abort();
  }
}

bool SoakConnection::BroadcastsComplete() const {
  if (!bc_from_ || !bc_to_ || *bc_to_ < *bc_from_) return true;
  return bc_last_ && *bc_last_ >= *bc_to_;
}

void SoakConnection::CheckDrained() {
  if (phase_ != Phase::kDraining) return;
  if (!echoes_.empty() || !pushes_.empty() || push_in_flight_ || !BroadcastsComplete()) return;
  phase_ = Phase::kClosing;
  ++run_.c.drained;
  timer_.cancel();
  Close();
}

void SoakConnection::DrainTimedOut() {
  std::uint64_t missing_broadcasts = 0;
  if (!BroadcastsComplete()) missing_broadcasts = *bc_to_ - (bc_last_ ? *bc_last_ : *bc_from_ - 1);
  const std::uint64_t missing = echoes_.size() + pushes_.size() + missing_broadcasts;
  if (missing > 0) {
    Fail(run_.c.lost, missing,
         "still owed after draining for the reply timeout: " + std::to_string(echoes_.size()) + " echoes, " +
             std::to_string(pushes_.size()) + " pushes, " + std::to_string(missing_broadcasts) + " broadcasts");
  } else {
    Fail(run_.c.errors, 1, "push call still unanswered after draining for the reply timeout");
  }
  echoes_.clear();
  pushes_.clear();
  phase_ = Phase::kClosing;
  Close();
}

bool SoakConnection::Matches(std::string_view got, bool text, std::uint64_t seq, std::uint32_t size, bool binary,
                             std::uint64_t tag) {
  if (got.size() != size || text == binary) return false;
  FillPayload(scratch_, size, seq, tag, binary);
  return got == scratch_;
}

void SoakConnection::Received(std::string_view got, bool text) {
  if (phase_ != Phase::kUp && phase_ != Phase::kDraining) return;  // closing: nothing more is owed
  const auto header = ParseHeader(got);
  if (!header) return Fail(run_.c.corrupt, 1, "a message without a header (" + std::to_string(got.size()) + " bytes)");
  if (header->tag == kPushTag) {
    OnPush(got, text, header->seq);
  } else if (header->tag == kBroadcastTag) {
    OnBroadcast(got, text, header->seq);
  } else if (header->tag == tag_) {
    OnEcho(got, text, header->seq);
  } else {
    return Fail(run_.c.corrupt, 1, "a message of another client (tag " + std::to_string(header->tag) + ")");
  }
  CheckDrained();
}

void SoakConnection::OnEcho(std::string_view got, bool text, std::uint64_t seq) {
  if (!got_echo_) {
    got_echo_ = true;
    bc_from_ = run_.last_broadcast_started ? *run_.last_broadcast_started + 1 : 0;
  }
  Consume(echoes_, "echo", next_seq_, tag_, got, text, seq, run_.c.echoed);
}

// The front of `owed` must be `seq`: what comes before it is lost (or
// arrives later, out of order, and then shows as arriving again).
void SoakConnection::Consume(std::deque<Sent>& owed, const char* what, std::uint64_t next, std::uint64_t tag,
                             std::string_view got, bool text, std::uint64_t seq, std::uint64_t& verified) {
  const std::string name = std::string{what} + " " + std::to_string(seq);
  auto it = std::find_if(owed.begin(), owed.end(), [seq](const Sent& s) { return s.seq == seq; });
  if (it == owed.end()) {
    if (seq < next) return Fail(run_.c.duplicated, 1, name + " arrived again, or after a later one");
    return Fail(run_.c.unexpected, 1, name + " was never sent to this connection");
  }
  if (it != owed.begin()) {
    const auto skipped = static_cast<std::uint64_t>(it - owed.begin());
    Fail(run_.c.lost, skipped,
         name + " arrived before " + std::to_string(owed.front().seq) + " (" + std::to_string(skipped) +
             " skipped, counted lost)");
  }
  if (Matches(got, text, seq, it->size, it->binary, tag)) {
    ++verified;
  } else {
    Fail(run_.c.corrupt, 1,
         name + " altered (" + std::to_string(got.size()) + " bytes " + (text ? "text" : "binary") + ", sent " +
             std::to_string(it->size) + (it->binary ? " binary" : " text") + ")");
  }
  owed.erase(owed.begin(), it + 1);
}

void SoakConnection::StartPush() {
  const std::size_t size = run_.RandomSize(kMaxAdminPayload);
  const bool binary = run_.Uniform() < 0.5;
  const std::uint64_t seq = next_push_++;
  v1::PushRequest request;
  request.add_connection_ids(connection_id_);
  request.mutable_frame()->set_opcode(binary ? v1::OPCODE_BINARY : v1::OPCODE_TEXT);
  FillPayload(*request.mutable_frame()->mutable_payload(), size, seq, kPushTag, binary);
  pushes_.push_back(Sent{seq, static_cast<std::uint32_t>(size), binary, Clock::now()});
  push_in_flight_ = true;
  ++run_.c.pushes;
  run_.admin->Push(std::move(request), [self = self(), seq](const grpc::Status& status, v1::PushResponse&) {
    self->OnPushed(status, seq);
  });
}

void SoakConnection::OnPushed(const grpc::Status& status, std::uint64_t seq) {
  push_in_flight_ = false;
  if (status.ok()) {
    ++run_.c.pushes_queued;
  } else {
    // Not queued: not owed.
    auto it = std::find_if(pushes_.begin(), pushes_.end(), [seq](const Sent& s) { return s.seq == seq; });
    if (it != pushes_.end()) pushes_.erase(it);
    if (connected()) {
      // Up, or draining without having sent its close: the gateway must
      // still have it ACTIVE.
      Fail(run_.c.errors, 1, AdminClient::Describe("Admin.Push", status) + " (push " + std::to_string(seq) + ")");
    } else {
      ++run_.c.pushes_missed_close;  // it closed meanwhile: a race the soak makes on purpose
    }
  }
  CheckDrained();
}

void SoakConnection::OnPush(std::string_view got, bool text, std::uint64_t seq) {
  Consume(pushes_, "push", next_push_, kPushTag, got, text, seq, run_.c.pushes_verified);
}

void SoakConnection::OnBroadcast(std::string_view got, bool text, std::uint64_t seq) {
  const BroadcastRecord* record = run_.FindBroadcast(seq);
  if (record == nullptr) return Fail(run_.c.unexpected, 1, "broadcast " + std::to_string(seq) + " never sent");
  if (bc_last_ && seq <= *bc_last_) {
    return Fail(seq == *bc_last_ ? run_.c.duplicated : run_.c.reordered, 1,
                "broadcast " + std::to_string(seq) + " arrived after " + std::to_string(*bc_last_));
  }
  const std::uint64_t expected = bc_last_ ? *bc_last_ + 1 : bc_from_ ? std::min(seq, *bc_from_) : seq;
  if (seq > expected) {
    Fail(run_.c.lost, seq - expected,
         "broadcast " + std::to_string(seq) + " arrived, " + std::to_string(expected) + " .. " +
             std::to_string(seq - 1) + " never did");
  }
  bc_last_ = seq;
  if (Matches(got, text, seq, record->size, record->binary, kBroadcastTag)) {
    ++run_.c.broadcast_deliveries;
  } else {
    Fail(run_.c.corrupt, 1, "broadcast " + std::to_string(seq) + " altered");
  }
}

// ---- SoakRun ---------------------------------------------------------------

SoakRun::SoakRun(const SoakOptions& options, net::io_context& ioc)
    : options(options),
      ioc(ioc),
      strand(net::make_strand(ioc)),
      rng(options.seed),
      opener_(strand),
      push_timer_(strand),
      broadcast_timer_(strand),
      list_timer_(strand),
      sample_timer_(strand),
      end_timer_(strand),
      watchdog_(strand),
      signals_(strand, SIGUSR1, SIGINT, SIGTERM) {
  prefix = options.url.target;
  if (prefix.empty() || prefix.back() != '/') prefix += '/';
  for (std::uint64_t i = 0; i < options.clients; ++i) clients.push_back(std::make_unique<SoakClient>(i, strand));
  if (!options.admin_target.empty()) admin = std::make_unique<AdminClient>(strand, options.admin_target);
}

std::size_t SoakRun::RandomSize(std::size_t max) {
  const double low = std::log(static_cast<double>(kPayloadHeaderSize));
  const double high = std::log(static_cast<double>(std::max(max, kPayloadHeaderSize)));
  const double size = std::exp(low + (high - low) * Uniform());
  return std::clamp<std::size_t>(static_cast<std::size_t>(size), kPayloadHeaderSize, max);
}

Clock::duration SoakRun::Between(Clock::duration low, Clock::duration high) {
  return low + std::chrono::duration_cast<Clock::duration>((high - low) * Uniform());
}

void SoakRun::Fail(std::uint64_t& counter, std::uint64_t amount, const std::string& message) {
  counter += amount;
  failures.Report(message);
}

const BroadcastRecord* SoakRun::FindBroadcast(std::uint64_t seq) const {
  const auto it = broadcasts.find(seq);
  return it == broadcasts.end() ? nullptr : &it->second;
}

void SoakRun::Start() {
  net::post(strand, [this] {
    started_at = Clock::now();
    last_print_ = started_at;
    if (options.pid > 0) {
      baseline_fds = OpenDescriptorCount(options.pid);
      baseline_rss_kib = ProcessTreeRssKib(options.pid);
    }
    SampleTick();
    WaitForSignal();
    end_timer_.expires_after(options.duration);
    end_timer_.async_wait([this](beast::error_code ec) {
      if (!ec) Stop();
    });
    opener_.Start(options.clients, options.connect_rate, [this](std::uint64_t i) { OpenNext(*clients[i]); });
    if (admin) {
      ListTick();
      PushTick();
      BroadcastTick();
    }
  });
}

void SoakRun::OpenNext(SoakClient& client) {
  if (stopping) return;
  ++client.generation;
  Url url = options.url;
  url.target = prefix + std::to_string(client.index) + "/" + std::to_string(client.generation);
  const bool deflate = Uniform() < options.deflate_share;
  client.connection = std::make_shared<SoakConnection>(*this, client, std::move(url), deflate);
  ++live_;
  ++c.attempts;
  client.connection->Open();
}

void SoakRun::ConnectionGone(SoakClient& client, Clock::duration pause) {
  // On the connection's strand; the slot and the run belong to the run's.
  net::post(strand, [this, &client, pause] {
    --live_;
    client.connection.reset();
    if (stopping) {
      if (live_ == 0) Finish();
      return;
    }
    client.retry.expires_after(pause);
    client.retry.async_wait([this, &client](beast::error_code ec) {
      if (!ec) OpenNext(client);
    });
  });
}

void SoakRun::PushTick() {
  if (stopping || options.push_rate <= 0) return;
  // At most 100 wake-ups a second; each sends what fell due.
  const double period_s = std::max(1.0 / options.push_rate, 0.01);
  const auto due = static_cast<std::uint64_t>(std::lround(options.push_rate * period_s));
  for (std::uint64_t i = 0; i < due; ++i) {
    auto& connection = clients[Pick(clients.size())]->connection;
    if (connection && connection->CanPush()) connection->StartPush();
  }
  push_timer_.expires_after(std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(period_s)));
  push_timer_.async_wait([this](beast::error_code ec) {
    if (!ec) PushTick();
  });
}

void SoakRun::BroadcastTick() {
  if (stopping || options.broadcast_rate <= 0) return;
  if (!broadcast_in_flight_) {
    const std::uint64_t seq = next_broadcast_++;
    const std::size_t size = RandomSize(kMaxAdminPayload);
    const bool binary = Uniform() < 0.5;
    broadcasts[seq] = BroadcastRecord{static_cast<std::uint32_t>(size), binary, std::nullopt};
    if (seq >= kKeptBroadcasts) broadcasts.erase(seq - kKeptBroadcasts);
    last_broadcast_started = seq;
    broadcast_in_flight_ = true;
    ++c.broadcasts;
    v1::BroadcastRequest request;
    request.mutable_frame()->set_opcode(binary ? v1::OPCODE_BINARY : v1::OPCODE_TEXT);
    FillPayload(*request.mutable_frame()->mutable_payload(), size, seq, kBroadcastTag, binary);
    request.mutable_filter()->set_path_prefix(prefix);
    admin->Broadcast(std::move(request), [this, seq](const grpc::Status& status, v1::BroadcastResponse& response) {
      broadcast_in_flight_ = false;
      if (!status.ok()) {
        return Fail(c.errors, 1,
                    AdminClient::Describe("Admin.Broadcast", status) + " (broadcast " + std::to_string(seq) + ")");
      }
      broadcasts[seq].acked_at = Clock::now();
      c.broadcasts_queued += response.queued();
    });
  }
  broadcast_timer_.expires_after(
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / options.broadcast_rate)));
  broadcast_timer_.async_wait([this](beast::error_code ec) {
    if (!ec) BroadcastTick();
  });
}

void SoakRun::ListTick() {
  if (stopping) return;
  if (!listing_) {
    listing_ = true;
    ListPage("");
  }
  list_timer_.expires_after(kListInterval);
  list_timer_.async_wait([this](beast::error_code ec) {
    if (!ec) ListTick();
  });
}

// Learns the connection ids: ACTIVE connections under the prefix, whose
// paths say which client and generation they are.
void SoakRun::ListPage(const std::string& token) {
  v1::ListConnectionsRequest request;
  request.set_page_size(kListPageSize);
  request.set_page_token(token);
  request.mutable_filter()->set_state(v1::CONNECTION_STATE_ACTIVE);
  request.mutable_filter()->set_path_prefix(prefix);
  admin->ListConnections(std::move(request), [this](const grpc::Status& status, v1::ListConnectionsResponse& response) {
    if (!status.ok()) {
      listing_ = false;
      return Fail(c.errors, 1, AdminClient::Describe("Admin.ListConnections", status));
    }
    for (const auto& info : response.connections()) {
      std::uint64_t index = 0, generation = 0;
      if (std::sscanf(info.path().c_str() + std::min(prefix.size(), info.path().size()), "%lu/%lu", &index,
                      &generation) != 2 ||
          index >= clients.size()) {
        continue;
      }
      const auto& connection = clients[index]->connection;
      if (connection && connection->generation() == generation) {
        connection->SetConnectionId(info.connection_id());
      }
    }
    if (!response.next_page_token().empty() && !stopping) return ListPage(response.next_page_token());
    listing_ = false;
  });
}

void SoakRun::SampleTick() {
  Sample s{Clock::now(), std::nullopt, std::nullopt, connected};
  if (options.pid > 0) {
    s.rss_kib = ProcessTreeRssKib(options.pid);
    s.fds = OpenDescriptorCount(options.pid);
  }
  if (!stopping || s.at <= stopped_at) samples.push_back(s);
  if (s.at - last_print_ >= options.report_interval) {
    last_print_ = s.at;
    Print(s);
  }
  // A cancel does not reach a wait that has already expired: the flag ends
  // the sampling for sure.
  if (sampling_done_) return;
  sample_timer_.expires_after(kSampleInterval);
  sample_timer_.async_wait([this](beast::error_code ec) {
    if (!ec) SampleTick();
  });
}

std::string Mib(std::optional<std::uint64_t> kib) {
  if (!kib) return "?";
  char text[32];
  std::snprintf(text, sizeof text, "%.1f MiB", static_cast<double>(*kib) / 1024);
  return text;
}

std::string Count(std::optional<std::uint64_t> n) { return n ? std::to_string(*n) : "?"; }

void SoakRun::Print(const Sample& s) {
  std::printf(
      "soak %5.0fs: %llu connected, %llu opened (503: %llu), echoes %llu sent %llu verified, pushes %llu/%llu, "
      "broadcasts %llu (%llu deliveries), failures %llu, server rss %s fds %s\n",
      Seconds(s.at - started_at), static_cast<unsigned long long>(s.connected),
      static_cast<unsigned long long>(c.opened), static_cast<unsigned long long>(c.refused_503),
      static_cast<unsigned long long>(c.sent), static_cast<unsigned long long>(c.echoed),
      static_cast<unsigned long long>(c.pushes), static_cast<unsigned long long>(c.pushes_verified),
      static_cast<unsigned long long>(c.broadcasts), static_cast<unsigned long long>(c.broadcast_deliveries),
      static_cast<unsigned long long>(c.Failures()), Mib(s.rss_kib).c_str(), Count(s.fds).c_str());
  std::fflush(stdout);
}

void SoakRun::WaitForSignal() {
  signals_.async_wait([this](beast::error_code ec, int signal) {
    if (ec) return;
    if (signal == SIGUSR1) {
      restarts.push_back(Clock::now());
      std::printf("soak %5.0fs: backend restart\n", Seconds(restarts.back() - started_at));
      std::fflush(stdout);
    } else {
      interrupted = true;
      Stop();
    }
    if (!finished_) WaitForSignal();
  });
}

void SoakRun::Stop() {
  if (stopping) return;
  stopping = true;
  stopped_at = Clock::now();
  end_timer_.cancel();
  push_timer_.cancel();
  broadcast_timer_.cancel();
  list_timer_.cancel();
  for (auto& client : clients) {
    client->retry.cancel();
    if (client->connection) client->connection->Finish();
  }
  // Draining takes at most the reply timeout, a close handshake a few
  // seconds more.
  watchdog_.expires_after(options.reply_timeout + kConnectTimeout * 3);
  watchdog_.async_wait([this](beast::error_code ec) {
    if (!ec) StopWatchdog();
  });
  if (live_ == 0) Finish();
}

void SoakRun::StopWatchdog() {
  if (finished_) return;
  stuck = true;
  Fail(c.errors, live_, std::to_string(live_) + " connections did not end after the run");
  for (auto& client : clients) {
    if (client->connection) client->connection->Abort();
  }
  Finish();
}

void SoakRun::Finish() {
  if (finished_) return;
  finished_ = true;
  watchdog_.cancel();
  descriptor_deadline_ = Clock::now() + kDescriptorWait;
  CheckDescriptors();
}

// The server closes its side a moment after each client: wait until its
// descriptors are back near the baseline, or the wait is over.
void SoakRun::CheckDescriptors() {
  if (options.pid > 0 && baseline_fds) {
    final_fds = OpenDescriptorCount(options.pid);
    if (final_fds && *final_fds > *baseline_fds + kDescriptorMargin && Clock::now() < descriptor_deadline_) {
      watchdog_.expires_after(250ms);
      watchdog_.async_wait([this](beast::error_code ec) {
        if (!ec) CheckDescriptors();
      });
      return;
    }
  }
  sampling_done_ = true;
  sample_timer_.cancel();
  signals_.cancel();
}

// ---- Growth ----------------------------------------------------------------

struct Growth {
  bool checked = false;
  bool rss_grew = false, fds_grew = false;
  std::uint64_t rss_first_max = 0, rss_last_min = 0, fds_first_max = 0, fds_last_min = 0;
  std::size_t samples = 0;
  double from_s = 0;
};

Growth CheckGrowth(const SoakRun& run) {
  Growth g;
  const auto length = run.stopped_at - run.started_at;
  auto from = run.started_at + length / 4;
  for (const auto& restart : run.restarts) {
    if (restart < run.stopped_at) from = std::max(from, restart + length / 10);
  }
  g.from_s = Seconds(from - run.started_at);
  std::vector<Sample> window;
  for (const auto& s : run.samples) {
    if (s.at >= from && s.at <= run.stopped_at && s.rss_kib && s.fds) window.push_back(s);
  }
  g.samples = window.size();
  if (window.size() < 6) return g;
  g.checked = true;
  const std::size_t third = window.size() / 3;
  g.rss_first_max = g.fds_first_max = 0;
  g.rss_last_min = g.fds_last_min = std::numeric_limits<std::uint64_t>::max();
  for (std::size_t i = 0; i < third; ++i) {
    g.rss_first_max = std::max(g.rss_first_max, *window[i].rss_kib);
    g.fds_first_max = std::max(g.fds_first_max, *window[i].fds);
  }
  for (std::size_t i = window.size() - third; i < window.size(); ++i) {
    g.rss_last_min = std::min(g.rss_last_min, *window[i].rss_kib);
    g.fds_last_min = std::min(g.fds_last_min, *window[i].fds);
  }
  g.rss_grew = run.options.rss_growth > 0 && static_cast<double>(g.rss_last_min) >
                                                 static_cast<double>(g.rss_first_max) * (1 + run.options.rss_growth);
  g.fds_grew = g.fds_last_min > g.fds_first_max + kDescriptorMargin + run.options.clients / 20;
  return g;
}

// The sample nearest to `fraction` of the load.
const Sample* SampleAt(const SoakRun& run, double fraction) {
  const Sample* best = nullptr;
  const auto at =
      run.started_at + std::chrono::duration_cast<Clock::duration>((run.stopped_at - run.started_at) * fraction);
  for (const auto& s : run.samples) {
    if (best == nullptr || std::chrono::abs(s.at - at) < std::chrono::abs(best->at - at)) best = &s;
  }
  return best;
}

}  // namespace

int RunSoak(const SoakOptions& o) {
  if (o.pid > 0 && !OpenDescriptorCount(o.pid)) {
    std::fprintf(stderr, "wsbench: cannot read /proc/%d/fd\n", o.pid);
    return 2;
  }
  std::printf(
      "soak %s: %llu clients for %.0f s, %.0f messages/s up to %zu bytes, lifetimes %.1f-%.1f s, "
      "deflate offered on %.0f%%%s\n",
      o.url.text.c_str(), static_cast<unsigned long long>(o.clients), Seconds(o.duration), o.rate, o.max_size,
      Seconds(o.min_lifetime), Seconds(o.max_lifetime), o.deflate_share * 100,
      o.admin_target.empty() ? ", no admin API" : "");
  std::fflush(stdout);

  Runner runner(1);
  SoakRun run(o, runner.ioc());
  run.Start();
  runner.Run();

  const Counters& c = run.c;
  const Growth growth = CheckGrowth(run);
  const bool fds_back = !run.baseline_fds || (run.final_fds && *run.final_fds <= *run.baseline_fds + kDescriptorMargin);
  const bool pushed = !run.admin || o.push_rate <= 0 || c.pushes_verified > 0;
  const bool broadcast = !run.admin || o.broadcast_rate <= 0 || c.broadcast_deliveries > 0;
  const bool traffic = c.opened > 0 && c.echoed > 0 && pushed && broadcast;
  const bool ok = c.Failures() == 0 && !growth.rss_grew && !growth.fds_grew && fds_back && traffic &&
                  !run.interrupted && !run.stuck;

  const Sample* start = run.samples.empty() ? nullptr : &run.samples.front();
  const Sample* middle = SampleAt(run, 0.5);
  const Sample* end = run.samples.empty() ? nullptr : &run.samples.back();
  auto rss = [](const Sample* s) { return s ? s->rss_kib : std::nullopt; };
  auto fds = [](const Sample* s) { return s ? s->fds : std::nullopt; };
  auto u = [](std::uint64_t v) { return static_cast<unsigned long long>(v); };

  std::printf("ran %.0f s, %llu backend restart(s)%s\n", Seconds(run.stopped_at - run.started_at),
              u(run.restarts.size()), run.interrupted ? ", interrupted" : "");
  std::printf(
      "connections: %llu attempts, %llu opened, %llu refused with 503 (retried), %llu refused otherwise; "
      "ended: %llu drained, %llu closed at once, %llu dropped, %llu lost\n",
      u(c.attempts), u(c.opened), u(c.refused_503), u(c.refused), u(c.drained), u(c.closed), u(c.aborted),
      u(c.lost_connections));
  std::printf("echoes: %llu sent, %llu verified, %llu abandoned by closes without drain\n", u(c.sent), u(c.echoed),
              u(c.echoes_abandoned));
  std::printf("pushes: %llu sent, %llu queued, %llu verified, %llu missed a closing connection, %llu abandoned\n",
              u(c.pushes), u(c.pushes_queued), u(c.pushes_verified), u(c.pushes_missed_close), u(c.pushes_abandoned));
  std::printf("broadcasts: %llu sent, queued for %llu connections, %llu deliveries verified\n", u(c.broadcasts),
              u(c.broadcasts_queued), u(c.broadcast_deliveries));
  std::printf("failures: lost %llu, duplicated %llu, reordered %llu, corrupt %llu, unexpected %llu, errors %llu\n",
              u(c.lost), u(c.duplicated), u(c.reordered), u(c.corrupt), u(c.unexpected), u(c.errors));
  if (o.pid > 0) {
    std::printf(
        "server pid %d: rss %s / %s / %s (start / middle / end of load), fds %s before, %s / %s / %s, %s "
        "after the clients left\n",
        o.pid, Mib(rss(start)).c_str(), Mib(rss(middle)).c_str(), Mib(rss(end)).c_str(),
        Count(run.baseline_fds).c_str(), Count(fds(start)).c_str(), Count(fds(middle)).c_str(), Count(fds(end)).c_str(),
        Count(run.final_fds).c_str());
    if (growth.checked) {
      std::printf(
          "growth (from %.0f s, %zu samples, first third max vs last third min): rss %s -> %s%s, fds %llu -> "
          "%llu%s\n",
          growth.from_s, growth.samples, Mib(growth.rss_first_max).c_str(), Mib(growth.rss_last_min).c_str(),
          growth.rss_grew ? " GREW" : "", u(growth.fds_first_max), u(growth.fds_last_min),
          growth.fds_grew ? " GREW" : "");
    } else {
      std::printf("growth: not checked, %zu samples in the window from %.0f s (too few)\n", growth.samples,
                  growth.from_s);
    }
    if (!fds_back) std::printf("descriptors did not come back to the baseline after the clients left\n");
  }
  if (!traffic) std::printf("too little traffic to mean anything (nothing opened, echoed, pushed or broadcast)\n");

  JsonLine json("soak");
  json.Add("url", o.url.text)
      .Add("clients", o.clients)
      .Add("duration_s", Seconds(run.stopped_at - run.started_at))
      .Add("backend_restarts", std::uint64_t{run.restarts.size()})
      .Add("attempts", c.attempts)
      .Add("opened", c.opened)
      .Add("refused_503", c.refused_503)
      .Add("refused", c.refused)
      .Add("drained", c.drained)
      .Add("closed", c.closed)
      .Add("aborted", c.aborted)
      .Add("lost_connections", c.lost_connections)
      .Add("sent", c.sent)
      .Add("echoed", c.echoed)
      .Add("echoes_abandoned", c.echoes_abandoned)
      .Add("pushes", c.pushes)
      .Add("pushes_queued", c.pushes_queued)
      .Add("pushes_verified", c.pushes_verified)
      .Add("pushes_missed_close", c.pushes_missed_close)
      .Add("broadcasts", c.broadcasts)
      .Add("broadcast_deliveries", c.broadcast_deliveries)
      .Add("lost", c.lost)
      .Add("duplicated", c.duplicated)
      .Add("reordered", c.reordered)
      .Add("corrupt", c.corrupt)
      .Add("unexpected", c.unexpected)
      .Add("errors", c.errors)
      .Add("failures", c.Failures());
  if (o.pid > 0) {
    if (run.baseline_fds) json.Add("fds_before", *run.baseline_fds);
    if (auto v = rss(start)) json.Add("rss_start_kib", *v);
    if (auto v = rss(middle)) json.Add("rss_middle_kib", *v);
    if (auto v = rss(end)) json.Add("rss_end_kib", *v);
    if (auto v = fds(start)) json.Add("fds_start", *v);
    if (auto v = fds(middle)) json.Add("fds_middle", *v);
    if (auto v = fds(end)) json.Add("fds_end", *v);
    if (run.final_fds) json.Add("fds_after", *run.final_fds);
    json.Add("growth_checked", growth.checked)
        .Add("rss_grew", growth.rss_grew)
        .Add("fds_grew", growth.fds_grew)
        .Add("fds_back", fds_back);
  }
  return PrintResult(json, ok);
}

}  // namespace wsbench
