#include "admin/admin_call.hpp"

namespace wsgateway::admin {

void AdminCall::Finish(const grpc::Status& status) const {
  const std::chrono::duration<double> elapsed = std::chrono::steady_clock::now() - started_;
  metrics_->AdminLatency(method_, metrics::GrpcCodeLabel(static_cast<int>(status.error_code())))
      .Observe(elapsed.count());
  reactor_->Finish(status);
}

}  // namespace wsgateway::admin
