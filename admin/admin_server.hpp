#pragma once
// The admin gRPC server: wsgateway.v1.Admin, grpc.health.v1.Health and
// server reflection, on --admin-listen.

#include <grpcpp/grpcpp.h>

#include <memory>

#include "admin/admin_service.hpp"

namespace wsgateway::admin {

class AdminServer {
 public:
  // Binds and starts serving. Throws on failure: start-up only.
  AdminServer(const std::string& address, Gateway& gateway, metrics::GatewayMetrics& metrics);
  ~AdminServer();

  int port() const { return port_; }

  // What grpc.health.v1.Health reports for the server and for
  // wsgateway.v1.Admin: SERVING or NOT_SERVING. Any thread.
  void SetServing(bool serving);

  // Finishes calls in progress, cancelling those still running at `deadline`.
  void Shutdown(std::chrono::milliseconds deadline);

 private:
  AdminService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace wsgateway::admin
