#pragma once
// How many client connections the public listener holds at once, in all
// (max_connections) and per client IP address (max_connections_per_address).
// A connection asks for a slot when it is accepted, on the first event loop,
// and its session gives the slot back when it ends, on its loop's thread;
// the slot is a move-only token, so no path out of a session can keep one.
// A refused connection holds no slot: it is answered (503 or 429) and
// closed, and does not count against the connections that were admitted.
//
// Addresses are counted in a map that only holds addresses with open
// connections, so it is as large as the set of connected clients, never the
// set of clients ever seen. IPv4 clients of a dual-stack listener
// (::ffff:a.b.c.d) count as their IPv4 address.
//
// Thread-safety: Admit, the counts and Slot's release from any thread; one
// mutex, taken once at the accept and once at the end of a connection,
// never per message. Without limits nothing is counted or locked. The
// ConnectionLimits must outlive its slots.

#include <absl/base/thread_annotations.h>
#include <boost/asio/ip/address.hpp>

#include <cstddef>
#include <mutex>
#include <unordered_map>

namespace wsgateway {

class ConnectionLimits {
 public:
  enum class Verdict {
    kAdmitted,
    kOverTotal,    // max_connections reached: 503
    kOverAddress,  // max_connections_per_address reached: 429
  };

  // An admitted connection's place; given back when released, moved from
  // or destroyed.
  class Slot {
   public:
    Slot() = default;
    Slot(Slot&& other) noexcept;
    Slot& operator=(Slot&& other) noexcept;
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;
    ~Slot() { Release(); }

    void Release();

   private:
    friend class ConnectionLimits;
    Slot(ConnectionLimits* owner, const boost::asio::ip::address& address) : owner_(owner), address_(address) {}

    ConnectionLimits* owner_ = nullptr;
    boost::asio::ip::address address_;
  };

  struct Admission {
    Verdict verdict = Verdict::kAdmitted;
    Slot slot;  // holds nothing unless admitted under a limit
  };

  // 0 means no limit.
  ConnectionLimits(std::size_t max_total, std::size_t max_per_address);
  ConnectionLimits(const ConnectionLimits&) = delete;
  ConnectionLimits& operator=(const ConnectionLimits&) = delete;

  // Takes a slot for a connection from `address`, or says which limit it
  // is over. The total limit is checked first: when the gateway is full,
  // every client hears that, whatever its own count.
  Admission Admit(const boost::asio::ip::address& address);

  // Whether Admit looks at the address at all (max_connections_per_address
  // is set); without it the caller need not ask the socket for its peer.
  bool counts_addresses() const { return max_per_address_ != 0; }

  std::size_t total() const;
  std::size_t CountFor(const boost::asio::ip::address& address) const;
  // Addresses with at least one admitted connection open.
  std::size_t tracked_addresses() const;

 private:
  void Release(const boost::asio::ip::address& address);

  const std::size_t max_total_;
  const std::size_t max_per_address_;
  mutable std::mutex mutex_;
  std::size_t total_ ABSL_GUARDED_BY(mutex_) = 0;
  std::unordered_map<boost::asio::ip::address, std::size_t> per_address_ ABSL_GUARDED_BY(mutex_);
};

}  // namespace wsgateway
