// A bounded soak of cluster mode: three gateways sharing one in-process
// backend, a few hundred clients chatting across them, and for the soak's
// duration (WSGATEWAY_CLUSTER_SOAK_SECONDS, default 600) a random node
// SIGKILLed every 20-40 s and replaced, while clients reconnect to the live
// nodes and some close and reopen at random. Afterwards, once things have
// settled, the backend's view of the connections (every id with an Open
// event and no Close event) must be exactly what the live nodes list and
// what the clients hold open; no connection of a live node may have been
// reported lost, every connection of a killed node must have been reported
// closed, and a connection that is still open must have had every message
// its client sent delivered.
//
// The random pauses between churn steps are the scenario; every wait for
// an outcome polls a condition with a deadline. The seed is printed;
// WSGATEWAY_CLUSTER_SOAK_SEED replays a run's choices (the timing of the
// processes is the machine's).

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <deque>
#include <future>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/admin_client.hpp"
#include "tests/support/cluster_stack.hpp"
#include "tests/support/poll_until.hpp"
#include "tests/support/scripted_backend.hpp"

namespace wsgateway::testing {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kNodes = 3;
constexpr std::size_t kClients = 300;
// Messages from all clients together; the backend records every event, so
// this keeps its memory bounded (about 60,000 events in 10 minutes).
constexpr double kMessagesPerSecond = 100;
// Clients that close normally (and reopen at their next turn), all together.
constexpr double kClosesPerSecond = 1;
// Pace of the churn loop.
constexpr auto kTick = 100ms;
// A node is killed every this many seconds, uniformly.
constexpr int kKillEveryMin = 20;
constexpr int kKillEveryMax = 40;

std::chrono::seconds SoakDuration() {
  const char* text = std::getenv("WSGATEWAY_CLUSTER_SOAK_SECONDS");
  if (text == nullptr || *text == '\0') return 600s;
  return std::chrono::seconds(std::max(10L, std::strtol(text, nullptr, 10)));
}

std::uint64_t SoakSeed() {
  const char* text = std::getenv("WSGATEWAY_CLUSTER_SOAK_SEED");
  if (text != nullptr && *text != '\0') return std::strtoull(text, nullptr, 10);
  std::random_device device;
  return (std::uint64_t{device()} << 32) | device();
}

// The node a connection id names: its part before the first '-'.
std::string NodeOf(const std::string& connection_id) { return connection_id.substr(0, connection_id.find('-')); }

std::string Query(std::size_t client, std::uint64_t generation) {
  return "client=" + std::to_string(client) + "&gen=" + std::to_string(generation);
}

// The first few elements of a set, for failure messages.
std::string Sample(const std::set<std::string>& ids, std::size_t n = 10) {
  std::ostringstream out;
  out << ids.size() << " {";
  std::size_t shown = 0;
  for (const auto& id : ids) {
    if (shown++ == n) {
      out << " ...";
      break;
    }
    out << " " << id;
  }
  out << " }";
  return out.str();
}

std::set<std::string> Minus(const std::set<std::string>& a, const std::set<std::string>& b) {
  std::set<std::string> out;
  std::set_difference(a.begin(), a.end(), b.begin(), b.end(), std::inserter(out, out.end()));
  return out;
}

// ---------------------------------------------------------------- clients
// A fixed number of clients, each with at most one connection at a time,
// on one io thread. Connection g of client k upgrades on
// /soak?client=k&gen=g, so its Open event names it. The test's thread
// drives them (Connect, Send, Close) and reads their state (Snapshot).
class SoakClients {
 public:
  enum class Phase { kIdle, kConnecting, kOpen, kClosing };

  struct Slot {
    Phase phase = Phase::kIdle;
    std::uint64_t generation = 0;  // of the current (or last) connection
    std::size_t node = 0;          // stack slot the connection went to
    std::size_t queued = 0;        // messages queued on this connection
    std::size_t sent = 0;          // of them, writes completed
  };

  struct Totals {
    std::size_t connects = 0;         // handshakes completed
    std::size_t failed_connects = 0;  // connect or handshake failed
    std::size_t dropped = 0;          // open connections that ended without our close
    std::size_t closed = 0;           // open connections we closed normally
    std::size_t messages = 0;         // writes completed
  };

  explicit SoakClients(std::size_t n)
      : work_(asio::make_work_guard(ioc_)), slots_(n), sessions_(n), thread_([this] { ioc_.run(); }) {}

  ~SoakClients() {
    std::promise<void> closed;
    asio::post(ioc_, [this, &closed] {
      for (auto& session : sessions_) {
        if (session) session->Abort();
      }
      closed.set_value();
    });
    closed.get_future().wait();
    work_.reset();
    thread_.join();
    sessions_.clear();
  }

  std::size_t size() const { return slots_.size(); }

  // Opens a new connection for an idle client to the node in stack slot
  // `node`, listening on `port`.
  void Connect(std::size_t k, std::size_t node, std::uint16_t port) {
    std::uint64_t generation = 0;
    {
      std::lock_guard lock(mutex_);
      auto& slot = slots_[k];
      if (slot.phase != Phase::kIdle) return;
      slot.phase = Phase::kConnecting;
      generation = ++slot.generation;
      slot.node = node;
      slot.queued = slot.sent = 0;
    }
    asio::post(ioc_, [this, k, generation, port] {
      auto session = std::make_shared<Session>(*this, k, generation);
      sessions_[k] = session;
      session->Start(port, "/soak?" + Query(k, generation));
    });
  }

  // Queues the open client's next message ("c<k>g<gen>m<n>", n from 1).
  void Send(std::size_t k) {
    std::string payload;
    {
      std::lock_guard lock(mutex_);
      auto& slot = slots_[k];
      if (slot.phase != Phase::kOpen) return;
      payload = "c" + std::to_string(k) + "g" + std::to_string(slot.generation) + "m" + std::to_string(++slot.queued);
    }
    asio::post(ioc_, [this, k, payload = std::move(payload)]() mutable {
      if (sessions_[k]) sessions_[k]->Send(std::move(payload));
    });
  }

  // Starts the close handshake (1000) of an open client.
  void Close(std::size_t k) {
    {
      std::lock_guard lock(mutex_);
      auto& slot = slots_[k];
      if (slot.phase != Phase::kOpen) return;
      slot.phase = Phase::kClosing;
    }
    asio::post(ioc_, [this, k] {
      if (sessions_[k]) sessions_[k]->Close();
    });
  }

  std::vector<Slot> Snapshot() const {
    std::lock_guard lock(mutex_);
    return slots_;
  }

  Totals totals() const {
    std::lock_guard lock(mutex_);
    return totals_;
  }

 private:
  // One connection; lives on the io thread, kept alive by its pending
  // operations and by sessions_.
  class Session : public std::enable_shared_from_this<Session> {
   public:
    Session(SoakClients& owner, std::size_t k, std::uint64_t generation)
        : owner_(owner), k_(k), generation_(generation), ws_(owner.ioc_) {}

    void Start(std::uint16_t port, std::string target) {
      target_ = std::move(target);
      port_ = port;
      beast::get_lowest_layer(ws_).expires_after(10s);
      beast::get_lowest_layer(ws_).async_connect(
          tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port),
          [self = shared_from_this()](beast::error_code ec) { self->OnConnect(ec); });
    }

    void Send(std::string payload) {
      if (!open_ || closing_) return;
      queue_.push_back(std::move(payload));
      if (queue_.size() == 1) DoWrite();
    }

    void Close() {
      if (!open_ || closing_) return;
      closing_ = true;
      ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
    }

    void Abort() {
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
    }

   private:
    void OnConnect(beast::error_code ec) {
      if (ec) return Ended(false);
      ws_.async_handshake("127.0.0.1:" + std::to_string(port_), target_,
                          [self = shared_from_this()](beast::error_code e) { self->OnHandshake(e); });
    }

    void OnHandshake(beast::error_code ec) {
      if (ec) return Ended(false);
      beast::get_lowest_layer(ws_).expires_never();
      open_ = true;
      {
        std::lock_guard lock(owner_.mutex_);
        ++owner_.totals_.connects;
        auto& slot = owner_.slots_[k_];
        if (slot.generation == generation_ && slot.phase == Phase::kConnecting) slot.phase = Phase::kOpen;
      }
      DoRead();
    }

    void DoRead() {
      ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return self->Ended(true);
        self->buffer_.consume(self->buffer_.size());
        self->DoRead();
      });
    }

    void DoWrite() {
      ws_.text(true);
      ws_.async_write(asio::buffer(queue_.front()), [self = shared_from_this()](beast::error_code ec, std::size_t) {
        if (ec) return;  // the read side sees the failure
        self->queue_.pop_front();
        {
          std::lock_guard lock(self->owner_.mutex_);
          ++self->owner_.totals_.messages;
          auto& slot = self->owner_.slots_[self->k_];
          if (slot.generation == self->generation_) ++slot.sent;
        }
        if (!self->queue_.empty() && !self->closing_) self->DoWrite();
      });
    }

    void Ended(bool was_open) {
      if (ended_) return;
      ended_ = true;
      {
        std::lock_guard lock(owner_.mutex_);
        auto& totals = owner_.totals_;
        if (!was_open) {
          ++totals.failed_connects;
        } else if (closing_) {
          ++totals.closed;
        } else {
          ++totals.dropped;
        }
        auto& slot = owner_.slots_[k_];
        if (slot.generation == generation_) slot.phase = Phase::kIdle;
      }
      Abort();
      if (owner_.sessions_[k_].get() == this) owner_.sessions_[k_].reset();
    }

    SoakClients& owner_;
    const std::size_t k_;
    const std::uint64_t generation_;
    websocket::stream<beast::tcp_stream> ws_;
    std::string target_;
    std::uint16_t port_ = 0;
    beast::flat_buffer buffer_;
    std::deque<std::string> queue_;
    bool open_ = false;
    bool closing_ = false;
    bool ended_ = false;
  };

  asio::io_context ioc_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  mutable std::mutex mutex_;
  std::vector<Slot> slots_;                         // guarded by mutex_
  Totals totals_;                                   // guarded by mutex_
  std::vector<std::shared_ptr<Session>> sessions_;  // io thread only
  std::thread thread_;
};

// ------------------------------------------------------ the backend's view
// What the recorded events say, computed under the backend's lock.
struct BackendView {
  std::set<std::string> opened;                            // ids with an Open event
  std::set<std::string> closed;                            // ids with any Close event
  std::set<std::string> reported_lost;                     // ids with a NODE_LOST Close
  std::map<std::string, std::string> id_of;                // Open query -> id
  std::set<std::string> queries_with_two_ids;              // should stay empty
  std::map<std::string, std::size_t> node_lost_events;     // node -> NodeLostEvents
  std::map<std::string, std::uint64_t> node_lost_counted;  // node -> highest NodeLostEvent.connections
  // id -> distinct message numbers ("...m<n>") received.
  std::map<std::string, std::set<std::size_t>> messages;
  std::map<v1::ClosedBy, std::size_t> closes_by;
  std::size_t events = 0, open_events = 0, close_events = 0, message_events = 0;
  std::size_t closes_without_open = 0;

  std::set<std::string> Open() const { return Minus(opened, closed); }
};

BackendView ViewOf(ScriptedBackend& backend) {
  BackendView view;
  backend.WaitUntil(
      [&](const std::vector<v1::Event>& events) {
        view.events = events.size();
        for (const auto& event : events) {
          const auto& id = event.connection_id();
          if (event.has_open()) {
            ++view.open_events;
            view.opened.insert(id);
            const auto [it, inserted] = view.id_of.emplace(event.open().query(), id);
            if (!inserted && it->second != id) view.queries_with_two_ids.insert(event.open().query());
          } else if (event.has_close()) {
            ++view.close_events;
            ++view.closes_by[event.close().closed_by()];
            view.closed.insert(id);
            if (event.close().closed_by() == v1::CLOSED_BY_NODE_LOST) view.reported_lost.insert(id);
          } else if (event.has_message()) {
            ++view.message_events;
            const auto& payload = event.message().payload();
            const auto m = payload.rfind('m');
            if (m != std::string::npos) view.messages[id].insert(std::stoul(payload.substr(m + 1)));
          } else if (event.has_node_lost()) {
            const auto& node = event.node_lost().node_id();
            ++view.node_lost_events[node];
            view.node_lost_counted[node] = std::max(view.node_lost_counted[node], event.node_lost().connections());
          }
        }
        return true;
      },
      0ms);
  for (const auto& id : view.closed) {
    if (!view.opened.count(id)) ++view.closes_without_open;
  }
  return view;
}

const char* ClosedByName(v1::ClosedBy by) {
  switch (by) {
    case v1::CLOSED_BY_CLIENT:
      return "client";
    case v1::CLOSED_BY_SERVER:
      return "server";
    case v1::CLOSED_BY_BACKEND:
      return "backend";
    case v1::CLOSED_BY_ERROR:
      return "error";
    case v1::CLOSED_BY_NODE_LOST:
      return "node_lost";
    default:
      return "unspecified";
  }
}

// ------------------------------------------------------------------- soak
struct Kill {
  std::size_t slot = 0;
  std::string node_id;
  double at_seconds = 0;
  std::size_t clients_on_it = 0;  // clients open on it just before
};

struct Settled {
  BackendView view;
  std::set<std::string> listed;                           // union of the live nodes' listings
  std::map<std::size_t, std::set<std::string>> per_node;  // stack slot -> its listing
  std::map<std::size_t, std::string> list_errors;
  std::set<std::string> held;               // ids of the connections the clients hold open
  std::set<std::string> held_without_open;  // queries of open clients with no Open event
};

TEST(ClusterSoakTest, TheBackendsViewStaysExactThroughKillsAndReconnects) {
  const auto duration = SoakDuration();
  const auto seed = SoakSeed();
  std::cout << "[soak] seed " << seed << " (WSGATEWAY_CLUSTER_SOAK_SEED), duration " << duration.count()
            << " s (WSGATEWAY_CLUSTER_SOAK_SECONDS), " << kClients << " clients, " << kNodes << " nodes" << std::endl;
  std::mt19937_64 rng(seed);
  auto uniform = [&](std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng); };

  std::string error;
  auto backend = ScriptedBackend::Start(&error);
  ASSERT_TRUE(backend) << error;
  auto cluster = ClusterStack::Start({.nodes = kNodes, .backend = backend->target()}, &error);
  ASSERT_TRUE(cluster) << error;

  SoakClients clients(kClients);
  auto live_slots = [&] {
    std::vector<std::size_t> slots;
    for (std::size_t i = 0; i < cluster->size(); ++i) {
      if (!cluster->node_id(i).empty()) slots.push_back(i);
    }
    return slots;
  };
  // Every idle client opens a connection to a random live node.
  auto reconnect_idle = [&](const std::vector<SoakClients::Slot>& slots) {
    const auto live = live_slots();
    for (std::size_t k = 0; k < slots.size(); ++k) {
      if (slots[k].phase != SoakClients::Phase::kIdle) continue;
      const auto node = live[uniform(live.size())];
      clients.Connect(k, node, cluster->node(node).ws_port());
    }
  };
  auto count_open = [](const std::vector<SoakClients::Slot>& slots) {
    return static_cast<std::size_t>(std::count_if(
        slots.begin(), slots.end(), [](const auto& slot) { return slot.phase == SoakClients::Phase::kOpen; }));
  };

  // Everyone connects first.
  ASSERT_TRUE(PollUntil(60s,
                        [&] {
                          const auto slots = clients.Snapshot();
                          reconnect_idle(slots);
                          return count_open(slots) == kClients;
                        }))
      << "only " << count_open(clients.Snapshot()) << " of " << kClients << " clients connected";

  // ---- Churn.
  const auto started = Clock::now();
  const auto end = started + duration;
  auto seconds_since_start = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
  auto next_kill_in = [&] {
    return std::chrono::seconds(kKillEveryMin + static_cast<int>(uniform(kKillEveryMax - kKillEveryMin + 1)));
  };
  auto next_kill = started + next_kill_in();
  std::vector<Kill> kills;
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double tick_seconds = std::chrono::duration<double>(kTick).count();
  double send_credit = 0;
  std::size_t ticks = 0;
  std::size_t min_open = kClients;
  std::size_t open_sum = 0;
  auto next_tick = Clock::now();
  while (Clock::now() < end) {
    const auto slots = clients.Snapshot();
    const auto open_now = count_open(slots);
    min_open = std::min(min_open, open_now);
    open_sum += open_now;
    ++ticks;
    reconnect_idle(slots);

    std::vector<std::size_t> open;
    for (std::size_t k = 0; k < slots.size(); ++k) {
      if (slots[k].phase == SoakClients::Phase::kOpen) open.push_back(k);
    }
    if (!open.empty()) {
      send_credit += kMessagesPerSecond * tick_seconds;
      for (; send_credit >= 1; send_credit -= 1) clients.Send(open[uniform(open.size())]);
      if (unit(rng) < kClosesPerSecond * tick_seconds) clients.Close(open[uniform(open.size())]);
    }

    if (Clock::now() >= next_kill) {
      const auto live = live_slots();
      // Never fewer than two nodes alive: kill only while three are.
      if (live.size() > 2) {
        Kill kill;
        kill.slot = live[uniform(live.size())];
        kill.node_id = cluster->node_id(kill.slot);
        kill.at_seconds = seconds_since_start();
        kill.clients_on_it = static_cast<std::size_t>(std::count_if(slots.begin(), slots.end(), [&](const auto& slot) {
          return slot.phase == SoakClients::Phase::kOpen && slot.node == kill.slot;
        }));
        cluster->Forget(kill.slot);
        std::cout << "[soak] t=" << static_cast<int>(kill.at_seconds) << "s killed node " << kill.slot << " ("
                  << kill.node_id << ", ~" << kill.clients_on_it << " clients)" << std::endl;
        kills.push_back(kill);
        ASSERT_TRUE(cluster->AddNode(&error)) << error;
        std::cout << "[soak] t=" << static_cast<int>(seconds_since_start()) << "s started node " << cluster->size() - 1
                  << " (" << cluster->node_id(cluster->size() - 1) << ")" << std::endl;
      }
      next_kill = Clock::now() + next_kill_in();
    }
    // The churn's pace (the scenario itself, not a synchronisation).
    next_tick += kTick;
    std::this_thread::sleep_until(next_tick);
    if (Clock::now() > next_tick + 1s) next_tick = Clock::now();  // after a kill, do not catch up
  }
  const double churn_seconds = seconds_since_start();

  // ---- Settle: every client reconnects and its writes complete.
  const auto settle_started = Clock::now();
  const bool all_open = PollUntil(60s, [&] {
    const auto slots = clients.Snapshot();
    reconnect_idle(slots);
    return std::all_of(slots.begin(), slots.end(), [](const auto& slot) {
      return slot.phase == SoakClients::Phase::kOpen && slot.sent == slot.queued;
    });
  });
  EXPECT_TRUE(all_open) << "only " << count_open(clients.Snapshot()) << " of " << kClients
                        << " clients open with their writes done after 60 s";
  const auto final_slots = clients.Snapshot();

  // Then wait until the backend, the nodes and the clients agree.
  auto settle = [&] {
    Settled s;
    s.view = ViewOf(*backend);
    for (const auto i : live_slots()) {
      grpc::Status status;
      const auto listed = cluster->admin(i).ListAll(v1::ConnectionFilter{}, 100, &status);
      if (!listed) {
        s.list_errors[i] = Describe(status);
        continue;
      }
      auto& mine = s.per_node[i];
      for (const auto& info : *listed) mine.insert(info.connection_id());
      s.listed.insert(mine.begin(), mine.end());
    }
    for (std::size_t k = 0; k < final_slots.size(); ++k) {
      if (final_slots[k].phase != SoakClients::Phase::kOpen) continue;
      const auto query = Query(k, final_slots[k].generation);
      const auto it = s.view.id_of.find(query);
      if (it == s.view.id_of.end()) {
        s.held_without_open.insert(query);
      } else {
        s.held.insert(it->second);
      }
    }
    return s;
  };
  auto killed_ids_open = [&](const Settled& s) {
    std::set<std::string> open;
    for (const auto& kill : kills) {
      for (const auto& id : s.view.opened) {
        if (NodeOf(id) == kill.node_id && !s.view.closed.count(id)) open.insert(id);
      }
    }
    return open;
  };
  auto messages_missing = [&](const Settled& s) {
    std::set<std::string> missing;
    for (std::size_t k = 0; k < final_slots.size(); ++k) {
      const auto& slot = final_slots[k];
      if (slot.phase != SoakClients::Phase::kOpen) continue;
      const auto it = s.view.id_of.find(Query(k, slot.generation));
      if (it == s.view.id_of.end()) continue;
      const auto got = s.view.messages.find(it->second);
      const std::size_t distinct = got == s.view.messages.end() ? 0 : got->second.size();
      const std::size_t highest = distinct == 0 ? 0 : *got->second.rbegin();
      if (distinct != slot.sent || highest != slot.sent) missing.insert(it->second);
    }
    return missing;
  };
  auto agreed = [&](const Settled& s) {
    if (!s.list_errors.empty() || !s.held_without_open.empty()) return false;
    const auto view = s.view.Open();
    for (const auto& [slot, listed] : s.per_node) {
      if (listed != s.listed) return false;
    }
    for (const auto& kill : kills) {
      if (!s.view.node_lost_events.count(kill.node_id)) return false;
    }
    return view == s.listed && view == s.held && killed_ids_open(s).empty() && messages_missing(s).empty();
  };
  Settled settled;
  const bool stable = PollUntil(90s, [&] {
    settled = settle();
    return agreed(settled);
  });
  const double settle_seconds = std::chrono::duration<double>(Clock::now() - settle_started).count();

  // ---- Summary.
  const auto& view = settled.view;
  const auto totals = clients.totals();
  std::size_t node_lost_reports = 0;
  for (const auto& [node, n] : view.node_lost_events) node_lost_reports += n;
  std::ostringstream closes_by;
  for (const auto& [by, n] : view.closes_by) closes_by << " " << ClosedByName(by) << "=" << n;
  std::cout << "[soak] ---- summary (seed " << seed << ")\n"
            << "[soak] churn " << churn_seconds << " s, settled in " << settle_seconds << " s ("
            << (stable ? "stable" : "NOT stable") << ")\n"
            << "[soak] kills " << kills.size() << ", nodes started " << cluster->size() << ", live "
            << live_slots().size() << "\n"
            << "[soak] clients: connects " << totals.connects << ", failed connects " << totals.failed_connects
            << ", dropped " << totals.dropped << ", closed normally " << totals.closed << ", messages sent "
            << totals.messages << ", open min " << min_open << " / mean " << (ticks ? open_sum / ticks : 0) << "\n"
            << "[soak] backend: events " << view.events << ", connections opened " << view.opened.size()
            << " (open events " << view.open_events << "), closed " << view.closed.size() << " (close events "
            << view.close_events << ":" << closes_by.str() << "), closes without an open " << view.closes_without_open
            << ", messages " << view.message_events << "\n"
            << "[soak] node-lost: reports " << node_lost_reports << " for " << view.node_lost_events.size()
            << " nodes, connections reported lost " << view.reported_lost.size() << "\n"
            << "[soak] final: backend view " << view.Open().size() << ", listed " << settled.listed.size()
            << ", held by clients " << settled.held.size() << std::endl;
  for (const auto& kill : kills) {
    std::size_t ids = 0;
    for (const auto& id : view.opened) ids += NodeOf(id) == kill.node_id;
    const auto events = view.node_lost_events.count(kill.node_id) ? view.node_lost_events.at(kill.node_id) : 0;
    const auto counted = view.node_lost_counted.count(kill.node_id) ? view.node_lost_counted.at(kill.node_id) : 0;
    std::cout << "[soak] kill at " << static_cast<int>(kill.at_seconds) << " s: node " << kill.node_id << ", ~"
              << kill.clients_on_it << " clients on it, " << ids << " ids ever opened on it, NodeLostEvents " << events
              << " (connections " << counted << ")" << std::endl;
  }

  // ---- Assertions.
  EXPECT_TRUE(stable) << "the backend, the nodes and the clients did not agree within 90 s";
  for (const auto& [slot, status] : settled.list_errors)
    ADD_FAILURE() << "node " << slot << " ListConnections: " << status;
  EXPECT_TRUE(view.queries_with_two_ids.empty()) << "one upgrade, two ids: " << Sample(view.queries_with_two_ids);
  EXPECT_TRUE(settled.held_without_open.empty())
      << "clients hold connections the backend never saw open: " << Sample(settled.held_without_open);

  const auto backend_open = view.Open();
  EXPECT_EQ(backend_open, settled.listed)
      << "open in the backend's view, not listed: " << Sample(Minus(backend_open, settled.listed))
      << "\nlisted, not open in the backend's view: " << Sample(Minus(settled.listed, backend_open));
  for (const auto& [slot, listed] : settled.per_node) {
    EXPECT_EQ(listed, settled.listed) << "node " << slot << " (" << cluster->node_id(slot)
                                      << ") lists a different set: missing " << Sample(Minus(settled.listed, listed))
                                      << ", extra " << Sample(Minus(listed, settled.listed));
  }
  EXPECT_EQ(backend_open, settled.held) << "open in the backend's view, not held by a client: "
                                        << Sample(Minus(backend_open, settled.held))
                                        << "\nheld by a client, not open in the backend's view: "
                                        << Sample(Minus(settled.held, backend_open));

  // Only killed nodes' connections are ever reported lost.
  std::set<std::string> killed_nodes;
  for (const auto& kill : kills) killed_nodes.insert(kill.node_id);
  std::set<std::string> false_reaps;
  for (const auto& id : view.reported_lost) {
    if (!killed_nodes.count(NodeOf(id)) || settled.listed.count(id) || settled.held.count(id)) false_reaps.insert(id);
  }
  EXPECT_TRUE(false_reaps.empty()) << "NODE_LOST Close for connections of live nodes: " << Sample(false_reaps);

  // Every killed node was reported, and every connection it held closed.
  for (const auto& kill : kills) {
    EXPECT_TRUE(view.node_lost_events.count(kill.node_id)) << "no NodeLostEvent for killed node " << kill.node_id;
  }
  const auto unclosed = killed_ids_open(settled);
  EXPECT_TRUE(unclosed.empty()) << "connections of killed nodes never closed: " << Sample(unclosed);

  // A connection still open has had every message it sent delivered.
  const auto missing = messages_missing(settled);
  EXPECT_TRUE(missing.empty()) << "open connections with messages missing at the backend: " << Sample(missing);
  EXPECT_GE(kills.size(), static_cast<std::size_t>(duration.count() / kKillEveryMax - 1));
}

}  // namespace
}  // namespace wsgateway::testing
