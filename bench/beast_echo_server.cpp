// beast_echo_server: the smallest Boost.Beast WebSocket echo server, the
// benchmark's "ceiling" (no backend hop). One thread, one io_context; each
// message goes back with its opcode. Shaped after Beast's
// example/websocket/server/async: a session reads one message, writes it
// back, and reads the next, so there is never more than one write.
//
//   build/bench/beast_echo_server --listen 127.0.0.1:0
//   -> beast echo server listening on 127.0.0.1:PORT
//
// Exits 0 on SIGINT or SIGTERM.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

// Logs the errors that are not a peer going away.
void Fail(beast::error_code ec, const char* what) {
  if (ec == net::error::operation_aborted || ec == websocket::error::closed || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == beast::error::timeout) {
    return;
  }
  std::fprintf(stderr, "beast_echo_server: %s: %s\n", what, ec.message().c_str());
}

// One client; kept alive by its pending operation.
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket&& socket) : ws_(std::move(socket)) {}

  void Run() {
    // Start on the session's strand, as the accept handler is not on it.
    net::dispatch(ws_.get_executor(), beast::bind_front_handler(&Session::OnRun, shared_from_this()));
  }

 private:
  void OnRun() {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(beast::bind_front_handler(&Session::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec) {
    if (ec) return Fail(ec, "accept");
    DoRead();
  }

  void DoRead() { ws_.async_read(buffer_, beast::bind_front_handler(&Session::OnRead, shared_from_this())); }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Fail(ec, "read");
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(), beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t bytes) {
    if (ec) return Fail(ec, "write");
    buffer_.consume(bytes);
    DoRead();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
};

// Accepts connections and starts a Session for each.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor&& acceptor) : ioc_(ioc), acceptor_(std::move(acceptor)) {}

  void Run() { DoAccept(); }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec) return Fail(ec, "accept");  // as in Beast's example: stop rather than spin
    std::make_shared<Session>(std::move(socket))->Run();
    DoAccept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
};

// Splits HOST:PORT or [V6]:PORT.
bool ParseListen(const std::string& text, tcp::endpoint& endpoint) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return false;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string port_text = text.substr(colon + 1);
  if (port_text.empty() || port_text.find_first_not_of("0123456789") != std::string::npos || port_text.size() > 5) {
    return false;
  }
  const unsigned long port = std::stoul(port_text);
  if (port > 65535) return false;
  beast::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  if (ec) return false;
  endpoint = tcp::endpoint{address, static_cast<unsigned short>(port)};
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Minimal Boost.Beast WebSocket echo server (the benchmark ceiling)."};
  std::string listen = "127.0.0.1:0";
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any)")->capture_default_str();
  CLI11_PARSE(app, argc, argv);

  tcp::endpoint endpoint;
  if (!ParseListen(listen, endpoint)) {
    std::fprintf(stderr, "beast_echo_server: --listen %s: expected HOST:PORT with an IP address\n", listen.c_str());
    return 2;
  }

  net::io_context ioc{1};
  tcp::acceptor acceptor{net::make_strand(ioc)};
  beast::error_code ec;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "beast_echo_server: listen on %s: %s\n", listen.c_str(), ec.message().c_str());
    return 1;
  }
  const tcp::endpoint bound = acceptor.local_endpoint();
  const std::string address =
      bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  std::printf("beast echo server listening on %s:%u\n", address.c_str(), static_cast<unsigned>(bound.port()));
  std::fflush(stdout);

  std::make_shared<Listener>(ioc, std::move(acceptor))->Run();

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });
  ioc.run();
  return 0;
}
