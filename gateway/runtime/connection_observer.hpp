#pragma once
// Told of every WebSocket connection as its Open and its Close events are
// handed to the backend: cluster mode keeps the set of each node's open
// connections in Redis, so that another node can report them closed if
// this one dies. Called on loop threads, on the message path's edges (one
// call per connection opened or closed): an implementation must be cheap
// and thread-safe.

#include <cstddef>
#include <string_view>

namespace wsgateway {

class ConnectionObserver {
 public:
  // `backend`: the connection's Route::backend_index.
  virtual void Opened(std::string_view connection_id, std::size_t backend) = 0;
  virtual void Closed(std::string_view connection_id) = 0;

 protected:
  ~ConnectionObserver() = default;
};

}  // namespace wsgateway
