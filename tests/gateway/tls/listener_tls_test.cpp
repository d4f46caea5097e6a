// The listener's current TLS context: a reload swaps it for new
// connections, a failed reload keeps it, both are counted, and a changed
// file is picked up by the watcher once it holds still.

#include "gateway/tls/listener_tls.hpp"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include "metrics/gateway_metrics.hpp"
#include "tests/support/test_certificates.hpp"

namespace wsgateway {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;
using testing::TestCertificates;

void ReplaceWithCopy(const std::string& from, const std::string& to) {
  fs::copy_file(from, to + ".new", fs::copy_options::overwrite_existing);
  fs::rename(to + ".new", to);
}

class ListenerTlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { certs_ = new std::optional<TestCertificates>(TestCertificates::Create(&error_)); }
  static void TearDownTestSuite() {
    delete certs_;
    certs_ = nullptr;
  }
  void SetUp() override {
    ASSERT_TRUE(*certs_) << error_;
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = certs().dir + "/" + info->name();
    fs::create_directories(dir_);
    cert_ = dir_ + "/live.crt";
    key_ = dir_ + "/live.key";
    ReplaceWithCopy(certs().server_cert, cert_);
    ReplaceWithCopy(certs().server_key, key_);
  }
  static const TestCertificates& certs() { return **certs_; }
  double Reloads(const std::string& result) { return metrics_.TlsReloads(result).Value(); }

  static inline std::optional<TestCertificates>* certs_ = nullptr;
  static inline std::string error_;
  std::string dir_, cert_, key_;
  metrics::GatewayMetrics metrics_;
  boost::asio::io_context control_;
};

TEST_F(ListenerTlsTest, UnusableFilesThrowAtStartUp) {
  EXPECT_THROW(ListenerTls(dir_ + "/missing.crt", key_, metrics_, control_.get_executor()), std::runtime_error);
}

TEST_F(ListenerTlsTest, ReloadSwapsTheContextAndAFailedOneKeepsIt) {
  ListenerTls tls(cert_, key_, metrics_, control_.get_executor());
  const auto first = tls.Current();
  ASSERT_NE(first, nullptr);
  EXPECT_GT(metrics_.TlsCertificateExpiry().Value(), 0);

  std::string next_cert, next_key;
  ASSERT_TRUE(certs().IssueServer("next", &next_cert, &next_key, &error_)) << error_;
  ReplaceWithCopy(next_key, key_);
  ReplaceWithCopy(next_cert, cert_);
  EXPECT_TRUE(tls.Reload());
  const auto second = tls.Current();
  EXPECT_NE(second, first);
  EXPECT_EQ(Reloads("ok"), 1);

  std::ofstream(cert_, std::ios::trunc) << "not PEM\n";
  EXPECT_FALSE(tls.Reload());
  EXPECT_EQ(tls.Current(), second);
  EXPECT_EQ(Reloads("error"), 1);
}

TEST_F(ListenerTlsTest, WatcherReloadsChangedFiles) {
  ListenerTls tls(cert_, key_, metrics_, control_.get_executor());
  const auto first = tls.Current();
  tls.Watch(20ms);
  // Unchanged files are not reloaded.
  control_.run_for(200ms);
  EXPECT_EQ(tls.Current(), first);
  EXPECT_EQ(Reloads("ok"), 0);

  std::string next_cert, next_key;
  ASSERT_TRUE(certs().IssueServer("watched", &next_cert, &next_key, &error_)) << error_;
  ReplaceWithCopy(next_key, key_);
  ReplaceWithCopy(next_cert, cert_);
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (tls.Current() == first && std::chrono::steady_clock::now() < deadline) control_.run_for(20ms);
  EXPECT_NE(tls.Current(), first);
  EXPECT_EQ(Reloads("ok"), 1);
  EXPECT_EQ(Reloads("error"), 0);
  tls.StopWatching();
  control_.run_for(50ms);
}

}  // namespace
}  // namespace wsgateway
