#include "gateway/tls/listener_tls.hpp"

#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <stdexcept>

#include "gateway/tls/tls_server_context.hpp"

namespace wsgateway {

namespace net = boost::asio;

namespace {

// "2026-12-04T10:00:00Z".
std::string FormatUtc(std::chrono::system_clock::time_point t) {
  const std::time_t seconds = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

// Follows symbolic links, so a Kubernetes Secret volume (whose files are
// links switched all at once) shows as changed.
void StampFile(const std::string& path, std::int64_t& mtime_ns, std::int64_t& size) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0) {
    mtime_ns = -1;
    size = -1;
    return;
  }
  mtime_ns = static_cast<std::int64_t>(info.st_mtim.tv_sec) * 1'000'000'000 + info.st_mtim.tv_nsec;
  size = static_cast<std::int64_t>(info.st_size);
}

}  // namespace

ListenerTls::ListenerTls(std::string cert_file, std::string key_file, metrics::GatewayMetrics& metrics,
                         net::any_io_executor control)
    : cert_file_(std::move(cert_file)),
      key_file_(std::move(key_file)),
      metrics_(metrics),
      watch_timer_(std::move(control)) {
  loaded_ = Stamp();
  changing_ = loaded_;
  auto loaded = LoadTlsServerContext(cert_file_, key_file_);
  if (!loaded.context) throw std::runtime_error(loaded.error);
  current_ = std::move(loaded.context);
  metrics_.TlsCertificateExpiry().Set(static_cast<double>(std::chrono::system_clock::to_time_t(loaded.not_after)));
  spdlog::info("TLS on the public listener: certificate {} valid until {}", loaded.subject,
               FormatUtc(loaded.not_after));
  if (loaded.not_after < std::chrono::system_clock::now()) {
    spdlog::warn("the TLS certificate in {} expired at {}", cert_file_, FormatUtc(loaded.not_after));
  }
}

std::shared_ptr<net::ssl::context> ListenerTls::Current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

bool ListenerTls::Reload() {
  // Stamped before reading: a change during the read shows as another one.
  loaded_ = Stamp();
  changing_ = loaded_;
  auto loaded = LoadTlsServerContext(cert_file_, key_file_);
  if (!loaded.context) {
    metrics_.TlsReloads("error").Increment();
    spdlog::error("TLS reload failed, keeping the current certificate: {}", loaded.error);
    return false;
  }
  {
    std::lock_guard lock(mutex_);
    current_ = std::move(loaded.context);
  }
  metrics_.TlsReloads("ok").Increment();
  metrics_.TlsCertificateExpiry().Set(static_cast<double>(std::chrono::system_clock::to_time_t(loaded.not_after)));
  spdlog::info("TLS certificate reloaded: {} valid until {}", loaded.subject, FormatUtc(loaded.not_after));
  return true;
}

void ListenerTls::Watch(std::chrono::milliseconds interval) {
  watch_interval_ = interval;
  ScheduleCheck();
}

void ListenerTls::StopWatching() { watch_timer_.cancel(); }

void ListenerTls::ScheduleCheck() {
  watch_timer_.expires_after(watch_interval_);
  watch_timer_.async_wait([this](boost::system::error_code ec) {
    if (ec) return;
    Check();
    ScheduleCheck();
  });
}

void ListenerTls::Check() {
  const auto now = Stamp();
  if (now == loaded_) return;
  if (now == changing_) {
    Reload();
    return;
  }
  changing_ = now;
}

ListenerTls::FileStamp ListenerTls::Stamp() const {
  FileStamp stamp;
  StampFile(cert_file_, stamp.cert_mtime_ns, stamp.cert_size);
  StampFile(key_file_, stamp.key_mtime_ns, stamp.key_size);
  return stamp;
}

}  // namespace wsgateway
