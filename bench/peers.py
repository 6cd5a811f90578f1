#!/usr/bin/env python3
"""Numbers for bench/peers.sh: Orders and its Restate peer measured the same way.

Each system is a source of "finals": {order id: [final status, epoch microseconds]} for every
order that reached COMPLETED or FAILED (Orders: CANCELLED too). Orders' come from its database
(status and updated_at of the terminal orders), Restate's from `bench/peers/restate/peer.sh
finals DIR`. Every figure below is computed from finals, the load tools' own reports and
/proc, with the same code for both systems. Subcommands print one JSON object on stdout:
  finals SYSTEM WHERE                     the finals (WHERE: Orders' database, or the peer's DIR)
  burst SYSTEM WHERE START_US EXPECTED TIMEOUT_S SCOPE
                                          waits for the orders of a burst to be final, then their
                                          count, orders/s over (last final - START_US) and
                                          percentiles of (final - START_US). The burst's orders:
                                          Orders: those of customers SCOPE* (every one final);
                                          Restate: the finals not in the JSON file SCOPE ("-": none),
                                          at least EXPECTED of them and no new one for 2 s
  fixed SYSTEM WHERE LOAD_JSON LOG_CSV TIMEOUT_S
                                          waits for every order of an orders-bench-load log to be
                                          final, then (final - answered) percentiles of the
                                          COMPLETED ones and the POST's own corrected latency
  ticks PID...                            utime + stime clock ticks of the PIDs and their descendants
  rss PID...                              VmRSS KiB of the PIDs and their descendants
  table RESULTS                           the side-by-side table of results-peers.jsonl
"""
import csv
import json
import os
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timezone

from stats import TERMINAL, markdown  # bench/stats.py, beside this file

PEER = os.environ.get("BENCH_PEER_SH") or os.path.join(os.path.dirname(os.path.abspath(__file__)), "peers", "restate", "peer.sh")
# How often the finals are read while waiting: Restate's come from the peer binary's /stats,
# so a poll costs that system a little CPU; once a second keeps it negligible.
POLL_S = 1.0


def epoch_us(text):
    dt = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return int(dt.timestamp() * 1_000_000)


def finals(system, where):
    if system == "orders":
        conn = sqlite3.connect(f"file:{where}?mode=ro", uri=True)
        rows = conn.execute(
            f"SELECT order_id, status, updated_at FROM orders WHERE status IN ({', '.join('?' * len(TERMINAL))})",
            TERMINAL,
        )
        out = {oid: [status, epoch_us(at)] for oid, status, at in rows}
        conn.close()
        return out
    text = subprocess.run(["bash", PEER, "finals", where], check=True, capture_output=True, text=True, timeout=60).stdout
    return json.loads(text)


def pct(values, q):
    """Nearest rank, as orders-bench-load computes its own: rank ceil(q * n)."""
    if not values:
        return None
    values = sorted(values)
    rank = max(1, -(-int(q * 1000) * len(values) // 1000))
    return values[min(len(values), rank) - 1]


def summary(latencies_us, ends):
    ms = [v / 1000 for v in latencies_us]
    return {
        "completed": sum(1 for s in ends if s == "COMPLETED"),
        "not_completed": sum(1 for s in ends if s != "COMPLETED"),
        "p50_ms": pct(ms, 0.50),
        "p99_ms": pct(ms, 0.99),
    }


def burst(system, where, start_us, expected, timeout, scope):
    start_us, expected, deadline = int(start_us), int(expected), time.time() + float(timeout)
    before = set(json.load(open(scope))) if system != "orders" and scope != "-" else set()
    grown_at, seen, waited_out = time.time(), -1, False
    while True:
        f = finals(system, where)
        if system == "orders":
            conn = sqlite3.connect(f"file:{where}?mode=ro", uri=True)
            ids = [r[0] for r in conn.execute("SELECT order_id FROM orders WHERE customer_id LIKE ?", (scope + "%",))]
            conn.close()
            done = all(i in f for i in ids) and len(ids) >= expected
        else:
            ids = [i for i in f if i not in before]
            if len(ids) != seen:
                seen, grown_at = len(ids), time.time()
            done = len(ids) >= expected and time.time() - grown_at >= 2 * POLL_S
        if done:
            break
        if time.time() > deadline:
            waited_out = True
            break
        time.sleep(POLL_S)
    ends = [f[i] for i in ids if i in f]
    last = max((us for _, us in ends), default=None)
    lat = [us - start_us for s, us in ends if s == "COMPLETED"]
    out = {"orders": len(ids), "final": len(ends), "expected": expected, "waited_out": waited_out,
           "last_final_us": last, **summary(lat, [s for s, _ in ends])}
    out["e2e_rps"] = out["completed"] / ((last - start_us) / 1e6) if last and last > start_us else None
    return out


def fixed(system, where, load_json, log_csv, timeout):
    report = json.load(open(load_json))
    answered = {}
    for row in csv.reader(open(log_csv)):
        _seq, uuid, status, _due, _sent, answered_us, location = row[:7]
        if status.startswith("2"):
            oid = location.rstrip("/").rsplit("/", 1)[-1] if system == "orders" else uuid
            answered[oid] = int(answered_us)
    deadline, waited_out = time.time() + float(timeout), False
    while True:
        f = finals(system, where)
        if all(i in f for i in answered):
            break
        if time.time() > deadline:
            waited_out = True
            break
        time.sleep(POLL_S)
    ends = {i: f[i] for i in answered if i in f}
    lat = [us - answered[i] for i, (s, us) in ends.items() if s == "COMPLETED"]
    out = summary(lat, [s for s, _ in ends.values()])
    # The same orders for both systems: COMPLETED / (last final - first answer), the end-to-end
    # throughput once the rate is above what a system carries to the end.
    first, last = min(answered.values(), default=None), max((us for _, us in ends.values()), default=None)
    out["e2e_rps"] = out["completed"] / ((last - first) / 1e6) if first and last and last > first else None
    return {"orders": len(answered), "final": len(ends), "waited_out": waited_out, **out,
            "rate": report.get("rate"), "achieved_rps": report.get("achieved_rps"), "due": report.get("due"),
            "sent": report.get("sent"), "codes": report.get("codes"),
            "post_p99_ms": (report.get("corrected_ms") or {}).get("p99")}


def family(pids):
    """The PIDs and every live descendant (a launcher's children count as the system's too)."""
    parent = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = open(f"/proc/{entry}/stat").read()
            except OSError:
                continue
            parent[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    out, todo = set(), [int(p) for p in pids]
    while todo:
        p = todo.pop()
        if p not in out:
            out.add(p)
            todo += [c for c, pp in parent.items() if pp == p]
    return sorted(out)


def ticks(*pids):
    total = 0
    for p in family(pids):
        fields = open(f"/proc/{p}/stat").read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return {"ticks": total, "hz": os.sysconf("SC_CLK_TCK"), "pids": family(pids)}


def rss(*pids):
    kib = 0
    for p in family(pids):
        for line in open(f"/proc/{p}/status"):
            if line.startswith("VmRSS:"):
                kib += int(line.split()[1])
    return {"rss_kib": kib}


def fmt(v, digits=1):
    return "n/a" if v is None else f"{v:,.{digits}f}"


def table(path):
    r = {}
    for line in open(path):
        d = json.loads(line)
        r[(d["system"], d["item"])] = d
    rates = sorted({d["rate"] for (_, item), d in r.items() if item.startswith("c") and d.get("rate")})
    # (label, item, key, digits, "higher"/"lower"/None)
    spec = [
        ("a. POST/ingress max, requests/s", "a", "rps", 0, "higher"),
        ("a. POST/ingress max, p50 ms", "a", "p50_ms", 1, "lower"),
        ("a. POST/ingress max, p99 ms", "a", "p99_ms", 1, "lower"),
        # The burst's latencies stay in results-peers.jsonl: they grow with the burst, which is
        # as large as each system's intake made it, so they do not compare across systems.
        ("b. burst end to end, orders/s", "b", "e2e_rps", 0, "higher"),
        ("b. burst orders (not completed)", "b", "orders", 0, None),
    ]
    for rate in rates:
        item = f"c{rate:g}"
        spec += [
            (f"c. {rate:g}/s answered -> final p50 ms", item, "p50_ms", 1, "lower"),
            (f"c. {rate:g}/s answered -> final p99 ms", item, "p99_ms", 1, "lower"),
            (f"c. {rate:g}/s POST p99 ms (corrected)", item, "post_p99_ms", 1, "lower"),
            (f"c. {rate:g}/s end to end, orders/s", item, "e2e_rps", 0, "higher"),
            (f"c. {rate:g}/s orders (not completed)", item, "orders", 0, None),
        ]
    spec += [
        ("d. CPU ms per order, (a)+(b)", "d", "cpu_ms_per_order", 3, "lower"),
        ("e. RSS at end, MiB", "e", "rss_mib", 1, "lower"),
        ("e. disk per 1,000 orders, MB", "e", "disk_mb_per_1000", 2, "lower"),
        ("e. total orders", "e", "orders", 0, None),
    ]
    rows = []
    for label, item, key, digits, better in spec:
        o, p = r.get(("orders", item), {}).get(key), r.get(("restate", item), {}).get(key)
        cells = [fmt(o, digits), fmt(p, digits)]
        if key == "orders":
            for i, sysname in enumerate(("orders", "restate")):
                d = r.get((sysname, item), {})
                extra = d.get("not_completed")
                cells[i] += f" ({extra:,})" if extra is not None else ""
                cells[i] += ", waited out" if d.get("waited_out") else ""
        ratio = f"{o / p:.3f}" if o is not None and p else "n/a"
        verdict = ""
        if better and o is not None and p is not None and o != p:
            wins = (o > p) == (better == "higher")
            verdict = f"{better} ({'Orders' if wins else 'Restate'})"
        elif better:
            verdict = better
        rows.append((label, *cells, ratio, verdict))
    markdown(("row", "Orders", "Restate", "Orders/Restate", "better"), rows)


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "table":
        table(args[0])
    else:
        fn = {"finals": finals, "burst": burst, "fixed": fixed, "ticks": ticks, "rss": rss}[cmd]
        print(json.dumps(fn(*args)))
