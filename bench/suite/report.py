"""Turns the records of a run into the summary (medians over rounds and
ratios), a Markdown report and PNG charts.

Ratios are taken per round (both systems measured minutes apart at most,
interleaved) and the median of those is reported: on a noisy shared
machine a ratio within one round is steadier than either number."""

import statistics

SYSTEM_ORDER = ["wsgateway", "ceiling", "nginx", "pushpin"]
SYSTEM_LABELS = {
    "wsgateway": "wsgateway",
    "ceiling": "ceiling (Beast)",
    "nginx": "nginx→Beast",
    "pushpin": "Pushpin",
}
# (numerator, denominator) pairs reported for each kind of result.
ECHO_RATIOS = [("wsgateway", "ceiling"), ("wsgateway", "pushpin"), ("nginx", "ceiling")]
COST_RATIOS = [("wsgateway", "ceiling"), ("wsgateway", "nginx"), ("wsgateway", "pushpin")]
LATENCY_TARGET_P99_US = 5000


def _median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def _records(records, workload, system=None, ok_only=True):
    return [
        r for r in records
        if r["workload"] == workload and (system is None or r["system"] == system) and (r.get("ok") or not ok_only)
    ]


def metric(records, workload, system, key):
    return _median([r.get(key) for r in _records(records, workload, system)])


def paired_ratio(records, workload, a, b, key):
    """Median over rounds of a/b, each pair from the same round."""
    ratios = []
    for r in _records(records, workload, a):
        for s in _records(records, workload, b):
            if s["round"] == r["round"] and r.get(key) and s.get(key):
                ratios.append(r[key] / s[key])
    return _median(ratios)


def _systems_in(records, workload):
    present = {r["system"] for r in records if r["workload"] == workload}
    return [s for s in SYSTEM_ORDER if s in present]


def _fmt(value, digits=0, unit=""):
    if value is None:
        return "–"
    if digits == 0:
        return f"{value:,.0f}{unit}"
    return f"{value:,.{digits}f}{unit}"


def _ratio(value):
    return "–" if value is None else f"{value:.2f}×"


def build_summary(records, plan):
    summary = {"echo": [], "cpu": [], "latency": [], "instructions": [], "memory": [], "fanout": [], "connect": []}
    for w in plan["workloads"]:
        wid, kind = w["id"], w["kind"]
        systems = _systems_in(records, wid)
        if not systems:
            continue
        if kind == "echo":
            row = {"workload": wid, "label": w["label"], "systems": {}, "ratios": {}}
            cpu = {"workload": wid, "label": w["label"], "systems": {}, "ratios": {}}
            for s in systems:
                row["systems"][s] = metric(records, wid, s, "messages_per_s")
                cpu["systems"][s] = metric(records, wid, s, "cpu_us_per_msg")
            for a, b in ECHO_RATIOS:
                row["ratios"][f"{a}/{b}"] = paired_ratio(records, wid, a, b, "messages_per_s")
            for a, b in COST_RATIOS:
                cpu["ratios"][f"{a}/{b}"] = paired_ratio(records, wid, a, b, "cpu_us_per_msg")
            summary["echo"].append(row)
            summary["cpu"].append(cpu)
        elif kind == "latency":
            for s in systems:
                summary["latency"].append({
                    "workload": wid, "label": w["label"], "system": s,
                    "rate": metric(records, wid, s, "rate"),
                    "messages_per_s": metric(records, wid, s, "messages_per_s"),
                    "p50_us": metric(records, wid, s, "latency_p50_us"),
                    "p99_us": metric(records, wid, s, "latency_p99_us"),
                    "p99_9_us": metric(records, wid, s, "latency_p99_9_us"),
                    "cpu_us_per_msg": metric(records, wid, s, "cpu_us_per_msg"),
                    "server_cores": metric(records, wid, s, "server_cores"),
                    "steal_pct": metric(records, wid, s, "steal_pct"),
                })
        elif kind == "instructions":
            row = {"workload": wid, "label": w["label"], "systems": {}, "ratios": {}, "method": None}
            for s in systems:
                row["systems"][s] = metric(records, wid, s, "instructions_per_msg")
                for r in _records(records, wid, s):
                    row["method"] = r.get("method")
            for a, b in [("wsgateway", "ceiling"), ("wsgateway", "nginx"), ("nginx", "ceiling")]:
                if row["systems"].get(a) and row["systems"].get(b):
                    row["ratios"][f"{a}/{b}"] = row["systems"][a] / row["systems"][b]
            summary["instructions"].append(row)
        elif kind == "hold":
            row = {"workload": wid, "label": w["label"], "systems": {}, "ratios": {}}
            for s in systems:
                row["systems"][s] = metric(records, wid, s, "kib_per_conn")
            for a, b in COST_RATIOS:
                row["ratios"][f"{a}/{b}"] = paired_ratio(records, wid, a, b, "kib_per_conn")
            summary["memory"].append(row)
        elif kind == "fanout":
            for s in systems:
                summary["fanout"].append({
                    "workload": wid, "label": w["label"], "system": s,
                    "deliveries_per_sec": metric(records, wid, s, "deliveries_per_sec"),
                    "completion_p50_us": metric(records, wid, s, "completion_p50_us"),
                    "completion_p99_us": metric(records, wid, s, "completion_p99_us"),
                    "ratio_to_ceiling": paired_ratio(records, wid, s, "ceiling", "deliveries_per_sec"),
                })
        elif kind == "connect":
            for s in systems:
                summary["connect"].append({
                    "workload": wid, "label": w["label"], "system": s,
                    "connections_per_sec": metric(records, wid, s, "connections_per_sec"),
                    "handshake_p99_us": metric(records, wid, s, "handshake_p99_us"),
                    "cpu_us_per_conn": metric(records, wid, s, "cpu_us_per_conn"),
                    "ratio_to_ceiling": paired_ratio(records, wid, s, "ceiling", "connections_per_sec"),
                })
    return summary


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _present(rows, key="systems"):
    present = set()
    for row in rows:
        present.update(k for k, v in row[key].items() if v is not None)
    return [s for s in SYSTEM_ORDER if s in present]


def markdown(summary, meta, image_dir="benchmarks"):
    """The results section of docs/benchmarks.md: tables, charts, notes."""
    out = []
    m = meta["machine"]
    out.append(f"Run of {meta['finished']}: `{meta['command']}` ({meta['mode']}, {meta['rounds']} round(s), "
               f"{meta['wall_s']:.0f} s). Server processes pinned to CPU {meta['server_cpu']}, wsbench to CPU "
               f"{meta['load_cpu']}. Each number is the median over rounds; each ratio the median of per-round "
               "ratios.")
    out.append("")
    out.append(_table(["machine", ""], [
        ["CPU", f"{m['cpu']} ({m['cores']} cores, {m.get('memory_gib', '?')} GiB)"],
        ["OS, kernel", f"{m['os']}, Linux {m['kernel']}"],
        ["compiler", m["compiler"]],
        ["references", ", ".join(v for v in (m.get("nginx"), m.get("pushpin")) if v)],
    ]))
    out.append("")

    if summary["echo"]:
        systems = _present(summary["echo"])
        ratio_keys = [f"{a}/{b}" for a, b in ECHO_RATIOS if a in systems and b in systems]
        rows = []
        for row in summary["echo"]:
            rows.append([row["label"]] + [_fmt(row["systems"].get(s)) for s in systems] +
                        [_ratio(row["ratios"].get(k)) for k in ratio_keys])
        out.append("### Echo throughput (messages/s, closed loop)")
        out.append("")
        out.append(_table(["workload"] + [SYSTEM_LABELS[s] for s in systems] + ratio_keys, rows))
        out.append("")
        out.append(f"![echo throughput]({image_dir}/echo_throughput.png)")
        out.append("")

    if summary["cpu"]:
        systems = _present(summary["cpu"])
        ratio_keys = [f"{a}/{b}" for a, b in COST_RATIOS if a in systems and b in systems]
        rows = []
        for row in summary["cpu"]:
            rows.append([row["label"]] + [_fmt(row["systems"].get(s), 1) for s in systems] +
                        [_ratio(row["ratios"].get(k)) for k in ratio_keys])
        out.append("### Server CPU per message (µs of CPU, all server processes)")
        out.append("")
        out.append(_table(["workload"] + [SYSTEM_LABELS[s] for s in systems] + ratio_keys, rows))
        out.append("")
        out.append(f"![server CPU per message]({image_dir}/cpu_per_message.png)")
        out.append("")

    if summary["instructions"]:
        for row in summary["instructions"]:
            systems = [s for s in SYSTEM_ORDER if row["systems"].get(s) is not None]
            if not systems:
                continue
            out.append(f"### Instructions per message ({row['label']}, {row['method']})")
            out.append("")
            out.append(_table(["system", "instructions/message"],
                              [[SYSTEM_LABELS[s], _fmt(row["systems"][s])] for s in systems] +
                              [[k, _ratio(v)] for k, v in row["ratios"].items()]))
            out.append("")

    if summary["latency"]:
        rows = []
        for r in summary["latency"]:
            target = ""
            if r["system"] == "wsgateway" and r["p99_us"] is not None:
                target = "met" if r["p99_us"] < LATENCY_TARGET_P99_US else "missed"
            rows.append([SYSTEM_LABELS[r["system"]], _fmt(r["rate"]), _fmt(r["messages_per_s"]),
                         _fmt(r["p50_us"] and r["p50_us"] / 1000, 2), _fmt(r["p99_us"] and r["p99_us"] / 1000, 2),
                         _fmt(r["p99_9_us"] and r["p99_9_us"] / 1000, 2),
                         _fmt(r.get("server_cores") and 100 * r["server_cores"], 0), _fmt(r.get("steal_pct"), 1),
                         target])
        out.append(f"### Latency, open loop at half of each system's peak ({summary['latency'][0]['label']})")
        out.append("")
        out.append(_table(["system", "offered msg/s", "achieved msg/s", "p50 ms", "p99 ms", "p99.9 ms",
                           "server core busy %", "CPU steal %", "p99 < 5 ms"], rows))
        out.append("")
        out.append("CPU steal: the largest share of either core's time the hypervisor gave to other guests "
                   "during the run. Time stolen from the server's core is latency no server caused; when the "
                   "ceiling's own p99 is far above its p50, the machine, not the system, set the tail.")
        out.append("")

    if summary["memory"]:
        systems = _present(summary["memory"])
        ratio_keys = [f"{a}/{b}" for a, b in COST_RATIOS if a in systems and b in systems]
        rows = []
        for row in summary["memory"]:
            rows.append([row["label"]] + [_fmt(row["systems"].get(s), 1) for s in systems] +
                        [_ratio(row["ratios"].get(k)) for k in ratio_keys])
        out.append("### Memory per idle connection (KiB RSS, all server processes)")
        out.append("")
        out.append(_table(["connections"] + [SYSTEM_LABELS[s] for s in systems] + ratio_keys, rows))
        out.append("")
        out.append(f"![memory per connection]({image_dir}/memory_per_connection.png)")
        out.append("")

    if summary["fanout"]:
        rows = [[SYSTEM_LABELS[r["system"]], _fmt(r["deliveries_per_sec"]),
                 _fmt(r["completion_p50_us"] and r["completion_p50_us"] / 1000, 1),
                 _fmt(r["completion_p99_us"] and r["completion_p99_us"] / 1000, 1), _ratio(r["ratio_to_ceiling"])]
                for r in summary["fanout"]]
        out.append(f"### Fan-out ({summary['fanout'][0]['label']})")
        out.append("")
        out.append(_table(["system", "deliveries/s", "completion p50 ms", "completion p99 ms", "vs ceiling"], rows))
        out.append("")
        out.append(f"![fan-out]({image_dir}/fanout.png)")
        out.append("")

    if summary["connect"]:
        rows = [[SYSTEM_LABELS[r["system"]], _fmt(r["connections_per_sec"]),
                 _fmt(r["handshake_p99_us"] and r["handshake_p99_us"] / 1000, 2), _fmt(r["cpu_us_per_conn"], 0),
                 _ratio(r["ratio_to_ceiling"])] for r in summary["connect"]]
        out.append(f"### New connections per second ({summary['connect'][0]['label']})")
        out.append("")
        out.append(_table(["system", "connections/s", "handshake p99 ms", "server CPU µs/connection", "vs ceiling"],
                          rows))
        out.append("")
        out.append(f"![connect rate]({image_dir}/connect_rate.png)")
        out.append("")

    for note in meta.get("notes", []):
        out.append(f"- {note}")
    if meta.get("notes"):
        out.append("")
    return "\n".join(out)


def _short(value):
    if value >= 10000:
        return f"{value / 1000:.0f}k"
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}"


COLORS = {"wsgateway": "#1f77b4", "ceiling": "#7f7f7f", "nginx": "#2ca02c", "pushpin": "#d62728"}


def charts(summary, out_dir):
    """PNG charts next to the Markdown; returns the files written, or a
    reason string when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "matplotlib is not installed (apt-get install python3-matplotlib): no charts"

    written = []

    def grouped(rows, key, title, ylabel, filename, scale=1.0):
        systems = _present(rows, key)
        if not rows or not systems:
            return
        fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(rows) + 2), 4))
        width = 0.8 / len(systems)
        for i, s in enumerate(systems):
            xs = [j + (i - (len(systems) - 1) / 2) * width for j in range(len(rows))]
            ys = [(row[key].get(s) or 0) * scale for row in rows]
            bars = ax.bar(xs, ys, width, label=SYSTEM_LABELS[s], color=COLORS[s])
            # Values on the bars: Pushpin's are too small to see otherwise.
            ax.bar_label(bars, labels=[_short(y) if y else "" for y in ys], fontsize=6, padding=1)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels([row["label"] for row in rows], fontsize=8)
        values = [v for row in rows for v in row[key].values() if v]
        if values and max(values) > 20 * min(values):
            # Pushpin is two orders of magnitude off: a linear axis would
            # flatten every other bar.
            ax.set_yscale("log")
            title += " (log scale)"
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.legend(fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    def simple(rows, key, title, ylabel, filename):
        rows = [r for r in rows if r.get(key) is not None]
        if not rows:
            return
        fig, ax = plt.subplots(figsize=(6, 3.5))
        bars = ax.bar([SYSTEM_LABELS[r["system"]] for r in rows], [r[key] for r in rows],
                      color=[COLORS[r["system"]] for r in rows])
        ax.bar_label(bars, labels=[_short(r[key]) for r in rows], fontsize=8, padding=1)
        ax.set_title(title)
        ax.set_ylabel(ylabel)
        ax.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        path = out_dir / filename
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)

    grouped(summary["echo"], "systems", "Echo throughput (higher is better)", "messages/s", "echo_throughput.png")
    grouped(summary["cpu"], "systems", "Server CPU per message (lower is better)", "µs CPU / message",
            "cpu_per_message.png")
    grouped(summary["memory"], "systems", "Memory per idle connection (lower is better)", "KiB RSS / connection",
            "memory_per_connection.png")
    if summary["fanout"]:
        simple(summary["fanout"], "deliveries_per_sec", f"Fan-out: {summary['fanout'][0]['label']}",
               "deliveries/s", "fanout.png")
    if summary["connect"]:
        simple(summary["connect"], "connections_per_sec", "New connections per second (higher is better)",
               "connections/s", "connect_rate.png")
    return written
