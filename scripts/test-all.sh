#!/usr/bin/env bash
# The project's test command (README "Test"): every Rust test, built once in release (so the
# process and crash tests drive the release binary; the AWS-path tests start moto server from
# .venv on a free loopback port), then that release binary started on a free loopback port with
# a fresh database and test-api.sh run against it twice: identity off, then identity on
# (--auth jwt with `orders dev-keys` keys, an admin and a customer token from `orders dev-token`).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== python tools (.venv)"
bash scripts/setup-venv.sh

echo "== cargo test --release --workspace"
cargo test --release --workspace

echo "== test-api.sh against target/release/orders"
source scripts/release-service.sh
start_release_service
BASE_URL="http://127.0.0.1:$port" bash test-api.sh || {
    echo "--- server log (last 40 lines)"
    tail -n 40 "$dir/server.log"
    exit 1
}
stop_release_service

echo "== test-api.sh against target/release/orders with identity on (--auth jwt, dev keys)"
prepare_release_service
target/release/orders dev-keys --dir "$dir/keys" > /dev/null
admin_token=$(target/release/orders dev-token --dir "$dir/keys" --sub ops-admin --admin)
customer_token=$(target/release/orders dev-token --dir "$dir/keys" --sub cust-alice)
ORDERS_AUTH=jwt ORDERS_JWKS="$dir/keys/jwks.json" ORDERS_JWT_ISSUER=orders-dev ORDERS_JWT_AUDIENCE=orders \
    start_release_service
BASE_URL="http://127.0.0.1:$port" ADMIN_TOKEN="$admin_token" TOKEN="$customer_token" TOKEN_SUB=cust-alice \
    bash test-api.sh || {
    echo "--- server log (last 40 lines)"
    tail -n 40 "$dir/server.log"
    exit 1
}
stop_release_service

echo "== scripts/schemathesis.sh (schema fuzzing of /openapi.json, bounded)"
bash scripts/schemathesis.sh

# The smoke measures the binaries the tests above were built with. A `cargo build` here would
# compile the AWS SDKs a second time: dev-dependencies (reqwest) add tower and sync_wrapper
# features, so test builds and plain builds of the same crates do not share artifacts.
echo "== bench/run.sh --smoke (the benchmark harness produces every figure; no targets asserted)"
BENCH_NO_BUILD=1 bash bench/run.sh --smoke
