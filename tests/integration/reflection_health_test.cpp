// Operators' tools work out of the box: server reflection lists and
// describes the services (what grpcurl relies on), every Admin method can be
// called from JSON through the reflected descriptors, and grpc.health.v1
// answers SERVING.

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/util/json_util.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "tests/support/admin_client.hpp"
#include "tests/support/shared_stack.hpp"
#include "tests/support/ws_client.hpp"

namespace wsgateway::testing {
namespace {

namespace reflection = ::grpc::reflection::v1alpha;
namespace pb = ::google::protobuf;

class ReflectionHealthTest : public SharedEchoStack<ReflectionHealthTest> {
 protected:
  void SetUp() override {
    ASSERT_NO_FATAL_FAILURE(SharedStack::SetUp());
    channel_ = LoopbackChannel(admin_port());
  }

  // One request/response exchange on the reflection stream.
  std::optional<reflection::ServerReflectionResponse> Ask(const reflection::ServerReflectionRequest& request) {
    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    auto stub = reflection::ServerReflection::NewStub(channel_);
    auto stream = stub->ServerReflectionInfo(&context);
    if (!stream->Write(request)) return std::nullopt;
    stream->WritesDone();
    reflection::ServerReflectionResponse response;
    if (!stream->Read(&response)) return std::nullopt;
    while (stream->Read(&scratch_)) {
    }
    const auto status = stream->Finish();
    if (!status.ok()) return std::nullopt;
    return response;
  }

  // Loads every file the server describes for `symbol` (with dependencies)
  // into db_.
  bool LoadSymbol(const std::string& symbol) {
    reflection::ServerReflectionRequest request;
    request.set_file_containing_symbol(symbol);
    const auto response = Ask(request);
    if (!response || !response->has_file_descriptor_response()) return false;
    for (const auto& bytes : response->file_descriptor_response().file_descriptor_proto()) {
      pb::FileDescriptorProto file;
      if (!file.ParseFromString(bytes)) return false;
      db_.Add(file);
    }
    return true;
  }

  std::shared_ptr<grpc::Channel> channel_;
  pb::SimpleDescriptorDatabase db_;
  reflection::ServerReflectionResponse scratch_;
};

// Reflection lists the Admin service, the health service and itself.
TEST_F(ReflectionHealthTest, ReflectionListsAdminHealthAndReflection) {
  reflection::ServerReflectionRequest request;
  request.set_list_services("");
  const auto response = Ask(request);
  ASSERT_TRUE(response.has_value()) << "reflection call failed";
  ASSERT_TRUE(response->has_list_services_response()) << response->DebugString();
  std::set<std::string> names;
  for (const auto& service : response->list_services_response().service()) names.insert(service.name());
  EXPECT_EQ(names.count("wsgateway.v1.Admin"), 1u);
  EXPECT_EQ(names.count("grpc.health.v1.Health"), 1u);
  EXPECT_EQ(names.count("grpc.reflection.v1alpha.ServerReflection"), 1u);
}

// Reflection describes Admin with its nine methods and Health with Check and
// Watch, including every file they depend on.
TEST_F(ReflectionHealthTest, ReflectionDescribesAdminAndHealthCompletely) {
  ASSERT_TRUE(LoadSymbol("wsgateway.v1.Admin"));
  ASSERT_TRUE(LoadSymbol("grpc.health.v1.Health")) << "health is listed but cannot be described";
  pb::DescriptorPool pool(&db_);
  const auto* admin = pool.FindServiceByName("wsgateway.v1.Admin");
  ASSERT_NE(admin, nullptr) << "Admin could not be built from the reflected files (missing dependency?)";
  std::set<std::string> methods;
  for (int i = 0; i < admin->method_count(); ++i) methods.insert(admin->method(i)->name());
  EXPECT_EQ(methods,
            (std::set<std::string>{"Push", "Broadcast", "Disconnect", "Exist", "IsEstablished", "GetClientInfo",
                                   "ListConnections", "JoinGroup", "LeaveGroup", "ListNodes"}));
  const auto* health = pool.FindServiceByName("grpc.health.v1.Health");
  ASSERT_NE(health, nullptr);
  EXPECT_NE(health->FindMethodByName("Check"), nullptr);
}

// Every Admin method can be called with a JSON request through the reflected
// descriptors, as grpcurl does.
TEST_F(ReflectionHealthTest, EveryAdminMethodCanBeCalledFromJson) {
  ASSERT_TRUE(LoadSymbol("wsgateway.v1.Admin"));
  pb::DescriptorPool pool(&db_);
  const auto* admin = pool.FindServiceByName("wsgateway.v1.Admin");
  ASSERT_NE(admin, nullptr);

  WsClient client;
  ASSERT_EQ(client.Connect(port(), "/json").http_status, 101u);
  AdminClient helper(admin_port());
  const auto info = helper.WaitForOne("/json", v1::CONNECTION_STATE_ACTIVE);
  ASSERT_TRUE(info.has_value());
  const std::string id = info->connection_id();

  // The connection is disconnected last.
  const std::vector<std::pair<std::string, std::string>> calls = {
      {"Push", R"({"connectionIds": [")" + id + R"("], "frame": {"opcode": "OPCODE_TEXT", "payload": "aGk="}})"},
      {"Broadcast", R"({"frame": {"payload": "YWxs"}, "filter": {"pathPrefix": "/json"}})"},
      {"Exist", R"({"connectionId": ")" + id + R"("})"},
      {"IsEstablished", R"({"connectionId": ")" + id + R"("})"},
      {"GetClientInfo", R"({"connectionId": ")" + id + R"("})"},
      // Group names are bytes, so base64 in JSON: "room-1", "room-2".
      {"JoinGroup", R"({"connectionId": ")" + id + R"(", "groups": ["cm9vbS0x", "cm9vbS0y"]})"},
      {"LeaveGroup", R"({"connectionId": ")" + id + R"(", "groups": ["cm9vbS0y"]})"},
      {"ListNodes", "{}"},
      {"ListConnections", R"({"pageSize": 10, "filter": {"state": "CONNECTION_STATE_ACTIVE", "group": "cm9vbS0x"}})"},
      {"Disconnect", R"({"connectionId": ")" + id + R"(", "code": 4000, "reason": "anNvbg=="})"},
  };
  pb::DynamicMessageFactory factory(&pool);
  grpc::GenericStub stub(channel_);
  std::set<std::string> called;
  for (const auto& [name, json] : calls) {
    const auto* method = admin->FindMethodByName(name);
    ASSERT_NE(method, nullptr) << name;
    std::unique_ptr<pb::Message> request(factory.GetPrototype(method->input_type())->New());
    const auto parsed = pb::util::JsonStringToMessage(json, request.get());
    ASSERT_TRUE(parsed.ok()) << name << ": " << parsed.ToString();
    std::string bytes;
    ASSERT_TRUE(request->SerializeToString(&bytes));

    grpc::ClientContext context;
    context.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(20));
    grpc::CompletionQueue cq;
    grpc::Slice slice(bytes);
    grpc::ByteBuffer request_buffer(&slice, 1);
    auto call = stub.PrepareUnaryCall(&context, "/wsgateway.v1.Admin/" + name, request_buffer, &cq);
    call->StartCall();
    grpc::ByteBuffer response_buffer;
    grpc::Status status;
    call->Finish(&response_buffer, &status, reinterpret_cast<void*>(1));
    void* tag = nullptr;
    bool ok = false;
    ASSERT_TRUE(cq.Next(&tag, &ok));
    cq.Shutdown();
    while (cq.Next(&tag, &ok)) {
    }
    ASSERT_TRUE(status.ok()) << name << ": " << Describe(status);

    std::vector<grpc::Slice> slices;
    ASSERT_TRUE(response_buffer.Dump(&slices).ok());
    std::string response_bytes;
    for (const auto& s : slices) response_bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
    std::unique_ptr<pb::Message> response(factory.GetPrototype(method->output_type())->New());
    ASSERT_TRUE(response->ParseFromString(response_bytes)) << name;
    std::string response_json;
    ASSERT_TRUE(pb::util::MessageToJsonString(*response, &response_json).ok());
    if (name == "Exist") {
      EXPECT_NE(response_json.find("\"exists\":true"), std::string::npos) << response_json;
    }
    if (name == "GetClientInfo") {
      EXPECT_NE(response_json.find(id), std::string::npos) << response_json;
    }
    called.insert(name);
  }
  EXPECT_EQ(called.size(), static_cast<std::size_t>(admin->method_count()));
  // The client saw the JSON push, the broadcast and the disconnect.
  EXPECT_EQ(client.Read().payload, "hi");
  EXPECT_EQ(client.Read().payload, "all");
  EXPECT_TRUE(client.Read().ec);
  EXPECT_EQ(client.CloseCode(), 4000);
}

// The standard health service reports SERVING for the server as a whole
// once the backend stream is up (the readiness it follows is checked in
// health_probes_test.cpp).
TEST_F(ReflectionHealthTest, HealthCheckReportsServing) {
  const auto status = PollUntil(std::chrono::seconds(20), [&] {
    const auto answer = HealthStatusOf(channel_);
    return answer == grpc::health::v1::HealthCheckResponse::SERVING ? answer : std::nullopt;
  });
  EXPECT_EQ(status, grpc::health::v1::HealthCheckResponse::SERVING);
}

}  // namespace
}  // namespace wsgateway::testing
