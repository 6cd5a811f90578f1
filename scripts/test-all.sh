#!/usr/bin/env bash
# The project's test command (README "Test"): every Rust test, built once in release (so the
# process and crash tests drive the release binary; the AWS-path tests start moto server from
# .venv on a free loopback port), then that release binary started on a free loopback port with
# a fresh database and test-api.sh run against it.
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

echo "== scripts/schemathesis.sh (schema fuzzing of /openapi.json, bounded)"
bash scripts/schemathesis.sh

# The smoke measures the binaries the tests above were built with. A `cargo build` here would
# compile the AWS SDKs a second time: dev-dependencies (reqwest) add tower and sync_wrapper
# features, so test builds and plain builds of the same crates do not share artifacts.
echo "== bench/run.sh --smoke (the benchmark harness produces every figure; no targets asserted)"
BENCH_NO_BUILD=1 BENCH_NO_OHA=1 bash bench/run.sh --smoke
