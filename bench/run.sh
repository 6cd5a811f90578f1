#!/usr/bin/env bash
# The benchmark harness: builds release, starts the floor, the storage ceiling and the service
# (fresh database, free 127.0.0.1 ports, the payment simulator's and warehouse's delays at 0;
# POST /orders also once with identity on, item 2b), drives them with wrk (max throughput) and
# orders-bench-load (bench/load: fixed rate, open loop, latency corrected, a fresh idempotency
# key per request), reads end-to-end and relay figures from the service's own timestamps, and
# prints one table with every figure's setup. Bounded: every load runs for a fixed time, every
# wait has a timeout; it stops what it started on exit. Installs wrk (apt) if missing.
#
# Usage: bench/run.sh [--smoke] | bench/run.sh --peers [--smoke]
#   --smoke   seconds per item, small rates: asserts that every figure was produced (for CI),
#             not that any target is met.
#   --peers   Orders and its Restate peer side by side, one table (bench/peers.sh, sourced
#             from here); with --smoke, tiny figures that only prove the path works.
# Environment: BENCH_OUT=DIR keeps the raw outputs there (default: a temporary directory, removed
# after a successful run: the full run's database grown to 250,000 orders is about 2 GB, and
# BENCH_BEFORE_BIN's as much again);
# BENCH_SERVICE_BIN=PATH measures another build of the service (before/after comparisons);
# BENCH_BEFORE_BIN=PATH runs the end-to-end items (5. burst, then 2.'s fixed rate unreported,
# then 5./6. fixed rate, on a fresh database of its own) and then the reads (4., 4b., on that
# database grown the same way) once more against another build (e.g. a copy of an older one),
# after the current one's, never beside it;
# the table prints them right under the current rows (reported, not asserted);
# BENCH_NO_BUILD=1 measures the binaries already in target/release instead of building (CI: the
# test command's build, so the release dependency graph is compiled once and stored once).
# With --peers: BENCH_PEER_SH=PATH another implementation of bench/peers/restate/peer.sh's
# interface; the outputs are always kept (in a temporary directory unless BENCH_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

smoke=0
peers=0
for arg in "$@"; do
  case $arg in
    --smoke) smoke=1 ;;
    --peers) peers=1 ;;
    *) echo "usage: bench/run.sh [--smoke] | bench/run.sh --peers [--smoke]" >&2; exit 2 ;;
  esac
done
if ((smoke)); then
  dur=2; conns=16; rate=200; e2e_rate=100; e2e_dur=2; drain_timeout=60
else
  dur=10; conns=64; rate=5000; e2e_rate=1000; e2e_dur=10; drain_timeout=240
fi
threads=2

out=${BENCH_OUT:-$(mktemp -d)}
# BENCH_SERVICE_BIN: another build of the service to measure (e.g. a copy of an older one).
svc_bin=${BENCH_SERVICE_BIN:-target/release/orders}
before_bin=${BENCH_BEFORE_BIN:-}
if [[ -n "$before_bin" && ! -x "$before_bin" ]]; then
  echo "bench: BENCH_BEFORE_BIN=$before_bin is not an executable" >&2; exit 1
fi
mkdir -p "$out"
results="$out/results.jsonl"
: > "$results"
pids=()
cleanup() {
  local rc=${1:-$?}
  for p in "${pids[@]}"; do kill "$p" 2> /dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2> /dev/null || true; done
  # A failed run keeps its outputs, and says where.
  if [[ -z "${BENCH_OUT:-}" ]]; then
    if ((rc == 0)); then rm -rf "$out"; else echo "bench: outputs kept in $out" >&2; fi
  fi
}
trap cleanup EXIT

say() { echo "bench: $*" >&2; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_up() {
  for _ in $(seq 200); do curl -s -o /dev/null "$1" && return 0; sleep 0.05; done
  say "no answer from $1"; return 1
}
# The order lifecycle waits for the payment simulator's signed webhook and the warehouse
# worker, 50 ms each by default: at 0 the end-to-end figures are the service's own work, not
# those sleeps. A build from before the lifecycle has neither (nor the flags).
lifecycle() { # bin: sets lc_flags and lc_note
  local help
  help=$("$1" --help 2>&1 || true)
  if [[ "$help" == *--payment-sim-delay-ms* && "$help" == *--warehouse-packing-ms* ]]; then
    lc_flags=(--payment-sim-delay-ms 0 --warehouse-packing-ms 0)
    lc_note="payment simulator and warehouse at 0 ms"
  else
    lc_flags=()
    lc_note="no payment webhook or warehouse in this build"
  fi
}
# A fresh database: the file, its WAL and the webhook secret generated beside it.
fresh_db() { rm -f "$1" "$1-wal" "$1-shm" "$1.webhook-secret"; }
record() { # item setup json
  python3 -c 'import json, sys; d = json.loads(sys.argv[3]); d["item"] = sys.argv[1]; d["setup"] = sys.argv[2]; print(json.dumps(d))' "$1" "$2" "$3" >> "$results"
}

# --- tools ----------------------------------------------------------------------------------
if ! command -v wrk > /dev/null; then
  say "installing wrk (apt)"
  { apt-get update -qq && apt-get install -y -qq wrk; } > "$out/wrk-install.log" 2>&1
fi
wrk_v=$( (wrk -v 2>&1 || true) | head -1 | awk '{print $1" "$2}')
load_bin=target/release/orders-bench-load

if [[ "${BENCH_NO_BUILD:-0}" == 1 ]]; then
  for bin in target/release/orders target/release/orders-bench-floor target/release/orders-bench-bound "$load_bin"; do
    [[ -x "$bin" ]] || { say "BENCH_NO_BUILD=1 but $bin is missing: run cargo build --release first"; exit 1; }
  done
  say "using the binaries already in target/release (BENCH_NO_BUILD=1)"
else
  say "building release"
  cargo build --release --quiet --bin orders --bin orders-bench-floor --bin orders-bench-bound --bin orders-bench-load
fi
load_v=$("$load_bin" --version)

date_utc=$(date -u +%Y-%m-%dT%H:%M:%SZ)
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

wrk_run() { # name url script [script args...]
  local name=$1 url=$2 script=$3; shift 3
  wrk -t"$threads" -c"$conns" -d"${dur}s" --latency -s "$script" "$url" -- "$@" > "$out/$name.wrk" 2>&1
  python3 bench/stats.py wrk "$out/$name.wrk"
}
wrk_setup="$wrk_v, ${threads} threads, ${conns} connections, ${dur} s, max throughput (closed loop)"

# The service on a fresh database, on a free port, waiting for /health.
svc_extra=()
start_service() { # bin db log: sets svc, base (a fresh database, the lifecycle delays at 0; svc_extra flags)
  fresh_db "$2"
  launch "$1" "$2" "$3" "${svc_extra[@]}"
}
launch() { # bin db log [flags...]: the service on db as it is, on a free port; sets svc, base
  local bin=$1 db=$2 log=$3
  shift 3
  lifecycle "$bin"
  port=$(free_port)
  base="http://127.0.0.1:$port"
  "$bin" --listen "127.0.0.1:$port" --database "$db" "${lc_flags[@]}" "$@" > "$log" 2>&1 &
  svc=$!
  pids+=($svc)
  wait_up "$base/health"
}
# Stops the service started last (if still running) and forgets its PID, keeping the others
# (subscriber sinks) for cleanup.
stop_service() {
  [[ -n "${svc:-}" ]] || return 0
  kill "$svc" 2> /dev/null || true; wait "$svc" 2> /dev/null || true
  local p keep=()
  for p in "${pids[@]}"; do [[ "$p" == "$svc" ]] || keep+=("$p"); done
  pids=("${keep[@]}")
  svc=""
}

# --peers: its own items and table (bench/peers.sh), then nothing else.
if ((peers)); then
  # shellcheck source=bench/peers.sh
  source bench/peers.sh
  exit 0
fi

# One POST max-throughput item against a binary of its own: start it on a free port, wait for
# `probe` to answer, measure, stop it.
post_item() { # item label probe-path command... ({addr} is replaced by 127.0.0.1:port)
  local item=$1 label=$2 probe=$3; shift 3
  port=$(free_port)
  "${@//\{addr\}/127.0.0.1:$port}" > "$out/$item.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$port$probe"
  say "$label"
  record "$item" "$wrk_setup, bench/post_orders.lua" "$(wrk_run "$item" "http://127.0.0.1:$port" bench/post_orders.lua "$item")"
  kill "${pids[0]}"; wait "${pids[0]}" 2> /dev/null || true; pids=()
}

# --- 1. floor, and 1b. the storage ceiling: the service's router on a store that keeps nothing
post_item floor "1. floor" / target/release/orders-bench-floor "{addr}"
post_item bound "1b. storage ceiling" /health target/release/orders-bench-bound --listen "{addr}"

# --- 2b. POST /orders with identity on: the same binary and load as 2 (measured just before
# it, on a fresh database of its own, as 2 is), plus `Authorization: Bearer <admin token>` on every request,
# verified against `orders dev-keys` keys (a JWKS file). (2b)/(2) is what verification costs.
auth_item=0
if "$svc_bin" dev-keys --dir "$out/keys" > "$out/dev-keys.log" 2>&1 &&
  token=$("$svc_bin" dev-token --dir "$out/keys" --sub bench-admin --admin 2>> "$out/dev-keys.log"); then
  auth_item=1
  fresh_db "$out/auth.db"
  lifecycle "$svc_bin"
  port=$(free_port)
  env ORDERS_AUTH=jwt ORDERS_JWKS="$out/keys/jwks.json" ORDERS_JWT_ISSUER=orders-dev ORDERS_JWT_AUDIENCE=orders \
    "$svc_bin" --listen "127.0.0.1:$port" --database "$out/auth.db" "${lc_flags[@]}" > "$out/post_auth.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$port/health"
  say "2b. POST /orders new, max throughput, identity on (--auth jwt, bearer token)"
  record post_auth "$wrk_setup, bench/post_orders.lua (unique keys) + Authorization: Bearer (admin JWT, --auth jwt, JWKS file)" \
    "$(wrk_run post_auth "http://127.0.0.1:$port" bench/post_orders.lua auth "$token")"
  kill "${pids[0]}"; wait "${pids[0]}" 2> /dev/null || true; pids=()
else
  say "2b. skipped: $svc_bin has no dev-keys/dev-token (identity not built in); see $out/dev-keys.log"
fi

# --- the service ----------------------------------------------------------------------------
db="$out/orders.db"
start_service "$svc_bin" "$db" "$out/service.log"
svc_note=$lc_note

say "2. POST /orders new, max throughput ($svc_note)"
record post_max "$wrk_setup, bench/post_orders.lua (unique keys)" "$(wrk_run post_max "$base" bench/post_orders.lua max)"
say "5. end to end (burst from 2): waiting for every order to end"
burst_setup="the orders of 2 (sent as fast as accepted), from the first created_at to the last COMPLETED"
record e2e_burst "$burst_setup; $svc_note" "$(python3 bench/stats.py drain "$db" max- "$drain_timeout")"

# Fixed rate: request i is due at t0 + i/rate whatever the service does, and its latency runs
# from that due time (a stall counts for every request queued behind it). Each request carries
# its own idempotency key, so every fixed-rate order is keyed as in 2: order, outbox event and
# idempotency record. The CSV log (one line per answer) is kept beside the report.
fixed_run() { # name rate duration customer
  "$load_bin" --url "$base/orders" --method POST --rate "$2" --duration "$3" --connections "$conns" \
    --header 'Content-Type: application/json' --header 'x-idempotency-key: {uuid}' \
    --body "{\"customerId\":\"$4\",\"items\":[{\"productId\":\"laptop\",\"quantity\":1,\"price\":1299.99}]}" \
    --log "$out/$1.csv" > "$out/$1.json" 2> "$out/$1.err" || say "$1: $load_bin exited $? (see $out/$1.err)"
  python3 bench/stats.py load "$out/$1.json"
}
fixed_setup="$load_v, ${conns} connections, open loop, latency corrected from each due time, a fresh idempotency key per request"

say "2. POST /orders new, fixed rate $rate/s"
record post_rate "$fixed_setup, $rate/s for ${dur} s" "$(fixed_run post_rate "$rate" "$dur" rate-1)"
python3 bench/stats.py drain "$db" rate- "$drain_timeout" > /dev/null

say "5./6. end to end and relay lag at $e2e_rate/s"
fixed_run e2e_load "$e2e_rate" "$e2e_dur" e2e-1 > "$out/e2e_load.stats"
rate_setup="$fixed_setup, $e2e_rate/s for ${e2e_dur} s; latency = orders.updated_at (COMPLETED) - orders.created_at"
record e2e_rate "$rate_setup; $svc_note" "$(python3 bench/stats.py drain "$db" e2e- "$drain_timeout")"

say "3. replays"
curl -s -o /dev/null -X POST "$base/orders" -H 'Content-Type: application/json' -H 'x-idempotency-key: bench-replay-key' \
  -d '{"customerId":"bench-replay","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}'
record replay "$wrk_setup, bench/replay.lua (one key, answered from the idempotency record)" "$(wrk_run replay "$base" bench/replay.lua)"

rss=$(awk '/VmRSS/ {print $2}' "/proc/$svc/status")
size=$(python3 bench/stats.py size "$db")
record end "" "$(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); d["rss_kib"] = int(sys.argv[2]); print(json.dumps(d))' "$size" "$rss")"

# --- 4./4b. reads on a grown database: the service stops, bench/seed.py grows its database
# (copies of its ended orders, spread over 10,000 customers `seed-N`), and the same binary
# serves it. With BENCH_BEFORE_BIN, that build does the same on the database of its own items
# (below): each build reads a database in its own schema.
((smoke)) && read_orders=5000 || read_orders=250000
read_items() { # bin suffix db: grows db, then GET and list against bin on it
  say "4. growing the database to $read_orders orders (bench/seed.py)$2"
  python3 bench/seed.py "$3" "$read_orders" > "$out/seed$2.json"
  say "4. grown in $(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["seconds"])' "$out/seed$2.json") s"
  python3 -c 'import sqlite3, sys; c = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True); print("\n".join(r[0] for r in c.execute("SELECT order_id FROM orders ORDER BY random() LIMIT 1000")))' "$3" > "$out/ids$2.txt"
  local grown
  grown="$(python3 -c 'import json, sys; print("{:,} orders".format(json.load(open(sys.argv[1]))["orders_after"]))' "$out/seed$2.json")"
  launch "$1" "$3" "$out/reads$2.log"
  say "4. GET /orders/{id}$2"
  record "get$2" "$wrk_setup, bench/get_orders.lua (1,000 random existing ids), $grown" "$(wrk_run "get$2" "$base" bench/get_orders.lua "$out/ids$2.txt")"
  say "4b. a customer's orders, 20 a page$2"
  record "list$2" "$wrk_setup, bench/list_orders.lua (10,000 customers seed-N, limit 20, first page), $grown" "$(wrk_run "list$2" "$base" bench/list_orders.lua)"
  stop_service
}
stop_service
read_items "$svc_bin" "" "$db"

# --- 2s./5s. one webhook subscriber attached; 8. deliveries beside a slow and a failing one ------
# The same items as 2 and 5 on a fresh database of their own, with one subscription to every
# public type pointing at the floor binary (it answers 201 to any JSON POST: a subscriber that
# costs next to nothing). Then 8: two more subscribers, one answering after 1 s and one always
# 500, beside the healthy one, at the fixed rate of 5; delivery retries scaled so a "day" of
# retries takes 8.6 s (--retry-delay-scale 0.0001, which also scales the saga's step retries); the
# failing subscriber's dead letters come one after another per order (an order's next event
# waits for the one before), so its five events take about 45 s.
sub_item=0
if "$svc_bin" --help 2>&1 | grep -q -- '--allow-private-subscribers'; then
  sub_item=1
  subscribe() { # url: one subscription to every public type
    curl -sf -o /dev/null -X POST "$base/subscriptions" -H 'Content-Type: application/json' \
      -d "{\"url\":\"$1\",\"types\":[\"order.created\",\"order.payment_processed\",\"order.shipped\",\"order.completed\",\"order.cancelled\",\"order.failed\",\"voucher.issued\"]}"
  }
  sink_port=$(free_port); healthy="http://127.0.0.1:$sink_port/orders"
  target/release/orders-bench-floor "127.0.0.1:$sink_port" > "$out/sink-healthy.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$sink_port/"
  svc_extra=(--allow-private-subscribers --retry-delay-scale 0.0001)
  start_service "$svc_bin" "$out/sub.db" "$out/sub-service.log"
  subscribe "$healthy"
  say "2s. POST /orders new, max throughput, one subscriber"
  record post_max_sub "$wrk_setup, bench/post_orders.lua (unique keys); one subscription to every type (the floor as subscriber)" \
    "$(wrk_run post_max_sub "$base" bench/post_orders.lua sub)"
  say "5s. end to end (burst from 2s), one subscriber: waiting for every order to end"
  record e2e_burst_sub "the orders of 2s, as in 5; $svc_note; one subscriber" "$(python3 bench/stats.py drain "$out/sub.db" sub- "$drain_timeout")"
  record deliveries_sub "the events of the orders of 2s, to the one subscriber; lag = deliveries.finished_at - outbox.created_at" \
    "$(python3 bench/stats.py deliveries "$out/sub.db" sub- "$drain_timeout" "$healthy")"
  slow_port=$(free_port); slow="http://127.0.0.1:$slow_port/slow"
  fail_port=$(free_port); failing="http://127.0.0.1:$fail_port/failing"
  python3 bench/sink.py "$slow_port" 204 1000 > "$out/sink-slow.log" 2>&1 &
  pids+=($!)
  python3 bench/sink.py "$fail_port" 500 0 > "$out/sink-failing.log" 2>&1 &
  pids+=($!)
  wait_up "http://127.0.0.1:$slow_port/"; wait_up "http://127.0.0.1:$fail_port/"
  subscribe "$slow"; subscribe "$failing"
  say "8. deliveries at $e2e_rate/s beside a slow (1 s) and a failing (500) subscriber"
  fixed_run deliveries_load "$e2e_rate" "$e2e_dur" dlv-1 > "$out/deliveries_load.stats"
  record e2e_rate_sub "$fixed_setup, $e2e_rate/s for ${e2e_dur} s; three subscribers; $svc_note" \
    "$(python3 bench/stats.py drain "$out/sub.db" dlv- "$drain_timeout")"
  record deliveries_mixed "the events of the orders of 8 ($e2e_rate/s for ${e2e_dur} s), once the healthy and the failing subscriber have none pending (timeout ${drain_timeout} s); the slow one answers after 1 s, at most 16 in flight" \
    "$(python3 bench/stats.py deliveries "$out/sub.db" dlv- "$drain_timeout" "$healthy,$failing")"
  stop_service
  python3 -c 'import json, sys; print(json.dumps({"item": "sub_urls", "healthy": sys.argv[1], "slow": sys.argv[2], "failing": sys.argv[3]}))' "$healthy" "$slow" "$failing" >> "$results"
else
  say "2s./5s./8. skipped: $svc_bin has no subscriptions"
fi

# --- before: the end-to-end items again, against BENCH_BEFORE_BIN ------------------------------
# The current service stops first, so the two builds never share the cores.
if [[ -n "$before_bin" ]]; then
  stop_service
  start_service "$before_bin" "$out/before.db" "$out/before-service.log"
  before_note=$lc_note
  say "5. end to end (burst), before: $before_bin ($before_note)"
  record post_max_before "$wrk_setup, bench/post_orders.lua (unique keys)" \
    "$(wrk_run post_max_before "$base" bench/post_orders.lua max)"
  record e2e_burst_before "the orders of a POST max run as in 2 (sent as fast as accepted), from the first created_at to the last COMPLETED; $before_note" \
    "$(python3 bench/stats.py drain "$out/before.db" max- "$drain_timeout")"
  # Item 2's fixed rate too, not reported: the service's 5 and 6 at the fixed rate run on the
  # database its orders filled, so the before build's must find its own filled the same way.
  say "2. POST /orders new, fixed rate $rate/s, before (not reported: the database as the service's)"
  fixed_run post_rate_before "$rate" "$dur" rate-1 > /dev/null
  python3 bench/stats.py drain "$out/before.db" rate- "$drain_timeout" > /dev/null
  say "5./6. end to end and relay lag at $e2e_rate/s, before: $before_bin"
  fixed_run e2e_load_before "$e2e_rate" "$e2e_dur" e2e-1 > "$out/e2e_load_before.stats"
  record e2e_rate_before "$rate_setup; $before_note" \
    "$(python3 bench/stats.py drain "$out/before.db" e2e- "$drain_timeout")"
  stop_service
  read_items "$before_bin" _before "$out/before.db"
  python3 -c 'import json, sys; print(json.dumps({"item": "before", "bin": sys.argv[1]}))' "$before_bin" >> "$results"
fi

echo
echo "date: $date_utc; machine: $(nproc) cores, $cpu; load average at start: $load_start, at end: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "command: bench/run.sh${*:+ $*}; service: $svc_bin (synchronous=FULL, default settings; $svc_note); load generators on the same cores"
[[ -z "$before_bin" ]] || echo "before: $before_bin ($before_note), items 5 and 6 (a fresh database), then 4 and 4b (that database grown as the service's was) only, after the service's"
echo
python3 bench/stats.py table "$results"

if ((smoke)); then
  python3 - "$results" "$auth_item" "$sub_item" <<'PY'
import json, sys
r = {}
for line in open(sys.argv[1]):
    d = json.loads(line); r[d["item"]] = d
need = {"floor": "rps", "bound": "rps", "post_max": "rps", "post_rate": "p99_ms", "replay": "rps", "get": "rps", "list": "rps",
        "e2e_burst": "e2e_rps", "e2e_rate": "e2e_p99_ms", "end": "rss_kib"}
undelivered = []
if sys.argv[3] == "1":
    need.update({"post_max_sub": "rps", "e2e_burst_sub": "e2e_rps", "e2e_rate_sub": "e2e_p99_ms"})
    healthy_url = r.get("sub_urls", {}).get("healthy")
    for item in ("deliveries_sub", "deliveries_mixed"):
        healthy = r.get(item, {}).get("subscribers", {}).get(healthy_url, {})
        if not healthy.get("delivered") or healthy.get("pending") or healthy.get("failed"):
            undelivered.append(item)
if sys.argv[2] == "1":
    need["post_auth"] = "rps"
missing = [f"{k}.{v}" for k, v in need.items() if not r.get(k, {}).get(v)]
if not r.get("e2e_rate", {}).get("lag_p99_ms") and r.get("e2e_rate", {}).get("lag_p99_ms") != 0:
    missing.append("e2e_rate.lag_p99_ms")
bad = [k for k in ("floor", "bound", "post_max", "post_auth", "post_max_sub", "replay", "get", "post_rate") if r.get(k, {}).get("non2xx")]
bad += [k for k in ("post_rate",) if set(r.get(k, {}).get("codes", {"201": 1})) != {"201"}]
if missing or bad or undelivered:
    sys.exit(f"bench smoke: no figure for {', '.join(missing) or '-'}; non-2xx answers in {', '.join(bad) or '-'}; "
             f"the healthy subscriber missed events in {', '.join(undelivered) or '-'}")
print("bench smoke: every figure produced")
PY
fi
