"""Render benches/compare.sh's raw results as markdown tables.

    python3 report.py RESULTS.tsv "FIELD..." BASELINE SERVER...

RESULTS.tsv has one row per (server, workload) run, tab-separated, with the
columns named (space-separated) by the second argument; compare.sh passes its
RESULT_FIELDS. SERVER... gives the row order within a workload.

Several rows for one (server, workload) (compare.sh --repeat N) are reduced
to the median run by requests per server CPU-second, with the min–max range
beside it. Prints the tables: the results; the ratio of BASELINE's requests
per server CPU-second to each peer's (if BASELINE ran; with several rounds, the
median and range of the rounds' own ratios beside it); for idle-1000, the
latency and memory with and without the held connections; for the multi-worker
workloads, the medians of requests per CPU-second and of p99 and every run's
spread of the connections over the workers; the run conditions (where the CPU
time went, so a disturbed or client-bound run can be told).

A row whose status is not "ok" ("failed: …", "n/a: …") shows it in place of
its figures. A row's `worker` field, when not "-", is the worker class the
workload gave the server ("gthread"), shown after its name.
"""

import sys


def load(path, fields):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                rows.append(dict(zip(fields, line.split("\t"))))
    return rows


def per_cpu_s(row):
    """Requests per server CPU-second, or None when it cannot be computed."""
    if row["status"] != "ok":
        return None
    cpu = float(row["cpu_s"])
    return int(row["requests"]) / cpu if cpu > 0 else None


def mib(kib):
    return f"{int(kib) / 1024:.1f}"


def label(server, row):
    """The server's name, with the worker class the workload gave it."""
    worker = row.get("worker", "-")
    return server if worker in ("", "-") else f"{server} {worker}"


def held(row):
    """True for an idle-1000 row (measured with connections held)."""
    return row.get("held", "-") not in ("", "-")


def many(row):
    """True for a multi-worker row (its connections per worker were counted)."""
    return row.get("conns_per_worker", "-") not in ("", "-")


def median(values):
    """The middle value (the lower middle one for an even count, as pick does)."""
    values = sorted(values)
    return values[(len(values) - 1) // 2]


def spread(row):
    """One run's connections per worker, with the busiest worker's ÷ the mean,
    its p99 and its requests per server CPU-second."""
    if row["status"] != "ok":
        return "failed"
    rate = per_cpu_s(row)
    rest = f" · p99 {float(row['p99_ms']):.1f} ms · " + (f"{rate:,.0f}/CPU-s" if rate else "no CPU time")
    counts, ratio = row["conns_per_worker"], row["conns_max_over_mean"]
    if counts == "?":
        return "not counted" + rest
    queued = row.get("conns_queued", "-")
    queued = f" +{queued} queued" if queued not in ("-", "0") else ""
    return f"{counts}{queued} ({ratio + '×' if ratio != '-' else 'none'}){rest}"


def group(rows):
    """{(server, workload): [rows]} in first-seen order."""
    out = {}
    for r in rows:
        out.setdefault((r["server"], r["workload"]), []).append(r)
    return out


def pick(runs):
    """The run shown for one (server, workload): the median successful run
    by requests per CPU-second (the lower middle one for an even count), else
    the first failure. Returns (row, notes, spread)."""
    ok = sorted((r for r in runs if r["status"] == "ok"), key=per_cpu_s)
    if not ok:
        return runs[0], [], ""
    row = ok[(len(ok) - 1) // 2]
    notes = [r["note"] for r in ok if r["note"] not in ("", "-")]
    failed = sorted({r["status"] for r in runs if r["status"] != "ok"})
    if failed:
        notes.append(f"{len(runs) - len(ok)} of {len(runs)} runs failed: " + "; ".join(failed))
    spread = f" ({per_cpu_s(ok[0]):,.0f}–{per_cpu_s(ok[-1]):,.0f})" if len(ok) > 1 else ""
    return row, list(dict.fromkeys(notes)), spread


class Report:
    def __init__(self, rows, baseline, servers):
        self.groups = group(rows)
        self.baseline = baseline
        self.servers = servers
        self.workloads = list(dict.fromkeys(r["workload"] for r in rows))
        self.notes = []

    def cells(self):
        """(workload, server, row, footnote mark, spread) in display order."""
        order = {s: i for i, s in enumerate(self.servers)}
        for w in self.workloads:
            for s in sorted(
                (s for (s, ww) in self.groups if ww == w), key=lambda s: order.get(s, 99)
            ):
                row, notes, spread = pick(self.groups[(s, w)])
                mark = ""
                if notes:
                    self.notes.append(f"{s} / {w}: " + "; ".join(notes))
                    mark = f" [{len(self.notes)}]"
                yield w, s, row, mark, spread

    def results(self):
        out = [
            (
                "| workload | server | requests/s | requests per server CPU-s | p99 latency (ms) "
                "| worker RSS (MiB) | errors |"
            ),
            "|---|---|--:|--:|--:|--:|---|",
        ]
        for w, s, r, mark, spread in self.cells():
            if r["status"] != "ok":
                out.append(f"| {w} | {label(s, r)}{mark} | {r['status']} | | | | |")
                continue
            out.append(
                f"| {w} | {label(s, r)}{mark} | {float(r['rps']):,.0f} | {per_cpu_s(r):,.0f}{spread} "
                f"| {float(r['p99_ms']):.2f} | {mib(r['worker_rss_kib'])} | {r['errors']} |"
            )
        out.append("")
        out += [f"[{i}] {n}  " for i, n in enumerate(self.notes, 1)]
        return out + ([""] if self.notes else [])

    def ratios(self):
        b = self.baseline
        peers = [s for s in self.servers if s != b]
        by = {k: per_cpu_s(pick(v)[0]) for k, v in self.groups.items()}
        if not peers or not any(by.get((b, w)) for w in self.workloads):
            return [f"(No ratio table: {b} has no successful run here.)", ""]
        out = [
            f"Requests per server CPU-second, {b} ÷ peer (above 1: {b} spends less CPU per request):",
            "",
            "| workload | " + " | ".join(f"{b} ÷ {p}" for p in peers) + " |",
            "|---|" + "--:|" * len(peers),
        ]
        paired = False
        for w in self.workloads:
            base = by.get((b, w))
            cells = []
            for p in peers:
                if not (base and by.get((p, w))):
                    cells.append("n/a")
                    continue
                cell = f"{base / by[(p, w)]:.2f}×"
                rounds = self.round_ratios(b, p, w)
                if len(rounds) > 1:
                    paired = True
                    cell += f" ({median(rounds):.2f}×, {min(rounds):.2f}–{max(rounds):.2f})"
                cells.append(cell)
            out.append(f"| {w} | " + " | ".join(cells) + " |")
        out.append("")
        if paired:
            out.append(
                "Each cell is the ratio of the two medians; in brackets, the median and range "
                "of the rounds' own ratios (each round's run of one server ÷ the peer's run "
                "of the same round, made seconds apart)."
            )
            out.append("")
        shown = [pick(v)[0] for v in self.groups.values()]
        gthread = sorted({r["workload"] for r in shown if r.get("worker") == "gthread"})
        if gthread:
            out.append(
                f"On {', '.join(gthread)} the servers that ran did so with "
                "`-k gthread --threads 4`: those rows compare gthread workers."
            )
        idle = sorted({r["workload"] for r in shown if held(r)})
        if idle:
            out.append(f"On {', '.join(idle)}: while the idle connections were held.")
        return out + ([""] if gthread or idle else [])

    def round_ratios(self, b, p, w):
        """Each round's ratio of b's requests per CPU-second to p's on workload w:
        the k-th run of each (compare.sh writes runs in round order), where both
        succeeded."""
        pairs = zip(self.groups.get((b, w), []), self.groups.get((p, w), []))
        return [
            per_cpu_s(x) / per_cpu_s(y)
            for x, y in pairs
            if per_cpu_s(x) and per_cpu_s(y)
        ]

    def idle(self):
        """idle-1000: wrk alone, then with the connections held."""
        saved, self.notes = self.notes, []
        rows = [(w, s, r) for w, s, r, _, _ in self.cells() if r["status"] == "ok" and held(r)]
        self.notes = saved
        if not rows:
            return []
        out = [
            (
                f"Idle connections: wrk -c10 alone (idle), then while {rows[0][2]['held']} idle "
                "keep-alive connections were held open (held); the worker's VmRSS just before "
                "they were opened and once all were held:"
            ),
            "",
            (
                "| workload | server | requests/s idle / held | p50 idle / held (ms) "
                "| p99 idle / held (ms) | p99 held ÷ idle | worker RSS before / holding (MiB) "
                "| RSS increase (MiB) | per held connection (KiB) |"
            ),
            "|---|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        for w, s, r in rows:
            p99_idle, p99_held = float(r["idle_p99_ms"]), float(r["p99_ms"])
            grew = int(r["rss_held_kib"]) - int(r["rss_before_kib"])
            out.append(
                f"| {w} | {label(s, r)} | {float(r['idle_rps']):,.0f} / {float(r['rps']):,.0f} "
                f"| {float(r['idle_p50_ms']):.2f} / {float(r['p50_ms']):.2f} "
                f"| {p99_idle:.2f} / {p99_held:.2f} "
                f"| {p99_held / p99_idle:.2f}× "
                f"| {mib(r['rss_before_kib'])} / {mib(r['rss_held_kib'])} "
                f"| {grew / 1024:.1f} | {grew / int(r['held']):.1f} |"
            )
        return out + [""]

    def multi(self):
        """Multi-worker workloads: medians of requests per CPU-second and p99
        over the runs, each run's connections per worker, p99 ratios."""
        order = {s: i for i, s in enumerate(self.servers)}
        shown = {}
        for (s, w), runs in self.groups.items():
            if any(many(r) for r in runs):
                shown.setdefault(w, []).append(s)
        if not shown:
            return []
        out = [
            (
                "Many workers: requests per server CPU-second and p99 latency, median of the runs "
                "(min–max); the ESTABLISHED connections each worker held half-way through each "
                "run, ascending, with the busiest worker's count ÷ the mean (+N queued: "
                "connections no worker had accepted yet), the run's p99 and its requests per "
                "server CPU-second:"
            ),
            "",
            (
                "| workload | server | requests per server CPU-s | p99 latency (ms) "
                "| each run: connections per worker (busiest ÷ mean) · p99 · requests per CPU-s "
                "| worst busiest ÷ mean |"
            ),
            "|---|---|--:|--:|---|--:|",
        ]
        p99s = {}
        for w, servers in shown.items():
            for s in sorted(servers, key=lambda s: order.get(s, 99)):
                runs = self.groups[(s, w)]
                ok = [r for r in runs if r["status"] == "ok" and per_cpu_s(r)]
                cells = "; ".join(spread(r) for r in runs)
                if not ok:
                    out.append(f"| {w} | {label(s, runs[0])} | {runs[0]['status']} | | {cells} | |")
                    continue
                rates = [per_cpu_s(r) for r in ok]
                lat = [float(r["p99_ms"]) for r in ok]
                p99s[(s, w)] = median(lat)
                ratios = [float(r["conns_max_over_mean"]) for r in ok if many(r)
                          and r["conns_max_over_mean"] != "-"]
                worst = f"{max(ratios):.2f}×" if ratios else "n/a"
                rate_range, lat_range = "", ""
                if len(ok) > 1:
                    rate_range = f" ({min(rates):,.0f}–{max(rates):,.0f})"
                    lat_range = f" ({min(lat):.2f}–{max(lat):.2f})"
                out.append(
                    f"| {w} | {label(s, ok[0])} | {median(rates):,.0f}{rate_range} "
                    f"| {median(lat):.2f}{lat_range} | {cells} | {worst} |"
                )
        out.append("")
        b = self.baseline
        for w in shown:
            peers = [s for s in self.servers if s != b and (s, w) in p99s]
            if (b, w) in p99s and peers:
                ratios = ", ".join(f"{p} {p99s[(b, w)] / p99s[(p, w)]:.2f}×" for p in peers)
                out.append(f"{w}: median p99, {b} ÷ peer (below 1: {b} answers faster): {ratios}.  ")
        return out + [""]

    def conditions(self):
        out = [
            "Run conditions (shares of the wall time wrk ran; server = whole process tree):",
            "",
            (
                "| workload | server | server CPU | wrk CPU | other load on server CPU "
                "| other load on wrk CPU | steal | connections in service "
                "| all server processes RSS (MiB) |"
            ),
            "|---|---|--:|--:|--:|--:|--:|--:|--:|",
        ]
        saved, self.notes = self.notes, []
        for w, s, r, _, _ in self.cells():
            if r["status"] != "ok":
                continue
            # unpinned (multi-worker) runs: the other load on both CPUs together
            other = (
                (f"{r['srv_other_pct']}% (both CPUs)", "(same)")
                if many(r)
                else (f"{r['srv_other_pct']}%", f"{r['cli_other_pct']}%")
            )
            out.append(
                f"| {w} | {label(s, r)} | {r['server_cpu_pct']}% | {r['client_cpu_pct']}% "
                f"| {other[0]} | {other[1]} | {r['steal_pct']}% "
                f"| {r['in_service']} "
                f"| {mib(r['tree_rss_kib'])} ({r['nprocs']} proc) |"
            )
        self.notes = saved
        return out + [""]


def main(argv):
    if len(argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    rows = load(argv[1], argv[2].split())
    report = Report(rows, argv[3], argv[4:])
    print("\n".join(report.results() + report.ratios() + report.idle() + report.multi() + report.conditions()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
