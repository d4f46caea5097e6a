#include "gateway/runtime/client_transport.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

namespace wsgateway {

namespace {

// The largest TLS record's payload: one read takes a whole record.
constexpr std::size_t kTlsReadBytes = 16 * 1024;

}  // namespace

ClientTransport::Tls::Tls(LoopSocket& socket, std::shared_ptr<boost::asio::ssl::context> ctx)
    : context(std::move(ctx)), stream(socket, *context) {}

void ClientTransport::UseTls(std::shared_ptr<boost::asio::ssl::context> context) {
  tls_ = std::make_unique<Tls>(socket_, std::move(context));
}

std::span<char> ClientTransport::tls_read_buffer() {
  if (!tls_->read_buffer) tls_->read_buffer = std::make_unique_for_overwrite<char[]>(kTlsReadBytes);
  return {tls_->read_buffer.get(), kTlsReadBytes};
}

bool IsPlainHttpOnTls(boost::beast::error_code ec) {
  if (ec.category() != boost::asio::error::get_ssl_category()) return false;
  const auto code = static_cast<unsigned long>(ec.value());
  return ERR_GET_LIB(code) == ERR_LIB_SSL && ERR_GET_REASON(code) == SSL_R_HTTP_REQUEST;
}

}  // namespace wsgateway
