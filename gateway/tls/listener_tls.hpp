#pragma once
// TLS on the public listener: the server context each new connection takes,
// reloaded from tls_cert_file and tls_key_file on demand (SIGHUP) and when
// the files change. A connection keeps the context it started with, so a
// reload never touches open connections; a reload that fails keeps the
// current context, logs why and is counted.
//
// Thread-safety: Current from any thread (event loops, per accepted
// connection); the constructor, Reload and Watch from the control thread.

#include <absl/base/thread_annotations.h>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "metrics/gateway_metrics.hpp"

namespace wsgateway {

class ListenerTls {
 public:
  // Loads the files; throws std::runtime_error naming the option and the
  // file when they cannot be used (start-up only).
  ListenerTls(std::string cert_file, std::string key_file, metrics::GatewayMetrics& metrics,
              boost::asio::any_io_executor control);

  std::shared_ptr<boost::asio::ssl::context> Current() const;

  // Re-reads both files now; true when the new certificate is in use.
  bool Reload();

  // Checks the files' modification time and size every `interval` and
  // reloads once a change has held still for one interval, so a file being
  // written, or a certificate replaced before its key, is not read half-way.
  void Watch(std::chrono::milliseconds interval = std::chrono::seconds(2));
  void StopWatching();

 private:
  struct FileStamp {
    std::int64_t cert_mtime_ns = -1;
    std::int64_t cert_size = -1;
    std::int64_t key_mtime_ns = -1;
    std::int64_t key_size = -1;
    bool operator==(const FileStamp&) const = default;
  };
  FileStamp Stamp() const;
  void ScheduleCheck();
  void Check();

  const std::string cert_file_;
  const std::string key_file_;
  metrics::GatewayMetrics& metrics_;
  boost::asio::steady_timer watch_timer_;
  std::chrono::milliseconds watch_interval_{};

  mutable std::mutex mutex_;
  std::shared_ptr<boost::asio::ssl::context> current_ ABSL_GUARDED_BY(mutex_);

  // Control thread only: the files as last loaded (or tried), and a change
  // seen by the last check that has yet to hold still.
  FileStamp loaded_;
  FileStamp changing_;
};

}  // namespace wsgateway
