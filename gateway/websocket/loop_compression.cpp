#include "gateway/websocket/loop_compression.hpp"

#include <algorithm>

namespace wsgateway {

LoopCompression::LoopCompression(int level) : level_(level) {}

std::shared_ptr<const std::string> LoopCompression::Compress(const std::shared_ptr<const std::string>& payload,
                                                             int window_bits) {
  if (payload == last_source_ && window_bits == last_window_bits_) return last_result_;
  const auto index = static_cast<std::size_t>(std::clamp(window_bits, 9, 15));
  auto& deflater = deflaters_[index];
  if (!deflater) deflater = std::make_unique<MessageDeflater>(static_cast<int>(index), level_);
  auto compressed = std::make_shared<std::string>();
  std::shared_ptr<const std::string> result;
  if (deflater->Compress(*payload, *compressed, /*reset_after=*/true) && compressed->size() < payload->size()) {
    result = std::move(compressed);
  }
  last_source_ = payload;
  last_window_bits_ = window_bits;
  last_result_ = result;
  return result;
}

}  // namespace wsgateway
