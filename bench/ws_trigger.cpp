// The WebSocket broadcast trigger: one control connection to /_broadcast;
// each broadcast is one text message on it, written in order, one write at
// a time. The stream runs on the fanout run's strand, which is where every
// member is called, so it needs no strand of its own.

#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <deque>
#include <utility>

#include "broadcast_trigger.hpp"
#include "stream_timeouts.hpp"

namespace wsbench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;

constexpr const char* kBroadcastTarget = "/_broadcast";

class WsTrigger : public BroadcastTrigger, public std::enable_shared_from_this<WsTrigger> {
 public:
  WsTrigger(RunStrand strand, const Url& url, std::uint64_t source_index)
      : url_(url), source_index_(source_index), ws_(strand) {}

  // The server relays to every connection it has upgraded, and ours are
  // all upgraded before this connection starts: nothing to wait for.
  void Start(std::uint64_t /*receivers*/, Done done) override {
    start_done_ = std::move(done);
    auto& stream = beast::get_lowest_layer(ws_);
    beast::error_code ec;
    if (!OpenFromLoopbackSource(stream.socket(), url_.endpoint, source_index_, ec)) {
      // Done callbacks never run inside the call that takes them.
      return net::post(ws_.get_executor(), [self = shared_from_this(), ec] { self->StartFailed("bind", ec); });
    }
    stream.expires_after(kConnectTimeout);
    stream.async_connect(url_.endpoint, beast::bind_front_handler(&WsTrigger::OnConnect, shared_from_this()));
  }

  void Send(std::shared_ptr<const std::string> payload, Done done) override {
    queue_.push_back({std::move(payload), std::move(done)});
    if (!writing_) WriteNext();
  }

  void Stop() override {
    stopping_ = true;
    // A write still going at the end is stuck behind a server that stopped
    // reading: do not wait for it.
    if (!up_ || writing_) return Abort();
    Close();
  }

 private:
  struct Pending {
    std::shared_ptr<const std::string> payload;
    Done done;
  };

  void OnConnect(beast::error_code ec) {
    if (ec) return StartFailed("connect", ec);
    beast::get_lowest_layer(ws_).expires_never();
    // Broadcasts go out back to back; Nagle would hold each behind the
    // previous one's ACK.
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().set_option(net::ip::tcp::no_delay(true), ignored);
    SetClientTimeouts(ws_, kConnectTimeout);
    ws_.text(true);
    ws_.async_handshake(url_.host_header, kBroadcastTarget,
                        beast::bind_front_handler(&WsTrigger::OnHandshake, shared_from_this()));
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) return StartFailed("handshake", ec);
    up_ = true;
    DoRead();
    if (stopping_) return Close();
    std::exchange(start_done_, nullptr)(TriggerResult{});
  }

  void StartFailed(const char* what, beast::error_code ec) {
    Abort();
    if (start_done_) {
      std::exchange(start_done_, nullptr)(TriggerResult{
          std::string{"control connection to "} + kBroadcastTarget + ": " + what + ": " + ec.message(), std::nullopt});
    }
  }

  // The server sends nothing here; a read stays pending to answer pings and
  // to see the connection end.
  void DoRead() { ws_.async_read(buffer_, beast::bind_front_handler(&WsTrigger::OnRead, shared_from_this())); }

  void OnRead(beast::error_code ec, std::size_t bytes) {
    if (ec) {
      // Lost or closed: later writes fail and report it.
      if (!closing_) Abort();
      return;
    }
    buffer_.consume(bytes);
    DoRead();
  }

  void WriteNext() {
    writing_ = true;
    ws_.async_write(net::buffer(*queue_.front().payload),
                    beast::bind_front_handler(&WsTrigger::OnWrite, shared_from_this()));
  }

  void OnWrite(beast::error_code ec, std::size_t) {
    writing_ = false;
    Pending written = std::move(queue_.front());
    queue_.pop_front();
    if (ec) {
      Abort();
      const TriggerResult failed{"control connection: write: " + ec.message(), std::nullopt};
      written.done(failed);
      for (auto& pending : std::exchange(queue_, {})) pending.done(failed);
      return;
    }
    written.done(TriggerResult{});
    if (!queue_.empty()) return WriteNext();
    if (stopping_) Close();
  }

  void Close() {
    if (closing_ || aborted_) return;
    closing_ = true;
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code ec) {
      if (ec) self->Abort();
    });
  }

  // Closes the socket; pending operations end with an error.
  void Abort() {
    aborted_ = true;
    Abandon(ws_);
  }

  const Url url_;
  const std::uint64_t source_index_;
  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  Done start_done_;
  std::deque<Pending> queue_;  // front: being written
  bool up_ = false;
  bool writing_ = false;
  bool stopping_ = false;
  bool closing_ = false;
  bool aborted_ = false;
};

}  // namespace

std::shared_ptr<BroadcastTrigger> MakeWsTrigger(RunStrand strand, const Url& url, std::uint64_t source_index) {
  return std::make_shared<WsTrigger>(std::move(strand), url, source_index);
}

}  // namespace wsbench
