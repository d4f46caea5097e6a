#pragma once
// The TLS server context of the public listener, built from a PEM
// certificate chain and its private key: TLS 1.2 and 1.3 only, the server's
// cipher order, no compression, ALPN "http/1.1". No session tickets: their
// keys would live as long as the context, so resumption goes through the
// context's in-memory session cache instead, which a reload starts afresh.

#include <boost/asio/ssl/context.hpp>
#include <chrono>
#include <memory>
#include <string>

namespace wsgateway {

struct TlsServerContext {
  std::shared_ptr<boost::asio::ssl::context> context;
  // The leaf certificate, for logs: its subject (RFC 2253) and notAfter.
  std::string subject;
  std::chrono::system_clock::time_point not_after;
  // Why the files could not be used, naming the file (and its option);
  // `context` is null then.
  std::string error;
};

TlsServerContext LoadTlsServerContext(const std::string& cert_file, const std::string& key_file);

}  // namespace wsgateway
