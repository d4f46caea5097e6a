#pragma once
// The data plane's values on the node-to-node wire (cluster.proto): one
// place for every conversion, both ways, so a forwarded call means exactly
// what the local call means.

#include "gateway/data_plane/data_plane.hpp"
#include "gateway/websocket/outbound_frame.hpp"
#include "wsgateway/v1/cluster.pb.h"

namespace wsgateway::cluster {

// Copies the payload: one copy per forwarded call, not per connection.
void ToWire(const OutboundFrame& frame, v1::ClusterFrame* out);
// Moves the payload out of `frame`.
OutboundFrame FromWire(v1::ClusterFrame&& frame);

void ToWire(const ConnectionResult& result, v1::ClusterResult* out);
ConnectionResult FromWire(const v1::ClusterResult& result);

}  // namespace wsgateway::cluster
