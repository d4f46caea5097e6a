"""The workloads: one wsbench run against one freshly started system, with
the server processes' CPU sampled from /proc while it runs. Each function
returns a record (a flat dict) that the report aggregates over rounds."""

import json
import resource
import statistics
import subprocess
import time

from procs import Proc, Sampler, StartError, process_name

# Leave this much out at the end of a run's CPU window: wsbench closes its
# connections after the measured window, and the close handshakes are not
# the steady state being measured. The window's start may reach back into
# the warm-up, which runs the same load.
CLOSE_MARGIN_S = 0.3


class Wsbench:
    def __init__(self, ctx, load_cpu):
        self.ctx = ctx
        self.load_cpu = load_cpu
        self.path = ctx.binary("bench/wsbench")
        self._help = {}

    def subcommands(self):
        """The subcommands listed by `wsbench --help` (CLI11 would print the
        top-level help, exit 0, for `wsbench no-such-mode --help`)."""
        if None not in self._help:
            text = subprocess.run([self.path, "--help"], capture_output=True, text=True).stdout
            names = set()
            if "Subcommands:" in text:
                for line in text.split("Subcommands:", 1)[1].splitlines():
                    if line.startswith("  ") and line.strip():
                        names.add(line.split()[0])
            self._help[None] = names
        return self._help[None]

    def help(self, mode):
        """`wsbench MODE --help`, or None when the subcommand does not exist
        in this build."""
        if mode not in self._help:
            if mode not in self.subcommands():
                self._help[mode] = None
            else:
                done = subprocess.run([self.path, mode, "--help"], capture_output=True, text=True)
                self._help[mode] = done.stdout if done.returncode == 0 else None
        return self._help[mode]

    def has(self, mode):
        return self.help(mode) is not None

    def run(self, mode, args, run_dir, timeout):
        """Runs one mode pinned to the load core; returns (json or None,
        exit status, seconds from start to exit, monotonic exit time)."""
        proc = Proc(f"wsbench-{mode}", [self.path, mode] + [str(a) for a in args], run_dir / f"wsbench-{mode}.log",
                    cpu=self.load_cpu)
        started = time.monotonic()
        try:
            rc = proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.stop()
            raise StartError(f"wsbench {mode} did not finish within {timeout:.0f} s; see {proc.log_path}")
        ended = time.monotonic()
        proc.stop()  # already exited: closes the log
        result = None
        for line in reversed(proc.lines()):
            if line.startswith('{"mode":'):
                try:
                    result = json.loads(line)
                except ValueError:
                    pass
                break
        return result, rc, ended - started, ended


def _base(workload, system, round_index):
    return {"workload": workload["id"], "kind": workload["kind"], "system": system.key, "round": round_index}


def _fail(record, why):
    record["ok"] = False
    record["error"] = why
    return record


def _check(record, result, rc, log_hint):
    if result is None:
        return _fail(record, f"wsbench exited {rc} without a result line; see {log_hint}")
    record["ok"] = bool(result.get("ok")) and rc == 0
    if not record["ok"]:
        record["error"] = f"wsbench reported ok={result.get('ok')} (exit {rc}); see {log_hint}"
    return record


def _stop(running, record, timeout=15.0):
    statuses = running.stop(timeout=timeout)
    # A server that crashes on SIGTERM is a finding too, but not a failed
    # measurement; keep it visible in the record.
    bad = {name: rc for name, rc in statuses.items() if rc not in (0, None)}
    if bad:
        record["exit_statuses"] = bad


def _skip(record, why):
    record["ok"] = None
    record["skipped"] = why
    return record


def connect_pacing(bench, system, connections):
    """wsbench echo arguments that open `connections` slowly enough for
    `system`; None when it needs pacing that this wsbench cannot do."""
    limit = getattr(system, "max_connect_rate", None)
    if not limit or connections <= getattr(system, "max_connect_burst", 0):
        return []
    flag = next((f for f in ("--connect-rate", "--open-rate") if f in (bench.help("echo") or "")), None)
    return [flag, limit] if flag else None


def cpu_steal_ticks():
    """Per CPU: (all ticks, stolen ticks) from /proc/stat. Time the
    hypervisor gave to other guests shows as latency no server caused."""
    times = {}
    try:
        with open("/proc/stat") as f:
            for line in f:
                name, *fields = line.split()
                if name.startswith("cpu") and name != "cpu" and len(fields) >= 8:
                    values = [int(v) for v in fields[:8]]
                    times[int(name[3:])] = (sum(values), values[7])
    except OSError:
        pass
    return times


def steal_percent(before, after):
    """The largest share of any CPU's time stolen between two readings."""
    shares = []
    for cpu, (total, stolen) in after.items():
        if cpu in before and total > before[cpu][0]:
            shares.append(100.0 * (stolen - before[cpu][1]) / (total - before[cpu][0]))
    return round(max(shares), 1) if shares else None


def run_echo(ctx, bench, system, workload, round_index, rate=None):
    """Closed loop (rate None) or open loop at `rate` msg/s in total."""
    record = _base(workload, system, round_index)
    p = workload["params"]
    pacing = connect_pacing(bench, system, p["connections"])
    if pacing is None:
        return _skip(record, f"{system.key} refuses a burst of {p['connections']} simultaneous opens and "
                     "`wsbench echo` cannot pace its connects")
    try:
        running = system.start(ctx)
    except StartError as e:
        return _fail(record, str(e))
    try:
        args = ["--url", running.url, "-c", p["connections"], "-p", p.get("in_flight", 1), "-s", p["size"], "-d",
                f"{p['duration']}s", "-w", f"{p['warmup']}s", "-t", 1] + pacing
        if rate:
            args += ["-r", f"{rate:.0f}"]
            record["rate"] = round(rate)
        steal_before = cpu_steal_ticks()
        with Sampler(running.pids) as sampler:
            result, rc, _, ended = bench.run("echo", args, running.run_dir, timeout=p["duration"] + p["warmup"] + 60)
        record["steal_pct"] = steal_percent(steal_before, cpu_steal_ticks())
        _check(record, result, rc, running.run_dir)
        if result:
            record["messages_per_s"] = result["messages_per_s"]
            for key in ("p50", "p90", "p99", "p99_9", "max"):
                record[f"latency_{key}_us"] = result.get(f"latency_{key}_us")
            sampler.write_csv(running.run_dir / "cpu.csv")
            load_end = sampler.load_end(ended)
            record["load_end_before_exit_s"] = round(ended - load_end, 3)
            by_pid = sampler.cores_by_pid(load_end - p["duration"], load_end - CLOSE_MARGIN_S)
            if by_pid is not None and result["messages_per_s"] > 0:
                cores = sum(by_pid.values())
                record["server_cores"] = cores
                record["cpu_us_per_msg"] = cores / result["messages_per_s"] * 1e6
                # Which process the CPU went to (Pushpin has five).
                record["cores_by_process"] = {}
                for pid, used in by_pid.items():
                    name = process_name(pid)
                    record["cores_by_process"][name] = record["cores_by_process"].get(name, 0) + used
    finally:
        _stop(running, record)
    return record


def run_hold(ctx, bench, system, workload, round_index, deflate=False):
    record = _base(workload, system, round_index)
    p = workload["params"]
    connections = p["connections"]
    # Open files are capped by RLIMIT_NOFILE's hard limit, which only a
    # process with CAP_SYS_RESOURCE can raise (containers often lack it).
    fds = getattr(system, "fds_per_connection", 1)
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and connections * fds + 256 > hard:
        fit = (hard - 256) // fds
        if fit < 0.9 * connections:
            return _skip(record, f"{connections:,} connections need {connections * fds:,} descriptors in one "
                         f"process ({fds} each) and the hard open-file limit here is {hard:,}")
        # Within 10 %: measure as many as fit; the cost per connection is
        # what is reported.
        record["connections_reduced"] = fit
        connections = fit
    try:
        running = system.start(ctx, deflate=deflate)
    except StartError as e:
        return _fail(record, str(e))
    try:
        rate = p["rate"]
        if hasattr(system, "hold_rate"):
            rate = min(rate, system.hold_rate(connections))
        record["rate"] = rate
        args = ["--url", running.url, "-n", connections, "-r", rate, "--hold", f"{p['hold']}s", "--pid",
                running.main_pid, "-t", 1]
        if deflate:
            args.append(workload["deflate_flag"])
        extra = running.extra_pids()
        with Sampler(extra, interval=0.1) as sampler:
            result, rc, _, _ = bench.run("hold", args, running.run_dir,
                                         timeout=connections / rate + p["hold"] + 120)
        _check(record, result, rc, running.run_dir)
        if result:
            established = result.get("established") or 0
            record["established"] = established
            main = result.get("rss_per_connection_kib")
            record["rss_main_kib_per_conn"] = main
            # A separate backend (echo_backend, beast behind nginx,
            # pushpin_backend) is not in main_pid's tree: its growth counts
            # too, taken at its peak during the hold.
            extra_kib = max(0, sampler.rss_peak_kib() - sampler.rss_baseline_kib())
            record["rss_extra_kib_per_conn"] = extra_kib / established if established else None
            if main is not None and established:
                record["kib_per_conn"] = main + extra_kib / established
            record["handshakes_per_s"] = result.get("handshakes_per_s")
    finally:
        _stop(running, record)
    return record


def run_fanout(ctx, bench, system, workload, round_index):
    record = _base(workload, system, round_index)
    p = workload["params"]
    try:
        running = system.start(ctx)
    except StartError as e:
        return _fail(record, str(e))
    try:
        args = ["--url", running.url, "-n", p["connections"], "-r", p["rate"], "-m", p["messages"], "-s", p["size"],
                "-p", p["in_flight"], "-t", 1]
        if running.admin:
            args += ["--trigger", "admin", "--admin", running.admin]
            record["trigger"] = "admin"
        else:
            args += ["--trigger", "ws"]
            record["trigger"] = "ws"
        result, rc, _, _ = bench.run("fanout", args, running.run_dir,
                                     timeout=p["connections"] / p["rate"] + p["messages"] + 120)
        _check(record, result, rc, running.run_dir)
        if result:
            for key in ("deliveries_per_sec", "broadcasts_per_sec", "completion_p50_us", "completion_p99_us",
                        "completion_max_us", "established"):
                record[key] = result.get(key)
    finally:
        _stop(running, record)
    return record


def run_connect_rate(ctx, bench, system, workload, round_index):
    record = _base(workload, system, round_index)
    p = workload["params"]
    try:
        running = system.start(ctx)
    except StartError as e:
        return _fail(record, str(e))
    try:
        args = ["--url", running.url, "-c", p["concurrency"], "-d", f"{p['duration']}s", "-w", f"{p['warmup']}s",
                "-t", 1]
        # Connections come and go: new server processes do not, so the PIDs
        # taken at start stay valid.
        with Sampler(running.pids) as sampler:
            result, rc, _, ended = bench.run("connect-rate", args, running.run_dir,
                                             timeout=p["duration"] + p["warmup"] + 60)
        _check(record, result, rc, running.run_dir)
        if result:
            rate = result.get("connections_per_sec") or 0
            record["connections_per_sec"] = rate
            record["handshake_p50_us"] = result.get("handshake_p50_us")
            record["handshake_p99_us"] = result.get("handshake_p99_us")
            load_end = sampler.load_end(ended)
            cores = sampler.cpu_seconds_per_second(load_end - p["duration"], load_end - CLOSE_MARGIN_S)
            if cores is not None and rate > 0:
                record["server_cores"] = cores
                record["cpu_us_per_conn"] = cores / rate * 1e6
    finally:
        _stop(running, record)
    return record


# --- instructions per message ------------------------------------------------


def perf_supported():
    """Whether hardware instruction counting works here (it does not in most
    VMs: perf prints "<not supported>")."""
    try:
        done = subprocess.run(["perf", "stat", "-x,", "-e", "instructions", "--", "true"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    if done.returncode != 0:
        return False
    for line in done.stderr.splitlines():
        fields = line.split(",")
        if len(fields) > 2 and fields[2].startswith("instructions"):
            return fields[0].strip().isdigit()
    return False


def _callgrind_total(paths):
    """Sum of Ir over callgrind's per-thread files. Threads are written
    separately (--separate-threads=yes) because with them merged, costs of
    threads still running at exit (gRPC's pollers) were at times missing
    from the one file. A file without a totals line (the per-process stub)
    is skipped."""
    total = 0
    used = 0
    for path in paths:
        value = None
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith("totals:"):
                    value = int(line.split()[1])
                elif value is None and line.startswith("summary:"):
                    value = int(line.split()[1])
        if value is not None:
            total += value
            used += 1
    if used == 0:
        raise StartError("no callgrind totals in " + ", ".join(str(p) for p in paths))
    return total


def _perf_total(path):
    total = 0
    with open(path) as f:
        for line in f:
            fields = line.strip().split(",")
            if len(fields) > 2 and fields[2].startswith("instructions") and fields[0].strip().isdigit():
                total += int(fields[0])
    return total


def run_instructions(ctx, bench, system, workload, method):
    """Instructions the server processes execute per echoed message. Two runs
    of fixed work (N1 and N2 messages, each on a fresh system) and the
    difference: start-up, connection set-up and shutdown cancel out."""
    record = {"workload": workload["id"], "kind": "instructions", "system": system.key, "round": 1,
              "method": method}
    p = workload["params"]
    points = []
    for count in p["counts"]:
        wrapper = ()
        run_out = None
        if method == "callgrind":
            run_out = ctx.run_dir(f"callgrind-{system.key}-{count}")
            run_out.chmod(0o777)  # nginx's worker writes here as nobody
            wrapper = ("valgrind", "--tool=callgrind", "--separate-threads=yes",
                       f"--callgrind-out-file={run_out}/callgrind.%p.out")
        try:
            running = system.start(ctx, wrapper=wrapper, ready_timeout=180)
        except StartError as e:
            return _fail(record, str(e))
        perf = None
        try:
            if method == "perf":
                perf = Proc("perf", ["perf", "stat", "-x,", "-e", "instructions", "-o",
                                     str(running.run_dir / "perf.txt"), "-p",
                                     ",".join(str(pid) for pid in running.pids)],
                            running.run_dir / "perf.log", cpu=bench.load_cpu)
                time.sleep(0.5)
            args = ["--url", running.url, "-c", p["connections"], "-p", 1, "-s", p["size"], "--count", count,
                    "--warmup", "0", "-d", "600s", "-t", 1]
            result, rc, _, _ = bench.run("echo", args, running.run_dir, timeout=900)
            _check(record, result, rc, running.run_dir)
            if not record["ok"]:
                return record
            messages = result["messages"]
        finally:
            if perf is not None:
                perf.stop(sig=2, timeout=30)  # SIGINT: perf prints its counts and exits
            # Callgrind writes its output when the process exits; a slow
            # instrumented shutdown must not be cut short.
            _stop(running, record, timeout=180)
        if method == "perf":
            total = _perf_total(running.run_dir / "perf.txt")
        else:
            outputs = sorted(run_out.glob("callgrind.*.out*"))
            try:
                total = _callgrind_total(outputs)
            except (StartError, OSError) as e:
                return _fail(record, f"{e} (in {run_out})")
        points.append((messages, total))
        record[f"instructions_at_{count}"] = total
        record[f"messages_at_{count}"] = messages
    (m1, i1), (m2, i2) = points[0], points[-1]
    if m2 <= m1:
        return _fail(record, "the two runs echoed the same number of messages")
    record["instructions_per_msg"] = (i2 - i1) / (m2 - m1)
    record["ok"] = True
    return record


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
