#include "tests/support/tcp_proxy.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/write.hpp>

#include <algorithm>
#include <array>
#include <future>

namespace wsgateway::testing {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;

// One forwarded connection: the accepted socket and the one to the target,
// each direction a read-then-write relay. The first error on either side
// closes both, as a proxy that is not there any more would.
class TcpProxy::Pipe : public std::enable_shared_from_this<TcpProxy::Pipe> {
 public:
  Pipe(tcp::socket downstream, asio::io_context& ioc) : down_(std::move(downstream)), up_(ioc) {}

  void Start(std::uint16_t target_port) {
    up_.async_connect(tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), target_port),
                      [self = shared_from_this()](error_code ec) {
                        if (ec) return self->Close();
                        self->Relay(self->down_, self->up_, self->from_down_);
                        self->Relay(self->up_, self->down_, self->from_up_);
                      });
  }

  void Close() {
    error_code ignored;
    down_.close(ignored);
    up_.close(ignored);
  }

 private:
  using Buffer = std::array<char, 16 * 1024>;

  void Relay(tcp::socket& from, tcp::socket& to, Buffer& buffer) {
    from.async_read_some(asio::buffer(buffer),
                         [self = shared_from_this(), &from, &to, &buffer](error_code ec, std::size_t n) {
                           if (ec) return self->Close();
                           asio::async_write(to, asio::buffer(buffer.data(), n),
                                             [self, &from, &to, &buffer](error_code write_ec, std::size_t) {
                                               if (write_ec) return self->Close();
                                               self->Relay(from, to, buffer);
                                             });
                         });
  }

  tcp::socket down_;
  tcp::socket up_;
  Buffer from_down_{};
  Buffer from_up_{};
};

TcpProxy::TcpProxy(std::uint16_t target_port)
    : target_port_(target_port), work_(asio::make_work_guard(ioc_)), acceptor_(ioc_) {}

std::unique_ptr<TcpProxy> TcpProxy::Start(std::uint16_t target_port, std::string* error) {
  std::unique_ptr<TcpProxy> proxy(new TcpProxy(target_port));
  error_code ec;
  const tcp::endpoint loopback(asio::ip::make_address_v4("127.0.0.1"), 0);
  proxy->acceptor_.open(loopback.protocol(), ec);
  if (!ec) proxy->acceptor_.bind(loopback, ec);
  if (!ec) proxy->acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (!ec) proxy->port_ = proxy->acceptor_.local_endpoint(ec).port();
  if (ec) {
    *error = "the TCP proxy cannot listen on 127.0.0.1: " + ec.message();
    return nullptr;
  }
  proxy->Accept();
  proxy->thread_ = std::thread([p = proxy.get()] { p->ioc_.run(); });
  return proxy;
}

TcpProxy::~TcpProxy() {
  if (thread_.joinable()) {
    RunOnIoThread([this] {
      error_code ignored;
      acceptor_.close(ignored);
      for (auto& weak : pipes_) {
        if (auto pipe = weak.lock()) pipe->Close();
      }
    });
    work_.reset();
    thread_.join();
  }
}

template <typename Fn>
void TcpProxy::RunOnIoThread(Fn&& fn) {
  std::promise<void> done;
  asio::post(ioc_, [&] {
    fn();
    done.set_value();
  });
  done.get_future().wait();
}

void TcpProxy::Accept() {
  acceptor_.async_accept([this](error_code ec, tcp::socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (!ec) {
      ++accepted_;
      if (cut_) {
        ++refused_;
        error_code ignored;
        socket.close(ignored);
      } else {
        auto pipe = std::make_shared<Pipe>(std::move(socket), ioc_);
        std::erase_if(pipes_, [](const std::weak_ptr<Pipe>& weak) { return weak.expired(); });
        pipes_.push_back(pipe);
        pipe->Start(target_port_);
      }
    }
    Accept();
  });
}

void TcpProxy::Cut() {
  RunOnIoThread([this] {
    cut_ = true;
    for (auto& weak : pipes_) {
      if (auto pipe = weak.lock()) pipe->Close();
    }
    pipes_.clear();
  });
}

void TcpProxy::Restore() {
  RunOnIoThread([this] { cut_ = false; });
}

}  // namespace wsgateway::testing
