#pragma once
// Calls to the gateway's admin gRPC API (proto/wsgateway/v1/admin.proto)
// for wsbench: fanout's broadcast trigger and soak's pushes, broadcasts and
// listings. Calls use gRPC's callback API, so no Asio thread ever waits for
// one: the callback runs on a gRPC thread and only posts its result to the
// run's strand; until it has, a work guard keeps the run's io_context from
// running out of work.
//
// Thread-safety: calls may start on any thread; every Done runs on the
// strand. CancelAll may be called on any thread.

#include <grpcpp/grpcpp.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/strand.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>

#include "bench_common.hpp"
#include "wsgateway/v1/admin.grpc.pb.h"

namespace wsbench {

class AdminClient {
 public:
  template <typename Response>
  using Done = std::function<void(const grpc::Status& status, Response& response)>;

  // Generous: a broadcast returns once it is queued on every event loop.
  static constexpr auto kCallTimeout = std::chrono::seconds(10);

  // `target` is a gRPC target on loopback, e.g. "ipv4:127.0.0.1:50051".
  AdminClient(RunStrand strand, const std::string& target);

  void Broadcast(::wsgateway::v1::BroadcastRequest request, Done<::wsgateway::v1::BroadcastResponse> done);
  void Push(::wsgateway::v1::PushRequest request, Done<::wsgateway::v1::PushResponse> done);
  void ListConnections(::wsgateway::v1::ListConnectionsRequest request,
                       Done<::wsgateway::v1::ListConnectionsResponse> done);

  // Cancels the calls in flight; their Done still runs (CANCELLED).
  void CancelAll();

  // "what: CODE message", for a failed call.
  static std::string Describe(const char* what, const grpc::Status& status);

 private:
  template <typename Request, typename Response>
  struct Call;

  template <typename Request, typename Response, typename Start>
  void Run(Request request, Done<Response> done, Start start);

  RunStrand strand_;
  std::unique_ptr<::wsgateway::v1::Admin::Stub> stub_;
  std::mutex mutex_;
  std::set<grpc::ClientContext*> in_flight_;  // guarded by mutex_
};

}  // namespace wsbench
