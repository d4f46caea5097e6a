// faulty_ws_server: a WebSocket echo server that misbehaves on purpose, so
// the wsbench smoke tests can check that wsbench notices. Like
// bench/beast_echo_server it echoes every message with its opcode and relays
// every message of a /_broadcast connection to all other connections; the
// fault (--fault) counts over the whole server:
//
//   none         behaves
//   wrong-reply  alters one byte of every 10th echo, and of one recipient's
//                copy of every broadcast
//   drop         drops every 10th echo, and one recipient of every broadcast
//   refuse       answers every 3rd handshake with HTTP 503
//
// Alterations flip the lowest bit of the last byte, which keeps ASCII text
// valid UTF-8: the client sees a wrong message, not a protocol error.
//
// One thread runs everything, so the counters and the registry need no lock.
//
//   faulty_ws_server --listen 127.0.0.1:0 --fault drop
//   -> faulty server listening on 127.0.0.1:PORT

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
#include <csignal>
#include <cstdio>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <utility>

#include <CLI/CLI.hpp>

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

enum class Fault { kNone, kWrongReply, kDrop, kRefuse };

class Session;

// Server-wide state, on the one thread.
struct Server {
  Fault fault = Fault::kNone;
  std::uint64_t handshakes = 0;
  std::uint64_t echoes = 0;
  std::unordered_set<Session*> recipients;  // sessions that get broadcasts
};

struct Message {
  std::string payload;
  bool text;
};

void Alter(std::string& payload) {
  if (!payload.empty()) payload.back() = static_cast<char>(payload.back() ^ 1);
}

// An upgraded connection: an echo client, or a broadcast source.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(beast::tcp_stream&& stream, Server& server, bool source)
      : ws_(std::move(stream)), server_(server), source_(source) {}
  ~Session() { server_.recipients.erase(this); }

  void Accept(const http::request<http::empty_body>& request) {
    ws_.set_option(websocket::stream_base::timeout::suggested(beast::role_type::server));
    ws_.async_accept(request, [self = shared_from_this()](beast::error_code ec) {
      if (ec) return;
      if (!self->source_) self->server_.recipients.insert(self.get());
      self->DoRead();
    });
  }

  void Send(std::shared_ptr<const Message> message) {
    queue_.push_back(std::move(message));
    if (queue_.size() == 1) WriteFront();
  }

 private:
  void DoRead() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (ec) return;
      auto message =
          std::make_shared<Message>(Message{beast::buffers_to_string(self->buffer_.data()), self->ws_.got_text()});
      self->buffer_.consume(self->buffer_.size());
      if (self->source_) {
        self->Relay(*message);
      } else {
        self->Echo(std::move(message));
      }
      self->DoRead();
    });
  }

  void Echo(std::shared_ptr<Message> message) {
    const bool tenth = ++server_.echoes % 10 == 0;
    if (tenth && server_.fault == Fault::kDrop) return;
    if (tenth && server_.fault == Fault::kWrongReply) Alter(message->payload);
    Send(std::move(message));
  }

  // Sends `message` to every recipient; the first one listed is the victim
  // of the fault: it misses the message (drop) or gets it altered
  // (wrong-reply).
  void Relay(const Message& message) {
    const auto shared = std::make_shared<const Message>(message);
    bool victim = true;
    for (Session* recipient : server_.recipients) {
      const bool hit = std::exchange(victim, false);
      if (hit && server_.fault == Fault::kDrop) continue;
      if (hit && server_.fault == Fault::kWrongReply) {
        auto altered = std::make_shared<Message>(message);
        Alter(altered->payload);
        recipient->Send(std::move(altered));
        continue;
      }
      recipient->Send(shared);
    }
  }

  void WriteFront() {
    ws_.text(queue_.front()->text);
    ws_.async_write(net::buffer(queue_.front()->payload),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) {
                      if (ec) return;
                      self->queue_.pop_front();
                      if (!self->queue_.empty()) self->WriteFront();
                    });
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  Server& server_;
  const bool source_;
  std::deque<std::shared_ptr<const Message>> queue_;  // front: being written
};

// Reads the upgrade request; refuses it (refuse) or starts a Session.
class Handshake : public std::enable_shared_from_this<Handshake> {
 public:
  Handshake(tcp::socket&& socket, Server& server) : stream_(std::move(socket)), server_(server) {
    beast::error_code ignored;
    stream_.socket().set_option(tcp::no_delay(true), ignored);  // queued writes go out at once
  }

  void Run() {
    stream_.expires_after(std::chrono::seconds(30));
    http::async_read(stream_, buffer_, request_, [self = shared_from_this()](beast::error_code ec, std::size_t) {
      if (!ec) self->OnRequest();
    });
  }

 private:
  void OnRequest() {
    stream_.expires_never();
    if (++server_.handshakes % 3 == 0 && server_.fault == Fault::kRefuse) {
      response_.result(http::status::service_unavailable);
      response_.version(request_.version());
      response_.set(http::field::connection, "close");
      response_.body() = "refused on purpose (--fault refuse)\n";
      response_.prepare_payload();
      http::async_write(stream_, response_, [self = shared_from_this()](beast::error_code, std::size_t) {
        beast::error_code ignored;
        self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
      });
      return;
    }
    const bool source = request_.target() == "/_broadcast";
    std::make_shared<Session>(std::move(stream_), server_, source)->Accept(request_);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> request_;
  http::response<http::string_body> response_;
  Server& server_;
};

void Accept(tcp::acceptor& acceptor, Server& server) {
  acceptor.async_accept([&acceptor, &server](beast::error_code ec, tcp::socket socket) {
    if (ec) return;
    std::make_shared<Handshake>(std::move(socket), server)->Run();
    Accept(acceptor, server);
  });
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"WebSocket echo and /_broadcast relay server with injected faults (wsbench smoke tests)."};
  std::string listen = "127.0.0.1:0";
  Fault fault = Fault::kNone;
  const std::map<std::string, Fault> faults{
      {"none", Fault::kNone}, {"wrong-reply", Fault::kWrongReply}, {"drop", Fault::kDrop}, {"refuse", Fault::kRefuse}};
  app.add_option("--listen", listen, "IPv4 HOST:PORT to listen on (port 0: any)")->capture_default_str();
  app.add_option("--fault", fault, "none, wrong-reply, drop or refuse")->transform(CLI::CheckedTransformer(faults));
  CLI11_PARSE(app, argc, argv);

  const std::size_t colon = listen.rfind(':');
  beast::error_code ec;
  const auto address = net::ip::make_address_v4(listen.substr(0, colon), ec);
  if (colon == std::string::npos || ec) {
    std::fprintf(stderr, "faulty_ws_server: --listen %s: expected IPv4 HOST:PORT\n", listen.c_str());
    return 2;
  }
  const tcp::endpoint endpoint{address, static_cast<unsigned short>(std::stoul(listen.substr(colon + 1)))};

  // Declared before the io_context: sessions still queued in it unregister
  // themselves when it is destroyed.
  Server server;
  server.fault = fault;
  net::io_context ioc{1};
  tcp::acceptor acceptor{ioc};
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    std::fprintf(stderr, "faulty_ws_server: listen on %s: %s\n", listen.c_str(), ec.message().c_str());
    return 1;
  }
  std::printf("faulty server listening on %s:%u\n", endpoint.address().to_string().c_str(),
              static_cast<unsigned>(acceptor.local_endpoint().port()));
  std::fflush(stdout);

  Accept(acceptor, server);
  net::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&ioc](beast::error_code, int) { ioc.stop(); });
  ioc.run();
  return 0;
}
