#!/usr/bin/env bash
# Instructions the service executes per order, from POST through COMPLETED, counted by
# callgrind: unlike times and rates it does not move when other processes load the machine,
# so it is the before/after figure for an optimisation measured on a busy machine.
# Runs the service (BENCH_SERVICE_BIN, default target/release/orders) under callgrind twice on
# fresh databases, once idle and once with N orders posted (8 concurrent curl clients, unique
# keys) and drained, and prints (instructions(N) - instructions(0)) / N. Valgrind runs one
# thread at a time, so writer groups are smaller than on the real machine: compare builds with
# this figure, do not read it as a throughput.
# Usage: bench/callgrind.sh [N]   (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-300}
bin=${BENCH_SERVICE_BIN:-target/release/orders}
count() {
  local dir port pid
  dir=$(mktemp -d)
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$bin" --listen "127.0.0.1:$port" \
    --database "$dir/orders.db" > "$dir/service.log" 2>&1 &
  pid=$!
  for _ in $(seq 600); do curl -s -o /dev/null "http://127.0.0.1:$port/health" && break; sleep 0.2; done
  if (($1 > 0)); then
    seq "$1" | xargs -P 8 -I{} curl -s -o /dev/null -X POST "http://127.0.0.1:$port/orders" \
      -H 'Content-Type: application/json' -H "x-idempotency-key: cg-{}" \
      -d '{"customerId":"cg-{}","items":[{"productId":"laptop","quantity":1,"price":1299.99}]}'
    python3 bench/stats.py drain "$dir/orders.db" cg- 900 > "$dir/drain.json"
  fi
  kill -INT "$pid"
  wait "$pid" || true
  awk '/^(summary|totals):/ {print $2; exit}' "$dir/cg.out"
  rm -rf "$dir"
}
idle=$(count 0)
busy=$(count "$n")
python3 -c 'import sys; i, b, n = map(int, sys.argv[1:4]); print(f"{sys.argv[4]}: {(b - i) / n:,.0f} instructions per order ({n} orders; idle run {i:,}, loaded run {b:,})")' "$idle" "$busy" "$n" "$bin"
