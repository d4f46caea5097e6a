#pragma once
// One unary call to a backend with everything gRPC's callback API needs to
// outlive it: the context, the request, the response and the outcome.

#include <grpcpp/grpcpp.h>

namespace wsgateway {

template <typename Request, typename Response>
struct UnaryCall {
  grpc::ClientContext context;
  Request request;
  Response response;
  grpc::Status status;
};

}  // namespace wsgateway
