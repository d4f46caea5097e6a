// The per-peer pipe of forwarded pushes: one call in flight, what comes
// meanwhile batched into the next, in order, each frame once per call; a
// failed call or a part whose caller gave up is answered unreachable.

#include "cluster/delivery_pipe.hpp"

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace wsgateway::cluster {
namespace {

using namespace std::chrono_literals;
using Results = DeliveryPipe::Results;

// Records every call and answers it when the test says.
struct FakePeer {
  struct Call {
    v1::ClusterDeliverRequest request;
    DeliveryPipe::Answer answer;
  };
  std::vector<Call> calls;

  DeliveryPipe::Send Sender() {
    return [this](v1::ClusterDeliverRequest request, DataPlane::Deadline, DeliveryPipe::Answer answer) {
      calls.push_back({std::move(request), std::move(answer)});
    };
  }
  // Answers call `i`: every delivery OK, or the status.
  void Answer(std::size_t i, const grpc::Status& status = grpc::Status::OK) {
    v1::ClusterResults results;
    for (int k = 0; k < calls[i].request.deliveries_size(); ++k) {
      results.add_results()->set_outcome(v1::CLUSTER_OUTCOME_OK);
    }
    auto answer = std::move(calls[i].answer);
    answer(status, results);
  }
};

Delivery Push(const std::string& id, const std::shared_ptr<const std::string>& payload) {
  return {id, Delivery::Kind::kPush, OutboundFrame{FrameType::kText, payload, 0}};
}

DataPlane::Deadline Later() { return std::chrono::steady_clock::now() + 10s; }

TEST(DeliveryPipeTest, OneCallInFlightAndWhatComesMeanwhileGoesTogetherInOrder) {
  FakePeer peer;
  auto pipe = std::make_shared<DeliveryPipe>(peer.Sender());
  const auto a = std::make_shared<const std::string>("a");
  const auto b = std::make_shared<const std::string>("b");
  std::vector<std::string> answered;
  const auto record = [&answered](std::string name) {
    return [&answered, name](Results results) {
      EXPECT_EQ(results[0].outcome, Outcome::kOk);
      answered.push_back(name);
    };
  };
  pipe->Deliver({Push("c1", a)}, Later(), record("first"));
  ASSERT_EQ(peer.calls.size(), 1u) << "a push alone goes at once";
  pipe->Deliver({Push("c1", b), Push("c2", b)}, Later(), record("second"));
  pipe->Deliver({Push("c1", a)}, Later(), record("third"));
  EXPECT_EQ(peer.calls.size(), 1u) << "nothing overtakes the call in flight";

  peer.Answer(0);
  ASSERT_EQ(peer.calls.size(), 2u);
  const auto& batch = peer.calls[1].request;
  ASSERT_EQ(batch.deliveries_size(), 3);
  EXPECT_EQ(batch.frames_size(), 2) << "the two deliveries of 'b' share one frame";
  EXPECT_EQ(batch.deliveries(0).connection_id(), "c1");
  EXPECT_EQ(batch.frames(static_cast<int>(batch.deliveries(0).frame())).payload(), "b");
  EXPECT_EQ(batch.deliveries(1).frame(), batch.deliveries(0).frame());
  EXPECT_EQ(batch.frames(static_cast<int>(batch.deliveries(2).frame())).payload(), "a");
  peer.Answer(1);
  EXPECT_EQ(answered, (std::vector<std::string>{"first", "second", "third"}));

  pipe->Deliver({Push("c3", a)}, Later(), record("fourth"));
  EXPECT_EQ(peer.calls.size(), 3u) << "an idle pipe sends at once again";
}

TEST(DeliveryPipeTest, AFailedCallAndAPartWhoseCallerGaveUpAreUnreachable) {
  FakePeer peer;
  auto pipe = std::make_shared<DeliveryPipe>(peer.Sender());
  const auto payload = std::make_shared<const std::string>("x");
  std::vector<Outcome> outcomes;
  const auto record = [&outcomes](Results results) {
    for (const auto& result : results) outcomes.push_back(result.outcome);
  };
  pipe->Deliver({Push("c1", payload)}, Later(), record);
  pipe->Deliver({Push("c2", payload)}, std::chrono::steady_clock::now() - 1ms, record);
  pipe->Deliver({Push("c3", payload)}, Later(), record);
  peer.Answer(0, grpc::Status(grpc::StatusCode::DEADLINE_EXCEEDED, "slow"));
  EXPECT_EQ(outcomes, (std::vector<Outcome>{Outcome::kUnreachable, Outcome::kUnreachable}));
  ASSERT_EQ(peer.calls.size(), 2u);
  ASSERT_EQ(peer.calls[1].request.deliveries_size(), 1) << "the expired part is not sent";
  EXPECT_EQ(peer.calls[1].request.deliveries(0).connection_id(), "c3");
  peer.Answer(1);
  EXPECT_EQ(outcomes, (std::vector<Outcome>{Outcome::kUnreachable, Outcome::kUnreachable, Outcome::kOk}));
}

TEST(DeliveryPipeTest, APeerThatDoesNotKeepUpIsUnreachableBeyondTheWaitingBound) {
  FakePeer peer;
  auto pipe = std::make_shared<DeliveryPipe>(peer.Sender());
  const auto big = std::make_shared<const std::string>(DeliveryPipe::kMaxWaitingBytes / 2 + 1, 'x');
  int unreachable = 0;
  const auto record = [&unreachable](Results results) {
    if (results[0].outcome == Outcome::kUnreachable) ++unreachable;
  };
  pipe->Deliver({Push("c1", big)}, Later(), record);  // in flight
  pipe->Deliver({Push("c2", big)}, Later(), record);  // waits
  EXPECT_EQ(unreachable, 0);
  pipe->Deliver({Push("c3", big)}, Later(), record);  // past the bound
  EXPECT_EQ(unreachable, 1);
  EXPECT_EQ(peer.calls.size(), 1u);
}

}  // namespace
}  // namespace wsgateway::cluster
