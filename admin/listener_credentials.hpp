#pragma once
// The admin listener's transport security, from the admin_tls_* settings:
// plaintext; TLS with --admin-tls-cert-file and --admin-tls-key-file; or
// mutual TLS, where --admin-tls-client-ca-file also makes every client
// present a certificate that CA signed.

#include <grpcpp/grpcpp.h>

#include <memory>

#include "gateway/config/config.hpp"

namespace wsgateway::admin {

// Throws std::runtime_error naming the setting and the file when a file
// cannot be read or does not hold what it should (a certificate, a private
// key matching it, a CA certificate): start-up only.
std::shared_ptr<grpc::ServerCredentials> ListenerCredentials(const Config& config);

// "plaintext", "TLS" or "mutual TLS", for the start-up log.
const char* ListenerSecurityName(const Config& config);

}  // namespace wsgateway::admin
