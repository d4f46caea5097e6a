#pragma once
// Cluster mode for this process (cluster_redis set): the membership's
// options from the configuration (the password file is read here), and this
// node's record. Its id is the process epoch, so every connection id names
// the node that owns it; connections and the drain are published at every
// renewal.
//
// Start-up only (throws on a bad password file); the Membership it returns
// is safe from any thread.

#include <memory>

#include "cluster/membership.hpp"
#include "gateway/config/config.hpp"
#include "gateway/runtime/gateway.hpp"

namespace wsgateway {

// Null when cluster mode is off. Not started yet.
std::unique_ptr<cluster::Membership> MakeClusterMembership(const Config& config, const Gateway& gateway);

}  // namespace wsgateway
