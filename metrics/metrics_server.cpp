#include "metrics/metrics_server.hpp"

#include <prometheus/text_serializer.h>
#include <spdlog/spdlog.h>

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <optional>
#include <stdexcept>

namespace wsgateway::metrics {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// Probes and scrapes are small GETs; anything bigger is not one of them.
constexpr std::uint32_t kMaxHeaderBytes = 8 * 1024;
constexpr std::uint64_t kMaxBodyBytes = 1024;
constexpr auto kIoTimeout = std::chrono::seconds(30);

std::string Scrape(const MetricsServer::Content& content) {
  std::vector<prometheus::MetricFamily> families;
  for (const auto& collectable : content.collectables) {
    auto collected = collectable->Collect();
    families.insert(families.end(), std::make_move_iterator(collected.begin()),
                    std::make_move_iterator(collected.end()));
  }
  return prometheus::TextSerializer().Serialize(families);
}

http::response<http::string_body> Answer(const MetricsServer::Content& content,
                                         const http::request<http::string_body>& request) {
  http::response<http::string_body> response{http::status::ok, request.version()};
  response.set(http::field::content_type, "text/plain; charset=utf-8");
  response.keep_alive(request.keep_alive());
  if (request.method() != http::verb::get && request.method() != http::verb::head) {
    response.result(http::status::method_not_allowed);
    response.set(http::field::allow, "GET, HEAD");
    response.body() = "only GET and HEAD are served here\n";
  } else if (request.target() == "/metrics") {
    response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
    response.body() = Scrape(content);
  } else if (request.target() == "/healthz") {
    response.body() = "ok\n";
  } else if (request.target() == "/readyz") {
    const auto reason = content.readiness ? content.readiness() : std::string();
    if (reason.empty()) {
      response.body() = "ready\n";
    } else {
      response.result(http::status::service_unavailable);
      response.body() = "not ready: " + reason + "\n";
    }
  } else {
    response.result(http::status::not_found);
    response.body() = "not found: this listener serves /metrics, /healthz and /readyz\n";
  }
  response.prepare_payload();
  if (request.method() == http::verb::head) response.body().clear();
  return response;
}

// One HTTP/1.1 connection: requests answered in order, kept alive as the
// client asks, closed after kIoTimeout of silence.
class ProbeSession : public std::enable_shared_from_this<ProbeSession> {
 public:
  ProbeSession(net::ip::tcp::socket&& socket, std::shared_ptr<const MetricsServer::Content> content)
      : stream_(std::move(socket)), content_(std::move(content)) {}

  void Start() { DoRead(); }

 private:
  void DoRead() {
    parser_.emplace();
    parser_->header_limit(kMaxHeaderBytes);
    parser_->body_limit(kMaxBodyBytes);
    stream_.expires_after(kIoTimeout);
    http::async_read(stream_, buffer_, *parser_, beast::bind_front_handler(&ProbeSession::OnRead, shared_from_this()));
  }

  void OnRead(beast::error_code ec, std::size_t) {
    if (ec) return Close();
    response_ = Answer(*content_, parser_->get());
    stream_.expires_after(kIoTimeout);
    http::async_write(stream_, response_, beast::bind_front_handler(&ProbeSession::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    if (ec || !response_.keep_alive()) return Close();
    DoRead();
  }

  void Close() {
    beast::error_code ignored;
    stream_.socket().shutdown(net::ip::tcp::socket::shutdown_send, ignored);
    stream_.close();
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  std::shared_ptr<const MetricsServer::Content> content_;
};

}  // namespace

MetricsServer::MetricsServer(const net::ip::tcp::endpoint& endpoint,
                             std::vector<std::shared_ptr<prometheus::Collectable>> collectables,
                             ReadinessProbe readiness)
    : acceptor_(io_context_),
      accept_retry_(io_context_),
      content_(std::make_shared<const Content>(Content{std::move(collectables), std::move(readiness)})) {
  beast::error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw std::runtime_error("cannot listen for metrics on port " + std::to_string(endpoint.port()) + ": " +
                             ec.message());
  port_ = acceptor_.local_endpoint().port();
  DoAccept();
  thread_ = std::thread([this] { io_context_.run(); });
}

MetricsServer::~MetricsServer() {
  io_context_.stop();
  if (thread_.joinable()) thread_.join();
}

void MetricsServer::DoAccept() {
  acceptor_.async_accept([this](beast::error_code ec, net::ip::tcp::socket socket) {
    if (ec == net::error::operation_aborted) return;
    if (ec) {
      spdlog::warn("metrics listener: accept failed: {}; retrying in 100 ms", ec.message());
      accept_retry_.expires_after(std::chrono::milliseconds(100));
      accept_retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec) DoAccept();
      });
      return;
    }
    std::make_shared<ProbeSession>(std::move(socket), content_)->Start();
    DoAccept();
  });
}

}  // namespace wsgateway::metrics
