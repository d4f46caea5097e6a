// Loading the listener's TLS context from PEM files made at test time: what
// is accepted, and that every refusal names the option and the file.

#include "gateway/tls/tls_server_context.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <fstream>

#include "tests/support/test_certificates.hpp"

namespace wsgateway {
namespace {

using testing::TestCertificates;

class TlsServerContextTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new std::optional<TestCertificates>(TestCertificates::Create(&error_)); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }
  void SetUp() override { ASSERT_TRUE(*certs_) << error_; }
  static const TestCertificates& certs() { return **certs_; }

  static inline std::optional<TestCertificates>* certs_ = nullptr;
  static inline std::string error_;
};

TEST_F(TlsServerContextTest, LoadsACertificateAndItsKey) {
  const auto loaded = LoadTlsServerContext(certs().server_cert, certs().server_key);
  ASSERT_NE(loaded.context, nullptr) << loaded.error;
  EXPECT_TRUE(loaded.error.empty());
  EXPECT_EQ(loaded.subject, "CN=localhost");
  // The test certificates are valid for two days.
  const auto now = std::chrono::system_clock::now();
  EXPECT_GT(loaded.not_after, now + std::chrono::hours(24));
  EXPECT_LT(loaded.not_after, now + std::chrono::hours(72));
}

TEST_F(TlsServerContextTest, MissingFileIsNamed) {
  const auto missing = certs().dir + "/missing.crt";
  const auto loaded = LoadTlsServerContext(missing, certs().server_key);
  EXPECT_EQ(loaded.context, nullptr);
  EXPECT_EQ(loaded.error.rfind("--tls-cert-file '" + missing + "' cannot be read", 0), 0u) << loaded.error;
  const auto no_key = LoadTlsServerContext(certs().server_cert, missing);
  EXPECT_EQ(no_key.error.rfind("--tls-key-file '" + missing + "' cannot be read", 0), 0u) << no_key.error;
}

TEST_F(TlsServerContextTest, GarbageIsNotACertificate) {
  const auto garbage = certs().dir + "/garbage.crt";
  std::ofstream(garbage) << "-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n";
  const auto loaded = LoadTlsServerContext(garbage, certs().server_key);
  EXPECT_EQ(loaded.context, nullptr);
  EXPECT_EQ(loaded.error.rfind("--tls-cert-file '" + garbage + "' is not a PEM certificate chain", 0), 0u)
      << loaded.error;
}

TEST_F(TlsServerContextTest, KeyOfAnotherCertificateIsRefused) {
  const auto loaded = LoadTlsServerContext(certs().server_cert, certs().client_key);
  EXPECT_EQ(loaded.context, nullptr);
  EXPECT_EQ(loaded.error.rfind("--tls-key-file '" + certs().client_key + "'", 0), 0u) << loaded.error;
}

}  // namespace
}  // namespace wsgateway
