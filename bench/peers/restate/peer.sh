#!/usr/bin/env bash
# The Restate peer of the benchmark: restate-server 1.7.12 (one node, bench/peers/restate/
# restate.toml) running the Orders saga as a Restate virtual object (the orders-peer-restate binary).
#
# Usage:
#   bench/peers/restate/peer.sh install      installs restate-server (npm, pinned, into
#                                            bench/peers/restate/node_modules) and builds the
#                                            peer binary; idempotent, prints the versions
#   bench/peers/restate/peer.sh start DIR    starts both on free 127.0.0.1 ports with state in
#                                            DIR (fresh), registers the deployment, waits until
#                                            the ingress takes orders; writes DIR/peer.env
#   bench/peers/restate/peer.sh finals DIR   prints {"<order id>": [status, epoch µs], ...}
#   bench/peers/restate/peer.sh stop DIR     stops both (TERM, then KILL after 30 s)
#
# DIR/peer.env (sourceable): INGRESS_URL ADMIN_URL STATS_URL SEND_PATH (with {uuid} where the
# order id goes) SERVER_PID SERVICE_PID DISK_AT_START (bytes of DIR/restate once ready), and
# ACTORS_URL. Logs: DIR/restate.log, DIR/service.log. An order is submitted with
#   POST $INGRESS_URL${SEND_PATH/\{uuid\}/<uuid>}  content-type: application/json
#   idempotency-key: <the same uuid>   body: the Orders POST /orders body.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../../.." && pwd)"
VERSION=1.7.12
SERVER_BIN="$HERE/node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
export CARGO_TARGET_DIR="$REPO/target/peer-restate"
PEER_BIN="$CARGO_TARGET_DIR/release/orders-peer-restate"
SEND_PATH='/Order/{uuid}/place/send'
READY_TIMEOUT=90
STOP_TIMEOUT=30

die() {
  echo "peer.sh: $*" >&2
  exit 1
}

# The last lines of each log in DIR, on stderr, then exit 1.
fail_with_logs() {
  local dir=$1
  shift
  echo "peer.sh: $*" >&2
  for log in "$dir/restate.log" "$dir/service.log"; do
    [[ -f $log ]] && { echo "--- tail of $log" >&2; tail -n 30 "$log" >&2; }
  done
  stop_dir "$dir" >/dev/null 2>&1 || true
  exit 1
}

install() {
  local have=""
  [[ -x $SERVER_BIN ]] && have="$("$SERVER_BIN" --version 2>/dev/null || true)"
  if [[ $have != "restate-server $VERSION" ]]; then
    (cd "$HERE" && npm install --no-save --no-audit --no-fund --silent --ignore-scripts \
      --prefix "$HERE" "@restatedev/restate-server@$VERSION" >/dev/null) ||
      die "npm install of @restatedev/restate-server@$VERSION failed"
  fi
  cargo build --quiet --release --locked --manifest-path "$HERE/Cargo.toml" ||
    die "building the peer binary failed"
  echo "$("$SERVER_BIN" --version); $("$PEER_BIN" --version)"
}

# Five free loopback ports, held together while chosen so they differ.
free_ports() {
  python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(5)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
EOF
}

# Polls `curl ARGS` until it succeeds or READY_TIMEOUT passes.
wait_for() {
  local deadline=$((SECONDS + READY_TIMEOUT))
  until curl -fsS -o /dev/null --max-time 5 "$@" 2>/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

start() {
  local dir=$1
  [[ -x $SERVER_BIN && -x $PEER_BIN ]] || die "run '$0 install' first"
  mkdir -p "$dir"
  dir="$(cd "$dir" && pwd)"
  [[ -e $dir/restate || -e $dir/peer.env ]] && die "$dir is not fresh"
  local ingress admin fabric service actors
  read -r ingress admin fabric service actors < <(free_ports)
  # Per-start secret for the payment webhooks (the provider and the receiver share it).
  local secret
  secret="whsec_$(head -c 32 /dev/urandom | base64 | tr -d '\n')"
  (umask 077 && printf '%s\n' "$secret" >"$dir/webhook-secret")

  RESTATE_INGRESS__BIND_ADDRESS="127.0.0.1:$ingress" \
    RESTATE_ADMIN__BIND_ADDRESS="127.0.0.1:$admin" \
    RESTATE_BIND_ADDRESS="127.0.0.1:$fabric" \
    RESTATE_ADVERTISED_ADDRESS="http://127.0.0.1:$fabric/" \
    RESTATE_LOG_DISABLE_ANSI_CODES=true \
    nohup "$SERVER_BIN" --config-file "$HERE/restate.toml" --base-dir "$dir/restate" \
    --node-name n1 --listen-mode tcp --no-logo </dev/null >"$dir/restate.log" 2>&1 &
  local server_pid=$!
  PEER_WEBHOOK_SECRET="$secret" nohup "$PEER_BIN" --service-listen "127.0.0.1:$service" \
    --actors-listen "127.0.0.1:$actors" --ingress-url "http://127.0.0.1:$ingress" \
    </dev/null >"$dir/service.log" 2>&1 &
  local service_pid=$!
  # Written at once, so `stop` can end both even if start-up fails below.
  printf 'SERVER_PID=%s\nSERVICE_PID=%s\n' "$server_pid" "$service_pid" >"$dir/pids"

  local admin_url="http://127.0.0.1:$admin" ingress_url="http://127.0.0.1:$ingress"
  wait_for "$admin_url/health" || fail_with_logs "$dir" "admin API not healthy in ${READY_TIMEOUT}s"
  wait_for "http://127.0.0.1:$actors/health" || fail_with_logs "$dir" "peer binary not up"
  local reg deadline=$((SECONDS + READY_TIMEOUT))
  until reg="$(curl -fsS --max-time 10 -X POST "$admin_url/deployments" \
    -H 'content-type: application/json' \
    -d "{\"uri\": \"http://127.0.0.1:$service\", \"force\": true}" 2>&1)"; do
    ((SECONDS < deadline)) || fail_with_logs "$dir" "registering the deployment failed: $reg"
    sleep 0.5
  done
  # Ready once the ingress routes to the new deployment (a read-only shared handler).
  wait_for -X POST "$ingress_url/Inventory/laptop/available" ||
    fail_with_logs "$dir" "the ingress did not route to the deployment in ${READY_TIMEOUT}s"
  local disk
  disk="$(du -sb "$dir/restate" | cut -f1)"
  cat >"$dir/peer.env" <<EOF
INGRESS_URL=$ingress_url
ADMIN_URL=$admin_url
STATS_URL=http://127.0.0.1:$actors/stats
ACTORS_URL=http://127.0.0.1:$actors
SEND_PATH='$SEND_PATH'
SERVER_PID=$server_pid
SERVICE_PID=$service_pid
DISK_AT_START=$disk
EOF
}

finals() {
  local dir=$1
  [[ -f $dir/peer.env ]] || die "no $dir/peer.env: not started"
  # shellcheck disable=SC1091
  source "$dir/peer.env"
  curl -fsS --max-time 60 "$STATS_URL"
  echo
}

# TERM, wait up to STOP_TIMEOUT, then KILL; only the PIDs this script started.
stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_TIMEOUT))
  while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "peer.sh: $pid did not stop in ${STOP_TIMEOUT}s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
  fi
}

stop_dir() {
  local dir=$1
  [[ -f $dir/pids ]] || die "no $dir/pids: not started"
  local SERVER_PID SERVICE_PID
  # shellcheck disable=SC1091
  source "$dir/pids"
  stop_pid "$SERVICE_PID"
  stop_pid "$SERVER_PID"
}

case "${1:-}" in
  install) install ;;
  start) [[ $# -eq 2 ]] || die "usage: $0 start DIR"; start "$2" ;;
  finals) [[ $# -eq 2 ]] || die "usage: $0 finals DIR"; finals "$2" ;;
  stop) [[ $# -eq 2 ]] || die "usage: $0 stop DIR"; stop_dir "$2" ;;
  *) die "usage: $0 install | start DIR | finals DIR | stop DIR" ;;
esac
