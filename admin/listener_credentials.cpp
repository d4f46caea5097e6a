#include "admin/listener_credentials.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <stdexcept>
#include <string_view>

#include "gateway/config/configured_file.hpp"

namespace wsgateway::admin {
namespace {

constexpr std::string_view kCertKey = "admin-tls-cert-file";
constexpr std::string_view kKeyKey = "admin-tls-key-file";
constexpr std::string_view kClientCaKey = "admin-tls-client-ca-file";

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using Certificate = std::unique_ptr<X509, decltype(&X509_free)>;
using PrivateKey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;

std::string ReadOrThrow(std::string_view key, const std::string& path) {
  std::string error;
  auto text = ReadConfiguredFile(key, path, &error);
  if (!text) throw std::runtime_error(error);
  return std::move(*text);
}

Bio MemoryBio(const std::string& pem) { return {BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free}; }

// The first certificate of a PEM text; null when there is none.
Certificate FirstCertificate(const std::string& pem) {
  const auto bio = MemoryBio(pem);
  Certificate certificate(bio ? PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr) : nullptr, &X509_free);
  ERR_clear_error();
  return certificate;
}

// No passphrase: an encrypted key must fail here instead of prompting on
// the terminal.
int NoPassphrase(char*, int, int, void*) { return 0; }

PrivateKey ReadPrivateKey(const std::string& pem) {
  const auto bio = MemoryBio(pem);
  PrivateKey key(bio ? PEM_read_bio_PrivateKey(bio.get(), nullptr, &NoPassphrase, nullptr) : nullptr, &EVP_PKEY_free);
  ERR_clear_error();
  return key;
}

}  // namespace

std::shared_ptr<grpc::ServerCredentials> ListenerCredentials(const Config& config) {
  if (config.admin_tls_cert_file.empty()) return grpc::InsecureServerCredentials();

  const auto& cert_path = config.admin_tls_cert_file;
  const auto& key_path = config.admin_tls_key_file;
  auto cert_pem = ReadOrThrow(kCertKey, cert_path);
  auto key_pem = ReadOrThrow(kKeyKey, key_path);
  const auto certificate = FirstCertificate(cert_pem);
  if (!certificate) throw std::runtime_error(ConfiguredFileError(kCertKey, cert_path, "holds no PEM certificate"));
  const auto key = ReadPrivateKey(key_pem);
  if (!key) {
    throw std::runtime_error(
        ConfiguredFileError(kKeyKey, key_path, "holds no PEM private key (or one encrypted with a passphrase)"));
  }
  if (X509_check_private_key(certificate.get(), key.get()) != 1) {
    ERR_clear_error();
    throw std::runtime_error(ConfiguredFileError(
        kKeyKey, key_path,
        "is not the private key of the certificate in --" + std::string(kCertKey) + " '" + cert_path + "'"));
  }

  auto client_policy = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  std::string client_ca_pem;
  if (!config.admin_tls_client_ca_file.empty()) {
    const auto& ca_path = config.admin_tls_client_ca_file;
    client_ca_pem = ReadOrThrow(kClientCaKey, ca_path);
    if (!FirstCertificate(client_ca_pem)) {
      throw std::runtime_error(ConfiguredFileError(kClientCaKey, ca_path, "holds no PEM CA certificate"));
    }
    client_policy = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }

  grpc::SslServerCredentialsOptions options(client_policy);
  options.pem_root_certs = std::move(client_ca_pem);
  options.pem_key_cert_pairs.push_back({std::move(key_pem), std::move(cert_pem)});
  return grpc::SslServerCredentials(options);
}

const char* ListenerSecurityName(const Config& config) {
  if (config.admin_tls_cert_file.empty()) return "plaintext";
  return config.admin_tls_client_ca_file.empty() ? "TLS" : "mutual TLS";
}

}  // namespace wsgateway::admin
