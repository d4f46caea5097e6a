#pragma once
// This process as a node of the gateway: what ListNodes and the cluster's
// membership say about it. Its id is the process epoch, so every
// connection id names the node that owns it.
//
// Thread-safety: Now() and id() from any thread.

#include <string>

#include "gateway/runtime/gateway.hpp"
#include "wsgateway/v1/types.pb.h"

namespace wsgateway {

class SelfNode {
 public:
  explicit SelfNode(const Gateway& gateway);

  // The record with this moment's connection count and state.
  v1::NodeInfo Now() const;
  // Sets where the other replicas reach it (cluster mode). Before any
  // other thread reads the record.
  void SetAdvertisedAddress(std::string address) { info_.set_advertised_address(std::move(address)); }
  // The gateway's epoch as a node id: a new one after a fence.
  std::string id() const;

 private:
  const Gateway& gateway_;
  v1::NodeInfo info_;
};

}  // namespace wsgateway
