#include "tests/support/test_certificates.hpp"

#include <cstdlib>
#include <fstream>
#include <sstream>

namespace wsgateway::testing {
namespace {

// Runs one shell command, its output into dir/openssl.log; true on exit 0.
bool Run(const std::string& dir, const std::string& command, std::string* error) {
  const std::string full = "cd '" + dir + "' && " + command + " >>openssl.log 2>&1";
  if (std::system(full.c_str()) == 0) return true;
  *error = "failed: " + command + "\n" + TestCertificates::Read(dir + "/openssl.log");
  return false;
}

bool Write(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  return static_cast<bool>(out);
}

constexpr const char* kNewKey = "openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes ";

// A self-signed CA named `name` into name.crt / name.key.
bool MakeCa(const std::string& dir, const std::string& name, std::string* error) {
  return Run(dir,
             std::string(kNewKey) + "-x509 -days 2 -keyout " + name + ".key -out " + name + ".crt -subj '/CN=" + name +
                 " test CA' -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign",
             error);
}

// A certificate `name`.crt/.key for common name `cn`, signed by `ca`, with
// the extensions in `extensions`.
bool Issue(const std::string& dir, const std::string& ca, const std::string& name, const std::string& cn,
           const std::string& extensions, std::string* error) {
  if (!Write(dir + "/" + name + ".ext", extensions)) {
    *error = "cannot write " + dir + "/" + name + ".ext";
    return false;
  }
  return Run(dir, std::string(kNewKey) + "-keyout " + name + ".key -out " + name + ".csr -subj '/CN=" + cn + "'",
             error) &&
         Run(dir,
             "openssl x509 -req -days 2 -in " + name + ".csr -CA " + ca + ".crt -CAkey " + ca +
                 ".key -CAcreateserial -out " + name + ".crt -extfile " + name + ".ext",
             error);
}

const std::string kServerExtensions = "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n";
const std::string kClientExtensions = "extendedKeyUsage=clientAuth\n";

}  // namespace

std::optional<TestCertificates> TestCertificates::Create(std::string* error) {
  char pattern[] = "/tmp/wsgateway-certs-XXXXXX";
  if (mkdtemp(pattern) == nullptr) {
    *error = "cannot create a temporary directory";
    return std::nullopt;
  }
  TestCertificates set;
  set.dir = pattern;
  const auto& d = set.dir;
  if (!MakeCa(d, "ca", error) || !Issue(d, "ca", "server", "localhost", kServerExtensions, error) ||
      !Issue(d, "ca", "client", "admin client", kClientExtensions, error) || !MakeCa(d, "other-ca", error) ||
      !Issue(d, "other-ca", "other-client", "stranger", kClientExtensions, error)) {
    return std::nullopt;
  }
  set.ca_cert = d + "/ca.crt";
  set.server_cert = d + "/server.crt";
  set.server_key = d + "/server.key";
  set.client_cert = d + "/client.crt";
  set.client_key = d + "/client.key";
  set.other_ca_cert = d + "/other-ca.crt";
  set.other_client_cert = d + "/other-client.crt";
  set.other_client_key = d + "/other-client.key";
  return set;
}

bool TestCertificates::IssueServer(const std::string& common_name, std::string* cert, std::string* key,
                                   std::string* error) const {
  const std::string name = "server-" + common_name;
  if (!Issue(dir, "ca", name, common_name, kServerExtensions, error)) return false;
  *cert = dir + "/" + name + ".crt";
  *key = dir + "/" + name + ".key";
  return true;
}

std::string TestCertificates::Read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace wsgateway::testing
