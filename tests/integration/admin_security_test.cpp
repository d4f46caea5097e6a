// The admin API secured as an operator sets it up: bearer tokens from a
// file, a list or the environment guard every Admin method while health
// checks and reflection stay open; TLS and mutual TLS on the admin
// listener; SIGHUP re-reads the token file; and a token file or
// certificate that cannot be used stops start-up, naming the setting.

#include <gtest/gtest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <fstream>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/support/admin_client.hpp"
#include "tests/support/prometheus_text.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/test_certificates.hpp"
#include "tests/support/unique_path.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

namespace health = ::grpc::health::v1;
namespace reflection = ::grpc::reflection::v1alpha;

constexpr char kMissingToken[] = "missing bearer token: send the metadata 'authorization: Bearer <token>'";
constexpr char kTokenNotAccepted[] = "bearer token not accepted";

// A fresh temporary directory for token files.
std::string TempDir() {
  char pattern[] = "/tmp/wsgateway-tokens-XXXXXX";
  return mkdtemp(pattern) != nullptr ? pattern : "";
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

// Made once for the whole binary: openssl takes a moment per key.
const TestCertificates* Certificates(std::string* error) {
  static std::string failure;
  static const std::optional<TestCertificates> set = TestCertificates::Create(&failure);
  *error = failure;
  return set ? &*set : nullptr;
}

grpc::Status ExistWith(std::uint16_t port, AdminClientOptions options) {
  AdminClient client(port, std::move(options));
  return client.Exist("no-such-connection").status;
}

// Runs wsgateway with `args` on loopback ports to completion; returns its
// wait status and output.
std::pair<int, std::string> RunToExit(std::vector<std::string> args) {
  args.insert(args.begin(), {"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--metrics-listen",
                             "127.0.0.1:0", "--threads", "1"});
  ChildProcess child({WsgatewayPath(), args, {}, {}, "wsgateway"});
  const auto status = child.Wait(std::chrono::seconds(30));
  std::string output;
  for (const auto& line : child.Lines()) output += line + "\n";
  return {status.value_or(-1), output};
}

// ------------------------------------------------------------ bearer tokens

// One gateway (with the echo backend) whose tokens come from a file and
// from --admin-tokens.
class AdminTokenTest : public SharedEchoStack<AdminTokenTest> {
 public:
  static std::vector<std::string> Flags() {
    const auto token_file = TempDir() + "/tokens";
    WriteFile(token_file,
              "# admin tokens, one per line\n"
              "file-token-one\n"
              "\n"
              "   file-token-two \t\n"
              "#not-a-token\n");
    return {"--admin-token-file", token_file, "--admin-tokens", "listed-token"};
  }
};

// Without a token, every Admin method answers UNAUTHENTICATED saying which
// metadata to send, and none of them acts: the client connected meanwhile
// receives only what an accepted call pushed afterwards.
TEST_F(AdminTokenTest, EveryMethodRefusesACallWithoutToken) {
  const std::string path = UniquePath();
  WsClient ws;
  ASSERT_EQ(ws.Connect(port(), path).http_status, 101u);
  AdminClient trusted(admin_port(), {.metadata = BearerMetadata("listed-token")});
  const auto info = trusted.WaitForOne(path, v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(info.has_value());
  const std::string id = info->connection_id();

  AdminClient anonymous(admin_port());
  const std::vector<std::pair<std::string, std::function<grpc::Status()>>> calls = {
      {"Push", [&] { return anonymous.Push({id}, v1::OPCODE_TEXT, "refused push").status; }},
      {"Broadcast", [&] { return anonymous.Broadcast(v1::OPCODE_TEXT, "refused broadcast", path).status; }},
      {"Disconnect", [&] { return anonymous.Disconnect(id, 4000).status; }},
      {"Exist", [&] { return anonymous.Exist(id).status; }},
      {"IsEstablished", [&] { return anonymous.IsEstablished(id).status; }},
      {"GetClientInfo", [&] { return anonymous.GetClientInfo(id).status; }},
      {"ListConnections", [&] { return anonymous.ListConnections({}).status; }},
      {"JoinGroup", [&] { return anonymous.JoinGroup(id, {"room"}).status; }},
      {"LeaveGroup", [&] { return anonymous.LeaveGroup(id, {"room"}).status; }},
  };
  for (const auto& [name, call] : calls) {
    const auto status = call();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << name << ": " << Describe(status);
    EXPECT_EQ(status.error_message(), kMissingToken) << name;
  }

  const auto info_after = trusted.GetClientInfo(id);
  ASSERT_TRUE(info_after.ok()) << Describe(info_after.status);
  EXPECT_TRUE(info_after.response.info().groups().empty()) << "a refused JoinGroup joined";
  ASSERT_TRUE(trusted.Push({id}, v1::OPCODE_TEXT, "accepted push").ok());
  EXPECT_EQ(ws.Read().payload, "accepted push") << "a refused Push or Broadcast reached the client";
}

// A token that is not configured, an empty one, another scheme and a
// comment line of the token file are all refused.
TEST_F(AdminTokenTest, WrongTokensAreRefused) {
  const std::vector<std::string> wrong = {"Bearer file-token-three", "Bearer file-token-one-and-more",
                                          "Bearer #not-a-token", "Bearer listed-tokeN"};
  for (const auto& value : wrong) {
    const auto status = ExistWith(admin_port(), {.metadata = {{"authorization", value}}});
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << value << ": " << Describe(status);
    EXPECT_EQ(status.error_message(), kTokenNotAccepted) << value;
  }
  const std::vector<std::string> malformed = {"Bearer ", "Basic bGlzdGVkLXRva2Vu", "listed-token"};
  for (const auto& value : malformed) {
    const auto status = ExistWith(admin_port(), {.metadata = {{"authorization", value}}});
    EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << value << ": " << Describe(status);
    EXPECT_EQ(status.error_message(), kMissingToken) << value;
  }
}

// Each token of the file (trimmed) and of the list is accepted; the scheme
// is case-insensitive.
TEST_F(AdminTokenTest, EveryConfiguredTokenIsAccepted) {
  for (const std::string token : {"file-token-one", "file-token-two", "listed-token"}) {
    const auto status = ExistWith(admin_port(), {.metadata = BearerMetadata(token)});
    EXPECT_TRUE(status.ok()) << token << ": " << Describe(status);
  }
  const auto status = ExistWith(admin_port(), {.metadata = {{"authorization", "bearer file-token-one"}}});
  EXPECT_TRUE(status.ok()) << Describe(status);
}

// Health checks and reflection need no token: probes and grpcurl's
// listing work, and reflection shows only the schema.
TEST_F(AdminTokenTest, HealthAndReflectionStayOpen) {
  const auto channel = LoopbackChannel(admin_port());
  // SERVING once the readiness watch has seen the backend stream up.
  const auto status = PollUntil(std::chrono::seconds(20), [&] {
    const auto answer = HealthStatusOf(channel);
    return answer == health::HealthCheckResponse::SERVING ? answer : std::nullopt;
  });
  EXPECT_EQ(status, health::HealthCheckResponse::SERVING);

  auto stub = reflection::ServerReflection::NewStub(channel);
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
  auto stream = stub->ServerReflectionInfo(&context);
  reflection::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  stream->WritesDone();
  reflection::ServerReflectionResponse listing;
  ASSERT_TRUE(stream->Read(&listing));
  reflection::ServerReflectionResponse rest;
  while (stream->Read(&rest)) {
  }
  ASSERT_TRUE(stream->Finish().ok());
  std::set<std::string> names;
  for (const auto& service : listing.list_services_response().service()) names.insert(service.name());
  EXPECT_EQ(names.count("wsgateway.v1.Admin"), 1u);
}

// Refusals are counted in the admin latency histogram under their code.
TEST_F(AdminTokenTest, RefusalsAreCountedByCode) {
  const auto count = [this]() -> std::optional<double> {
    const auto scrape = ScrapeMetrics(metrics_port());
    if (!scrape) return std::nullopt;
    return scrape->Sum("wsgateway_admin_request_duration_seconds_count",
                       {{"method", "Exist"}, {"code", "UNAUTHENTICATED"}});
  };
  const auto before = count();
  ASSERT_TRUE(before.has_value());
  EXPECT_FALSE(ExistWith(admin_port(), {}).ok());
  EXPECT_FALSE(ExistWith(admin_port(), {.metadata = BearerMetadata("wrong")}).ok());
  const auto after = count();
  ASSERT_TRUE(after.has_value());
  EXPECT_EQ(*after - *before, 2.0);
}

// Tokens from the environment (WSGATEWAY_ADMIN_TOKENS, comma-separated)
// guard the API on their own.
TEST(AdminTokenEnvironmentTest, TokensFromTheEnvironmentAreRequired) {
  std::string error;
  GatewayProcess::Options options;
  options.env = {{"WSGATEWAY_ADMIN_TOKENS", "env-token-a, env-token-b"}};
  auto gateway = GatewayProcess::Start(options, &error);
  ASSERT_NE(gateway, nullptr) << error;
  const auto port = gateway->admin_port();
  EXPECT_EQ(ExistWith(port, {}).error_message(), kMissingToken);
  EXPECT_EQ(ExistWith(port, {.metadata = BearerMetadata("env-token-c")}).error_message(), kTokenNotAccepted);
  for (const std::string token : {"env-token-a", "env-token-b"}) {
    const auto status = ExistWith(port, {.metadata = BearerMetadata(token)});
    EXPECT_TRUE(status.ok()) << token << ": " << Describe(status);
  }
}

// ---------------------------------------------------------- token reload

// SIGHUP re-reads the token file: the new token works and the old one is
// refused; a file that went empty or missing leaves the tokens in force.
TEST(AdminTokenReloadTest, SighupRereadsTheTokenFile) {
  const auto file = TempDir() + "/tokens";
  WriteFile(file, "old-token\n");
  std::string error;
  auto gateway = GatewayProcess::Start({.args = {"--admin-token-file", file}}, &error);
  ASSERT_NE(gateway, nullptr) << error;
  const auto port = gateway->admin_port();
  AdminClientOptions old_token{.metadata = BearerMetadata("old-token")};
  AdminClientOptions new_token{.metadata = BearerMetadata("new-token")};
  ASSERT_TRUE(ExistWith(port, old_token).ok());
  ASSERT_FALSE(ExistWith(port, new_token).ok());

  WriteFile(file, "# rotated\nnew-token\n");
  gateway->process().Signal(SIGHUP);
  EXPECT_TRUE(PollUntil(std::chrono::seconds(20), [&] { return ExistWith(port, new_token).ok(); }))
      << "the new token was never accepted";
  const auto old_status = ExistWith(port, old_token);
  EXPECT_EQ(old_status.error_code(), grpc::StatusCode::UNAUTHENTICATED) << Describe(old_status);
  EXPECT_EQ(old_status.error_message(), kTokenNotAccepted);

  // An empty file, then a missing one: each reload fails, says so, and the
  // token in force stays.
  for (const bool remove : {false, true}) {
    if (remove) {
      std::remove(file.c_str());
    } else {
      WriteFile(file, "# nothing here\n\n");
    }
    const auto from = gateway->process().LineCount();
    gateway->process().Signal(SIGHUP);
    const auto line = gateway->process().WaitForLine("admin bearer tokens not reloaded", kStartTimeout, from);
    ASSERT_TRUE(line.has_value()) << gateway->process().Tail();
    EXPECT_NE(line->line.find("admin-token-file"), std::string::npos) << line->line;
    EXPECT_NE(line->line.find(file), std::string::npos) << line->line;
    EXPECT_TRUE(ExistWith(port, new_token).ok()) << "a failed reload dropped the token in force";
    EXPECT_FALSE(ExistWith(port, old_token).ok());
  }
  EXPECT_TRUE(gateway->process().Running());
}

// Without a token file a SIGHUP changes nothing and the gateway keeps
// running and serving.
TEST(AdminTokenReloadTest, SighupWithoutSecurityKeepsServing) {
  std::string error;
  auto gateway = GatewayProcess::Start({}, &error);
  ASSERT_NE(gateway, nullptr) << error;
  gateway->process().Signal(SIGHUP);
  ASSERT_TRUE(gateway->process().WaitForLine("SIGHUP received", kStartTimeout).has_value())
      << gateway->process().Tail();
  EXPECT_TRUE(ExistWith(gateway->admin_port(), {}).ok());
  EXPECT_TRUE(gateway->process().Running());
}

// --------------------------------------------------------------------- TLS

class AdminTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string error;
    certs_ = Certificates(&error);
    ASSERT_NE(certs_, nullptr) << error;
  }

  std::unique_ptr<GatewayProcess> StartGateway(std::vector<std::string> args) {
    args.insert(args.begin(),
                {"--admin-tls-cert-file", certs_->server_cert, "--admin-tls-key-file", certs_->server_key});
    std::string error;
    auto gateway = GatewayProcess::Start({.args = args}, &error);
    EXPECT_NE(gateway, nullptr) << error;
    return gateway;
  }

  const TestCertificates* certs_ = nullptr;
};

// With TLS on, a client trusting the CA is served (health checks too) and
// a plaintext client is not.
TEST_F(AdminTlsTest, TlsClientsAreServedAndPlaintextClientsAreNot) {
  const auto gateway = StartGateway({});
  ASSERT_NE(gateway, nullptr);
  const auto port = gateway->admin_port();
  const auto status = ExistWith(port, {.credentials = TlsCredentials(certs_->ca_cert)});
  EXPECT_TRUE(status.ok()) << Describe(status);
  EXPECT_TRUE(HealthStatusOf(LoopbackChannel(port, TlsCredentials(certs_->ca_cert))).has_value());

  const auto plaintext = ExistWith(port, {});
  EXPECT_EQ(plaintext.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(plaintext);
  const auto untrusted = ExistWith(port, {.credentials = TlsCredentials(certs_->other_ca_cert)});
  EXPECT_EQ(untrusted.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(untrusted);
}

// With a client CA, only clients presenting a certificate signed by it are
// served: none, or one from another CA, fails the handshake.
TEST_F(AdminTlsTest, MutualTlsRequiresAClientCertificateFromTheCa) {
  const auto gateway = StartGateway({"--admin-tls-client-ca-file", certs_->ca_cert});
  ASSERT_NE(gateway, nullptr);
  const auto port = gateway->admin_port();
  const auto accepted =
      ExistWith(port, {.credentials = TlsCredentials(certs_->ca_cert, certs_->client_cert, certs_->client_key)});
  EXPECT_TRUE(accepted.ok()) << Describe(accepted);

  const auto without = ExistWith(port, {.credentials = TlsCredentials(certs_->ca_cert)});
  EXPECT_EQ(without.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(without);
  const auto stranger = ExistWith(
      port, {.credentials = TlsCredentials(certs_->ca_cert, certs_->other_client_cert, certs_->other_client_key)});
  EXPECT_EQ(stranger.error_code(), grpc::StatusCode::UNAVAILABLE) << Describe(stranger);
}

// TLS and tokens together: the certificate gets the client in, the token
// gets its calls through.
TEST_F(AdminTlsTest, TlsAndTokensCombine) {
  const auto gateway = StartGateway({"--admin-tokens", "tls-token"});
  ASSERT_NE(gateway, nullptr);
  const auto port = gateway->admin_port();
  const auto credentials = TlsCredentials(certs_->ca_cert);
  EXPECT_EQ(ExistWith(port, {.credentials = credentials}).error_message(), kMissingToken);
  const auto status = ExistWith(port, {.credentials = credentials, .metadata = BearerMetadata("tls-token")});
  EXPECT_TRUE(status.ok()) << Describe(status);
}

// ------------------------------------------------------- start-up failures

struct StartupFailure {
  std::vector<std::string> args;
  std::string key;   // the setting the message must name
  std::string path;  // the file it must name
};

void ExpectStartupFailure(const StartupFailure& failure) {
  const auto [status, output] = RunToExit(failure.args);
  ASSERT_TRUE(WIFEXITED(status)) << output;
  EXPECT_NE(WEXITSTATUS(status), 0) << output;
  EXPECT_NE(output.find("--" + failure.key), std::string::npos) << output;
  EXPECT_NE(output.find(failure.path), std::string::npos) << output;
}

// A token file that is missing, or holds only comments and blank lines,
// stops start-up: the API must not come up open by mistake.
TEST(AdminSecurityStartupTest, MissingOrEmptyTokenFileStopsStartUp) {
  const auto dir = TempDir();
  ExpectStartupFailure({{"--admin-token-file", dir + "/missing"}, "admin-token-file", dir + "/missing"});
  WriteFile(dir + "/empty", "# no tokens yet\n\n   \n");
  ExpectStartupFailure({{"--admin-token-file", dir + "/empty"}, "admin-token-file", dir + "/empty"});
}

// Certificate, key and client CA files that cannot be read or do not hold
// what they should stop start-up, each naming its setting and file.
TEST(AdminSecurityStartupTest, UnusableTlsFilesStopStartUp) {
  std::string error;
  const auto* certs = Certificates(&error);
  ASSERT_NE(certs, nullptr) << error;
  const auto dir = TempDir();
  const auto missing = dir + "/missing.pem";
  const auto garbage = dir + "/garbage.pem";
  WriteFile(garbage, "not a PEM file\n");

  ExpectStartupFailure(
      {{"--admin-tls-cert-file", missing, "--admin-tls-key-file", certs->server_key}, "admin-tls-cert-file", missing});
  ExpectStartupFailure(
      {{"--admin-tls-cert-file", garbage, "--admin-tls-key-file", certs->server_key}, "admin-tls-cert-file", garbage});
  ExpectStartupFailure(
      {{"--admin-tls-cert-file", certs->server_cert, "--admin-tls-key-file", missing}, "admin-tls-key-file", missing});
  // The client's key is a valid key, but not the server certificate's.
  ExpectStartupFailure({{"--admin-tls-cert-file", certs->server_cert, "--admin-tls-key-file", certs->client_key},
                        "admin-tls-key-file",
                        certs->client_key});
  ExpectStartupFailure({{"--admin-tls-cert-file", certs->server_cert, "--admin-tls-key-file", certs->server_key,
                         "--admin-tls-client-ca-file", garbage},
                        "admin-tls-client-ca-file",
                        garbage});
}

}  // namespace
}  // namespace wsgateway::testing
