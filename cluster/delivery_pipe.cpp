#include "cluster/delivery_pipe.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <utility>

#include "cluster/cluster_wire.hpp"

namespace wsgateway::cluster {
namespace {

using Results = DeliveryPipe::Results;

Results Unreachable(std::size_t count) { return Results(count, ConnectionResult{Outcome::kUnreachable, {}}); }

bool SameFrame(const OutboundFrame& a, const OutboundFrame& b) {
  return a.payload == b.payload && a.type == b.type && a.close_code == b.close_code && a.fin == b.fin &&
         a.continuation == b.continuation && a.compress == b.compress;
}

}  // namespace

void DeliveryPipe::Deliver(std::vector<Delivery> deliveries, DataPlane::Deadline deadline,
                           DataPlane::Done<Results> done) {
  std::size_t bytes = 0;
  for (const auto& delivery : deliveries) bytes += delivery.frame.size();
  const auto count = deliveries.size();
  std::vector<Part> batch;
  {
    std::lock_guard lock(mutex_);
    // A peer that is not keeping up is said so now, not queued for without end.
    const bool full = waiting_bytes_ + bytes > kMaxWaitingBytes;
    if (!full) {
      waiting_.push_back({std::move(deliveries), deadline, std::move(done), bytes});
      waiting_bytes_ += bytes;
      if (in_flight_) return;
      in_flight_ = true;
      batch = TakeBatch();
    }
  }
  if (batch.empty()) return done(Unreachable(count));
  SendBatch(std::move(batch));
}

std::vector<DeliveryPipe::Part> DeliveryPipe::TakeBatch() {
  std::vector<Part> batch;
  std::size_t deliveries = 0;
  std::size_t bytes = 0;
  std::size_t taken = 0;
  while (taken < waiting_.size()) {
    const auto& next = waiting_[taken];
    if (taken > 0 &&
        (deliveries + next.deliveries.size() > kMaxBatchDeliveries || bytes + next.bytes > kMaxBatchBytes)) {
      break;
    }
    deliveries += next.deliveries.size();
    bytes += next.bytes;
    ++taken;
  }
  batch.assign(std::make_move_iterator(waiting_.begin()), std::make_move_iterator(waiting_.begin() + taken));
  waiting_.erase(waiting_.begin(), waiting_.begin() + static_cast<std::ptrdiff_t>(taken));
  waiting_bytes_ -= bytes;
  return batch;
}

void DeliveryPipe::SendBatch(std::vector<Part> batch) {
  for (;;) {
    // Parts whose caller has given up are not sent.
    const auto now = std::chrono::steady_clock::now();
    std::vector<Part> live;
    live.reserve(batch.size());
    for (auto& part : batch) {
      if (part.deadline <= now) {
        part.done(Unreachable(part.deliveries.size()));
      } else {
        live.push_back(std::move(part));
      }
    }
    if (!live.empty()) {
      v1::ClusterDeliverRequest request;
      auto deadline = DataPlane::Deadline::max();
      // Each frame goes once; the parts of one push share theirs.
      std::vector<const OutboundFrame*> frames;
      for (const auto& part : live) {
        deadline = std::min(deadline, part.deadline);
        for (const auto& delivery : part.deliveries) {
          auto* wire = request.add_deliveries();
          wire->set_connection_id(delivery.connection_id);
          if (frames.empty() || !SameFrame(*frames.back(), delivery.frame)) {
            frames.push_back(&delivery.frame);
            ToWire(delivery.frame, request.add_frames());
          }
          wire->set_frame(static_cast<std::uint32_t>(frames.size() - 1));
        }
      }
      auto self = shared_from_this();
      send_(std::move(request), deadline,
            [self, live = std::move(live)](const grpc::Status& status, const v1::ClusterResults& response) mutable {
              self->Answered(std::move(live), status, response);
            });
      return;
    }
    std::lock_guard lock(mutex_);
    if (waiting_.empty()) {
      in_flight_ = false;
      return;
    }
    batch = TakeBatch();
  }
}

void DeliveryPipe::Answered(std::vector<Part> batch, const grpc::Status& status, const v1::ClusterResults& response) {
  std::size_t expected = 0;
  for (const auto& part : batch) expected += part.deliveries.size();
  const bool usable = status.ok() && static_cast<std::size_t>(response.results_size()) == expected;
  int next = 0;
  for (auto& part : batch) {
    if (!usable) {
      part.done(Unreachable(part.deliveries.size()));
      continue;
    }
    Results results;
    results.reserve(part.deliveries.size());
    for (std::size_t i = 0; i < part.deliveries.size(); ++i) results.push_back(FromWire(response.results(next++)));
    part.done(std::move(results));
  }
  std::vector<Part> more;
  {
    std::lock_guard lock(mutex_);
    if (waiting_.empty()) {
      in_flight_ = false;
      return;
    }
    more = TakeBatch();
  }
  SendBatch(std::move(more));
}

}  // namespace wsgateway::cluster
