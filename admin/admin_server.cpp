#include "admin/admin_server.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>

#include <stdexcept>

#include "grpc/health/v1/health.pb.h"

namespace wsgateway::admin {

AdminServer::AdminServer(const std::string& address, Gateway& gateway, metrics::GatewayMetrics& metrics)
    : service_(gateway, metrics) {
  // Linking the generated health descriptors lets reflection describe
  // grpc.health.v1.Health, so grpcurl can call it.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &port_);
  // A push carries up to max_message_bytes of payload plus its envelope.
  builder.SetMaxReceiveMessageSize(static_cast<int>(gateway.config().max_message_bytes + 64 * 1024));
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("cannot listen on admin address " + address);
  // Not serving until the readiness watch says otherwise.
  SetServing(false);
}

void AdminServer::SetServing(bool serving) {
  if (!server_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving);
  health->SetServingStatus(v1::Admin::service_full_name(), serving);
}

AdminServer::~AdminServer() { Shutdown(std::chrono::milliseconds(0)); }

void AdminServer::Shutdown(std::chrono::milliseconds deadline) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
  server_.reset();
}

}  // namespace wsgateway::admin
