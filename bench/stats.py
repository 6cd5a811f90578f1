#!/usr/bin/env python3
"""Numbers for bench/run.sh: parses load-tool output and reads the service's database.

Every figure comes from a tool's own report or from timestamps the service wrote; nothing is
estimated. Subcommands print one JSON object on stdout:
  wrk FILE                      requests/s, latency percentiles, errors (wrk --latency output)
  load FILE                     the same from orders-bench-load's JSON report
  drain DB PREFIX TIMEOUT_S     waits until every order of customers PREFIX* is terminal
                                (COMPLETED, FAILED or CANCELLED), then end-to-end rate and
                                latency of the COMPLETED ones, the count of each terminal status,
                                and relay lag (outbox row created -> execution started)
  size DB                       orders, bytes of the database files (after a checkpoint)
  table RESULTS                 the final table from the JSON lines run.sh collected
"""
import json
import os
import re
import sqlite3
import sys
import time
from datetime import datetime

UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS[m.group(2)] if m else None


def parse_wrk(path):
    out = {"tool": "wrk"}
    text = open(path).read()
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    out["rps"] = float(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", text)
    out["requests"] = int(m.group(1)) if m else None
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", text, re.M)
        out[f"p{pct}_ms"] = ms(m.group(1)) if m else None
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    out["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: (.*)", text)
    out["socket_errors"] = m.group(1).strip() if m else None
    return out


def parse_load(path):
    """orders-bench-load's JSON report: latency is the corrected one (from each due time)."""
    d = json.load(open(path))
    c = d.get("corrected_ms") or {}
    codes = d.get("codes", {})
    return {
        "tool": "load",
        "rps": d.get("achieved_rps"),
        "requests": d.get("answered"),
        "due": d.get("due"),
        "sent": d.get("sent"),
        "p50_ms": c.get("p50"),
        "p99_ms": c.get("p99"),
        "p999_ms": c.get("p999"),
        "uncorrected_p99_ms": (d.get("uncorrected_ms") or {}).get("p99"),
        "codes": codes,
        "non2xx": sum(n for code, n in codes.items() if not code.startswith("2")),
        "errors": {k: v for k, v in d.get("errors", {}).items() if v},
    }


def ts(text):
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def pct(values, q):
    if not values:
        return None
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# An order's saga ends in one of these; a build from before the lifecycle never writes CANCELLED.
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


def drain(db, prefix, timeout):
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    like = prefix + "%"
    deadline = time.time() + timeout
    while True:
        total, done = conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(status IN (?, ?, ?)), 0) FROM orders WHERE customer_id LIKE ?",
            (*TERMINAL, like),
        ).fetchone()
        if total and done == total:
            break
        if time.time() > deadline:
            return {"error": f"timeout: {done}/{total} orders terminal after {timeout} s"}
        time.sleep(0.2)
    rows = conn.execute(
        "SELECT status, created_at, updated_at FROM orders WHERE customer_id LIKE ?", (like,)
    ).fetchall()
    done = [(ts(c), ts(u)) for s, c, u in rows if s == "COMPLETED"]
    first = min(ts(c) for _, c, _ in rows)
    last = max(u for _, u in done) if done else None
    lat = [(u - c) * 1000 for c, u in done]
    lag = [
        (ts(started) - ts(created)) * 1000
        for created, started in conn.execute(
            "SELECT o.created_at, e.started_at FROM outbox o JOIN orders r ON r.order_id = o.order_id "
            "JOIN executions e ON e.name = o.event_id WHERE r.customer_id LIKE ?",
            (like,),
        )
    ]
    # Evidence that the orders went through the lifecycle's actors (None: a build without them).
    tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    through = {}
    for table_name in ("payment_webhooks", "shipments"):
        through[table_name] = (
            conn.execute(
                f"SELECT COUNT(*) FROM {table_name} t JOIN orders r ON r.order_id = t.order_id WHERE r.customer_id LIKE ?",
                (like,),
            ).fetchone()[0]
            if table_name in tables
            else None
        )
    return {
        "orders": total,
        "payment_webhooks": through["payment_webhooks"],
        "shipments": through["shipments"],
        "completed": len(done),
        "failed": sum(1 for s, _, _ in rows if s == "FAILED"),
        "cancelled": sum(1 for s, _, _ in rows if s == "CANCELLED"),
        "span_s": (last - first) if last else None,
        "e2e_rps": len(done) / (last - first) if last and last > first else None,
        "e2e_p50_ms": pct(lat, 0.50),
        "e2e_p99_ms": pct(lat, 0.99),
        "lag_p50_ms": pct(lag, 0.50),
        "lag_p99_ms": pct(lag, 0.99),
        "lag_samples": len(lag),
    }


def deliveries(db, prefix, timeout, settle_urls=""):
    """Per subscription (by URL): deliveries of the events of the orders of `prefix`, once every
    subscription in settle_urls (comma-separated) has none PENDING, or after timeout s."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    like = prefix + "%"
    settle = [u for u in settle_urls.split(",") if u]
    where = "FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id JOIN orders o ON o.order_id = d.order_id WHERE o.customer_id LIKE ?"
    deadline = time.time() + timeout
    waited_out = False
    while settle:
        marks = ",".join("?" * len(settle))
        (pending,) = conn.execute(f"SELECT COUNT(*) {where} AND d.state = 'PENDING' AND s.url IN ({marks})", (like, *settle)).fetchone()
        if pending == 0:
            break
        if time.time() > deadline:
            waited_out = True
            break
        time.sleep(0.2)
    out = {"waited_out": waited_out, "subscribers": {}}
    for (url,) in conn.execute("SELECT url FROM subscriptions ORDER BY created_at"):
        counts = dict(conn.execute(f"SELECT d.state, COUNT(*) {where} AND s.url = ? GROUP BY d.state", (like, url)).fetchall())
        lag = [
            (ts(done) - ts(created)) * 1000
            for created, done in conn.execute(
                "SELECT x.created_at, d.finished_at FROM deliveries d JOIN subscriptions s ON s.id = d.subscription_id "
                "JOIN orders o ON o.order_id = d.order_id JOIN outbox x ON x.seq = d.event_seq "
                "WHERE o.customer_id LIKE ? AND s.url = ? AND d.state = 'DELIVERED'",
                (like, url),
            )
        ]
        out["subscribers"][url] = {
            "delivered": counts.get("DELIVERED", 0),
            "failed": counts.get("FAILED", 0),
            "pending": counts.get("PENDING", 0),
            "lag_p50_ms": pct(lag, 0.50),
            "lag_p99_ms": pct(lag, 0.99),
        }
    return out


def size(db):
    # A checkpoint first (changes no content) so the figure is the data, not a WAL that the
    # next checkpoint would fold in and reuse anyway.
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    (orders,) = conn.execute("SELECT COUNT(*) FROM orders").fetchone()
    files = {s: os.path.getsize(db + s) for s in ("", "-wal") if os.path.exists(db + s)}
    return {"orders": orders, "bytes": sum(files.values()), "files": files}


def fmt(v, unit="", digits=0):
    if v is None:
        return "n/a"
    return f"{v:,.{digits}f}{unit}"


def table(path):
    r = {}
    for line in open(path):
        d = json.loads(line)
        r[d["item"]] = d
    rows = []

    def row(name, figure, setup):
        rows.append((name, figure, setup))

    def lat(d):
        s = f"p50 {fmt(d.get('p50_ms'), ' ms', 1)}, p99 {fmt(d.get('p99_ms'), ' ms', 1)}"
        if "p999_ms" in d:
            s += f", p999 {fmt(d.get('p999_ms'), ' ms', 1)}"
        return s

    for item, name in [
        ("floor", "1. floor: bare axum JSON POST"),
        ("bound", "1b. ceiling: the service, no storage"),
        ("post_max", "2. POST /orders new, max"),
        ("post_auth", "2b. POST /orders new, max, identity on"),
        ("post_max_sub", "2s. POST /orders new, max, one subscriber"),
        ("post_rate", "2. POST /orders new, fixed rate"),
        ("replay", "3. POST /orders replay"),
        ("get", "4. GET /orders/{id}"),
        ("get_before", "4. GET /orders/{id} (before)"),
        ("list", "4b. GET /orders?customerId= (list)"),
        ("list_before", "4b. list (before)"),
    ]:
        if item in r:
            d = r[item]
            bad = d.get("non2xx") or 0
            extra = f", {bad} non-2xx" if bad else ""
            if d.get("tool") == "load":
                codes = d.get("codes", {})
                extra = f", codes {codes}" + (f", errors {d['errors']}" if d.get("errors") else "")
                if d.get("sent") is not None and d.get("due") and d["sent"] < d["due"]:
                    # Issuing stops at the end of the window: the rest never left the client.
                    extra += f", {d['sent']:,} of {d['due']:,} due sent"
            row(name, f"{fmt(d.get('rps'), '/s')} ({lat(d)}){extra}", d.get("setup", ""))
    if "post_auth" in r and "post_max" in r and r["post_auth"].get("rps") and r["post_max"].get("rps"):
        row("2b. ratio identity on/off (2b)/(2)", f"{r['post_auth']['rps'] / r['post_max']['rps']:.3f}",
            "max throughput of 2b over 2, same wrk setup and binary: 1 - ratio is what token verification costs")
    # The rows of BENCH_BEFORE_BIN (items "<name>_before") go right under the current ones.
    before = f" (before: {r['before']['bin']})" if "before" in r else None

    def e2e(item, name):
        if item not in r:
            return
        d = r[item]
        if "error" in d:
            row(name, f"n/a: {d['error']}", d.get("setup", ""))
            return
        ends = f"{d.get('completed')}/{d.get('orders')} completed, {d.get('failed', 0)} failed, {d.get('cancelled', 0)} cancelled"
        if d.get("payment_webhooks") is not None:
            ends += f"; {d['payment_webhooks']} payment webhooks, {d.get('shipments')} shipments"
        setup = d.get("setup", "")
        if item == "e2e_burst_before" and r.get("post_max_before", {}).get("rps"):
            p = r["post_max_before"]
            setup += f"; the POST max run: {fmt(p['rps'], '/s')} (p50 {fmt(p.get('p50_ms'), ' ms', 1)}, p99 {fmt(p.get('p99_ms'), ' ms', 1)})"
        row(name, f"{fmt(d.get('e2e_rps'), ' orders/s COMPLETED')}, 201->COMPLETED p50 {fmt(d.get('e2e_p50_ms'), ' ms')}, p99 {fmt(d.get('e2e_p99_ms'), ' ms')} ({ends})", setup)

    def relay(item, name):
        if item not in r:
            return
        d = r[item]
        setup = "outbox.created_at -> executions.started_at, same orders as 5 at fixed rate"
        if "error" in d:
            row(name, "n/a: the orders of 5 at fixed rate did not all end", setup)
            return
        row(name, f"p50 {fmt(d.get('lag_p50_ms'), ' ms')}, p99 {fmt(d.get('lag_p99_ms'), ' ms')} ({d.get('lag_samples')} events)", setup)

    for item, name in [("e2e_burst", "5. end to end, burst"), ("e2e_rate", "5. end to end at fixed rate")]:
        e2e(item, name)
        if before:
            e2e(item + "_before", name + before)
    if r.get("post_max_sub", {}).get("rps") and r.get("post_max", {}).get("rps"):
        row("2s. ratio one subscriber/none (2s)/(2)", f"{r['post_max_sub']['rps'] / r['post_max']['rps']:.3f}",
            "max throughput of 2s over 2, same wrk setup and binary, each on a fresh database")
    e2e("e2e_burst_sub", "5s. end to end, burst, one subscriber")
    e2e("e2e_rate_sub", "8. end to end at fixed rate, three subscribers")
    names = {v: k for k, v in r.get("sub_urls", {}).items() if k != "item"}
    for item, label in (("deliveries_sub", "5s. deliveries"), ("deliveries_mixed", "8. deliveries")):
        d = r.get(item)
        if not d:
            continue
        for url, f in d.get("subscribers", {}).items():
            if item == "deliveries_sub" and names.get(url) != "healthy":
                continue
            row(f"{label}, {names.get(url, url)} subscriber",
                f"{f['delivered']:,} delivered, {f['failed']:,} dead-lettered, {f['pending']:,} pending; "
                f"lag p50 {fmt(f.get('lag_p50_ms'), ' ms')}, p99 {fmt(f.get('lag_p99_ms'), ' ms')}",
                d.get("setup", "") + ("; waited out" if d.get("waited_out") else ""))
    relay("e2e_rate", "6. relay lag")
    if before:
        relay("e2e_rate_before", "6. relay lag" + before)
    if "floor" in r and "post_max" in r and r["floor"].get("rps") and r["post_max"].get("rps"):
        row("7. ratio (2)/(1)", f"{r['post_max']['rps'] / r['floor']['rps']:.3f}", "max throughput of 2 over 1, same wrk setup")
    if "floor" in r and "bound" in r and r["floor"].get("rps") and r["bound"].get("rps"):
        row("7. ceiling of the ratio (1b)/(1)", f"{r['bound']['rps'] / r['floor']['rps']:.3f}", "what (2)/(1) would be if storage and the saga cost nothing")
    if "end" in r:
        d = r["end"]
        per = d["bytes"] / d["orders"] * 1000 if d.get("orders") else None
        row("7. RSS after the writes", f"{fmt(d.get('rss_kib', 0) / 1024, ' MiB', 1)}", "VmRSS of the service process after items 2, 3, 5 and 6 (before the database is grown for 4)")
        row("7. DB size per 1,000 orders", f"{fmt(per / 1e6 if per else None, ' MB', 2)} ({d['orders']:,} orders, {d['bytes'] / 1e6:,.1f} MB)", "orders.db after a checkpoint (+ WAL if any), all orders terminal")
    markdown(("item", "figure", "setup"), rows)


def markdown(head, rows):
    """Prints a Markdown table, each column as wide as its widest cell."""
    w = [max(len(x[i]) for x in [head, *rows]) for i in range(len(head))]
    line = lambda a: "| " + " | ".join(a[i].ljust(w[i]) for i in range(len(head))) + " |"
    print(line(head))
    print("|" + "|".join("-" * (x + 2) for x in w) + "|")
    for x in rows:
        print(line(x))


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "table":
        table(args[0])
    else:
        fn = {"wrk": parse_wrk, "load": parse_load, "drain": drain, "size": size, "deliveries": deliveries}[cmd]
        if cmd in ("drain", "deliveries"):
            args = [args[0], args[1], float(args[2]), *args[3:]]
        print(json.dumps(fn(*args)))
