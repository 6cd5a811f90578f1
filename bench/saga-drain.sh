#!/usr/bin/env bash
# How long N orders take, from the first POST, until every one is COMPLETED or FAILED.
# Starts target/release/orders on a free loopback port with a fresh database, sends N orders
# (32 concurrent curl clients, unique idempotency keys), then watches the database.
# Usage: bench/saga-drain.sh [N]   (build first: cargo build --release)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-1000}
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
dir=$(mktemp -d)
target/release/orders --listen "127.0.0.1:$port" --database "$dir/orders.db" > "$dir/server.log" 2>&1 &
pid=$!
trap 'kill $pid 2> /dev/null; wait $pid 2> /dev/null; rm -rf "$dir"' EXIT
until curl -sf "http://127.0.0.1:$port/health" > /dev/null; do sleep 0.05; done

echo "setup: $n orders, 32 concurrent clients (curl), release build, fresh SQLite database, 127.0.0.1:$port"
start=$(date +%s.%N)
seq "$n" | xargs -P 32 -I{} curl -sf -o /dev/null -X POST "http://127.0.0.1:$port/orders" \
    -H 'Content-Type: application/json' -H "x-idempotency-key: drain-{}" \
    -d '{"customerId":"drain-{}","items":[{"productId":"laptop","quantity":1,"price":120.5}]}'
posted=$(date +%s.%N)
python3 - "$dir/orders.db" "$n" "$start" "$posted" <<'PY'
import sqlite3, sys, time
db, n, start, posted = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
while True:
    done, total = conn.execute("SELECT SUM(status IN ('COMPLETED','FAILED')), COUNT(*) FROM orders").fetchone()
    if total == n and done == n:
        break
    if time.time() - start > 300:
        sys.exit(f"timeout: {done}/{total} terminal")
    time.sleep(0.01)
end = time.time()
by = dict(conn.execute("SELECT status, COUNT(*) FROM orders GROUP BY status").fetchall())
print(f"accepted {n} orders in {posted - start:.2f} s ({n / (posted - start):.0f}/s)")
print(f"all {n} terminal {end - start:.2f} s after the first POST: {by}")
PY
