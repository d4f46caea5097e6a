#pragma once
// Certificates made at test time with the openssl command, in a fresh
// temporary directory: a CA, a server certificate for localhost, 127.0.0.1
// and ::1 signed by it, a client certificate signed by it (mutual TLS), and
// a second, unrelated CA with a client certificate of its own (a client the
// gateway must refuse). Nothing is checked in; every run makes new keys.

#include <optional>
#include <string>

namespace wsgateway::testing {

struct TestCertificates {
  std::string dir;
  std::string ca_cert;
  std::string server_cert;
  std::string server_key;
  std::string client_cert;
  std::string client_key;
  std::string other_ca_cert;
  std::string other_client_cert;
  std::string other_client_key;

  // Makes the set; on failure returns nullopt and says why in *error.
  static std::optional<TestCertificates> Create(std::string* error);

  // Issues one more server certificate from the CA, for `common_name` (also
  // valid for localhost and the loopback addresses), into the files
  // *cert and *key under dir (for reload tests).
  bool IssueServer(const std::string& common_name, std::string* cert, std::string* key, std::string* error) const;

  // The contents of a file (a PEM to hand to a gRPC or Asio client).
  static std::string Read(const std::string& path);
};

}  // namespace wsgateway::testing
