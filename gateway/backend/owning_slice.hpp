#pragma once
// A gRPC slice that owns a string's bytes without copying them: gRPC frees
// them when its last reference goes, which may be after the write that
// carried them completed. How the link hands event chunks and the stream's
// hello and snapshot messages to gRPC.

#include <grpcpp/support/slice.h>

#include <string>
#include <utility>

namespace wsgateway {

inline grpc::Slice OwningSlice(std::string&& bytes) {
  auto* owned = new std::string(std::move(bytes));
  return grpc::Slice(
      owned->data(), owned->size(), [](void* p) { delete static_cast<std::string*>(p); }, owned);
}

}  // namespace wsgateway
