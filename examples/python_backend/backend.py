"""An echo + presence backend for wsgateway, in Python.

It serves wsgateway.v1.Backend (proto/wsgateway/v1/backend.proto) as a
gRPC server; the gateway dials it (--backend HOST:PORT) and opens one
Connect stream per gateway process (per node in cluster mode).

- Echo: every text or binary message goes back to its connection with a
  PushCommand, except the text message "/who", which is answered with
  {"connections": [...]}: the sorted ids of the connections this backend
  believes open, on every node.
- Presence: Open events add a connection, Close events remove it; the
  snapshot that follows the hello at the start of every stream replaces
  what the backend knew of that node's connections; a lost node (a
  NodeLostEvent, or Close events with CLOSED_BY_NODE_LOST) takes its
  connections with it.
- Acknowledgements: each EventBatch is acknowledged (cumulatively) in the
  same CommandBatch as the commands it caused, after acting on it, so the
  gateway applies both or neither. The hello and the snapshot chunks
  (batch_sequence 0) are not acknowledged.

The Python stubs are generated at build time (see CMakeLists.txt) into
gen/ next to this file; run it with build/examples/python_backend/run.
"""

import argparse
import collections
import json
import logging
import os
import signal
import sys
import threading
import time
from concurrent import futures

_HERE = os.path.dirname(os.path.abspath(__file__))
_GEN = os.environ.get("WSG_PYTHON_BACKEND_GEN", os.path.join(_HERE, "gen"))
sys.path.insert(0, _GEN)

try:
    import grpc
    from wsgateway.v1 import backend_pb2, backend_pb2_grpc, types_pb2
except ImportError as error:  # pragma: no cover - a set-up problem, said plainly
    sys.exit(
        f"cannot import the gRPC runtime or the generated stubs ({error}).\n"
        "Install Debian's python3-grpcio and python3-protobuf, and run this from the "
        "build tree (build/examples/python_backend/run) after building the "
        "python_backend target, which generates the stubs into gen/.")

log = logging.getLogger("python_backend")

# How many closed connections' last sequence numbers are remembered, so that
# a late repeat of one of their events cannot bring them back to life.
CLOSED_MEMORY = 100_000


def node_of(connection_id):
    """The node that holds a connection: the first part of its id."""
    return connection_id.split("-", 1)[0]


class Presence:
    """Who is connected, on every node, as far as this backend knows.

    Shared by all the Connect streams (one per gateway node), so every
    method takes the lock.
    """

    def __init__(self):
        self._lock = threading.Lock()
        # node id -> ids of its open connections
        self._open = collections.defaultdict(set)
        # connection id -> highest sequence acted on, for open connections
        self._last_sequence = {}
        # connection id -> last sequence, for closed ones (oldest first)
        self._closed = collections.OrderedDict()
        # nodes reported lost: their ids never come back (a node that
        # rejoins has a new id), so anything later about them is stale
        self._lost_nodes = set()

    def admit(self, connection_id, sequence):
        """True if the event (connection_id, sequence) is new: to be acted
        on. Records it as acted on."""
        with self._lock:
            return self._admit_locked(connection_id, sequence)

    def _admit_locked(self, connection_id, sequence):
        if node_of(connection_id) in self._lost_nodes:
            return False
        if connection_id in self._closed:
            return False
        if sequence == 0:
            # Only a lost node's Close events have no number; they are
            # deduplicated by connection id (the _closed check above).
            return True
        if sequence <= self._last_sequence.get(connection_id, 0):
            return False
        self._last_sequence[connection_id] = sequence
        return True

    def opened(self, connection_id):
        with self._lock:
            if node_of(connection_id) not in self._lost_nodes and connection_id not in self._closed:
                self._open[node_of(connection_id)].add(connection_id)

    def closed(self, connection_id):
        with self._lock:
            self._close_locked(connection_id)

    def _close_locked(self, connection_id):
        node = node_of(connection_id)
        self._open[node].discard(connection_id)
        if not self._open[node]:
            del self._open[node]
        self._closed[connection_id] = self._last_sequence.pop(connection_id, 0)
        self._closed.move_to_end(connection_id)
        while len(self._closed) > CLOSED_MEMORY:
            self._closed.popitem(last=False)

    def node_lost(self, node_id):
        """Drops every connection of a lost node; returns how many."""
        with self._lock:
            self._lost_nodes.add(node_id)
            ids = list(self._open.get(node_id, ()))
            for connection_id in ids:
                self._close_locked(connection_id)
            return len(ids)

    def replace_node(self, node_id, connection_ids):
        """A snapshot's last chunk: node_id holds exactly these connections
        (besides ones whose Open is still to come on its stream)."""
        with self._lock:
            if node_id in self._lost_nodes:
                return
            listed = {c for c in connection_ids if node_of(c) == node_id and c not in self._closed}
            for gone in self._open.get(node_id, set()) - listed:
                self._close_locked(gone)
            if listed:
                self._open[node_id] = listed
            else:
                self._open.pop(node_id, None)

    def view(self):
        """The sorted ids of every connection believed open."""
        with self._lock:
            return sorted(c for ids in self._open.values() for c in ids)


class BackendService(backend_pb2_grpc.BackendServicer):
    def __init__(self, presence):
        self._presence = presence

    def Connect(self, request_iterator, context):
        node_id = ""  # from the hello (or the batches of an older gateway)
        snapshot_id = None
        snapshot_ids = set()
        log.info("stream from %s opened", context.peer())
        try:
            for batch in request_iterator:
                if batch.HasField("hello"):
                    node_id = batch.hello.node_id
                    log.info("hello from node %s (version %s, acknowledged up to %d)", node_id,
                             batch.hello.version, batch.hello.acknowledged)
                    continue
                if batch.HasField("snapshot"):
                    chunk = batch.snapshot
                    if chunk.snapshot_id != snapshot_id:
                        snapshot_id, snapshot_ids = chunk.snapshot_id, set()
                    snapshot_ids.update(info.connection_id for info in chunk.connections)
                    if chunk.last:
                        node = node_id or batch.node_id
                        self._presence.replace_node(node, snapshot_ids)
                        log.info("snapshot %d of node %s: %d connections", snapshot_id, node, len(snapshot_ids))
                        snapshot_id, snapshot_ids = None, set()
                    continue
                node_id = node_id or batch.node_id
                if log.isEnabledFor(logging.DEBUG):
                    self._log_batch(batch)
                commands = []
                for event in batch.events:
                    self._handle(event, commands)
                if batch.batch_sequence == 0:
                    continue  # nothing to acknowledge
                # The commands and the acknowledgement of the batch that
                # caused them travel together: applied both or neither.
                yield backend_pb2.CommandBatch(ack=batch.batch_sequence, commands=commands)
        except grpc.RpcError:
            # The gateway went away (stopped, killed, or the connection
            # broke); what was not acknowledged comes again on its next stream.
            pass
        finally:
            log.info("stream from node %s closed", node_id or context.peer())

    @staticmethod
    def _log_batch(batch):
        """Logs a batch's events other than messages (they are many)."""
        described = [
            f"{event.WhichOneof('kind')}({event.connection_id or event.node_lost.node_id}, {event.sequence})"
            for event in batch.events if event.WhichOneof("kind") != "message"
        ]
        if described:
            log.debug("node %s batch %d: %s", batch.node_id, batch.batch_sequence, ", ".join(described))

    def _handle(self, event, commands):
        kind = event.WhichOneof("kind")
        if kind == "node_lost":
            dropped = self._presence.node_lost(event.node_lost.node_id)
            log.info("node %s lost (%d connections reported, %d dropped here)", event.node_lost.node_id,
                     event.node_lost.connections, dropped)
            return
        if not self._presence.admit(event.connection_id, event.sequence):
            return  # a repeat, already acted on
        if kind == "open":
            self._presence.opened(event.connection_id)
        elif kind == "close":
            if event.close.closed_by == types_pb2.CLOSED_BY_NODE_LOST:
                self._presence.node_lost(node_of(event.connection_id))
            self._presence.closed(event.connection_id)
        elif kind == "message":
            message = event.message
            if message.opcode == types_pb2.OPCODE_TEXT and message.payload == b"/who":
                reply = json.dumps({"connections": self._presence.view()})
                frame = types_pb2.Frame(opcode=types_pb2.OPCODE_TEXT, payload=reply.encode())
            else:
                frame = types_pb2.Frame(opcode=message.opcode, payload=message.payload)
            commands.append(
                backend_pb2.Command(push=backend_pb2.PushCommand(connection_ids=[event.connection_id], frame=frame)))


class _Stop(Exception):
    """Raised in the main thread by SIGTERM and SIGINT."""


def _stop(number, _frame):
    raise _Stop(number)


def main():
    parser = argparse.ArgumentParser(description="wsgateway echo + presence backend")
    parser.add_argument("--listen", default="127.0.0.1:50052", help="host:port to serve on (port 0: any free one)")
    parser.add_argument("--max-receive-bytes", type=int, default=16 * 1024 * 1024,
                        help="largest EventBatch taken; at least the gateway's backend_max_message_bytes "
                        "(default 16 MiB, the gateway's default is 4 MiB)")
    parser.add_argument("--workers", type=int, default=32,
                        help="threads serving calls; each Connect stream (one per gateway node) holds one")
    parser.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"],
                        help="debug logs every event batch")
    args = parser.parse_args()
    logging.basicConfig(stream=sys.stderr, level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")

    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=args.workers),
        options=[
            ("grpc.max_receive_message_length", args.max_receive_bytes),
            ("grpc.max_send_message_length", -1),
            # A port in use is an error, not a second server sharing it.
            ("grpc.so_reuseport", 0),
        ])
    backend_pb2_grpc.add_BackendServicer_to_server(BackendService(Presence()), server)
    try:
        port = server.add_insecure_port(args.listen)
    except RuntimeError as error:  # newer grpcio raises, older returns 0
        log.error("cannot listen on %s: %s", args.listen, error)
        return 1
    if port == 0:
        log.error("cannot listen on %s", args.listen)
        return 1

    server.start()
    # Python runs signal handlers in the main thread, which does nothing
    # else from here on: the handler's exception ends the sleep below.
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, _stop)
    host = args.listen.rsplit(":", 1)[0]
    print(f"listening on {host}:{port}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except _Stop as stop:
        log.info("%s: shutting down", signal.Signals(stop.args[0]).name)
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, signal.SIG_DFL)  # a second one ends it at once
    # The streams never end on their own: cancel them at once. What was not
    # acknowledged comes again on the gateway's next stream.
    server.stop(grace=None).wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
