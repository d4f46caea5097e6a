#pragma once
// A thin client for wsgateway.v1.Admin with a deadline on every call, plus
// helpers that find a connection's id by its path or client address.
//
// Thread-safety: as grpc stubs, every member may be called from any thread.

#include <grpcpp/grpcpp.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "tests/support/poll_until.hpp"
#include "wsgateway/v1/admin.grpc.pb.h"

namespace wsgateway::testing {

namespace v1 = ::wsgateway::v1;

template <typename Response>
struct Reply {
  grpc::Status status;
  Response response;
  bool ok() const { return status.ok(); }
};

// "CODE: message" for assertion messages.
std::string Describe(const grpc::Status& status);

std::shared_ptr<grpc::Channel> LoopbackChannel(std::uint16_t port);

using HealthStatus = ::grpc::health::v1::HealthCheckResponse::ServingStatus;
// What grpc.health.v1.Health/Check answers for `service` ("" for the whole
// server) on `channel`; nullopt when the call itself fails.
std::optional<HealthStatus> HealthStatusOf(const std::shared_ptr<grpc::Channel>& channel,
                                           const std::string& service = "");
// The same with other channel credentials, e.g. grpc::SslCredentials. A TLS
// channel checks the server's certificate against 127.0.0.1.
std::shared_ptr<grpc::Channel> LoopbackChannel(std::uint16_t port,
                                               const std::shared_ptr<grpc::ChannelCredentials>& credentials);

// TLS channel credentials trusting the CA in `ca_cert_file`, presenting the
// client certificate in `cert_file` and `key_file` when those are given.
std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(const std::string& ca_cert_file,
                                                         const std::string& cert_file = "",
                                                         const std::string& key_file = "");

// "authorization: Bearer <token>" as call metadata.
std::multimap<std::string, std::string> BearerMetadata(const std::string& token);

struct AdminClientOptions {
  // Every call's deadline.
  std::chrono::milliseconds deadline = std::chrono::seconds(20);
  // Plaintext when null.
  std::shared_ptr<grpc::ChannelCredentials> credentials{};
  // Sent with every call, e.g. BearerMetadata(token).
  std::multimap<std::string, std::string> metadata{};
};

class AdminClient {
 public:
  explicit AdminClient(std::uint16_t port, std::chrono::milliseconds deadline = std::chrono::seconds(20));
  AdminClient(std::uint16_t port, AdminClientOptions options);

  Reply<v1::PushResponse> Push(const v1::PushRequest& request);
  Reply<v1::PushResponse> Push(const std::vector<std::string>& ids, v1::Opcode opcode, const std::string& payload);
  Reply<v1::BroadcastResponse> Broadcast(const v1::BroadcastRequest& request);
  Reply<v1::BroadcastResponse> Broadcast(v1::Opcode opcode, const std::string& payload,
                                         const std::string& path_prefix = "",
                                         const std::vector<std::string>& exclude = {});
  Reply<v1::DisconnectResponse> Disconnect(const std::string& id, std::uint32_t code = 0,
                                           const std::string& reason = "");
  Reply<v1::ExistResponse> Exist(const std::string& id);
  Reply<v1::IsEstablishedResponse> IsEstablished(const std::string& id);
  Reply<v1::GetClientInfoResponse> GetClientInfo(const std::string& id);
  Reply<v1::ListConnectionsResponse> ListConnections(const v1::ListConnectionsRequest& request);
  Reply<v1::JoinGroupResponse> JoinGroup(const std::string& id, const std::vector<std::string>& groups);
  Reply<v1::LeaveGroupResponse> LeaveGroup(const std::string& id, const std::vector<std::string>& groups);

  // Every page of a listing; nullopt (with the failing status in *error)
  // if a page fails.
  std::optional<std::vector<v1::ClientInfo>> ListAll(const v1::ConnectionFilter& filter, std::uint32_t page_size = 1000,
                                                     grpc::Status* error = nullptr);

  // Waits (polling ListConnections, with a deadline) until exactly one
  // connection matches the path prefix and state, and returns it.
  std::optional<v1::ClientInfo> WaitForOne(const std::string& path_prefix, v1::ConnectionState state,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Same, matching the client address ("127.0.0.1:PORT") instead.
  std::optional<v1::ClientInfo> WaitForAddress(const std::string& remote_address, v1::ConnectionState state,
                                               std::chrono::milliseconds timeout = std::chrono::seconds(20));
  // Waits until `count` connections match the filter; returns them.
  std::optional<std::vector<v1::ClientInfo>> WaitForCount(const v1::ConnectionFilter& filter, std::size_t count,
                                                          std::chrono::milliseconds timeout = std::chrono::seconds(30));
  // Waits until Exist(id) answers `exists`.
  bool WaitForExist(const std::string& id, bool exists, std::chrono::milliseconds timeout = std::chrono::seconds(20));

  v1::Admin::Stub& stub() { return *stub_; }
  // A context with the deadline and metadata of the options.
  std::unique_ptr<grpc::ClientContext> Context() const;

 private:
  AdminClientOptions options_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Admin::Stub> stub_;
};

}  // namespace wsgateway::testing
