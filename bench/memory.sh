#!/usr/bin/env bash
# Memory: the service's resident set (RSS) on databases of growing size, with its page-cache
# settings (--writer-cache-mib, --reader-cache-mib, --readers; defaults unless BENCH_SERVICE_FLAGS
# says otherwise), and the throughput of each load beside it, so a setting that saves memory by
# losing speed shows.
#
# Usage: bench/memory.sh [ORDERS...]    (default: 100000 1000000)
#   1. a fresh database; the service (release build, payment simulator and warehouse at 0 ms)
#      takes POST /orders at max throughput for 20 s (wrk, bench/post_orders.lua), every saga
#      is waited for; RSS.
#   2. for each ORDERS: the service stopped, bench/seed.py copies those real orders (with their
#      payment, shipment and step rows) under new ids up to ORDERS, the service started on the
#      file, then POST 10 s, GET /orders/{id} 10 s (1,000 random ids), the customer listing
#      10 s; RSS after each load, and the database's size.
#   bench/memory.sh --settled DB: the service on an existing database (e.g. the one a run above
#      kept in BENCH_OUT) once no saga of it runs any more (those waiting for a payment the
#      simulator forgot in a restart aside), restarted: RSS idle, after GET /orders/{id} 10 s,
#      after the customer listing 10 s, and 20 s later.
# Environment: BENCH_OUT=DIR keeps the raw outputs (default: a temporary directory, removed after
# a successful run); BENCH_SERVICE_BIN (default target/release/orders); BENCH_SERVICE_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
settled=""
if [ "${1:-}" = --settled ]; then settled=${2:?--settled needs a database}; shift 2; fi
sizes=("$@")
[ ${#sizes[@]} -gt 0 ] || sizes=(100000 1000000)
bin=${BENCH_SERVICE_BIN:-target/release/orders}
[ -x "$bin" ] || { echo "memory: $bin is missing (cargo build --release)" >&2; exit 1; }
read -r -a flags <<< "${BENCH_SERVICE_FLAGS:-}"
out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
db=${settled:-$out/orders.db}
svc=""
cleanup() {
    local rc=$?
    [ -n "$svc" ] && kill "$svc" 2> /dev/null && wait "$svc" 2> /dev/null
    if [ -z "${BENCH_OUT:-}" ]; then
        if [ "$rc" -eq 0 ]; then rm -rf "$out"; else echo "memory: outputs kept in $out" >&2; fi
    fi
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() {
    port=$(free_port)
    base="http://127.0.0.1:$port"
    "$bin" --listen "127.0.0.1:$port" --database "$db" --payment-sim-delay-ms 0 --warehouse-packing-ms 0 \
        "${flags[@]}" >> "$out/service.log" 2>&1 &
    svc=$!
    for _ in $(seq 600); do curl -s -o /dev/null "$base/health" && return 0; sleep 0.1; done
    echo "memory: the service did not answer" >&2; exit 1
}
stop() { kill "$svc"; wait "$svc" 2> /dev/null || true; svc=""; }
rss() { awk '/VmRSS/ {print $2 / 1024}' "/proc/$svc/status"; }
load() { # name seconds script [args...]
    local name=$1 secs=$2 script=$3; shift 3
    wrk -t2 -c64 -d"${secs}s" --latency -s "$script" "$base" -- "$@" > "$out/$name.wrk" 2>&1
    python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print("%.0f/s p99 %s ms" % (d["rps"], d["p99_ms"]))' \
        "$(python3 bench/stats.py wrk "$out/$name.wrk")"
}
row() { printf '%-10s %-34s %-24s %8.1f MiB\n' "$1" "$2" "$3" "$4"; }

echo "memory: $(date -u +%FT%TZ), $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg), flags: ${flags[*]:-(defaults)}"
if [ -n "$settled" ]; then
    running() {
        python3 -c 'import sqlite3, sys; c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True); print(c.execute("SELECT COUNT(*) FROM executions e JOIN orders o ON json_extract(e.snapshot, \"$.input.orderId\") = o.order_id WHERE e.status = \"RUNNING\" AND o.status <> \"AWAITING_PAYMENT\"").fetchone()[0])' "$db"
    }
    start
    for _ in $(seq 900); do [ "$(running)" = 0 ] && break; sleep 1; done
    stop
    start
    sleep 2
    n=$(python3 bench/stats.py size "$db" | python3 -c 'import json, sys; print(json.load(sys.stdin)["orders"])')
    row "$n" "restarted, no saga running" "" "$(rss)"
    python3 -c 'import sqlite3, sys; c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True); print("\n".join(r[0] for r in c.execute("SELECT order_id FROM orders ORDER BY random() LIMIT 1000")))' "$db" > "$out/ids.txt"
    row "$n" "GET /orders/{id} 10 s" "$(load get-settled 10 bench/get_orders.lua "$out/ids.txt")" "$(rss)"
    row "$n" "GET /orders?customerId= 10 s" "$(load list-settled 10 bench/list_orders.lua seed 10000)" "$(rss)"
    sleep 20
    row "$n" "20 s idle" "" "$(rss)"
    exit 0
fi
printf '%-10s %-34s %-24s %12s\n' orders load throughput RSS
rm -f "$db" "$db-wal" "$db-shm" "$db.webhook-secret"
start
row 0 "idle, after start" "" "$(rss)"
tp=$(load real 20 bench/post_orders.lua real)
python3 bench/stats.py drain "$db" real- 900 > "$out/drain.json"
n=$(python3 bench/stats.py size "$db" | python3 -c 'import json, sys; print(json.load(sys.stdin)["orders"])')
row "$n" "POST 20 s, every saga ended" "$tp" "$(rss)"
stop
for target in "${sizes[@]}"; do
    python3 bench/seed.py "$db" "$target" > "$out/seed-$target.json"
    start
    row "$target" "started on the grown file" "" "$(rss)"
    tp=$(load "post-$target" 10 bench/post_orders.lua "post$target")
    row "$target" "POST 10 s" "$tp" "$(rss)"
    python3 -c 'import sqlite3, sys; c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True); print("\n".join(r[0] for r in c.execute("SELECT order_id FROM orders ORDER BY random() LIMIT 1000")))' "$db" > "$out/ids.txt"
    tp=$(load "get-$target" 10 bench/get_orders.lua "$out/ids.txt")
    row "$target" "GET /orders/{id} 10 s" "$tp" "$(rss)"
    tp=$(load "list-$target" 10 bench/list_orders.lua seed 10000)
    row "$target" "GET /orders?customerId= 10 s" "$tp" "$(rss)"
    stop
    size=$(python3 bench/stats.py size "$db" | python3 -c 'import json, sys; d = json.load(sys.stdin); print("%d orders, %.1f MB" % (d["orders"], d["bytes"] / 1e6))')
    echo "memory: database after the $target step: $size"
done
