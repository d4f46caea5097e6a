#pragma once
// One admin call in progress: finishes its reactor exactly once and records
// the call's latency by method and status code.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <string_view>

#include "gateway/data_plane/deadline.hpp"
#include "metrics/gateway_metrics.hpp"

namespace wsgateway::admin {

class AdminCall {
 public:
  AdminCall(grpc::CallbackServerContext* context, std::string_view method, metrics::GatewayMetrics& metrics)
      : reactor_(context->DefaultReactor()),
        method_(method),
        metrics_(&metrics),
        started_(std::chrono::steady_clock::now()),
        deadline_(SteadyDeadline(context->deadline())) {}

  grpc::ServerUnaryReactor* reactor() const { return reactor_; }
  // When the caller stops waiting, on the steady clock; time_point::max()
  // when the call has no deadline.
  std::chrono::steady_clock::time_point deadline() const { return deadline_; }

  // Thread-safe; call once.
  void Finish(const grpc::Status& status) const;

 private:
  grpc::ServerUnaryReactor* reactor_;
  std::string_view method_;
  metrics::GatewayMetrics* metrics_;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point deadline_;
};

}  // namespace wsgateway::admin
