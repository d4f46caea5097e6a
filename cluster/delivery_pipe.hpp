#pragma once
// One peer's forwarded pushes and closes, kept in order and batched: one
// Cluster.Deliver call is in flight to the peer at a time, and whatever
// comes meanwhile goes together as the next call (group commit). A push
// alone goes at once; under load the batches grow, so gRPC's per-call cost
// (which dominates a forwarded push) is paid once for many, and two calls
// for one connection can never overtake each other on the way.
//
// Thread-safety: Deliver from any thread; answers run on gRPC threads.

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "gateway/data_plane/data_plane.hpp"
#include "wsgateway/v1/cluster.pb.h"

namespace grpc {
class Status;
}

namespace wsgateway::cluster {

class DeliveryPipe : public std::enable_shared_from_this<DeliveryPipe> {
 public:
  using Results = std::vector<ConnectionResult>;
  using Answer = std::function<void(const grpc::Status&, const v1::ClusterResults&)>;
  // Makes one Cluster.Deliver call to the peer and answers it.
  using Send = std::function<void(v1::ClusterDeliverRequest, DataPlane::Deadline, Answer)>;

  // Most deliveries and payload bytes in one call, and most payload bytes
  // waiting for a peer that does not answer: past it a delivery is answered
  // kUnreachable at once.
  static constexpr std::size_t kMaxBatchDeliveries = 4096;
  static constexpr std::size_t kMaxBatchBytes = 8 * 1024 * 1024;
  static constexpr std::size_t kMaxWaitingBytes = 64 * 1024 * 1024;

  explicit DeliveryPipe(Send send) : send_(std::move(send)) {}

  // Sends `deliveries` after everything given before; answers their
  // results in their order. A part whose deadline passed before its turn
  // is answered kUnreachable without being sent.
  void Deliver(std::vector<Delivery> deliveries, DataPlane::Deadline deadline, DataPlane::Done<Results> done);

 private:
  struct Part {
    std::vector<Delivery> deliveries;
    DataPlane::Deadline deadline;
    DataPlane::Done<Results> done;
    std::size_t bytes = 0;
  };

  // Takes the next batch off waiting_ (under the lock).
  std::vector<Part> TakeBatch();
  void SendBatch(std::vector<Part> batch);
  void Answered(std::vector<Part> batch, const grpc::Status& status, const v1::ClusterResults& response);

  const Send send_;
  std::mutex mutex_;
  bool in_flight_ = false;
  std::vector<Part> waiting_;
  std::size_t waiting_bytes_ = 0;
};

}  // namespace wsgateway::cluster
