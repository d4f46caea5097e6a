#include "tests/support/admin_client.hpp"

#include <thread>

#include "tests/support/test_certificates.hpp"

namespace wsgateway::testing {

std::string Describe(const grpc::Status& status) {
  return std::to_string(static_cast<int>(status.error_code())) + ": " + status.error_message();
}

std::shared_ptr<grpc::Channel> LoopbackChannel(std::uint16_t port) {
  return LoopbackChannel(port, grpc::InsecureChannelCredentials());
}

std::optional<HealthStatus> HealthStatusOf(const std::shared_ptr<grpc::Channel>& channel, const std::string& service) {
  auto stub = ::grpc::health::v1::Health::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  ::grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  ::grpc::health::v1::HealthCheckResponse response;
  if (!stub->Check(&context, request, &response).ok()) return std::nullopt;
  return response.status();
}

std::shared_ptr<grpc::Channel> LoopbackChannel(std::uint16_t port,
                                               const std::shared_ptr<grpc::ChannelCredentials>& credentials) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_HTTP_PROXY, 0);
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  args.SetMaxSendMessageSize(64 * 1024 * 1024);
  return grpc::CreateCustomChannel("127.0.0.1:" + std::to_string(port), credentials, args);
}

std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(const std::string& ca_cert_file, const std::string& cert_file,
                                                         const std::string& key_file) {
  grpc::SslCredentialsOptions options;
  options.pem_root_certs = TestCertificates::Read(ca_cert_file);
  if (!cert_file.empty()) options.pem_cert_chain = TestCertificates::Read(cert_file);
  if (!key_file.empty()) options.pem_private_key = TestCertificates::Read(key_file);
  return grpc::SslCredentials(options);
}

std::multimap<std::string, std::string> BearerMetadata(const std::string& token) {
  return {{"authorization", "Bearer " + token}};
}

AdminClient::AdminClient(std::uint16_t port, std::chrono::milliseconds deadline)
    : AdminClient(port, AdminClientOptions{.deadline = deadline}) {}

AdminClient::AdminClient(std::uint16_t port, AdminClientOptions options)
    : options_(std::move(options)),
      channel_(options_.credentials ? LoopbackChannel(port, options_.credentials) : LoopbackChannel(port)),
      stub_(v1::Admin::NewStub(channel_)) {}

std::unique_ptr<grpc::ClientContext> AdminClient::Context() const {
  auto context = std::make_unique<grpc::ClientContext>();
  context->set_deadline(std::chrono::system_clock::now() + options_.deadline);
  for (const auto& [key, value] : options_.metadata) context->AddMetadata(key, value);
  return context;
}

Reply<v1::PushResponse> AdminClient::Push(const v1::PushRequest& request) {
  Reply<v1::PushResponse> reply;
  reply.status = stub_->Push(Context().get(), request, &reply.response);
  return reply;
}

Reply<v1::PushResponse> AdminClient::Push(const std::vector<std::string>& ids, v1::Opcode opcode,
                                          const std::string& payload) {
  v1::PushRequest request;
  for (const auto& id : ids) request.add_connection_ids(id);
  request.mutable_frame()->set_opcode(opcode);
  request.mutable_frame()->set_payload(payload);
  return Push(request);
}

Reply<v1::BroadcastResponse> AdminClient::Broadcast(const v1::BroadcastRequest& request) {
  Reply<v1::BroadcastResponse> reply;
  reply.status = stub_->Broadcast(Context().get(), request, &reply.response);
  return reply;
}

Reply<v1::BroadcastResponse> AdminClient::Broadcast(v1::Opcode opcode, const std::string& payload,
                                                    const std::string& path_prefix,
                                                    const std::vector<std::string>& exclude) {
  v1::BroadcastRequest request;
  request.mutable_frame()->set_opcode(opcode);
  request.mutable_frame()->set_payload(payload);
  if (!path_prefix.empty()) request.mutable_filter()->set_path_prefix(path_prefix);
  for (const auto& id : exclude) request.add_exclude_connection_ids(id);
  return Broadcast(request);
}

Reply<v1::DisconnectResponse> AdminClient::Disconnect(const std::string& id, std::uint32_t code,
                                                      const std::string& reason) {
  v1::DisconnectRequest request;
  request.set_connection_id(id);
  request.set_code(code);
  request.set_reason(reason);
  Reply<v1::DisconnectResponse> reply;
  reply.status = stub_->Disconnect(Context().get(), request, &reply.response);
  return reply;
}

Reply<v1::ExistResponse> AdminClient::Exist(const std::string& id) {
  v1::ExistRequest request;
  request.set_connection_id(id);
  Reply<v1::ExistResponse> reply;
  reply.status = stub_->Exist(Context().get(), request, &reply.response);
  return reply;
}

Reply<v1::IsEstablishedResponse> AdminClient::IsEstablished(const std::string& id) {
  v1::IsEstablishedRequest request;
  request.set_connection_id(id);
  Reply<v1::IsEstablishedResponse> reply;
  reply.status = stub_->IsEstablished(Context().get(), request, &reply.response);
  return reply;
}

Reply<v1::GetClientInfoResponse> AdminClient::GetClientInfo(const std::string& id) {
  v1::GetClientInfoRequest request;
  request.set_connection_id(id);
  Reply<v1::GetClientInfoResponse> reply;
  reply.status = stub_->GetClientInfo(Context().get(), request, &reply.response);
  return reply;
}

Reply<v1::ListConnectionsResponse> AdminClient::ListConnections(const v1::ListConnectionsRequest& request) {
  Reply<v1::ListConnectionsResponse> reply;
  reply.status = stub_->ListConnections(Context().get(), request, &reply.response);
  return reply;
}

Reply<v1::JoinGroupResponse> AdminClient::JoinGroup(const std::string& id, const std::vector<std::string>& groups) {
  v1::JoinGroupRequest request;
  request.set_connection_id(id);
  for (const auto& group : groups) request.add_groups(group);
  Reply<v1::JoinGroupResponse> reply;
  reply.status = stub_->JoinGroup(Context().get(), request, &reply.response);
  return reply;
}

Reply<v1::LeaveGroupResponse> AdminClient::LeaveGroup(const std::string& id, const std::vector<std::string>& groups) {
  v1::LeaveGroupRequest request;
  request.set_connection_id(id);
  for (const auto& group : groups) request.add_groups(group);
  Reply<v1::LeaveGroupResponse> reply;
  reply.status = stub_->LeaveGroup(Context().get(), request, &reply.response);
  return reply;
}

std::optional<std::vector<v1::ClientInfo>> AdminClient::ListAll(const v1::ConnectionFilter& filter,
                                                                std::uint32_t page_size, grpc::Status* error) {
  std::vector<v1::ClientInfo> all;
  v1::ListConnectionsRequest request;
  request.set_page_size(page_size);
  *request.mutable_filter() = filter;
  for (int page = 0; page < 100000; ++page) {
    const auto reply = ListConnections(request);
    if (!reply.ok()) {
      if (error != nullptr) *error = reply.status;
      return std::nullopt;
    }
    for (const auto& info : reply.response.connections()) all.push_back(info);
    if (reply.response.next_page_token().empty()) return all;
    request.set_page_token(reply.response.next_page_token());
  }
  if (error != nullptr) *error = grpc::Status(grpc::StatusCode::INTERNAL, "listing never ended");
  return std::nullopt;
}

std::optional<v1::ClientInfo> AdminClient::WaitForOne(const std::string& path_prefix, v1::ConnectionState state,
                                                      std::chrono::milliseconds timeout) {
  v1::ConnectionFilter filter;
  filter.set_path_prefix(path_prefix);
  filter.set_state(state);
  return PollUntil(timeout, [&]() -> std::optional<v1::ClientInfo> {
    const auto all = ListAll(filter);
    if (!all || all->size() != 1) return std::nullopt;
    return all->front();
  });
}

std::optional<v1::ClientInfo> AdminClient::WaitForAddress(const std::string& remote_address, v1::ConnectionState state,
                                                          std::chrono::milliseconds timeout) {
  v1::ConnectionFilter filter;
  filter.set_state(state);
  return PollUntil(timeout, [&]() -> std::optional<v1::ClientInfo> {
    const auto all = ListAll(filter);
    if (!all) return std::nullopt;
    for (const auto& info : *all) {
      if (info.remote_address() == remote_address) return info;
    }
    return std::nullopt;
  });
}

std::optional<std::vector<v1::ClientInfo>> AdminClient::WaitForCount(const v1::ConnectionFilter& filter,
                                                                     std::size_t count,
                                                                     std::chrono::milliseconds timeout) {
  return PollUntil(timeout, [&]() -> std::optional<std::vector<v1::ClientInfo>> {
    auto all = ListAll(filter);
    if (!all || all->size() != count) return std::nullopt;
    return all;
  });
}

bool AdminClient::WaitForExist(const std::string& id, bool exists, std::chrono::milliseconds timeout) {
  return PollUntil(timeout, [&] {
    const auto reply = Exist(id);
    return reply.ok() && reply.response.exists() == exists;
  });
}

}  // namespace wsgateway::testing
