#!/usr/bin/env bash
# Retention drill: the service under a steady fixed-rate POST /orders load with a retention
# period of minutes (the hidden --retention-secs), showing that the database stops growing
# except for the business records once retention applies, and what a purge pass costs the
# POSTs that run beside it.
#
# Prints, every --every seconds: orders so far, the file (database + WAL) and the bytes in use
# (pages in use, i.e. page_count - freelist_count, times page_size), executions and outbox rows,
# and the growth in use per order since the previous sample. The load runs as consecutive
# wrk windows (bench/paced.lua: paced, NOT latency corrected), each printed with its p50, p99
# and max and the purge passes the service logged during it. At the end, after one more
# period and a maintenance tick, when everything purgeable is gone: the bytes in use per
# order, and per table (sqlite3's dbstat, when the CLI has it).
#
# Usage: bench/retention.sh [--rate R] [--minutes M] [--retention-secs S] [--every N] [--window W]
#   defaults: 100 orders/s, 6 minutes, 60 s kept, a sample every 10 s, 30 s wrk windows.
# Environment: BENCH_OUT=DIR keeps the outputs (default: a temporary directory, removed after a
# successful run); BENCH_SERVICE_BIN=PATH (default target/release/orders); BENCH_NO_BUILD=1
# uses it as built. Needs wrk, sqlite3, curl, python3. Only 127.0.0.1 is used; it stops what it
# started on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

rate=100 minutes=6 keep=60 every=10 window=30 conns=8
while (($#)); do
  case $1 in
    --rate) rate=$2; shift 2 ;;
    --minutes) minutes=$2; shift 2 ;;
    --retention-secs) keep=$2; shift 2 ;;
    --every) every=$2; shift 2 ;;
    --window) window=$2; shift 2 ;;
    *) echo "retention: unknown argument $1" >&2; exit 2 ;;
  esac
done
for tool in wrk sqlite3 curl python3; do
  command -v "$tool" > /dev/null || { echo "retention: $tool is missing" >&2; exit 1; }
done

out=${BENCH_OUT:-$(mktemp -d)}
mkdir -p "$out"
svc_bin=${BENCH_SERVICE_BIN:-target/release/orders}
pids=()
cleanup() {
  local rc=$?
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
  if [[ -z "${BENCH_OUT:-}" ]]; then
    if ((rc == 0)); then rm -rf "$out"; else echo "retention: outputs kept in $out" >&2; fi
  fi
}
trap cleanup EXIT
say() { echo "retention: $*" >&2; }

if [[ "${BENCH_NO_BUILD:-0}" != 1 ]]; then
  say "building release"
  cargo build --release --quiet --bin orders
fi
"$svc_bin" --help 2>&1 | grep -q -- --retention-days || { say "$svc_bin has no retention"; exit 1; }

port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
db="$out/orders.db"
rm -f "$db" "$db-wal" "$db-shm" "$db.webhook-secret"
"$svc_bin" --listen "127.0.0.1:$port" --database "$db" \
  --payment-sim-delay-ms 0 --warehouse-packing-ms 0 --retention-secs "$keep" > "$out/service.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do curl -s -o /dev/null "$base/health" && break; sleep 0.05; done
curl -sf -o /dev/null -X PUT -H 'content-type: application/json' -d '{"available": 1000000000}' \
  "$base/inventory/laptop" || { say "could not stock the laptop"; exit 1; }

q() { sqlite3 -readonly -cmd '.timeout 5000' "$db" "$1"; }
in_use() { q "SELECT (SELECT page_count FROM pragma_page_count()) - (SELECT freelist_count FROM pragma_freelist_count()), (SELECT page_size FROM pragma_page_size());" | awk -F'|' '{print $1 * $2}'; }
file_bytes() { stat -c %s "$db" "$db-wal" 2> /dev/null | awk '{s += $1} END {print s + 0}'; }
purges() { grep -c 'retention: purged' "$out/service.log" || true; }

load_start=$(cut -d' ' -f1-3 /proc/loadavg)
say "rate $rate/s for $minutes min, retention $keep s, sample every $every s, load average at start $load_start"
echo "# t_s orders file_bytes in_use_bytes executions outbox in_use_bytes_per_new_order" | tee "$out/samples.tsv"
sample() {
  local t0=$1 last_orders=0 last_use=0
  while :; do
    local orders use file ex ob per
    orders=$(q "SELECT count(*) FROM orders")
    use=$(in_use)
    file=$(file_bytes)
    ex=$(q "SELECT count(*) FROM executions")
    ob=$(q "SELECT count(*) FROM outbox")
    per="-"
    if ((orders > last_orders)); then per=$(((use - last_use) / (orders - last_orders))); fi
    echo "$(($(date +%s) - t0)) $orders $file $use $ex $ob $per" | tee -a "$out/samples.tsv"
    last_orders=$orders last_use=$use
    sleep "$every"
  done
}
sample "$(date +%s)" &
pids+=($!)

echo "# window requests p50 p99 max purge_passes_during" | tee "$out/windows.tsv"
end=$(($(date +%s) + minutes * 60))
n=0
while (($(date +%s) < end)); do
  n=$((n + 1))
  before=$(purges)
  wrk -t1 -c"$conns" -d"${window}s" --latency -s bench/paced.lua "$base" -- "retention" "$rate" "$conns" > "$out/window-$n.wrk" 2>&1
  after=$(purges)
  python3 - "$out/window-$n.wrk" "$n" "$((after - before))" << 'EOF' | tee -a "$out/windows.tsv"
import re, sys
text = open(sys.argv[1]).read()
def field(pattern):
    m = re.search(pattern, text)
    return m.group(1) if m else "?"
reqs = field(r"(\d+) requests in")
p50 = field(r"\n\s+50%\s+(\S+)")
p99 = field(r"\n\s+99%\s+(\S+)")
mx = field(r"Latency\s+\S+\s+\S+\s+(\S+)")
print(sys.argv[2], reqs, p50, p99, mx, sys.argv[3])
EOF
done
say "load over; waiting ${keep} s and a maintenance tick for the last purge"
sleep $((keep + 35))
kill "${pids[1]}" 2> /dev/null || true

orders=$(q "SELECT count(*) FROM orders")
use=$(in_use)
echo "# after the last purge: orders $orders, bytes in use $use, per order $((use / orders)), file $(file_bytes)"
echo "# rows left: $(q "SELECT 'executions ' || (SELECT count(*) FROM executions) || ', history ' || (SELECT count(*) FROM execution_history) || ', outbox ' || (SELECT count(*) FROM outbox) || ', saga_steps ' || (SELECT count(*) FROM saga_steps) || ', queue ' || (SELECT count(*) FROM queue_messages) || ', idempotency ' || (SELECT count(*) FROM idempotency)")"
if q "SELECT 1 FROM dbstat LIMIT 1" > /dev/null 2>&1; then
  echo "# bytes per order by table and index (dbstat: pages of each, times the page size)"
  q "SELECT name, sum(pgsize), sum(pgsize) / $orders FROM dbstat GROUP BY name HAVING sum(pgsize) > 0 ORDER BY 2 DESC" | tr '|' ' '
fi
echo "# purge passes: $(purges); load average at end $(cut -d' ' -f1-3 /proc/loadavg)"
grep 'retention: purged' "$out/service.log" | tail -3
