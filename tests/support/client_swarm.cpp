#include "tests/support/client_swarm.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket.hpp>

#include <deque>
#include <future>

namespace wsgateway::testing {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = asio::ip::tcp;

// One client; lives on the swarm's single io thread, kept alive by its
// pending operations and by the swarm's list.
class ClientSwarm::Session : public std::enable_shared_from_this<ClientSwarm::Session> {
 public:
  Session(ClientSwarm& swarm, std::size_t index) : swarm_(swarm), index_(index), ws_(swarm.ioc_) {
    ws_.read_message_max(256 * 1024 * 1024);
  }

  void Start(std::uint16_t port, std::string target, std::function<void(bool)> on_connected) {
    target_ = std::move(target);
    port_ = port;
    on_connected_ = std::move(on_connected);
    beast::get_lowest_layer(ws_).expires_after(std::chrono::seconds(30));
    beast::get_lowest_layer(ws_).async_connect(
        tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), port),
        [self = shared_from_this()](beast::error_code ec) { self->OnConnect(ec); });
  }

  void Send(std::string payload, bool binary) {
    queue_.push_back({binary, std::move(payload)});
    if (queue_.size() == 1 && connected_) DoWrite();
  }

  void Close(std::uint16_t code) {
    if (!connected_ || closing_) return;
    closing_ = true;
    ws_.async_close(websocket::close_reason(static_cast<websocket::close_code>(code)),
                    [self = shared_from_this()](beast::error_code) {});
  }

  void Abort() {
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
  }

 private:
  void OnConnect(beast::error_code ec) {
    if (ec) return Fail(ec, false);
    {
      std::lock_guard lock(swarm_.mutex_);
      auto ep = beast::get_lowest_layer(ws_).socket().local_endpoint(ec);
      if (!ec) {
        swarm_.states_[index_]->local_address = ep.address().to_string() + ":" + std::to_string(ep.port());
      }
    }
    ws_.async_handshake("127.0.0.1:" + std::to_string(port_), target_,
                        [self = shared_from_this()](beast::error_code e) { self->OnHandshake(e); });
  }

  void OnHandshake(beast::error_code ec) {
    if (ec) return Fail(ec, false);
    beast::get_lowest_layer(ws_).expires_never();
    connected_ = true;
    {
      std::lock_guard lock(swarm_.mutex_);
      swarm_.states_[index_]->connected = true;
    }
    swarm_.Notify();
    if (on_connected_) std::exchange(on_connected_, nullptr)(true);
    DoRead();
    if (!queue_.empty()) DoWrite();
  }

  void DoRead() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec) return Fail(ec, true);
    {
      std::lock_guard lock(swarm_.mutex_);
      swarm_.states_[index_]->messages.push_back({ws_.got_binary(), beast::buffers_to_string(buffer_.data())});
      ++swarm_.total_received_;
    }
    buffer_.consume(buffer_.size());
    swarm_.Notify();
    DoRead();
  }

  void DoWrite() {
    ws_.binary(queue_.front().binary);
    ws_.async_write(asio::buffer(queue_.front().payload),
                    [self = shared_from_this()](beast::error_code ec, std::size_t) { self->OnWrite(ec); });
  }

  void OnWrite(beast::error_code ec) {
    if (ec) return;  // the read side reports the failure
    queue_.pop_front();
    {
      std::lock_guard lock(swarm_.mutex_);
      ++swarm_.states_[index_]->sent;
    }
    swarm_.Notify();
    if (!queue_.empty()) DoWrite();
  }

  void Fail(beast::error_code ec, bool after_connect) {
    {
      std::lock_guard lock(swarm_.mutex_);
      auto& state = *swarm_.states_[index_];
      state.closed = true;
      state.closed_at = std::chrono::steady_clock::now();
      state.error = ec;
      if (after_connect) state.close_code = ws_.reason().code;
    }
    swarm_.Notify();
    if (on_connected_) std::exchange(on_connected_, nullptr)(false);
  }

  struct Outgoing {
    bool binary;
    std::string payload;
  };

  ClientSwarm& swarm_;
  const std::size_t index_;
  websocket::stream<beast::tcp_stream> ws_;
  std::string target_;
  std::uint16_t port_ = 0;
  std::function<void(bool)> on_connected_;
  beast::flat_buffer buffer_;
  std::deque<Outgoing> queue_;
  bool connected_ = false;
  bool closing_ = false;
};

ClientSwarm::ClientSwarm() : work_(asio::make_work_guard(ioc_)), thread_([this] { ioc_.run(); }) {}

ClientSwarm::~ClientSwarm() {
  std::promise<void> closed;
  asio::post(ioc_, [this, &closed] {
    for (auto& session : sessions_) session->Abort();
    closed.set_value();
  });
  closed.get_future().wait();
  work_.reset();
  thread_.join();
  sessions_.clear();
}

std::size_t ClientSwarm::ConnectAll(std::uint16_t port, const std::vector<std::string>& targets,
                                    std::size_t max_in_flight, std::chrono::milliseconds timeout) {
  // The io thread starts a new connection whenever one finishes, keeping at
  // most max_in_flight handshakes in progress.
  struct Progress {
    std::size_t next = 0;
    std::size_t finished = 0;
    std::size_t ok = 0;
  };
  auto progress = std::make_shared<Progress>();
  std::size_t first = 0;
  {
    std::lock_guard lock(mutex_);
    first = states_.size();
    for (std::size_t i = 0; i < targets.size(); ++i) states_.push_back(std::make_unique<ClientState>());
  }
  std::promise<void> created;
  auto start_next = std::make_shared<std::function<void()>>();
  *start_next = [this, port, targets, first, progress, weak = std::weak_ptr(start_next)]() {
    if (progress->next >= targets.size()) return;
    const std::size_t k = progress->next++;
    auto session = std::make_shared<Session>(*this, first + k);
    sessions_[first + k] = session;
    session->Start(port, targets[k], [this, progress, weak](bool ok) {
      {
        std::lock_guard lock(mutex_);
        ++progress->finished;
        if (ok) ++progress->ok;
      }
      Notify();
      if (auto next = weak.lock()) (*next)();
    });
  };
  asio::post(ioc_, [this, &created, start_next, max_in_flight, n = targets.size(), first] {
    sessions_.resize(first + n);
    for (std::size_t i = 0; i < std::min(max_in_flight, n); ++i) (*start_next)();
    created.set_value();
  });
  created.get_future().wait();
  std::unique_lock lock(mutex_);
  changed_.wait_for(lock, timeout, [&] { return progress->finished == targets.size(); });
  const std::size_t ok = progress->ok;
  // Handshakes not started by the deadline are abandoned: start_next dies
  // with this frame and the callbacks find it gone.
  return ok;
}

std::size_t ClientSwarm::size() const {
  std::lock_guard lock(mutex_);
  return states_.size();
}

void ClientSwarm::Send(std::size_t i, std::string payload, bool binary) {
  asio::post(ioc_, [this, i, payload = std::move(payload), binary]() mutable {
    if (i < sessions_.size() && sessions_[i]) sessions_[i]->Send(std::move(payload), binary);
  });
}

void ClientSwarm::Close(std::size_t i, std::uint16_t code) {
  asio::post(ioc_, [this, i, code] {
    if (i < sessions_.size() && sessions_[i]) sessions_[i]->Close(code);
  });
}

const ClientSwarm::ClientState& ClientSwarm::StateRef(std::size_t i) const { return *states_.at(i); }

ClientSwarm::ClientState ClientSwarm::State(std::size_t i) const {
  std::lock_guard lock(mutex_);
  return StateRef(i);
}

std::size_t ClientSwarm::TotalReceived() const {
  std::lock_guard lock(mutex_);
  return total_received_;
}

void ClientSwarm::Notify() { changed_.notify_all(); }

bool ClientSwarm::WaitFor(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  return changed_.wait_for(lock, timeout, done);
}

bool ClientSwarm::WaitForTotalReceived(std::size_t total, std::chrono::milliseconds timeout) {
  return WaitFor([&] { return total_received_ >= total; }, timeout);
}

bool ClientSwarm::WaitForReceived(std::size_t i, std::size_t n, std::chrono::milliseconds timeout) {
  return WaitFor([&] { return StateRef(i).messages.size() >= n; }, timeout);
}

bool ClientSwarm::WaitForSent(std::size_t i, std::size_t n, std::chrono::milliseconds timeout) {
  return WaitFor([&] { return StateRef(i).sent >= n; }, timeout);
}

bool ClientSwarm::WaitForClosed(std::size_t i, std::chrono::milliseconds timeout) {
  return WaitFor([&] { return StateRef(i).closed; }, timeout);
}

}  // namespace wsgateway::testing
