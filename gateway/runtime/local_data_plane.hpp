#pragma once
// The data plane of this process: DataPlane over the Gateway's event loops.
// A call resolves its connection ids on the caller's thread, then posts once
// to each loop owning a target (a call on one id: one post and nothing
// shared); the last loop to finish answers. Broadcast runs on every loop,
// List on one loop after the other, in id order. Sessions are touched on
// their own loop only.
//
// Thread-safety: every method from any thread, while the Gateway lives and
// its loops run.

#include "gateway/data_plane/data_plane.hpp"

namespace wsgateway {

class Gateway;

class LocalDataPlane final : public DataPlane {
 public:
  explicit LocalDataPlane(Gateway& gateway) : gateway_(gateway) {}

  void Push(std::vector<std::string> connection_ids, OutboundFrame frame, Deadline deadline,
            Done<std::vector<ConnectionResult>> done) override;
  void Deliver(std::vector<Delivery> deliveries, Deadline deadline, Done<std::vector<ConnectionResult>> done) override;
  void Broadcast(v1::ConnectionFilter filter, OutboundFrame frame, std::vector<std::string> exclude, Deadline deadline,
                 Done<BroadcastTally> done) override;
  void Close(std::string connection_id, std::uint16_t code, std::string reason, Deadline deadline,
             Done<ConnectionResult> done) override;
  void Find(std::string connection_id, Deadline deadline, Done<ConnectionResult> done) override;
  void Describe(std::string connection_id, Deadline deadline,
                Done<std::pair<ConnectionResult, v1::ClientInfo>> done) override;
  void List(v1::ConnectionFilter filter, std::uint32_t page_size, std::string page_token, Deadline deadline,
            Done<ListPage> done) override;
  void ChangeGroups(std::string connection_id, GroupChange change, Deadline deadline, Done<GroupsResult> done) override;

 private:
  Gateway& gateway_;
};

}  // namespace wsgateway
