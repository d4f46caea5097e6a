#pragma once
// The admin gRPC server: wsgateway.v1.Admin, grpc.health.v1.Health and
// server reflection, on --admin-listen. Transport security (TLS, mutual
// TLS) and bearer tokens come from the admin_* settings of the gateway's
// configuration; the tokens guard the Admin service only, so health checks
// and reflection (which shows the schema, never data) stay open.

#include <grpcpp/grpcpp.h>

#include <memory>

#include "admin/admin_service.hpp"
#include "admin/bearer_tokens.hpp"

namespace wsgateway::admin {

class AdminServer {
 public:
  // Reads the TLS and token files. Throws when one cannot be used, so
  // construct it before anything listens: start-up only.
  // Admin calls reach connections through `data_plane` only; ListNodes
  // answers `nodes`.
  AdminServer(const std::string& address, DataPlane& data_plane, NodeDirectory nodes, const Config& config,
              metrics::GatewayMetrics& metrics);
  ~AdminServer();

  // Binds and starts serving. Throws on failure: start-up only.
  void Start();

  // The bound port, once started.
  int port() const { return port_; }

  // What grpc.health.v1.Health reports for the server and for
  // wsgateway.v1.Admin: SERVING or NOT_SERVING. Any thread.
  void SetServing(bool serving);

  // Re-reads --admin-token-file (on SIGHUP); a file that cannot be read or
  // holds no token leaves the tokens in force, and the error is logged.
  // Thread-safe.
  void ReloadTokens();

  // Finishes calls in progress, cancelling those still running at `deadline`.
  void Shutdown(std::chrono::milliseconds deadline);

 private:
  const std::string address_;
  const Config& config_;
  BearerTokens tokens_;
  AdminService service_;
  std::shared_ptr<grpc::ServerCredentials> credentials_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace wsgateway::admin
