#include "gateway/runtime/local_data_plane.hpp"

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <unordered_set>

#include "gateway/data_plane/connection_filter.hpp"
#include "gateway/data_plane/group_rules.hpp"
#include "gateway/runtime/event_loop.hpp"
#include "gateway/runtime/gateway.hpp"
#include "gateway/runtime/loop_thread.hpp"
#include "gateway/runtime/session.hpp"
#include "gateway/websocket/protocol_rules.hpp"

namespace wsgateway {
namespace {

using Results = std::vector<ConnectionResult>;

Outcome ToOutcome(Session::EnqueueResult result) {
  switch (result) {
    case Session::EnqueueResult::kQueued:
      return Outcome::kOk;
    case Session::EnqueueResult::kNotActive:
      return Outcome::kNotActive;
    case Session::EnqueueResult::kQueueFull:
      return Outcome::kQueueFull;
    case Session::EnqueueResult::kNoMessageToContinue:
      return Outcome::kNoMessageToContinue;
    case Session::EnqueueResult::kInvalidUtf8:
      return Outcome::kInvalidUtf8;
  }
  return Outcome::kNotActive;
}

bool Matches(const Session& session, const v1::ConnectionFilter& filter) {
  return Matches(session.state(), session.path(), session.tags(), filter);
}

// What follows runs on the loop owning `session` (null: no such connection).

ConnectionResult PushTo(Session* session, OutboundFrame frame) {
  if (session == nullptr) return {};
  const auto state = session->state();
  return {ToOutcome(session->Enqueue(std::move(frame))), state};
}

ConnectionResult CloseOn(Session* session, std::uint16_t code, std::string reason) {
  if (session == nullptr) return {};
  const auto state = session->state();
  const bool started = session->RequestClose(RequestedCloseCode(code), std::move(reason), v1::CLOSED_BY_BACKEND);
  return {started ? Outcome::kOk : Outcome::kNotActive, state};
}

ConnectionResult DeliverTo(Session* session, Delivery& delivery) {
  if (delivery.kind == Delivery::Kind::kPush) return PushTo(session, std::move(delivery.frame));
  return CloseOn(session, delivery.frame.close_code, delivery.frame.payload ? *delivery.frame.payload : std::string());
}

ConnectionResult FindOn(Session* session) {
  if (session == nullptr) return {};
  return {Outcome::kOk, session->state()};
}

std::pair<ConnectionResult, v1::ClientInfo> DescribeOn(Session* session) {
  std::pair<ConnectionResult, v1::ClientInfo> answer;
  answer.first = FindOn(session);
  if (session != nullptr) session->Describe(&answer.second);
  return answer;
}

// All or nothing: the limit is checked before the first join.
GroupsResult ChangeGroupsOn(Session* session, const GroupChange& change) {
  GroupsResult answer;
  answer.result = FindOn(session);
  if (session == nullptr) return answer;
  if (answer.result.state != v1::CONNECTION_STATE_ACTIVE) {
    answer.result.outcome = Outcome::kNotActive;
    return answer;
  }
  auto& tags = session->tags();
  if (change.kind == GroupChange::Kind::kJoin) {
    const auto joining = static_cast<std::size_t>(std::count_if(
        change.names.begin(), change.names.end(), [&tags](const std::string& name) { return !tags.InGroup(name); }));
    if (tags.groups().size() + joining > kMaxGroupsPerConnection) {
      answer.result.outcome = Outcome::kTooManyGroups;
      answer.member_of = tags.groups().size();
      answer.joining = joining;
      return answer;
    }
    for (const auto& name : change.names) tags.Join(name);
  } else {
    for (const auto& name : change.names) tags.Leave(name);
  }
  answer.groups = tags.groups();
  return answer;
}

// Runs `work(session)` on the loop at `where` and answers with its result:
// one post, nothing shared. Without a place (an id this process cannot
// have issued) it answers at once, with work(nullptr).
template <typename Work, typename Result>
void AtConnection(Gateway& gateway, std::optional<Gateway::Location> where, Work work, DataPlane::Done<Result> done) {
  if (!where) return done(work(nullptr));
  auto& loop = gateway.loop(where->loop);
  loop.Post([&loop, counter = where->counter, work = std::move(work), done = std::move(done)]() mutable {
    WSG_ASSERT_ON_LOOP(loop);
    done(work(loop.Find(counter)));
  });
}

// The one fan-out: runs `work->RunOn(loop)` on each loop where
// work->RunsOn(index), one post each; the last loop to finish calls
// work->Finish(). With no loop to run on, Finish runs at once.
template <typename Work>
void FanOut(Gateway& gateway, const std::shared_ptr<Work>& work) {
  std::size_t loops = 0;
  for (std::size_t i = 0; i < gateway.loop_count(); ++i) loops += work->RunsOn(i) ? 1 : 0;
  if (loops == 0) return work->Finish();
  work->remaining.store(loops, std::memory_order_relaxed);
  for (std::size_t i = 0; i < gateway.loop_count(); ++i) {
    if (!work->RunsOn(i)) continue;
    auto& loop = gateway.loop(i);
    loop.Post([&loop, work] {
      WSG_ASSERT_ON_LOOP(loop);
      work->RunOn(loop);
      // acq_rel: the last loop sees what every other loop wrote.
      if (work->remaining.fetch_sub(1, std::memory_order_acq_rel) == 1) work->Finish();
    });
  }
}

// A call on several connections, one result each in the caller's order.
// `Each` holds the call's input: id(i), size() and apply(session, i).
template <typename Each>
struct TargetedWork {
  struct Target {
    std::size_t index;
    std::uint64_t counter;
  };

  TargetedWork(Gateway& gateway, Each input, DataPlane::Done<Results> answer)
      : each(std::move(input)), results(each.size()), per_loop(gateway.loop_count()), done(std::move(answer)) {
    for (std::size_t i = 0; i < results.size(); ++i) {
      if (const auto where = gateway.Resolve(each.id(i))) per_loop[where->loop].push_back({i, where->counter});
    }
  }

  bool RunsOn(std::size_t loop) const { return !per_loop[loop].empty(); }

  // Each loop writes only the results of its own targets.
  void RunOn(EventLoop& loop) {
    for (const auto& target : per_loop[loop.index()]) {
      results[target.index] = each.apply(loop.Find(target.counter), target.index);
    }
  }

  void Finish() { done(std::move(results)); }

  Each each;
  Results results;
  std::vector<std::vector<Target>> per_loop;
  std::atomic<std::size_t> remaining{0};
  DataPlane::Done<Results> done;
};

struct PushEach {
  std::vector<std::string> ids;
  OutboundFrame frame;

  std::size_t size() const { return ids.size(); }
  std::string_view id(std::size_t i) const { return ids[i]; }
  ConnectionResult apply(Session* session, std::size_t) const { return PushTo(session, frame); }
};

struct DeliverEach {
  std::vector<Delivery> deliveries;

  std::size_t size() const { return deliveries.size(); }
  std::string_view id(std::size_t i) const { return deliveries[i].connection_id; }
  ConnectionResult apply(Session* session, std::size_t i) { return DeliverTo(session, deliveries[i]); }
};

template <typename Each>
void OnEach(Gateway& gateway, Each each, DataPlane::Done<Results> done) {
  FanOut(gateway, std::make_shared<TargetedWork<Each>>(gateway, std::move(each), std::move(done)));
}

struct BroadcastWork {
  v1::ConnectionFilter filter;
  OutboundFrame frame;
  std::unordered_set<std::string> excluded;
  DataPlane::Done<BroadcastTally> done;
  std::atomic<std::size_t> remaining{0};
  std::atomic<std::uint32_t> queued{0};
  std::atomic<std::uint32_t> dropped{0};
  std::atomic<std::uint32_t> refused{0};

  bool RunsOn(std::size_t) const { return true; }

  void RunOn(EventLoop& loop) {
    BroadcastTally local;
    const auto& sessions = loop.sessions();
    for (auto it = sessions.begin(); it != sessions.end();) {
      // A slow consumer unregisters itself while we are here; step first.
      Session& session = *(it++)->second;
      if (session.state() != v1::CONNECTION_STATE_ACTIVE || !Matches(session, filter)) continue;
      if (!excluded.empty() && excluded.contains(session.id())) continue;
      const auto outcome = ToOutcome(session.Enqueue(frame));
      if (outcome == Outcome::kOk) ++local.queued;
      if (outcome == Outcome::kQueueFull) ++local.dropped_slow_consumers;
      if (outcome == Outcome::kInvalidUtf8) ++local.refused_invalid_utf8;
    }
    queued += local.queued;
    dropped += local.dropped_slow_consumers;
    refused += local.refused_invalid_utf8;
  }

  void Finish() { done({queued.load(), dropped.load(), refused.load(), {}}); }
};

// Lists connections loop by loop, each loop's in id order from `after`; the
// page token is the id of the last connection returned.
struct ListWork : std::enable_shared_from_this<ListWork> {
  ListWork(Gateway& g, v1::ConnectionFilter f, std::uint32_t size, Gateway::Location start,
           DataPlane::Done<ListPage> answer)
      : gateway(g),
        filter(std::move(f)),
        page_size(size),
        loop(start.loop),
        after(start.counter),
        done(std::move(answer)) {}

  void Step() {
    if (loop >= gateway.loop_count()) return done(std::move(page));
    auto& event_loop = gateway.loop(loop);
    event_loop.Post([self = shared_from_this(), &event_loop] { self->RunOn(event_loop); });
  }

  void RunOn(EventLoop& event_loop) {
    WSG_ASSERT_ON_LOOP(event_loop);
    const auto& sessions = event_loop.sessions();
    for (auto it = sessions.upper_bound(after); it != sessions.end(); ++it) {
      if (!Matches(*it->second, filter)) continue;
      if (page.connections.size() == page_size) {
        // One more matches: the page ends at the last one returned.
        page.next_page_token = page.connections.back().connection_id();
        return done(std::move(page));
      }
      it->second->Describe(&page.connections.emplace_back());
    }
    ++loop;
    after = 0;
    Step();
  }

  Gateway& gateway;
  v1::ConnectionFilter filter;
  std::uint32_t page_size;
  std::size_t loop;
  std::uint64_t after;
  DataPlane::Done<ListPage> done;
  ListPage page;
};

}  // namespace

void LocalDataPlane::Push(std::vector<std::string> connection_ids, OutboundFrame frame, Deadline, Done<Results> done) {
  if (connection_ids.size() != 1)
    return OnEach(gateway_, PushEach{std::move(connection_ids), std::move(frame)}, std::move(done));
  AtConnection(
      gateway_, gateway_.Resolve(connection_ids.front()),
      [frame = std::move(frame)](Session* session) { return Results{PushTo(session, frame)}; }, std::move(done));
}

void LocalDataPlane::Deliver(std::vector<Delivery> deliveries, Deadline, Done<Results> done) {
  if (deliveries.size() != 1) return OnEach(gateway_, DeliverEach{std::move(deliveries)}, std::move(done));
  const auto where = gateway_.Resolve(deliveries.front().connection_id);
  AtConnection(
      gateway_, where,
      [deliveries = std::move(deliveries)](Session* session) mutable {
        return Results{DeliverTo(session, deliveries.front())};
      },
      std::move(done));
}

void LocalDataPlane::Broadcast(v1::ConnectionFilter filter, OutboundFrame frame, std::vector<std::string> exclude,
                               Deadline, Done<BroadcastTally> done) {
  auto work = std::make_shared<BroadcastWork>();
  work->filter = std::move(filter);
  work->frame = std::move(frame);
  work->excluded.insert(std::make_move_iterator(exclude.begin()), std::make_move_iterator(exclude.end()));
  work->done = std::move(done);
  FanOut(gateway_, work);
}

void LocalDataPlane::Close(std::string connection_id, std::uint16_t code, std::string reason, Deadline,
                           Done<ConnectionResult> done) {
  AtConnection(
      gateway_, gateway_.Resolve(connection_id),
      [code, reason = std::move(reason)](Session* session) mutable {
        return CloseOn(session, code, std::move(reason));
      },
      std::move(done));
}

void LocalDataPlane::Find(std::string connection_id, Deadline, Done<ConnectionResult> done) {
  AtConnection(gateway_, gateway_.Resolve(connection_id), FindOn, std::move(done));
}

void LocalDataPlane::Describe(std::string connection_id, Deadline,
                              Done<std::pair<ConnectionResult, v1::ClientInfo>> done) {
  AtConnection(gateway_, gateway_.Resolve(connection_id), DescribeOn, std::move(done));
}

void LocalDataPlane::List(v1::ConnectionFilter filter, std::uint32_t page_size, std::string page_token, Deadline,
                          Done<ListPage> done) {
  Gateway::Location start{0, 0};
  if (!page_token.empty()) {
    const auto where = gateway_.Resolve(page_token);
    if (!where) {
      ListPage refused;
      refused.bad_page_token = true;
      return done(std::move(refused));
    }
    start = *where;
  }
  std::make_shared<ListWork>(gateway_, std::move(filter), page_size, start, std::move(done))->Step();
}

void LocalDataPlane::ChangeGroups(std::string connection_id, GroupChange change, Deadline, Done<GroupsResult> done) {
  AtConnection(
      gateway_, gateway_.Resolve(connection_id),
      [change = std::move(change)](Session* session) { return ChangeGroupsOn(session, change); }, std::move(done));
}

}  // namespace wsgateway
