#include "held_connection.hpp"

#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>

#include "stream_timeouts.hpp"

namespace wsbench {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

HeldConnection::HeldConnection(net::io_context& ioc, const Url& url, std::uint64_t index, bool permessage_deflate,
                               const char* lost_what)
    : url_(url),
      index_(index),
      permessage_deflate_(permessage_deflate),
      lost_what_(lost_what),
      ws_(net::make_strand(ioc)) {}

void HeldConnection::Open() {
  net::post(ws_.get_executor(), [self = shared_from_this()] { self->Connect(); });
}

void HeldConnection::Close() {
  net::post(ws_.get_executor(), [self = shared_from_this()] { self->StartClose(); });
}

void HeldConnection::Abort() {
  net::post(ws_.get_executor(), [self = shared_from_this()] { self->StartAbort(); });
}

void HeldConnection::Connect() {
  opened_at_ = Clock::now();
  auto& stream = beast::get_lowest_layer(ws_);
  beast::error_code ec;
  if (!OpenFromLoopbackSource(stream.socket(), url_.endpoint, index_, ec)) return Refuse("bind", ec);
  stream.expires_after(kConnectTimeout);
  stream.async_connect(url_.endpoint, beast::bind_front_handler(&HeldConnection::OnConnect, shared_from_this()));
}

void HeldConnection::OnConnect(beast::error_code ec) {
  if (ec) return Refuse("connect", ec);
  beast::get_lowest_layer(ws_).expires_never();
  SetClientTimeouts(ws_, kConnectTimeout);
  if (permessage_deflate_) {
    websocket::permessage_deflate deflate;
    deflate.client_enable = true;
    ws_.set_option(deflate);
  }
  ws_.async_handshake(response_, url_.host_header, url_.target,
                      beast::bind_front_handler(&HeldConnection::OnHandshake, shared_from_this()));
}

void HeldConnection::OnHandshake(beast::error_code ec) {
  if (ec) return Refuse("handshake", ec);
  const bool deflate_accepted =
      response_[beast::http::field::sec_websocket_extensions].find("permessage-deflate") != beast::string_view::npos;
  response_ = {};
  if (permessage_deflate_ && !deflate_accepted) {
    return Refuse("handshake: the server did not accept permessage-deflate");
  }
  up_ = true;
  Upgraded();
  DoRead();
  Settled();
}

void HeldConnection::Refuse(const char* what, beast::error_code ec) {
  const bool declined = ec == websocket::error::upgrade_declined;
  const unsigned status = declined ? response_.result_int() : 0;
  response_ = {};
  Refused(std::string{what} + ": " + ec.message() + (declined ? " (HTTP " + std::to_string(status) + ")" : ""), status);
  Abandon(ws_);
  Settled();
}

void HeldConnection::Refuse(const std::string& reason) {
  Refused(reason, 0);
  Abandon(ws_);
  Settled();
}

void HeldConnection::Refused(const std::string& reason, unsigned /*http_status*/) {
  ++ThreadStats().refused;
  Report(reason);
}

void HeldConnection::DoRead() {
  ws_.async_read(buffer_, beast::bind_front_handler(&HeldConnection::OnRead, shared_from_this()));
}

void HeldConnection::OnRead(beast::error_code ec, std::size_t bytes) {
  if (ec) {
    if (closing_) return;  // the close handshake ends the read; OnClose reports trouble
    lost_ = true;
    ++ThreadStats().errors;
    Report(std::string{lost_what_} + ": " + ec.message());
    CloseSocket();
    return End();
  }
  const auto data = buffer_.cdata();
  Received({static_cast<const char*>(data.data()), data.size()}, ws_.got_text());
  buffer_.consume(bytes);
  DoRead();
}

void HeldConnection::Write(std::shared_ptr<const std::string> payload, bool text) {
  if (!up_ || lost_ || closing_) return;
  outgoing_.push_back(Outgoing{std::move(payload), text});
  if (!writing_) DoWrite();
}

void HeldConnection::DoWrite() {
  writing_ = true;
  const Outgoing& next = outgoing_.front();
  ws_.text(next.text);
  ws_.async_write(net::buffer(*next.payload), beast::bind_front_handler(&HeldConnection::OnWrite, shared_from_this()));
}

void HeldConnection::OnWrite(beast::error_code ec, std::size_t /*bytes*/) {
  writing_ = false;
  outgoing_.pop_front();
  // A failed write leaves the stream unusable; the pending read reports the
  // connection lost.
  if (ec || lost_ || closing_) return outgoing_.clear();
  if (!outgoing_.empty()) DoWrite();
}

void HeldConnection::StartClose() {
  if (!up_ || lost_ || closing_) return;
  closing_ = true;
  ws_.async_close(websocket::close_code::normal,
                  beast::bind_front_handler(&HeldConnection::OnClose, shared_from_this()));
}

void HeldConnection::OnClose(beast::error_code ec) {
  if (ec) {
    Report("close: " + ec.message());
    CloseSocket();
  }
  End();
}

void HeldConnection::StartAbort() {
  if (!up_ || lost_ || closing_) return;
  closing_ = true;
  Abandon(ws_);
  End();
}

void HeldConnection::CloseSocket() {
  beast::error_code ignored;
  beast::get_lowest_layer(ws_).socket().close(ignored);
}

void HeldConnection::End() {
  if (ended_) return;
  ended_ = true;
  Ended();
}

}  // namespace wsbench
