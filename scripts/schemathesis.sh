#!/usr/bin/env bash
# Schema fuzzing: schemathesis (pinned, in .venv at the repo root) against /openapi.json of
# the release binary, started here on a free loopback port with a fresh database and stopped
# by its PID. Every check runs: no 5xx, every status, content type, header and body as the
# document says, invalid input refused, valid input accepted. Bounded (a fixed number of
# examples per operation and a time budget) so it fits CI; exits non-zero on any finding.
#   SCHEMATHESIS_MAX_EXAMPLES (default 40), SCHEMATHESIS_MAX_TIME seconds (default 90),
#   SCHEMATHESIS_SEED (default 1; change it to explore other inputs).
set -euo pipefail
cd "$(dirname "$0")/.."
version=$(sed -n "s/^schemathesis==//p" scripts/requirements-dev.txt)

if ! .venv/bin/schemathesis --version 2> /dev/null | grep -q "$version"; then
    bash scripts/setup-venv.sh
fi
[ -x target/release/orders ] || cargo build --release --locked

source scripts/release-service.sh
start_release_service
for _ in $(seq 100); do
    curl -fsS "http://127.0.0.1:$port/health" > /dev/null 2>&1 && break
    kill -0 "$pid" 2> /dev/null || { cat "$dir/server.log"; exit 1; }
    sleep 0.1
done

# Run from the temporary directory: schemathesis keeps a cache in its working directory.
repo=$(pwd)
status=0
(cd "$dir" && "$repo/.venv/bin/schemathesis" --config-file "$repo/scripts/schemathesis.toml" run "http://127.0.0.1:$port/openapi.json" \
    --checks all \
    --max-examples "${SCHEMATHESIS_MAX_EXAMPLES:-40}" \
    --max-time "${SCHEMATHESIS_MAX_TIME:-90}" \
    --seed "${SCHEMATHESIS_SEED:-1}" \
    --generation-database none \
    --request-timeout 10 \
    --report-dir "$dir/report" \
    --no-color) || status=$?
if ! kill -0 "$pid" 2> /dev/null; then
    echo "the server died during the run"; tail -n 40 "$dir/server.log"; exit 1
fi
if grep -q "request failed" "$dir/server.log"; then
    echo "--- server errors"; grep "request failed" "$dir/server.log" | head -20
fi
exit "$status"
