// pushpin_backend: the echo backend behind Pushpin in the benchmark. Pushpin
// speaks WebSocket to clients and WebSocket-over-HTTP to its backend: each
// batch of client events arrives as one HTTP POST whose body is a list of
// events, and the response body carries the events to send back. This
// server answers every event with its echo, so Pushpin plays the same role
// as wsgateway in front of examples/echo_backend.
//
//   build/bench/pushpin_backend --listen 127.0.0.1:0
//   -> pushpin backend listening on 127.0.0.1:PORT
//
// Event encoding (both directions): "TYPE\r\n" or "TYPE LEN\r\nCONTENT\r\n",
// LEN in hex. Echoed: OPEN -> OPEN (accepts the connection), TEXT -> TEXT,
// BINARY -> BINARY, PING -> PONG, CLOSE -> CLOSE (same code and reason);
// DISCONNECT and PONG need no answer.
//
// HTTP/1.1 with keep-alive, as Pushpin reuses its connections. One thread by
// default: the benchmark pins every server process to one core, and one
// event loop there does not contend with itself. Exits 0 on SIGINT/SIGTERM.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

constexpr std::string_view kEventsType = "application/websocket-events";
// Pushpin batches the events of one connection while a request is out, so a
// body can hold many messages; this bounds it well above what the benchmark
// sends (in-flight messages x 4 KiB) without letting a bad peer grow memory
// without limit.
constexpr std::uint64_t kMaxBodyBytes = 64u << 20;

void Fail(beast::error_code ec, const char* what) {
  if (ec == net::error::operation_aborted || ec == http::error::end_of_stream || ec == net::error::eof ||
      ec == net::error::connection_reset) {
    return;
  }
  std::fprintf(stderr, "pushpin_backend: %s: %s\n", what, ec.message().c_str());
}

void AppendEvent(std::string& out, std::string_view type, std::optional<std::string_view> content) {
  out += type;
  if (content) {
    char hex[17];
    const auto [end, ec] = std::to_chars(hex, hex + sizeof hex, content->size(), 16);
    (void)ec;  // 16 hex digits always fit a size_t
    out += ' ';
    out.append(hex, end);
    out += "\r\n";
    out += *content;
  }
  out += "\r\n";
}

// Parses the request body `in` and appends the reply events to `out`. False
// when the body is not a well-formed event list.
bool EchoEvents(std::string_view in, std::string& out) {
  while (!in.empty()) {
    const std::size_t eol = in.find("\r\n");
    if (eol == std::string_view::npos) return false;
    const std::string_view line = in.substr(0, eol);
    in.remove_prefix(eol + 2);
    const std::size_t space = line.find(' ');
    const std::string_view type = line.substr(0, space);
    std::optional<std::string_view> content;
    if (space != std::string_view::npos) {
      const std::string_view hex = line.substr(space + 1);
      std::size_t length = 0;
      const auto [end, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), length, 16);
      if (ec != std::errc{} || end != hex.data() + hex.size()) return false;
      // Written so that a huge LEN cannot wrap around.
      if (length > in.size() || in.size() - length < 2 || in.substr(length, 2) != "\r\n") return false;
      content = in.substr(0, length);
      in.remove_prefix(length + 2);
    }
    if (type == "OPEN") {
      // No "Sec-WebSocket-Extensions: grip": that would make Pushpin treat
      // "c:"-prefixed text as GRIP control messages, which an echo does not
      // want; a plain OPEN accepts the connection.
      AppendEvent(out, "OPEN", std::nullopt);
    } else if (type == "TEXT" || type == "BINARY") {
      AppendEvent(out, type, content.value_or(std::string_view{}));
    } else if (type == "PING") {
      AppendEvent(out, "PONG", content);
    } else if (type == "CLOSE") {
      AppendEvent(out, "CLOSE", content);
    } else if (type == "PONG" || type == "DISCONNECT") {
      // Nothing to answer: a pong ends a ping we did not send; a disconnect
      // means the client is gone.
    } else {
      return false;
    }
  }
  return true;
}

// One HTTP/1.1 connection from Pushpin; requests are answered in order.
class Session : public std::enable_shared_from_this<Session> {
 public:
  explicit Session(tcp::socket&& socket) : stream_(std::move(socket)) {}

  void Run() { net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Session::DoRead, shared_from_this())); }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->body_limit(kMaxBodyBytes);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&Session::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Fail(ec, "read");
    const auto& request = parser_->get();
    response_ = {};
    response_.version(request.version());
    response_.keep_alive(request.keep_alive());
    std::string& body = response_.body();
    const std::string_view content_type = request[http::field::content_type];
    if (request.method() != http::verb::post || content_type.substr(0, kEventsType.size()) != kEventsType) {
      response_.result(http::status::bad_request);
      response_.set(http::field::content_type, "text/plain");
      body = "pushpin_backend: expected a POST of application/websocket-events (route with over_http)\n";
    } else if (!EchoEvents(request.body(), body)) {
      response_.result(http::status::bad_request);
      response_.set(http::field::content_type, "text/plain");
      body = "pushpin_backend: malformed event list\n";
    } else {
      response_.result(http::status::ok);
      response_.set(http::field::content_type, kEventsType);
    }
    response_.prepare_payload();
    http::async_write(stream_, response_, beast::bind_front_handler(&Session::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    if (ec) return Fail(ec, "write");
    if (!response_.keep_alive()) {
      stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
      return;
    }
    DoRead();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;  // fresh per request, as Beast requires
  http::response<http::string_body> response_;
};

class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor&& acceptor) : ioc_(ioc), acceptor_(std::move(acceptor)) {}

  void Run() { DoAccept(); }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec) return Fail(ec, "accept");
    socket.set_option(tcp::no_delay(true), ec);  // small replies must not wait for Nagle
    std::make_shared<Session>(std::move(socket))->Run();
    DoAccept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
};

// HOST:PORT or [V6]:PORT with an IP address literal.
std::optional<tcp::endpoint> ParseListen(const std::string& text) {
  const std::size_t colon = text.rfind(':');
  if (colon == std::string::npos) return std::nullopt;
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  const std::string_view port_text = std::string_view{text}.substr(colon + 1);
  unsigned port = 0;
  const auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
  if (port_text.empty() || ec != std::errc{} || end != port_text.data() + port_text.size() || port > 65535) {
    return std::nullopt;
  }
  beast::error_code address_ec;
  const auto address = net::ip::make_address(host, address_ec);
  if (address_ec) return std::nullopt;
  return tcp::endpoint{address, static_cast<unsigned short>(port)};
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Echo backend for Pushpin's WebSocket-over-HTTP protocol (benchmark reference)."};
  std::string listen = "127.0.0.1:0";
  unsigned threads = 1;
  app.add_option("--listen", listen, "HOST:PORT to listen on (port 0: any)")->capture_default_str();
  app.add_option("--threads", threads, "threads running the event loop")
      ->capture_default_str()
      ->check(CLI::Range(1u, 256u));
  CLI11_PARSE(app, argc, argv);

  const auto endpoint = ParseListen(listen);
  if (!endpoint) {
    std::fprintf(stderr, "pushpin_backend: --listen %s: expected HOST:PORT with an IP address\n", listen.c_str());
    return 2;
  }

  net::io_context ioc{static_cast<int>(threads)};
  tcp::acceptor acceptor{net::make_strand(ioc)};
  beast::error_code ec;
  acceptor.open(endpoint->protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(*endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "pushpin_backend: listen on %s: %s\n", listen.c_str(), ec.message().c_str());
    return 1;
  }
  const tcp::endpoint bound = acceptor.local_endpoint();
  const std::string address =
      bound.address().is_v6() ? "[" + bound.address().to_string() + "]" : bound.address().to_string();
  std::printf("pushpin backend listening on %s:%u\n", address.c_str(), static_cast<unsigned>(bound.port()));
  std::fflush(stdout);

  std::make_shared<Listener>(ioc, std::move(acceptor))->Run();

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });
  std::vector<std::thread> extra;
  for (unsigned i = 1; i < threads; ++i) extra.emplace_back([&ioc] { ioc.run(); });
  ioc.run();
  for (auto& thread : extra) thread.join();
  return 0;
}
