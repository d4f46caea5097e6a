"""The systems under test. Each start() launches fresh server processes on
fresh loopback ports, pinned to the server core, and returns a Running with
the URL to load, every server PID (for CPU and memory accounting) and a
stop() that ends them by PID, newest first.

- wsgateway: build/wsgateway in front of build/examples/echo_backend (the
  backend hop: client -> gateway -> gRPC stream -> backend and back).
- ceiling:   build/bench/beast_echo_server, no hop at all.
- nginx:     nginx proxying WebSocket to beast_echo_server (one proxy hop).
- pushpin:   Pushpin (condure, pushpin-proxy, pushpin-handler, zurl) in front
  of build/bench/pushpin_backend over WebSocket-over-HTTP.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

from procs import REGISTRY, Proc, StartError, descendants, free_port, wait_ws_ready

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent


class Context:
    """Where binaries are and where a run writes; hands out one directory
    per started system."""

    def __init__(self, build_dir, out_dir, server_cpu, ready_timeout=20.0):
        self.build = Path(build_dir)
        self.out = Path(out_dir)
        self.logs = self.out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.server_cpu = server_cpu
        self.ready_timeout = ready_timeout
        self._serial = 0

    def run_dir(self, name):
        while True:
            self._serial += 1
            path = self.logs / f"{self._serial:04d}-{name}"
            if not path.exists():
                path.mkdir(parents=True)
                return path

    def binary(self, relative):
        path = self.build / relative
        if not path.exists():
            raise StartError(f"{path} is missing: build it first (bench/run does)")
        return str(path)


class Running:
    def __init__(self, system, url, procs, main_pid, run_dir, admin=None, cleanup=None):
        self.system = system
        self.url = url
        self.procs = procs  # in start order
        self.main_pid = main_pid  # for `wsbench hold --pid` (its children are counted too)
        self.run_dir = run_dir
        self.admin = admin
        self._cleanup = cleanup
        self.pids = []
        self.refresh_pids()

    def refresh_pids(self):
        """Every server process: the ones started and all their descendants
        (nginx's worker, Pushpin's condure/zurl/proxy/handler)."""
        pids = []
        for proc in self.procs:
            for pid in descendants(proc.pid):
                if pid not in pids:
                    pids.append(pid)
                    if pid != proc.pid:
                        REGISTRY.adopt(pid)  # Pushpin's children: cleaned up by PID if the runner does not
        self.pids = pids
        return pids

    def extra_pids(self):
        """Server PIDs outside main_pid's process tree (a backend)."""
        tree = set(descendants(self.main_pid))
        return [pid for pid in self.pids if pid not in tree]

    def stop(self, timeout=15.0):
        """Newest first (a gateway before its backend, so it does not see the
        backend vanish mid-shutdown). Returns {name: exit status}."""
        statuses = {}
        for proc in reversed(self.procs):
            statuses[proc.name] = proc.stop(timeout=timeout)
        REGISTRY.reap_orphans()
        if self._cleanup:
            self._cleanup()
        return statuses


def _host_port(address):
    host, port = address.rsplit(":", 1)
    return host.strip("[]"), int(port)


class Gateway:
    key = "wsgateway"
    label = "wsgateway + echo backend"

    def __init__(self, threads=1):
        self.threads = threads
        self._help = None

    def help_text(self, ctx):
        if self._help is None:
            import subprocess
            self._help = subprocess.run([ctx.binary("wsgateway"), "--help"], capture_output=True,
                                        text=True).stdout
        return self._help

    def supports_deflate(self, ctx):
        return "--permessage-deflate" in self.help_text(ctx)

    def start(self, ctx, deflate=False, wrapper=(), ready_timeout=None):
        timeout = ready_timeout or ctx.ready_timeout
        run_dir = ctx.run_dir(self.key)
        backend = Proc("echo_backend", list(wrapper) + [ctx.binary("examples/echo_backend"), "--listen", "127.0.0.1:0"],
                       run_dir / "echo_backend.log", cpu=ctx.server_cpu)
        procs = [backend]
        try:
            backend_address = backend.wait_for(r"echo backend listening on (\S+)", timeout).group(1)
            argv = list(wrapper) + [
                ctx.binary("wsgateway"), "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0",
                "--metrics-listen", "127.0.0.1:0", "--backend", backend_address,
                # One event loop: every server process shares one core here,
                # as the ceiling (one thread) and nginx (one worker) do.
                "--threads", str(self.threads),
                # A benchmark client sends far more per connection than any
                # real one; the per-connection rates would measure themselves.
                "--client-message-rate", "0", "--client-byte-rate", "0",
            ]
            if deflate:
                argv.append("--permessage-deflate=true")  # a boolean option in the gateway's CLI
            gateway = Proc("wsgateway", argv, run_dir / "wsgateway.log", cpu=ctx.server_cpu)
            procs.append(gateway)
            listen = gateway.wait_for(r"websocket listener on (\S+)", timeout).group(1)
            admin = gateway.wait_for(r"admin listener on (\S+)", timeout).group(1)
            gateway.wait_for(r"backend stream up", timeout)
            host, port = _host_port(listen)
            wait_ws_ready(host, port, timeout, procs)
            return Running(self, f"ws://{host}:{port}/", procs, gateway.pid, run_dir, admin=admin)
        except BaseException:
            for proc in reversed(procs):
                proc.stop(timeout=5)
            raise


class Ceiling:
    key = "ceiling"
    label = "Beast echo (ceiling)"

    def start(self, ctx, deflate=False, wrapper=(), ready_timeout=None):
        timeout = ready_timeout or ctx.ready_timeout
        run_dir = ctx.run_dir(self.key)
        server = Proc("beast_echo_server",
                      list(wrapper) + [ctx.binary("bench/beast_echo_server"), "--listen", "127.0.0.1:0"],
                      run_dir / "beast_echo_server.log", cpu=ctx.server_cpu)
        try:
            host, port = _host_port(server.wait_for(r"beast echo server listening on (\S+)", timeout).group(1))
            wait_ws_ready(host, port, timeout, [server])
            return Running(self, f"ws://{host}:{port}/", [server], server.pid, run_dir)
        except BaseException:
            server.stop(timeout=5)
            raise


class Nginx:
    key = "nginx"
    label = "nginx + Beast echo"
    # A proxied connection holds the client's socket and the upstream's.
    fds_per_connection = 2

    def start(self, ctx, deflate=False, wrapper=(), ready_timeout=None):
        timeout = ready_timeout or ctx.ready_timeout
        run_dir = ctx.run_dir(self.key)
        nginx_bin = shutil.which("nginx") or "/usr/sbin/nginx"
        upstream = Proc("beast_echo_server",
                        list(wrapper) + [ctx.binary("bench/beast_echo_server"), "--listen", "127.0.0.1:0"],
                        run_dir / "beast_echo_server.log", cpu=ctx.server_cpu)
        procs = [upstream]
        try:
            upstream_address = upstream.wait_for(r"beast echo server listening on (\S+)", timeout).group(1)
            port = free_port()
            template = (REPO / "bench/nginx/nginx.conf.in").read_text()
            conf = (template.replace("@RUN_DIR@", str(run_dir)).replace("@LISTEN@", f"127.0.0.1:{port}")
                    .replace("@UPSTREAM@", upstream_address))
            (run_dir / "nginx.conf").write_text(conf)
            # The worker runs as nobody when started by root; it must reach
            # the run directory (and write callgrind's output there).
            os.chmod(run_dir, 0o777)
            nginx = Proc("nginx",
                         list(wrapper) + [nginx_bin, "-p", str(run_dir), "-e",
                                          str(run_dir / "error.log"), "-c", str(run_dir / "nginx.conf")],
                         run_dir / "nginx.log", cpu=ctx.server_cpu)
            procs.append(nginx)
            wait_ws_ready("127.0.0.1", port, timeout, procs)
            return Running(self, f"ws://127.0.0.1:{port}/", procs, nginx.pid, run_dir)
        except BaseException:
            for proc in reversed(procs):
                proc.stop(timeout=5)
            raise


class Pushpin:
    key = "pushpin"
    label = "Pushpin + WS-over-HTTP echo"
    # Each WebSocket open is an HTTP request that pushpin-proxy queues to
    # zurl; past about 100 queued (its zhttp client's high-water mark) new
    # sessions fail at once with 502. So connections are opened at a pace,
    # never in a burst of more than max_connect_burst.
    max_connect_rate = 250
    max_connect_burst = 100

    def hold_rate(self, connections):
        """Opens per second for holding `connections`. What an open costs
        pushpin-proxy and pushpin-handler grows with the sessions already
        held (measured: at 250 opens/s, 0.3 cores with none held, one whole
        core at about 8,600), so the pace for N connections is about
        1.9 million / N per second: 190/s for 10,000, 100/s for 19,000."""
        return min(self.max_connect_rate, 1.9e6 / connections)

    # Holding 19,000 at that pace takes over three minutes: memory, which
    # does not vary with CPU noise as throughput does, is measured in one
    # round.
    hold_rounds = 1

    def start(self, ctx, deflate=False, wrapper=(), ready_timeout=None):
        timeout = ready_timeout or ctx.ready_timeout
        run_dir = ctx.run_dir(self.key)
        # IPC socket paths must fit in 108 bytes, so Pushpin's run directory
        # is a short one under /tmp; its logs go to the run's own directory.
        ipc_dir = Path(tempfile.mkdtemp(prefix="wsb-pp-"))
        log_dir = run_dir / "pushpin-logs"
        log_dir.mkdir()

        def cleanup():
            shutil.rmtree(ipc_dir, ignore_errors=True)

        REGISTRY.add_cleanup(cleanup)  # also when the run is interrupted

        backend = Proc("pushpin_backend",
                       list(wrapper) + [ctx.binary("bench/pushpin_backend"), "--listen", "127.0.0.1:0"],
                       run_dir / "pushpin_backend.log", cpu=ctx.server_cpu)
        procs = [backend]
        try:
            backend_address = backend.wait_for(r"pushpin backend listening on (\S+)", timeout).group(1)
            port = free_port()
            fields = {
                "@RUN_DIR@": str(ipc_dir),
                "@LOG_DIR@": str(log_dir),
                "@LISTEN@": f"127.0.0.1:{port}",
                "@PUSH_IN_PORT@": str(free_port()),
                "@PUSH_IN_SUB_PORT@": str(free_port()),
                "@PUSH_IN_HTTP_PORT@": str(free_port()),
                "@COMMAND_PORT@": str(free_port()),
            }
            conf = (HERE / "pushpin/pushpin.conf.in").read_text()
            for name, value in fields.items():
                conf = conf.replace(name, value)
            (run_dir / "pushpin.conf").write_text(conf)
            # over_http: WebSocket-over-HTTP to the backend, one route for all.
            (run_dir / "routes").write_text(f"* {backend_address},over_http\n")
            runner = Proc("pushpin", list(wrapper) + ["pushpin", "--config",
                                                      str(run_dir / "pushpin.conf"), "--merge-output"],
                          run_dir / "pushpin.log", cpu=ctx.server_cpu)
            procs.append(runner)
            wait_ws_ready("127.0.0.1", port, timeout, procs)
            running = Running(self, f"ws://127.0.0.1:{port}/", procs, runner.pid, run_dir, cleanup=cleanup)
            # The runner starts its services one by one; make sure all four
            # are counted.
            deadline = time.monotonic() + timeout
            while len(running.refresh_pids()) < 6 and time.monotonic() < deadline:
                time.sleep(0.05)
            return running
        except BaseException:
            for proc in reversed(procs):
                proc.stop(timeout=5)
            REGISTRY.reap_orphans()
            cleanup()
            raise


SYSTEMS = {system.key: system for system in (Gateway(), Ceiling(), Nginx(), Pushpin())}
