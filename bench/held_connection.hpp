#pragma once
// A connection that a run opens and keeps until the run ends it: hold's idle
// connections, fanout's receivers and soak's clients. Each connects from a
// loopback source address of its own (BindLoopbackSource), so that a run can
// pass the ephemeral-port range, and keeps a read pending, to answer pings
// and to see the connection lost. It writes what a subclass queues, one
// message in flight at a time. Its handlers, and the hooks they call, run on
// its own strand.

#include <boost/asio/io_context.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <string_view>

#include "bench_common.hpp"

namespace wsbench {

class HeldConnection : public std::enable_shared_from_this<HeldConnection> {
 public:
  virtual ~HeldConnection() = default;

  // Connects and upgrades; Settled() follows either way (any thread).
  void Open();
  // Ends the connection with a close handshake, if it is up (any thread).
  void Close();
  // Ends the connection at once, without a close handshake: closes the
  // socket, as a client that goes away does (any thread).
  void Abort();

  bool up() const { return up_; }

 protected:
  // `url` outlives the connection. With `permessage_deflate` the connection
  // offers it, and a server that does not accept it refuses the connection.
  // `lost_what` begins the report of a connection lost before the run ended
  // it.
  HeldConnection(boost::asio::io_context& ioc, const Url& url, std::uint64_t index, bool permessage_deflate,
                 const char* lost_what);

  // The connection is up; its read starts after this.
  virtual void Upgraded() {}
  // Once per connection: it is up or was refused.
  virtual void Settled() = 0;
  // A message from the server. Hold's server is not expected to send any;
  // the default ignores it.
  virtual void Received(std::string_view /*message*/, bool /*text*/) {}
  virtual void Report(const std::string& message) = 0;
  // The connect or the handshake failed; `http_status` is the status of a
  // declined upgrade (503, ...), 0 for any other failure. Settled() follows.
  // The default counts it in ThreadStats().refused and reports it.
  virtual void Refused(const std::string& reason, unsigned http_status);
  // Once per connection that was up: it has ended (closed, lost or aborted).
  virtual void Ended() {}

  // Queues one message behind those queued before; dropped once the
  // connection is closing or lost. On the connection's strand, once up.
  void Write(std::shared_ptr<const std::string> payload, bool text);
  // The connection's strand, for a subclass's timers.
  boost::asio::any_io_executor executor() { return ws_.get_executor(); }

  std::uint64_t index() const { return index_; }
  Clock::time_point opened_at() const { return opened_at_; }

 private:
  void Connect();
  void OnConnect(boost::beast::error_code ec);
  void OnHandshake(boost::beast::error_code ec);
  void Refuse(const char* what, boost::beast::error_code ec);
  void Refuse(const std::string& reason);
  void DoRead();
  void OnRead(boost::beast::error_code ec, std::size_t bytes);
  void DoWrite();
  void OnWrite(boost::beast::error_code ec, std::size_t bytes);
  void StartClose();
  void OnClose(boost::beast::error_code ec);
  void StartAbort();
  void CloseSocket();
  void End();

  struct Outgoing {
    std::shared_ptr<const std::string> payload;
    bool text;
  };

  const Url& url_;
  const std::uint64_t index_;
  const bool permessage_deflate_;
  const char* const lost_what_;
  boost::beast::websocket::stream<boost::beast::tcp_stream> ws_;
  boost::beast::websocket::response_type response_;  // only during the handshake
  boost::beast::flat_buffer buffer_;
  std::deque<Outgoing> outgoing_;  // the front one is being written while writing_
  Clock::time_point opened_at_;
  bool up_ = false;
  bool lost_ = false;
  bool closing_ = false;
  bool writing_ = false;
  bool ended_ = false;
};

}  // namespace wsbench
