// AdminService over a real in-process gRPC server, against a DataPlane of
// the test's own that records what it was asked and answers canned results:
// the service needs nothing of the local data plane, checks its input at its
// edge before the data plane sees it, and maps each Outcome to its status.

#include "admin/admin_service.hpp"

#include <gmock/gmock.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "admin/status_mapping.hpp"
#include "gateway/data_plane/group_rules.hpp"

namespace wsgateway::admin {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kId[] = "00000000000000ab-1-2a";
constexpr std::size_t kQueueLimit = 4096;

// Answers at once, on the calling gRPC thread, with what the test set.
class FakeDataPlane final : public DataPlane {
 public:
  void Push(std::vector<std::string> connection_ids, OutboundFrame frame, Deadline,
            Done<std::vector<ConnectionResult>> done) override {
    Record("Push");
    {
      std::lock_guard lock(mutex_);
      pushed_ids = std::move(connection_ids);
      pushed_frame = std::move(frame);
    }
    done(results);
  }
  void Deliver(std::vector<Delivery>, Deadline, Done<std::vector<ConnectionResult>> done) override {
    Record("Deliver");
    done(results);
  }
  void Broadcast(v1::ConnectionFilter filter, OutboundFrame, std::vector<std::string> exclude, Deadline,
                 Done<BroadcastTally> done) override {
    Record("Broadcast");
    {
      std::lock_guard lock(mutex_);
      broadcast_filter = std::move(filter);
      excluded = std::move(exclude);
    }
    done(tally);
  }
  void Close(std::string connection_id, std::uint16_t code, std::string reason, Deadline,
             Done<ConnectionResult> done) override {
    Record("Close");
    {
      std::lock_guard lock(mutex_);
      closed = {std::move(connection_id), code, std::move(reason)};
    }
    done(result);
  }
  void Find(std::string, Deadline deadline, Done<ConnectionResult> done) override {
    Record("Find");
    {
      std::lock_guard lock(mutex_);
      found_with_deadline = deadline;
    }
    done(result);
  }
  void Describe(std::string, Deadline, Done<std::pair<ConnectionResult, v1::ClientInfo>> done) override {
    Record("Describe");
    done({result, info});
  }
  void List(v1::ConnectionFilter, std::uint32_t page_size, std::string page_token, Deadline,
            Done<ListPage> done) override {
    Record("List");
    {
      std::lock_guard lock(mutex_);
      listed = {page_size, std::move(page_token)};
    }
    done(page);
  }
  void ChangeGroups(std::string, GroupChange change, Deadline, Done<GroupsResult> done) override {
    Record("ChangeGroups");
    {
      std::lock_guard lock(mutex_);
      changed = std::move(change);
    }
    done(groups);
  }

  std::vector<std::string> calls() {
    std::lock_guard lock(mutex_);
    return calls_;
  }

  // Canned answers (set before a call).
  std::vector<ConnectionResult> results;
  ConnectionResult result;
  v1::ClientInfo info;
  BroadcastTally tally;
  ListPage page;
  GroupsResult groups;

  // What the calls passed (read after a call returned).
  std::vector<std::string> pushed_ids;
  OutboundFrame pushed_frame;
  v1::ConnectionFilter broadcast_filter;
  std::vector<std::string> excluded;
  std::tuple<std::string, std::uint16_t, std::string> closed;
  std::pair<std::uint32_t, std::string> listed;
  GroupChange changed;
  Deadline found_with_deadline;

 private:
  void Record(std::string call) {
    std::lock_guard lock(mutex_);
    calls_.push_back(std::move(call));
  }

  std::mutex mutex_;
  std::vector<std::string> calls_;
};

class AdminServiceTest : public ::testing::Test {
 protected:
  AdminServiceTest() {
    config_.max_message_bytes = 1024;
    config_.send_queue_max_bytes = kQueueLimit;
  }

  void SetUp() override {
    service_ = std::make_unique<AdminService>(
        plane_, [] { return std::vector<v1::NodeInfo>(2); }, config_, metrics_, tokens_);
    grpc::ServerBuilder builder;
    builder.RegisterService(service_.get());
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    stub_ = v1::Admin::NewStub(server_->InProcessChannel(grpc::ChannelArguments()));
  }

  void TearDown() override {
    if (server_) server_->Shutdown();
  }

  grpc::Status Push(std::vector<std::string> ids, const std::string& text, v1::PushResponse* response) {
    v1::PushRequest request;
    for (auto& id : ids) request.add_connection_ids(std::move(id));
    request.mutable_frame()->set_payload(text);
    grpc::ClientContext context;
    return stub_->Push(&context, request, response);
  }

  grpc::Status PushOne(Outcome outcome, v1::ConnectionState state = v1::CONNECTION_STATE_ACTIVE) {
    plane_.results = {{outcome, state}};
    v1::PushResponse response;
    return Push({kId}, "hi", &response);
  }

  grpc::Status Disconnect(const std::string& id, std::uint32_t code, const std::string& reason) {
    v1::DisconnectRequest request;
    request.set_connection_id(id);
    request.set_code(code);
    request.set_reason(reason);
    v1::DisconnectResponse response;
    grpc::ClientContext context;
    return stub_->Disconnect(&context, request, &response);
  }

  grpc::Status Join(const std::vector<std::string>& groups, v1::JoinGroupResponse* response) {
    v1::JoinGroupRequest request;
    request.set_connection_id(kId);
    for (const auto& group : groups) request.add_groups(group);
    grpc::ClientContext context;
    return stub_->JoinGroup(&context, request, response);
  }

  Config config_;
  metrics::GatewayMetrics metrics_;
  BearerTokens tokens_{"", {}};
  FakeDataPlane plane_;
  std::unique_ptr<AdminService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<v1::Admin::Stub> stub_;
};

// A push to one connection: its outcome is the call's status.
TEST_F(AdminServiceTest, PushToOneConnectionAnswersItsOutcomeAsTheStatus) {
  v1::PushResponse response;
  plane_.results = {{Outcome::kOk, v1::CONNECTION_STATE_ACTIVE}};
  ASSERT_TRUE(Push({kId}, "hi", &response).ok());
  EXPECT_EQ(response.queued(), 1u);
  EXPECT_THAT(plane_.pushed_ids, ElementsAre(kId));
  ASSERT_NE(plane_.pushed_frame.payload, nullptr);
  EXPECT_EQ(*plane_.pushed_frame.payload, "hi");

  const auto not_found = PushOne(Outcome::kNotFound, v1::CONNECTION_STATE_UNSPECIFIED);
  EXPECT_EQ(not_found.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_EQ(not_found.error_message(), ConnectionNotFound(kId).error_message());

  const auto closing = PushOne(Outcome::kNotActive, v1::CONNECTION_STATE_CLOSING);
  EXPECT_EQ(closing.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(closing.error_message(),
            "connection '" + std::string(kId) + "' is CLOSING; only ACTIVE connections accept messages");

  const auto full = PushOne(Outcome::kQueueFull);
  EXPECT_EQ(full.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(full.error_message(), HasSubstr(std::to_string(kQueueLimit) + " bytes"));

  const auto no_message = PushOne(Outcome::kNoMessageToContinue);
  EXPECT_EQ(no_message.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(no_message.error_message(), HasSubstr("no fragmented message of this opcode open"));

  const auto invalid = PushOne(Outcome::kInvalidUtf8);
  EXPECT_EQ(invalid.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(invalid.error_message(), InvalidFragmentText(kId).error_message());
}

// A push to several connections answers OK with one result per id, in the
// order of the ids, and counts those that took the frame.
TEST_F(AdminServiceTest, PushToSeveralConnectionsAnswersOneResultEach) {
  plane_.results = {{Outcome::kOk, v1::CONNECTION_STATE_ACTIVE},
                    {Outcome::kNotFound, v1::CONNECTION_STATE_UNSPECIFIED},
                    {Outcome::kNotActive, v1::CONNECTION_STATE_HANDSHAKE},
                    {Outcome::kOk, v1::CONNECTION_STATE_ACTIVE}};
  v1::PushResponse response;
  ASSERT_TRUE(Push({"a", "b", "c", "d"}, "hi", &response).ok());
  EXPECT_EQ(response.queued(), 2u);
  ASSERT_EQ(response.results_size(), 4);
  EXPECT_EQ(response.results(0).connection_id(), "a");
  EXPECT_EQ(response.results(0).code(), 0);
  EXPECT_EQ(response.results(1).connection_id(), "b");
  EXPECT_EQ(response.results(1).code(), static_cast<int>(grpc::StatusCode::NOT_FOUND));
  EXPECT_EQ(response.results(1).message(), ConnectionNotFound("b").error_message());
  EXPECT_EQ(response.results(2).code(), static_cast<int>(grpc::StatusCode::FAILED_PRECONDITION));
  EXPECT_THAT(response.results(2).message(), HasSubstr("is HANDSHAKE"));
  EXPECT_EQ(response.results(3).connection_id(), "d");
  EXPECT_THAT(plane_.pushed_ids, ElementsAre("a", "b", "c", "d"));
}

// Input the edge refuses never reaches the data plane.
TEST_F(AdminServiceTest, RefusedInputNeverReachesTheDataPlane) {
  v1::PushResponse push;
  EXPECT_EQ(Push({}, "hi", &push).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Push({kId, ""}, "hi", &push).error_message(), MissingConnectionId("connection_ids[1]").error_message());
  EXPECT_EQ(Push({kId}, std::string(2048, 'x'), &push).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(Disconnect("", 1000, "").error_message(), MissingConnectionId("connection_id").error_message());
  EXPECT_EQ(Disconnect(kId, 1005, "").error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::JoinGroupResponse join;
  EXPECT_EQ(Join({}, &join).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  v1::ListConnectionsRequest list;
  list.set_page_size(1001);
  v1::ListConnectionsResponse listed;
  grpc::ClientContext context;
  EXPECT_EQ(stub_->ListConnections(&context, list, &listed).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_TRUE(plane_.calls().empty());
}

// Broadcast passes its filter and exclusions on and answers the tally; a
// piece refused as invalid UTF-8 somewhere makes the call INVALID_ARGUMENT.
TEST_F(AdminServiceTest, BroadcastAnswersTheTally) {
  plane_.tally = {.queued = 5,
                  .dropped_slow_consumers = 2,
                  .refused_invalid_utf8 = 0,
                  .failed_nodes = {{"00000000000000cd", "deadline exceeded"}}};
  v1::BroadcastRequest request;
  request.mutable_frame()->set_payload("all");
  request.mutable_filter()->set_group("lobby");
  request.add_exclude_connection_ids("x");
  v1::BroadcastResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->Broadcast(&context, request, &response).ok());
  }
  EXPECT_EQ(response.queued(), 5u);
  EXPECT_EQ(response.dropped_slow_consumers(), 2u);
  ASSERT_EQ(response.failed_nodes_size(), 1);
  EXPECT_EQ(response.failed_nodes(0).node_id(), "00000000000000cd");
  EXPECT_EQ(response.failed_nodes(0).message(), "deadline exceeded");
  EXPECT_EQ(plane_.broadcast_filter.group(), "lobby");
  EXPECT_THAT(plane_.excluded, ElementsAre("x"));

  plane_.tally = {.queued = 3, .dropped_slow_consumers = 0, .refused_invalid_utf8 = 1, .failed_nodes = {}};
  grpc::ClientContext context;
  const auto refused = stub_->Broadcast(&context, request, &response);
  EXPECT_EQ(refused.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(refused.error_message(), HasSubstr("open on 1 connections invalid UTF-8"));
  EXPECT_THAT(refused.error_message(), HasSubstr("(3 other connections took it)"));
}

// Disconnect hands the code as given (0 included) to the data plane, and
// names a connection that is not ACTIVE with its state.
TEST_F(AdminServiceTest, DisconnectMapsNotActiveAndNotFound) {
  plane_.result = {Outcome::kOk, v1::CONNECTION_STATE_ACTIVE};
  ASSERT_TRUE(Disconnect(kId, 0, "bye").ok());
  EXPECT_EQ(plane_.closed, std::make_tuple(std::string(kId), std::uint16_t{0}, std::string("bye")));

  plane_.result = {Outcome::kNotActive, v1::CONNECTION_STATE_CONNECTION};
  const auto early = Disconnect(kId, 4000, "");
  EXPECT_EQ(early.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(early.error_message(),
            "connection '" + std::string(kId) + "' is CONNECTION; only ACTIVE connections can be disconnected");

  plane_.result = {};
  EXPECT_EQ(Disconnect(kId, 1000, "").error_code(), grpc::StatusCode::NOT_FOUND);
}

// Exist and IsEstablished read Find's answer; GetClientInfo Describe's.
TEST_F(AdminServiceTest, ExistIsEstablishedAndGetClientInfoReadTheAnswer) {
  auto exist = [&] {
    v1::ExistRequest request;
    request.set_connection_id(kId);
    v1::ExistResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->Exist(&context, request, &response).ok());
    return response.exists();
  };
  auto established = [&] {
    v1::IsEstablishedRequest request;
    request.set_connection_id(kId);
    v1::IsEstablishedResponse response;
    grpc::ClientContext context;
    EXPECT_TRUE(stub_->IsEstablished(&context, request, &response).ok());
    return response.established();
  };
  plane_.result = {Outcome::kOk, v1::CONNECTION_STATE_HANDSHAKE};
  EXPECT_TRUE(exist());
  EXPECT_FALSE(established());
  plane_.result = {Outcome::kOk, v1::CONNECTION_STATE_ACTIVE};
  EXPECT_TRUE(established());
  plane_.result = {};
  EXPECT_FALSE(exist());
  EXPECT_FALSE(established());

  v1::GetClientInfoRequest request;
  request.set_connection_id(kId);
  v1::GetClientInfoResponse response;
  {
    grpc::ClientContext context;
    EXPECT_EQ(stub_->GetClientInfo(&context, request, &response).error_code(), grpc::StatusCode::NOT_FOUND);
  }
  plane_.result = {Outcome::kOk, v1::CONNECTION_STATE_ACTIVE};
  plane_.info.set_connection_id(kId);
  plane_.info.set_path("/chat");
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->GetClientInfo(&context, request, &response).ok());
  EXPECT_EQ(response.info().path(), "/chat");
}

// ListConnections asks for the default page size when none is given, and
// answers a page token the data plane did not issue as INVALID_ARGUMENT.
TEST_F(AdminServiceTest, ListConnectionsPassesThePageAndRefusesForeignTokens) {
  plane_.page.connections.resize(2);
  plane_.page.connections[0].set_connection_id("a");
  plane_.page.connections[1].set_connection_id("b");
  plane_.page.next_page_token = "b";
  v1::ListConnectionsRequest request;
  v1::ListConnectionsResponse response;
  {
    grpc::ClientContext context;
    ASSERT_TRUE(stub_->ListConnections(&context, request, &response).ok());
  }
  EXPECT_EQ(plane_.listed, std::make_pair(std::uint32_t{100}, std::string()));
  ASSERT_EQ(response.connections_size(), 2);
  EXPECT_EQ(response.connections(1).connection_id(), "b");
  EXPECT_EQ(response.next_page_token(), "b");

  plane_.page = {};
  plane_.page.bad_page_token = true;
  request.set_page_token("elsewhere");
  grpc::ClientContext context;
  const auto bad = stub_->ListConnections(&context, request, &response);
  EXPECT_EQ(bad.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(bad.error_message(), "page_token was not issued by this gateway process; start again without one");
}

// Join hands the data plane sorted, distinct names and answers the groups,
// or the limit with the numbers the data plane gave.
TEST_F(AdminServiceTest, JoinGroupPassesDistinctNamesAndMapsTheLimit) {
  plane_.groups.result = {Outcome::kOk, v1::CONNECTION_STATE_ACTIVE};
  plane_.groups.groups = {"a", "b"};
  v1::JoinGroupResponse response;
  ASSERT_TRUE(Join({"b", "a", "b"}, &response).ok());
  EXPECT_EQ(plane_.changed.kind, GroupChange::Kind::kJoin);
  EXPECT_THAT(plane_.changed.names, ElementsAre("a", "b"));
  EXPECT_THAT(response.groups(), ElementsAre("a", "b"));

  plane_.groups = {};
  plane_.groups.result = {Outcome::kTooManyGroups, v1::CONNECTION_STATE_ACTIVE};
  plane_.groups.member_of = kMaxGroupsPerConnection;
  plane_.groups.joining = 2;
  const auto over = Join({"c", "d"}, &response);
  EXPECT_EQ(over.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_EQ(over.error_message(), TooManyGroups(kId, kMaxGroupsPerConnection, 2).error_message());

  plane_.groups.result = {Outcome::kNotActive, v1::CONNECTION_STATE_CLOSING};
  const auto closing = Join({"c"}, &response);
  EXPECT_EQ(closing.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(closing.error_message(), HasSubstr("is CLOSING; only ACTIVE connections can join groups"));
}

// An owner that did not answer is UNAVAILABLE (retryable), naming the
// node, never a wrong false; the data plane is given the caller's deadline.
TEST_F(AdminServiceTest, AnUnreachableOwnerIsUnavailableAndTheDeadlineIsPassedOn) {
  plane_.result = {Outcome::kUnreachable, v1::CONNECTION_STATE_UNSPECIFIED};
  v1::ExistRequest request;
  request.set_connection_id(kId);
  v1::ExistResponse response;
  grpc::ClientContext context;
  const auto before = std::chrono::steady_clock::now();
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(30));
  const auto exist = stub_->Exist(&context, request, &response);
  EXPECT_EQ(exist.error_code(), grpc::StatusCode::UNAVAILABLE) << "neither true nor false is known";

  const auto status = Disconnect(kId, 1000, "");
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("node 00000000000000ab"));
  EXPECT_THAT(status.error_message(), HasSubstr("retry"));

  EXPECT_GT(plane_.found_with_deadline, before + std::chrono::seconds(25));
  EXPECT_LT(plane_.found_with_deadline, before + std::chrono::seconds(35));
}

TEST_F(AdminServiceTest, ListNodesAnswersTheDirectory) {
  v1::ListNodesResponse response;
  grpc::ClientContext context;
  ASSERT_TRUE(stub_->ListNodes(&context, v1::ListNodesRequest{}, &response).ok());
  EXPECT_EQ(response.nodes_size(), 2);
}

}  // namespace
}  // namespace wsgateway::admin
