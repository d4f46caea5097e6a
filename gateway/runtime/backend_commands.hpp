#pragma once
// The backend's commands (pushes and disconnects from its stream): checked
// here, at their edge, then handed to the data plane as one Deliver per
// batch; what became of each is counted in wsgateway_backend_commands_total.
//
// Thread-safety: any thread (the backend link's). The counting runs where
// the data plane answers: on the loop's thread that finished the batch,
// into its own counters, or into the shared ones off the loops.

#include "gateway/data_plane/data_plane.hpp"
#include "metrics/metric_labels.hpp"
#include "wsgateway/v1/backend.pb.h"

namespace wsgateway {

class Gateway;

// Payloads and ids are moved out of `batch`.
void ApplyBackendCommands(v1::CommandBatch& batch, Gateway& gateway, DataPlane& data_plane);

// The metric label of what became of one command.
metrics::CommandResult ToCommandResult(Outcome outcome);

}  // namespace wsgateway
