// A forwarded call must mean exactly what the local call means: every
// frame and every outcome survives the node-to-node wire unchanged.

#include "cluster/cluster_wire.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace wsgateway::cluster {
namespace {

OutboundFrame RoundTrip(const OutboundFrame& frame) {
  v1::ClusterFrame wire;
  ToWire(frame, &wire);
  v1::ClusterFrame parsed;
  EXPECT_TRUE(parsed.ParseFromString(wire.SerializeAsString()));
  return FromWire(std::move(parsed));
}

TEST(ClusterWireTest, EveryKindOfFrameSurvives) {
  for (const auto type : {FrameType::kText, FrameType::kBinary, FrameType::kPing, FrameType::kPong}) {
    for (const auto compress : {CompressMode::kBySize, CompressMode::kAlways, CompressMode::kNever}) {
      for (const bool fin : {true, false}) {
        OutboundFrame frame{type, std::make_shared<const std::string>("payload\0x", 9), 0};
        frame.fin = fin;
        frame.continuation = !fin;
        frame.compress = compress;
        const auto back = RoundTrip(frame);
        EXPECT_EQ(back.type, frame.type);
        EXPECT_EQ(*back.payload, *frame.payload);
        EXPECT_EQ(back.fin, fin);
        EXPECT_EQ(back.continuation, !fin);
        EXPECT_EQ(back.compress, compress);
        EXPECT_FALSE(back.compressed);
      }
    }
  }
  const auto close = RoundTrip(MakeCloseFrame(4001, "moved"));
  EXPECT_EQ(close.type, FrameType::kClose);
  EXPECT_EQ(close.close_code, 4001);
  EXPECT_EQ(*close.payload, "moved");
  const auto empty = RoundTrip(OutboundFrame{FrameType::kBinary, nullptr, 0});
  EXPECT_EQ(empty.size(), 0u);
}

TEST(ClusterWireTest, EveryOutcomeSurvivesAndAnUnreadableOneIsUnreachable) {
  for (const auto outcome : {Outcome::kOk, Outcome::kNotFound, Outcome::kNotActive, Outcome::kQueueFull,
                             Outcome::kNoMessageToContinue, Outcome::kInvalidUtf8, Outcome::kTooManyGroups}) {
    v1::ClusterResult wire;
    ToWire({outcome, v1::CONNECTION_STATE_CLOSING}, &wire);
    const auto back = FromWire(wire);
    EXPECT_EQ(back.outcome, outcome);
    EXPECT_EQ(back.state, v1::CONNECTION_STATE_CLOSING);
  }
  // An answer from a newer peer this node cannot read says nothing about
  // the connection: never a wrong "not found".
  v1::ClusterResult unknown;
  unknown.set_outcome(static_cast<v1::ClusterOutcome>(99));
  EXPECT_EQ(FromWire(unknown).outcome, Outcome::kUnreachable);
}

}  // namespace
}  // namespace wsgateway::cluster
