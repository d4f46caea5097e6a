#pragma once
// Follows the gateway's readiness (Gateway::NotReadyReason) on the control
// executor and reports each change, so that the gRPC health status and the
// log follow the backend stream and the drain. /readyz asks the gateway
// directly; gRPC health needs a status pushed to it, hence this watch.
//
// Thread-safety: control thread only.

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <functional>
#include <optional>
#include <string>

namespace wsgateway {

class ReadinessWatch {
 public:
  // Why the gateway is not ready; empty when it is.
  using Probe = std::function<std::string()>;
  using OnChange = std::function<void(bool ready, const std::string& reason)>;

  ReadinessWatch(boost::asio::any_io_executor executor, std::chrono::milliseconds period, Probe probe,
                 OnChange on_change);

  // Checks now, reporting the first state, then every period.
  void Start();
  // Checks at once (after something that surely changed readiness).
  void CheckNow();

 private:
  void Schedule();

  boost::asio::steady_timer timer_;
  const std::chrono::milliseconds period_;
  Probe probe_;
  OnChange on_change_;
  std::optional<std::string> last_reason_;
};

}  // namespace wsgateway
