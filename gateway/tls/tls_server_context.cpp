#include "gateway/tls/tls_server_context.hpp"

#include <openssl/bio.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>

namespace wsgateway {

namespace ssl = boost::asio::ssl;

namespace {

// Mozilla's "intermediate" TLS 1.2 suites: forward secret AEADs only. TLS 1.3
// keeps OpenSSL's defaults, which are all of that kind.
constexpr const char* kTls12Ciphers =
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";
constexpr unsigned char kSessionIdContext[] = "wsgateway";
constexpr long kSessionCacheSeconds = 300;

std::string Describe(const char* option, const std::string& path) { return std::string(option) + " '" + path + "'"; }

// Empty when the file can be opened for reading, else why not.
std::string Unreadable(const std::string& path) {
  std::ifstream file(path);
  if (file) return {};
  return std::strerror(errno);
}

// Offers HTTP/1.1 only; a client that offers nothing we speak goes on
// without ALPN rather than failing the handshake here.
int SelectAlpn(SSL*, const unsigned char** out, unsigned char* out_size, const unsigned char* offered,
               unsigned int offered_size, void*) {
  static constexpr unsigned char kHttp11[] = {8, 'h', 't', 't', 'p', '/', '1', '.', '1'};
  unsigned char* selected = nullptr;
  if (SSL_select_next_proto(&selected, out_size, kHttp11, sizeof kHttp11, offered, offered_size) !=
      OPENSSL_NPN_NEGOTIATED) {
    return SSL_TLSEXT_ERR_NOACK;
  }
  *out = selected;
  return SSL_TLSEXT_ERR_OK;
}

void Harden(ssl::context& context) {
  context.set_options(ssl::context::default_workarounds | ssl::context::no_sslv2 | ssl::context::no_sslv3 |
                      ssl::context::no_tlsv1 | ssl::context::no_tlsv1_1 | ssl::context::no_compression |
                      ssl::context::single_dh_use);
  SSL_CTX* handle = context.native_handle();
  SSL_CTX_set_min_proto_version(handle, TLS1_2_VERSION);
  SSL_CTX_set_options(handle, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION);
  SSL_CTX_set_cipher_list(handle, kTls12Ciphers);
  SSL_CTX_set_session_id_context(handle, kSessionIdContext, sizeof kSessionIdContext - 1);
  SSL_CTX_set_timeout(handle, kSessionCacheSeconds);
  // Idle connections give their record buffers back to the allocator.
  SSL_CTX_set_mode(handle, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(handle, SelectAlpn, nullptr);
}

std::string SubjectOf(X509* certificate) {
  BIO* bio = BIO_new(BIO_s_mem());
  if (bio == nullptr) return {};
  X509_NAME_print_ex(bio, X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253);
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string subject(data, static_cast<std::size_t>(size > 0 ? size : 0));
  BIO_free(bio);
  return subject;
}

std::chrono::system_clock::time_point NotAfterOf(X509* certificate) {
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(certificate), &tm) != 1) return {};
  return std::chrono::system_clock::from_time_t(timegm(&tm));
}

}  // namespace

TlsServerContext LoadTlsServerContext(const std::string& cert_file, const std::string& key_file) {
  TlsServerContext loaded;
  const auto cert = Describe("--tls-cert-file", cert_file);
  const auto key = Describe("--tls-key-file", key_file);
  if (const auto why = Unreadable(cert_file); !why.empty()) {
    loaded.error = cert + " cannot be read: " + why;
    return loaded;
  }
  if (const auto why = Unreadable(key_file); !why.empty()) {
    loaded.error = key + " cannot be read: " + why;
    return loaded;
  }
  auto context = std::make_shared<ssl::context>(ssl::context::tls_server);
  Harden(*context);
  boost::system::error_code ec;
  context->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    loaded.error = cert + " is not a PEM certificate chain: " + ec.message();
    return loaded;
  }
  context->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) {
    loaded.error = key + " is not the PEM private key of " + cert + ": " + ec.message();
    return loaded;
  }
  if (SSL_CTX_check_private_key(context->native_handle()) != 1) {
    loaded.error = key + " does not match the certificate in " + cert;
    return loaded;
  }
  X509* leaf = SSL_CTX_get0_certificate(context->native_handle());
  loaded.subject = SubjectOf(leaf);
  loaded.not_after = NotAfterOf(leaf);
  loaded.context = std::move(context);
  return loaded;
}

}  // namespace wsgateway
