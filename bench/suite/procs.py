"""Processes of a benchmark run: start pinned, wait for readiness, account
CPU and memory from /proc, and stop every one by PID.

Every process the suite starts goes through Registry, so that stop_all()
(called from a finally block and from the SIGTERM/SIGHUP handlers) can end
each of them even when the run is interrupted. Processes are started in a
session of their own: a Ctrl-C in the terminal then reaches only the driver,
which stops them in order (a gateway before its backend), instead of every
process receiving SIGINT at once.
"""

import os
import re
import resource
import signal
import socket
import subprocess
import threading
import time

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024


class StartError(RuntimeError):
    pass


def free_port(host="127.0.0.1"):
    """A port the OS just handed out on `host`. For servers (nginx, Pushpin)
    that cannot report a port they chose themselves; the window between
    closing this socket and the server binding is short."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_time(pid):
    """Field 22 of /proc/PID/stat: identifies this process across PID reuse."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def cpu_ticks(pid):
    """utime + stime of all threads of `pid`, in clock ticks; None when gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    except (OSError, IndexError, ValueError):
        return None


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * PAGE_KIB
    except (OSError, IndexError, ValueError):
        return None


def descendants(pid):
    """`pid` and every process below it, through /proc/PID/task/*/children."""
    seen = []
    stack = [pid]
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.append(current)
        try:
            tasks = os.listdir(f"/proc/{current}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{current}/task/{task}/children") as f:
                    stack.extend(int(child) for child in f.read().split())
            except OSError:
                pass
    return seen


def process_name(pid):
    try:
        with open(f"/proc/{pid}/comm") as f:
            return f.read().strip()
    except OSError:
        return "?"


def _raise_nofile(limit):
    """Runs in the child before exec: servers and the load generator hold up
    to 19,000 connections (nginx two descriptors each), past the usual
    hard limit; root may raise it."""

    def apply():
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(limit, soft), max(limit, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    return apply


class Proc:
    """One started process, its output captured line by line into a log file."""

    def __init__(self, name, argv, log_path, cpu=None, cwd=None, env=None, nofile=65536):
        self.name = name
        self.log_path = log_path
        command = list(argv)
        if cpu is not None:
            command = ["taskset", "-c", str(cpu)] + command
        self.command = command
        self._lines = []
        self._cond = threading.Condition()
        self._reader = None
        self._log = open(log_path, "w", buffering=1)
        self._log.write("$ " + " ".join(command) + "\n")
        self.popen = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
            preexec_fn=_raise_nofile(nofile),
        )
        REGISTRY.add(self)
        self.pid = self.popen.pid  # taskset execs the program: same PID
        self.start_time = start_time(self.pid)
        self._reader = threading.Thread(target=self._read, name=f"read-{name}", daemon=True)
        self._reader.start()

    def _read(self):
        for raw in self.popen.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            self._log.write(line + "\n")
            with self._cond:
                self._lines.append(line)
                self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def lines(self):
        with self._cond:
            return list(self._lines)

    def wait_for(self, pattern, timeout):
        """The first match of regex `pattern` in the output, waiting up to
        `timeout` seconds; StartError if the process exits or time runs out."""
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        checked = 0
        with self._cond:
            while True:
                for line in self._lines[checked:]:
                    match = regex.search(line)
                    if match:
                        return match
                checked = len(self._lines)
                if self.popen.poll() is not None and not (self._reader and self._reader.is_alive()):
                    raise StartError(f"{self.name} exited ({self.popen.returncode}) before printing /{pattern}/; "
                                     f"see {self.log_path}")
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise StartError(f"{self.name} did not print /{pattern}/ within {timeout:.0f} s; "
                                     f"see {self.log_path}")
                self._cond.wait(min(remaining, 0.2))

    def alive(self):
        return self.popen.poll() is None

    def wait(self, timeout=None):
        rc = self.popen.wait(timeout)
        if self._reader:
            self._reader.join(5)
        return rc

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Signals the process (by PID) and waits; SIGKILL after `timeout`.
        Returns the exit status."""
        if self.popen.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.kill(self.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.popen.wait()
        if self._reader:
            self._reader.join(5)
        self._log.close()
        REGISTRY.remove(self)
        return self.popen.returncode


class Registry:
    """Everything started and not yet stopped: Procs, and the PIDs of
    processes they spawned that must be cleaned up if their parent does not
    (Pushpin's children run in process groups of their own)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._procs = []
        self._orphans = {}  # pid -> start time
        self._cleanups = []  # callables run once by stop_all (temporary directories)

    def add(self, proc):
        with self._lock:
            self._procs.append(proc)

    def remove(self, proc):
        with self._lock:
            if proc in self._procs:
                self._procs.remove(proc)

    def add_cleanup(self, fn):
        with self._lock:
            self._cleanups.append(fn)

    def adopt(self, pid):
        st = start_time(pid)
        if st is not None:
            with self._lock:
                self._orphans[pid] = st

    def reap_orphans(self, timeout=5.0):
        """SIGTERM, then SIGKILL, each adopted PID that still runs and is the
        same process (same start time) as when adopted."""
        with self._lock:
            orphans = dict(self._orphans)
            self._orphans.clear()
        alive = [pid for pid, st in orphans.items() if start_time(pid) == st]
        for pid in alive:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [pid for pid in alive if start_time(pid) == orphans[pid]]
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def stop_all(self):
        """Newest first, so load generators go before servers and a gateway
        before its backend."""
        while True:
            with self._lock:
                if not self._procs:
                    break
                proc = self._procs[-1]
            proc.stop(timeout=10.0)
        self.reap_orphans()
        with self._lock:
            cleanups, self._cleanups = self._cleanups, []
        for fn in cleanups:
            fn()


REGISTRY = Registry()


class Sampler:
    """Samples CPU ticks (and RSS) of a set of PIDs every `interval` seconds
    on a thread, so that CPU use can be taken over a window chosen after the
    fact (the load generator's measured window is only known when it ends)."""

    def __init__(self, pids, interval=0.05):
        self.pids = list(pids)
        self.interval = interval
        self.samples = []  # (monotonic time, {pid: ticks}, total RSS KiB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sampler", daemon=True)

    def _sample(self):
        ticks = {}
        rss = 0
        for pid in self.pids:
            ticks[pid] = cpu_ticks(pid) or 0
            rss += rss_kib(pid) or 0
        self.samples.append((time.monotonic(), ticks, rss))

    def _run(self):
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self):
        self._sample()
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self._sample()

    def _window(self, start, end):
        inside = [s for s in self.samples if start <= s[0] <= end]
        if len(inside) < 2 or inside[-1][0] - inside[0][0] <= 0:
            return None
        return inside[0], inside[-1]

    def cores_by_pid(self, start, end):
        """Average CPU use (cores) of each PID between monotonic times
        `start` and `end`, from the samples nearest inside the window; None
        if the window holds too few samples."""
        window = self._window(start, end)
        if window is None:
            return None
        first, last = window
        seconds = last[0] - first[0]
        return {pid: (last[1].get(pid, 0) - first[1].get(pid, 0)) / CLK_TCK / seconds for pid in self.pids}

    def cpu_seconds_per_second(self, start, end):
        by_pid = self.cores_by_pid(start, end)
        return None if by_pid is None else sum(by_pid.values())

    def load_end(self, fallback, span=0.25):
        """When the load stopped: the end of the last `span`-second stretch in
        which the processes still used at least 30 % of their typical busy
        CPU rate. The load generator's exit is a poor anchor: it can linger
        after its measured window (closing, draining), so the window is
        found in the CPU use itself. Rates are taken over `span` rather than
        one sample interval because ticks are 10 ms: a short burst (the
        close handshakes) must not look like load. `fallback` when there is
        too little to go on."""
        rates = []
        start = 0
        for k, current in enumerate(self.samples):
            while current[0] - self.samples[start][0] > span:
                start += 1
            first = self.samples[max(0, start - 1)]
            dt = current[0] - first[0]
            if k > 0 and dt >= span * 0.8:
                rates.append((current[0], (sum(current[1].values()) - sum(first[1].values())) / CLK_TCK / dt))
        if len(rates) < 4:
            return fallback
        busy = sorted(rate for _, rate in rates)[int(len(rates) * 0.9)]
        if busy <= 0:
            return fallback
        active = [t for t, rate in rates if rate >= 0.3 * busy]
        return active[-1] if active else fallback

    def write_csv(self, path):
        """The raw samples, for checking a window by eye."""
        with open(path, "w") as f:
            f.write("t_s,cpu_ticks,rss_kib\n")
            t0 = self.samples[0][0] if self.samples else 0
            for t, ticks, rss in self.samples:
                f.write(f"{t - t0:.3f},{sum(ticks.values())},{rss}\n")

    def rss_baseline_kib(self):
        return self.samples[0][2] if self.samples else 0

    def rss_peak_kib(self):
        return max((s[2] for s in self.samples), default=0)


def ws_probe(host, port, path="/", timeout=1.0):
    """True when a WebSocket upgrade to host:port succeeds (101): a server is
    ready only when it can take a client, backend hop included."""
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    try:
        with socket.create_connection((host, port), timeout=timeout) as s:
            s.settimeout(timeout)
            s.sendall(request)
            head = b""
            while b"\r\n" not in head:
                chunk = s.recv(1024)
                if not chunk:
                    return False
                head += chunk
            ok = head.split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"101"]
            if ok:
                # A masked close frame (code 1000), so the server sees a clean close.
                s.sendall(bytes([0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2]))
            return ok
    except (OSError, IndexError):
        return False


def wait_ws_ready(host, port, timeout, procs=(), path="/"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if not proc.alive():
                raise StartError(f"{proc.name} exited ({proc.popen.returncode}); see {proc.log_path}")
        if ws_probe(host, port, path):
            return
        time.sleep(0.05)
    raise StartError(f"no WebSocket upgrade on {host}:{port} within {timeout:.0f} s")
