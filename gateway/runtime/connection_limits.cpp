#include "gateway/runtime/connection_limits.hpp"

#include <utility>

namespace wsgateway {
namespace {

boost::asio::ip::address Normalized(const boost::asio::ip::address& address) {
  if (address.is_v6() && address.to_v6().is_v4_mapped()) {
    return boost::asio::ip::make_address_v4(boost::asio::ip::v4_mapped, address.to_v6());
  }
  return address;
}

}  // namespace

ConnectionLimits::Slot::Slot(Slot&& other) noexcept
    : owner_(std::exchange(other.owner_, nullptr)), address_(other.address_) {}

ConnectionLimits::Slot& ConnectionLimits::Slot::operator=(Slot&& other) noexcept {
  if (this != &other) {
    Release();
    owner_ = std::exchange(other.owner_, nullptr);
    address_ = other.address_;
  }
  return *this;
}

void ConnectionLimits::Slot::Release() {
  if (auto* owner = std::exchange(owner_, nullptr)) owner->Release(address_);
}

ConnectionLimits::ConnectionLimits(std::size_t max_total, std::size_t max_per_address)
    : max_total_(max_total), max_per_address_(max_per_address) {}

ConnectionLimits::Admission ConnectionLimits::Admit(const boost::asio::ip::address& address) {
  if (max_total_ == 0 && max_per_address_ == 0) return {};
  const auto key = Normalized(address);
  const std::lock_guard lock(mutex_);
  if (max_total_ != 0 && total_ >= max_total_) return {Verdict::kOverTotal, {}};
  if (max_per_address_ != 0) {
    auto& count = per_address_[key];
    if (count >= max_per_address_) {
      // Cannot be a fresh entry: the limit is at least 1.
      return {Verdict::kOverAddress, {}};
    }
    ++count;
  }
  ++total_;
  return {Verdict::kAdmitted, Slot(this, key)};
}

void ConnectionLimits::Release(const boost::asio::ip::address& address) {
  const std::lock_guard lock(mutex_);
  --total_;
  if (max_per_address_ == 0) return;
  const auto it = per_address_.find(address);
  if (it != per_address_.end() && --it->second == 0) per_address_.erase(it);
}

std::size_t ConnectionLimits::total() const {
  const std::lock_guard lock(mutex_);
  return total_;
}

std::size_t ConnectionLimits::CountFor(const boost::asio::ip::address& address) const {
  const std::lock_guard lock(mutex_);
  const auto it = per_address_.find(Normalized(address));
  return it == per_address_.end() ? 0 : it->second;
}

std::size_t ConnectionLimits::tracked_addresses() const {
  const std::lock_guard lock(mutex_);
  return per_address_.size();
}

}  // namespace wsgateway
