#include "cluster/cluster_wire.hpp"

#include <memory>
#include <string>

namespace wsgateway::cluster {
namespace {

v1::ClusterFrameType TypeToWire(FrameType type) {
  switch (type) {
    case FrameType::kText:
      return v1::CLUSTER_FRAME_TYPE_TEXT;
    case FrameType::kBinary:
      return v1::CLUSTER_FRAME_TYPE_BINARY;
    case FrameType::kPing:
      return v1::CLUSTER_FRAME_TYPE_PING;
    case FrameType::kPong:
      return v1::CLUSTER_FRAME_TYPE_PONG;
    case FrameType::kClose:
      break;
  }
  return v1::CLUSTER_FRAME_TYPE_CLOSE;
}

FrameType TypeFromWire(v1::ClusterFrameType type) {
  switch (type) {
    case v1::CLUSTER_FRAME_TYPE_BINARY:
      return FrameType::kBinary;
    case v1::CLUSTER_FRAME_TYPE_PING:
      return FrameType::kPing;
    case v1::CLUSTER_FRAME_TYPE_PONG:
      return FrameType::kPong;
    case v1::CLUSTER_FRAME_TYPE_CLOSE:
      return FrameType::kClose;
    default:
      return FrameType::kText;
  }
}

v1::ClusterCompressMode CompressToWire(CompressMode mode) {
  switch (mode) {
    case CompressMode::kAlways:
      return v1::CLUSTER_COMPRESS_MODE_ALWAYS;
    case CompressMode::kNever:
      return v1::CLUSTER_COMPRESS_MODE_NEVER;
    case CompressMode::kBySize:
      break;
  }
  return v1::CLUSTER_COMPRESS_MODE_BY_SIZE;
}

CompressMode CompressFromWire(v1::ClusterCompressMode mode) {
  switch (mode) {
    case v1::CLUSTER_COMPRESS_MODE_ALWAYS:
      return CompressMode::kAlways;
    case v1::CLUSTER_COMPRESS_MODE_NEVER:
      return CompressMode::kNever;
    default:
      return CompressMode::kBySize;
  }
}

v1::ClusterOutcome OutcomeToWire(Outcome outcome) {
  switch (outcome) {
    case Outcome::kOk:
      return v1::CLUSTER_OUTCOME_OK;
    case Outcome::kNotFound:
      return v1::CLUSTER_OUTCOME_NOT_FOUND;
    case Outcome::kNotActive:
      return v1::CLUSTER_OUTCOME_NOT_ACTIVE;
    case Outcome::kQueueFull:
      return v1::CLUSTER_OUTCOME_QUEUE_FULL;
    case Outcome::kNoMessageToContinue:
      return v1::CLUSTER_OUTCOME_NO_MESSAGE_TO_CONTINUE;
    case Outcome::kInvalidUtf8:
      return v1::CLUSTER_OUTCOME_INVALID_UTF8;
    case Outcome::kTooManyGroups:
      return v1::CLUSTER_OUTCOME_TOO_MANY_GROUPS;
    case Outcome::kUnreachable:
      // Never answered by a node about its own connections.
      break;
  }
  return v1::CLUSTER_OUTCOME_UNSPECIFIED;
}

Outcome OutcomeFromWire(v1::ClusterOutcome outcome) {
  switch (outcome) {
    case v1::CLUSTER_OUTCOME_OK:
      return Outcome::kOk;
    case v1::CLUSTER_OUTCOME_NOT_FOUND:
      return Outcome::kNotFound;
    case v1::CLUSTER_OUTCOME_NOT_ACTIVE:
      return Outcome::kNotActive;
    case v1::CLUSTER_OUTCOME_QUEUE_FULL:
      return Outcome::kQueueFull;
    case v1::CLUSTER_OUTCOME_NO_MESSAGE_TO_CONTINUE:
      return Outcome::kNoMessageToContinue;
    case v1::CLUSTER_OUTCOME_INVALID_UTF8:
      return Outcome::kInvalidUtf8;
    case v1::CLUSTER_OUTCOME_TOO_MANY_GROUPS:
      return Outcome::kTooManyGroups;
    default:
      // An answer this node cannot read says nothing about the connection.
      return Outcome::kUnreachable;
  }
}

}  // namespace

void ToWire(const OutboundFrame& frame, v1::ClusterFrame* out) {
  out->set_type(TypeToWire(frame.type));
  if (frame.payload) out->set_payload(*frame.payload);
  out->set_close_code(frame.close_code);
  out->set_fin(frame.fin);
  out->set_continuation(frame.continuation);
  out->set_compress(CompressToWire(frame.compress));
}

OutboundFrame FromWire(v1::ClusterFrame&& frame) {
  OutboundFrame out;
  out.type = TypeFromWire(frame.type());
  out.payload = std::make_shared<const std::string>(std::move(*frame.mutable_payload()));
  out.close_code = static_cast<std::uint16_t>(frame.close_code());
  out.fin = frame.fin();
  out.continuation = frame.continuation();
  out.compress = CompressFromWire(frame.compress());
  return out;
}

void ToWire(const ConnectionResult& result, v1::ClusterResult* out) {
  out->set_outcome(OutcomeToWire(result.outcome));
  out->set_state(result.state);
}

ConnectionResult FromWire(const v1::ClusterResult& result) {
  return {OutcomeFromWire(result.outcome()), result.state()};
}

}  // namespace wsgateway::cluster
