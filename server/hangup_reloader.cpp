#include "server/hangup_reloader.hpp"

#include <spdlog/spdlog.h>

#include <csignal>

namespace wsgateway {

HangupReloader::HangupReloader(boost::asio::io_context& control, std::vector<std::function<void()>> reloads)
    : hangups_(control, SIGHUP), reloads_(std::move(reloads)) {
  Wait();
}

void HangupReloader::Wait() {
  hangups_.async_wait([this](boost::system::error_code ec, int) {
    if (ec) return;
    spdlog::info("SIGHUP received: reloading");
    for (const auto& reload : reloads_) reload();
    Wait();
  });
}

}  // namespace wsgateway
