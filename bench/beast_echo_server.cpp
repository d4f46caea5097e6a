// beast_echo_server: the smallest Boost.Beast WebSocket echo server, the
// benchmark's "ceiling" (no backend hop). One thread, one io_context; each
// message goes back with its opcode. Shaped after Beast's
// example/websocket/server/async: a session reads one message, writes it
// back, and reads the next, so there is never more than one echo write.
//
// It also holds the broadcast loop that the gateway's fan-out is compared
// with (wsbench fanout --trigger ws): a connection whose request target is
// exactly /_broadcast is a broadcast source, and every message it sends is
// written, with its opcode, to every other connection. The message is
// copied once into an immutable buffer that all recipients' write queues
// share.
//
// The io_context runs on exactly one thread (main's), so every handler runs
// there: the registry of sessions is a plain set, and a source calls the
// recipients' Deliver directly, with no lock and no post. (Each session
// still has a strand, as in Beast's example; on one thread it costs next to
// nothing.)
//
//   build/bench/beast_echo_server --listen 127.0.0.1:0
//   -> beast echo server listening on 127.0.0.1:PORT
//
// Exits 0 on SIGINT or SIGTERM.

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <csignal>
#include <cstdio>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include <CLI/CLI.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

constexpr auto kRequestTimeout = std::chrono::seconds(30);
constexpr beast::string_view kBroadcastTarget = "/_broadcast";

// Logs the errors that are not a peer going away.
void Fail(beast::error_code ec, const char* what) {
  if (ec == net::error::operation_aborted || ec == websocket::error::closed || ec == net::error::eof ||
      ec == net::error::connection_reset || ec == beast::error::timeout || ec == http::error::end_of_stream) {
    return;
  }
  std::fprintf(stderr, "beast_echo_server: %s: %s\n", what, ec.message().c_str());
}

using UpgradeRequest = http::request<http::empty_body>;

// One message from a broadcast source, shared by every recipient's queue.
struct Broadcast {
  std::string payload;
  bool text;
};

class Session;

// The sessions that receive broadcasts: those past their handshake that are
// not sources. Used only on the server's one thread.
using Registry = std::unordered_set<Session*>;

// One client: echoes what it sends and receives the broadcasts; kept alive
// by its pending operations.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(beast::tcp_stream&& stream, Registry& registry) : ws_(std::move(stream)), registry_(registry) {}
  ~Session() { registry_.erase(this); }

  void Accept(const UpgradeRequest& request) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(request, beast::bind_front_handler(&Session::OnAccept, shared_from_this()));
  }

  // Queues a broadcast behind the write in progress, if any.
  void Deliver(const std::shared_ptr<const Broadcast>& message) {
    broadcasts_.push_back(message);
    if (!writing_) WriteBroadcast();
  }

 private:
  void OnAccept(beast::error_code ec) {
    if (ec) return Fail(ec, "accept");
    registry_.insert(this);
    DoRead();
  }

  // ---- The echo path: as lean as in Beast's example, plus one flag. ----

  void DoRead() { ws_.async_read(buffer_, beast::bind_front_handler(&Session::OnRead, shared_from_this())); }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Fail(ec, "read");
    if (writing_) {
      echo_waiting_ = true;  // a broadcast is being written; the echo follows it
      return;
    }
    WriteEcho();
  }

  void WriteEcho() {
    writing_ = true;
    ws_.text(ws_.got_text());
    ws_.async_write(buffer_.data(), beast::bind_front_handler(&Session::OnEchoWritten, shared_from_this()));
  }

  void OnEchoWritten(beast::error_code ec, std::size_t bytes) {
    writing_ = false;
    if (ec) return Fail(ec, "write");
    buffer_.consume(bytes);
    if (!broadcasts_.empty()) WriteBroadcast();
    DoRead();
  }

  // ---- Broadcasts, one write at a time, sharing the echo's turn. ----

  void WriteBroadcast() {
    writing_ = true;
    ws_.text(broadcasts_.front()->text);
    ws_.async_write(net::buffer(broadcasts_.front()->payload),
                    beast::bind_front_handler(&Session::OnBroadcastWritten, shared_from_this()));
  }

  void OnBroadcastWritten(beast::error_code ec, std::size_t) {
    writing_ = false;
    if (ec) return Fail(ec, "write");
    broadcasts_.erase(broadcasts_.begin());
    if (echo_waiting_) {
      echo_waiting_ = false;
      return WriteEcho();
    }
    if (!broadcasts_.empty()) WriteBroadcast();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  Registry& registry_;
  // A vector, not a deque: empty, it allocates nothing, so a session that
  // never receives a broadcast does not pay for the queue. The queue is as
  // long as the source is ahead of this client, a few entries, so erasing
  // the front is cheap.
  std::vector<std::shared_ptr<const Broadcast>> broadcasts_;
  bool writing_ = false;       // an echo or a broadcast is being written
  bool echo_waiting_ = false;  // a message read while writing waits for its echo
};

// A /_broadcast connection: relays each message to every registered session.
class BroadcastSource : public std::enable_shared_from_this<BroadcastSource> {
 public:
  BroadcastSource(beast::tcp_stream&& stream, Registry& registry) : ws_(std::move(stream)), registry_(registry) {}

  void Accept(const UpgradeRequest& request) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(request, beast::bind_front_handler(&BroadcastSource::OnAccept, shared_from_this()));
  }

 private:
  void OnAccept(beast::error_code ec) {
    if (ec) return Fail(ec, "accept");
    DoRead();
  }

  void DoRead() { ws_.async_read(buffer_, beast::bind_front_handler(&BroadcastSource::OnRead, shared_from_this())); }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Fail(ec, "read");
    const auto message =
        std::make_shared<const Broadcast>(Broadcast{beast::buffers_to_string(buffer_.data()), ws_.got_text()});
    buffer_.consume(buffer_.size());
    for (Session* session : registry_) session->Deliver(message);
    DoRead();
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  Registry& registry_;
};

// Reads the upgrade request, then hands the connection to a Session or, for
// /_broadcast, a BroadcastSource.
class Handshake : public std::enable_shared_from_this<Handshake> {
 public:
  Handshake(tcp::socket&& socket, Registry& registry) : stream_(std::move(socket)), registry_(registry) {
    // As the gateway does: a broadcast queued behind another must not wait
    // for Nagle's algorithm (and the peer's delayed ACK).
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);
  }

  void Run() {
    // Start on the connection's strand, as the accept handler is not on it.
    net::dispatch(stream_.get_executor(), beast::bind_front_handler(&Handshake::DoRead, shared_from_this()));
  }

 private:
  void DoRead() {
    stream_.expires_after(kRequestTimeout);
    http::async_read(stream_, buffer_, request_, beast::bind_front_handler(&Handshake::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Fail(ec, "read request");
    stream_.expires_never();
    if (request_.target() == kBroadcastTarget) {
      std::make_shared<BroadcastSource>(std::move(stream_), registry_)->Accept(request_);
    } else {
      std::make_shared<Session>(std::move(stream_), registry_)->Accept(request_);
    }
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  UpgradeRequest request_;
  Registry& registry_;
};

// Accepts connections and starts a Handshake for each.
class Listener : public std::enable_shared_from_this<Listener> {
 public:
  Listener(net::io_context& ioc, tcp::acceptor&& acceptor, Registry& registry)
      : ioc_(ioc), acceptor_(std::move(acceptor)), registry_(registry) {}

  void Run() { DoAccept(); }

 private:
  void DoAccept() {
    acceptor_.async_accept(net::make_strand(ioc_), beast::bind_front_handler(&Listener::OnAccept, shared_from_this()));
  }

  void OnAccept(beast::error_code ec, tcp::socket socket) {
    if (ec) return Fail(ec, "accept");  // as in Beast's example: stop rather than spin
    std::make_shared<Handshake>(std::move(socket), registry_)->Run();
    DoAccept();
  }

  net::io_context& ioc_;
  tcp::acceptor acceptor_;
  Registry& registry_;
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

  // Declared before the io_context: sessions still queued in it unregister
  // themselves when it is destroyed.
  Registry registry;
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

  std::make_shared<Listener>(ioc, std::move(acceptor), registry)->Run();

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });
  ioc.run();  // on this thread only: see the top of the file
  return 0;
}
