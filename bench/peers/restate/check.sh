#!/usr/bin/env bash
# Checks the Restate peer end to end, on 127.0.0.1 only: installs it (peer.sh install), starts
# it in a temporary directory, and drives it through the ingress as the benchmark does:
#   - 20 good orders end COMPLETED (in /stats and in Restate's state), with payment, shipment
#     and notification recorded, and a 5.00 EUR voucher exactly for totals over 100.00 EUR;
#   - a declined card ends FAILED (PaymentDeclined) with its reservation released;
#   - an out-of-stock product ends FAILED (OutOfStock), nothing charged;
#   - a body that is not JSON is refused 4xx with no invocation started; a JSON body that fails
#     validation ends its invocation with a terminal 400 before any state is written;
#   - the same order id sent twice (and once more without idempotency-key) runs one saga;
#   - a forged or stale payment webhook is refused 401;
#   - restate-server fdatasyncs its log (log-server WAL) while taking orders (strace, if present);
#   - a short orders-bench-load run (if target/release/orders-bench-load exists) all COMPLETED.
# Prints "N passed, N failed"; exits non-zero on any failure. Not part of CI: CI does not build
# the peer (it downloads restate-server and builds a separate workspace).
#
# Usage: bench/peers/restate/check.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
PEER="$HERE/peer.sh"
WORK="$(mktemp -d /tmp/peer-restate-check.XXXXXX)"
RUN="$WORK/run"
STRACE_PID=""

# Stops what this script started (strace, then the peer's two processes) and keeps the exit code.
cleanup() {
  local rc=$?
  if [[ -n $STRACE_PID ]]; then
    kill "$STRACE_PID" 2>/dev/null || true
    wait "$STRACE_PID" 2>/dev/null || true
  fi
  [[ -f $RUN/pids ]] && { "$PEER" stop "$RUN" >/dev/null 2>&1 || true; }
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

"$PEER" install
"$PEER" start "$RUN"
# shellcheck disable=SC1091
source "$RUN/peer.env"

STRACE_OUT=""
if command -v strace >/dev/null; then
  STRACE_OUT="$WORK/fsync.txt"
  strace -f -y -e trace=fsync,fdatasync -o "$STRACE_OUT" -p "$SERVER_PID" 2>/dev/null &
  STRACE_PID=$!
  sleep 1
fi

LOAD_BIN="$REPO/target/release/orders-bench-load"
export RUN STRACE_OUT LOAD_BIN INGRESS_URL ADMIN_URL STATS_URL ACTORS_URL SEND_PATH
python3 "$HERE/check_peer.py"
