#pragma once
// SIGHUP re-reads what can change without a restart (admin tokens, TLS
// certificates): each reload runs on the control thread, in order, on every
// SIGHUP for as long as this object lives. Without it SIGHUP would end the
// process.
//
// Thread-safety: control thread only.

#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <functional>
#include <vector>

namespace wsgateway {

class HangupReloader {
 public:
  HangupReloader(boost::asio::io_context& control, std::vector<std::function<void()>> reloads);

 private:
  void Wait();

  boost::asio::signal_set hangups_;
  std::vector<std::function<void()>> reloads_;
};

}  // namespace wsgateway
