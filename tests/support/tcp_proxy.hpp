#pragma once
// A TCP forwarder on a loopback port the OS picks, for cutting one process
// off from another (a gateway from Redis) while both keep running: Cut
// closes every forwarded connection and from then on closes each new one
// as soon as it is accepted, as a network partition that resets
// connections would; Restore forwards again.
//
// Thread-safety: every public member may be called from any thread; the
// connections live on one io thread of the proxy's own.

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace wsgateway::testing {

class TcpProxy {
 public:
  // Forwards 127.0.0.1:port() to 127.0.0.1:target_port; nullptr and *error
  // when it cannot listen.
  static std::unique_ptr<TcpProxy> Start(std::uint16_t target_port, std::string* error);
  ~TcpProxy();
  TcpProxy(const TcpProxy&) = delete;
  TcpProxy& operator=(const TcpProxy&) = delete;

  std::uint16_t port() const { return port_; }
  // "redis://127.0.0.1:<port>", for a proxy in front of a redis-server.
  std::string redis_url() const { return "redis://127.0.0.1:" + std::to_string(port_); }

  // Closes every forwarded connection and refuses the ones that come (they
  // are accepted and closed at once); returns once the open ones are
  // closed.
  void Cut();
  // Forwards new connections again.
  void Restore();

  // Connections accepted so far, forwarded or refused.
  std::size_t accepted() const { return accepted_.load(); }
  // Connections accepted and closed at once because the proxy was cut.
  std::size_t refused() const { return refused_.load(); }

 private:
  class Pipe;

  explicit TcpProxy(std::uint16_t target_port);
  void Accept();
  // Runs `fn` on the io thread and waits for it.
  template <typename Fn>
  void RunOnIoThread(Fn&& fn);

  const std::uint16_t target_port_;
  boost::asio::io_context ioc_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_;
  boost::asio::ip::tcp::acceptor acceptor_;
  std::uint16_t port_ = 0;
  std::thread thread_;

  // The io thread's own.
  bool cut_ = false;
  std::vector<std::weak_ptr<Pipe>> pipes_;

  std::atomic<std::size_t> accepted_{0};
  std::atomic<std::size_t> refused_{0};
};

}  // namespace wsgateway::testing
