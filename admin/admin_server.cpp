#include "admin/admin_server.hpp"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/health_check_service_interface.h>
#include <spdlog/spdlog.h>

#include <stdexcept>

#include "admin/listener_credentials.hpp"
#include "gateway/config/endpoint.hpp"
#include "grpc/health/v1/health.pb.h"

namespace wsgateway::admin {
namespace {

// Names resolve only for "localhost"; anything else that is not a numeric
// loopback address may be reachable from other hosts.
bool IsLoopback(const std::string& address) {
  if (address.rfind("localhost:", 0) == 0) return true;
  const auto endpoint = ParseEndpoint(address);
  return endpoint && endpoint->address().is_loopback();
}

// The start-up line saying how the admin API is protected; a warning when
// other hosts may reach it and nothing asks who is calling.
void LogSecurity(const std::string& address, const Config& config, const BearerTokens& tokens) {
  const std::string token_text =
      tokens.required() ? std::to_string(tokens.count()) + " bearer token(s) required" : "no bearer token required";
  spdlog::info("admin API security: {}, {}", ListenerSecurityName(config), token_text);
  if (!tokens.required() && config.admin_tls_client_ca_file.empty() && !IsLoopback(address)) {
    spdlog::warn(
        "admin API on {} accepts calls from anyone who can reach it: set --admin-token-file, or "
        "--admin-tls-client-ca-file, or listen on a loopback address",
        address);
  }
}

}  // namespace

AdminServer::AdminServer(const std::string& address, DataPlane& data_plane, NodeDirectory nodes, const Config& config,
                         metrics::GatewayMetrics& metrics)
    : address_(address),
      config_(config),
      tokens_(config_.admin_token_file, config_.admin_tokens),
      service_(data_plane, std::move(nodes), config_, metrics, tokens_),
      credentials_(ListenerCredentials(config_)) {}

void AdminServer::Start() {
  // Linking the generated health descriptors lets reflection describe
  // grpc.health.v1.Health, so grpcurl can call it.
  (void)grpc::health::v1::HealthCheckRequest::descriptor();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  builder.AddListeningPort(address_, credentials_, &port_);
  // A push carries up to max_message_bytes of payload plus its envelope.
  builder.SetMaxReceiveMessageSize(static_cast<int>(config_.max_message_bytes + 64 * 1024));
  builder.RegisterService(&service_);
  server_ = builder.BuildAndStart();
  if (!server_ || port_ == 0) throw std::runtime_error("cannot listen on admin address " + address_);
  // Not serving until the readiness watch says otherwise.
  SetServing(false);
  LogSecurity(address_, config_, tokens_);
}

void AdminServer::SetServing(bool serving) {
  if (!server_) return;
  auto* health = server_->GetHealthCheckService();
  health->SetServingStatus(serving);
  health->SetServingStatus(v1::Admin::service_full_name(), serving);
}

AdminServer::~AdminServer() { Shutdown(std::chrono::milliseconds(0)); }

void AdminServer::ReloadTokens() {
  if (tokens_.file().empty()) return;
  if (auto error = tokens_.Reload(); !error.empty()) {
    spdlog::error("admin bearer tokens not reloaded: {}", error);
    return;
  }
  spdlog::info("admin bearer tokens reloaded from {}: {} token(s) in force", tokens_.file(), tokens_.count());
}

void AdminServer::Shutdown(std::chrono::milliseconds deadline) {
  if (!server_) return;
  server_->Shutdown(std::chrono::system_clock::now() + deadline);
  server_->Wait();
  server_.reset();
}

}  // namespace wsgateway::admin
