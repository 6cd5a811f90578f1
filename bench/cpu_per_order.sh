#!/usr/bin/env bash
# CPU time the service spends per order, intake through COMPLETED: a figure that, unlike
# requests/s, hardly moves when other processes compete for the cores, so it is what
# before/after comparisons of an optimisation use on a busy machine.
# Starts the service (BENCH_SERVICE_BIN, default target/release/orders) on a fresh database,
# posts orders with wrk for SECONDS (default 5), waits until every order is terminal, then
# prints the process's user+system CPU seconds divided by the number of orders.
# With BENCH_SERVICE_BIN=target/release/orders-bench-bound (the storage ceiling: nothing stored,
# no saga) the orders are the 201s wrk counted: the CPU of the HTTP path alone.
# Usage: bench/cpu_per_order.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-5}
bin=${BENCH_SERVICE_BIN:-target/release/orders}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
"$bin" --listen "127.0.0.1:$port" --database "$dir/orders.db" > "$dir/service.log" 2>&1 &
pid=$!
trap 'kill $pid 2> /dev/null; wait $pid 2> /dev/null; rm -rf "$dir"' EXIT
until curl -s -o /dev/null "http://127.0.0.1:$port/health"; do sleep 0.05; done
ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
t0=$(ticks)
wrk -t2 -c64 -d"${secs}s" -s bench/post_orders.lua "http://127.0.0.1:$port" -- cpu > "$dir/wrk.out"
if [[ $(basename "$bin") == orders-bench-bound ]]; then
  python3 -c 'import json, sys; w = json.loads(sys.argv[1]); print(json.dumps({"orders": w["requests"] - w["non2xx"], "completed": None}))' \
    "$(python3 bench/stats.py wrk "$dir/wrk.out")" > "$dir/drain.json"
else
  python3 bench/stats.py drain "$dir/orders.db" cpu- 300 > "$dir/drain.json"
fi
t1=$(ticks)
python3 - "$dir/drain.json" "$t0" "$t1" "$(getconf CLK_TCK)" "$bin" <<'PY'
import json, sys
d = json.load(open(sys.argv[1])); t0, t1, hz = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cpu = (t1 - t0) / hz
done = "answered 201, none stored" if d["completed"] is None else f"{d['completed']} COMPLETED"
print(f"{sys.argv[5]}: {d['orders']} orders ({done}), service CPU {cpu:.2f} s, "
      f"{cpu / d['orders'] * 1000:.3f} ms CPU per order (=> at most {2 / (cpu / d['orders']):,.0f} orders/s on 2 cores)")
PY
