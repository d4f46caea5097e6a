#include "server/self_node.hpp"

#include <google/protobuf/util/time_util.h>
#include <unistd.h>

#include <cstdlib>

#include "gateway/data_plane/connection_id.hpp"

namespace wsgateway {
namespace {

// POD_NAME in Kubernetes (the chart sets it), else the host name.
std::string PodName() {
  if (const char* pod = std::getenv("POD_NAME"); pod != nullptr && *pod != '\0') return pod;
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) return {};
  return host;
}

}  // namespace

SelfNode::SelfNode(const Gateway& gateway) : gateway_(gateway) {
  info_.set_node_id(FormatEpoch(gateway.epoch()));
  info_.set_pod_name(PodName());
  info_.set_version(WSGATEWAY_VERSION);
  *info_.mutable_started_at() = google::protobuf::util::TimeUtil::GetCurrentTime();
}

std::string SelfNode::id() const { return FormatEpoch(gateway_.epoch()); }

v1::NodeInfo SelfNode::Now() const {
  auto now = info_;
  now.set_node_id(id());
  now.set_connections(gateway_.connection_count());
  now.set_state(gateway_.draining() ? v1::NODE_STATE_DRAINING : v1::NODE_STATE_SERVING);
  return now;
}

}  // namespace wsgateway
