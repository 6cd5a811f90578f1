#!/usr/bin/env bash
# Schema fuzzing: schemathesis (pinned, in .venv at the repo root) against /openapi.json of
# the release binary, started here on a free loopback port with a fresh database and stopped
# by its PID. Every check runs: no 5xx, every status, content type, header and body as the
# document says, invalid input refused, valid input accepted. Bounded (a fixed number of
# examples per operation and a time budget) so it fits CI; exits non-zero on any finding, and
# on any `request failed` (a 500's cause) in the server's log.
# Two passes, each on its own server: identity off (`--auth none`), then identity on
# (`--auth jwt` with `orders dev-keys` keys) with an admin token from `orders dev-token` on
# every request (`--header "Authorization: Bearer ..."`).
#   SCHEMATHESIS_MAX_EXAMPLES (default 40), SCHEMATHESIS_MAX_TIME seconds (default 75 for the
#   first pass), SCHEMATHESIS_AUTH_MAX_TIME seconds for the identity-on pass (default 50),
#   SCHEMATHESIS_SEED (default 1; change it to explore other inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n "s/^schemathesis==//p" scripts/requirements-dev.txt)

if ! .venv/bin/schemathesis --version 2> /dev/null | grep -q "$version"; then
    bash scripts/setup-venv.sh
fi
[ -x target/release/orders ] || cargo build --release --locked

source scripts/release-service.sh
repo=$(pwd)

wait_healthy() {
    for _ in $(seq 100); do
        curl -fsS "http://127.0.0.1:$port/health" > /dev/null 2>&1 && return 0
        kill -0 "$pid" 2> /dev/null || { cat "$dir/server.log"; exit 1; }
        sleep 0.1
    done
    echo "no 200 from /health within 10 s"; tail -n 40 "$dir/server.log"; exit 1
}

# fuzz NAME MAX_TIME [extra schemathesis args...]: one pass against the running service;
# sets status to non-zero on a finding, a dead server or a `request failed` in its log.
fuzz() {
    local name=$1 max_time=$2 rc=0; shift 2
    echo "== schemathesis pass: $name (max ${max_time} s)"
    # Run from the temporary directory: schemathesis keeps a cache in its working directory.
    (cd "$dir" && "$repo/.venv/bin/schemathesis" --config-file "$repo/scripts/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
        --checks all \
        --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
        --max-time "$max_time" \
        --seed "${SCHEMATHESIS_SEED:-1}" \
        --generation-database none \
        --request-timeout 10 \
        --report-dir "$dir/report" \
        --no-color "$@") || rc=$?
    if ! kill -0 "$pid" 2> /dev/null; then
        echo "the server died during the $name pass"; tail -n 40 "$dir/server.log"; exit 1
    fi
    if grep -q "request failed" "$dir/server.log"; then
        echo "--- server errors ($name)"; grep "request failed" "$dir/server.log" | head -20
        [ "$rc" -ne 0 ] || rc=1
    fi
    echo "== schemathesis pass: $name: exit $rc"
    [ "$rc" -eq 0 ] || status=$rc
}

status=0

start_release_service
wait_healthy
fuzz "identity off" "${SCHEMATHESIS_MAX_TIME:-75}"
stop_release_service

prepare_release_service
target/release/orders dev-keys --dir "$dir/keys" > /dev/null
admin_token=$(target/release/orders dev-token --dir "$dir/keys" --sub fuzz-admin --admin)
ORDERS_AUTH=jwt ORDERS_JWKS="$dir/keys/jwks.json" ORDERS_JWT_ISSUER=orders-dev ORDERS_JWT_AUDIENCE=orders \
    start_release_service
wait_healthy
fuzz "identity on (admin token)" "${SCHEMATHESIS_AUTH_MAX_TIME:-50}" --header "Authorization: Bearer $admin_token"
stop_release_service

exit "$status"
