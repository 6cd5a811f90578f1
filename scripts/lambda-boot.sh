#!/usr/bin/env bash
# Proves the Lambda artifacts boot and answer: builds the five arm64 `bootstrap` files
# (scripts/deploy.sh build), then runs each one under qemu-aarch64 against a stand-in of the
# Lambda Runtime API, with moto (DynamoDB, Step Functions, EventBridge, SQS) behind it:
#   orders            an API Gateway v2 `POST /orders` event -> 201 with its Location
#   orders-processor  a DynamoDB Streams batch of one outbox INSERT -> no batchItemFailures,
#                     one execution started on moto's state machine, the event published to
#                     moto's EventBridge bus and delivered by a rule to an SQS queue
#   orders-steps      {"step":"ReserveInventory",...} -> {"reserved":1}, stock decremented;
#                     an unknown step -> the error route with errorType InvalidInput
#   orders-warehouse  an SQS batch of a request for a task nobody has (done) and one that is
#                     not a request -> batchItemFailures names only the latter
#   orders-payment-sim  a function URL event POST /charges: 401 without the provider key; with
#                     it, 202 only after the signed webhook reached a listener of the test's
#   each              without its table (processor: state machine, event bus; API: webhook secret; steps:
#                     provider URL; warehouse: a bad packing time; simulator: provider key, webhook URL) variable -> exits non-zero
#                     naming the variable, before asking for an event
# Every function's log lines (its stdout and stderr) are printed after it stops.
#
# Why a Rust test (tests/aws/lambda_boot.rs, #[ignore]d) rather than a script of its own: it
# reuses the test support crate's moto harness (free loopback port, reset, stop by PID) and
# the table provisioning of orders_aws::provision, so no table, stream or state machine is
# defined twice; the events are checked with the same types and attribute names the code
# uses; the stand-in (tests/support/src/runtime_api.rs) is a small axum server in the same
# process. And it compiles nothing new in CI: the `aws` test binary is the one
# `cargo test --release --workspace` already built (same profile, same features).
#
#   scripts/lambda-boot.sh           install what is missing, build the arm64 artifacts, boot
#   scripts/lambda-boot.sh --native  boot the host release builds of the same five binaries that
#                                    `cargo test --release --workspace` already linked (CI: one
#                                    build for everything; the cross build is the deploy's own
#                                    step, `scripts/deploy.sh build`, checked by the default mode)
# Env: CARGO_TARGET_DIR (default target) for both the build and the test binary;
#      ORDERS_LAMBDA_DIR set to an existing cargo-lambda output skips the build and boots those.
# Needs: root for apt-get when qemu-user / libc6-arm64-cross are missing (on arm64, neither).
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
phase() { echo "== [$(($(date +%s) - start))s] lambda-boot: $*"; }
BINARIES=(orders orders-processor orders-steps orders-warehouse orders-payment-sim)
target=${CARGO_TARGET_DIR:-target}

if [ "${1:-}" = --native ]; then
    phase "host release binaries from $target/release, laid out as cargo-lambda's output"
    mkdir -p "$target/lambda-native"
    export ORDERS_LAMBDA_DIR
    ORDERS_LAMBDA_DIR=$(cd "$target/lambda-native" && pwd)
    for b in "${BINARIES[@]}"; do
        [ -x "$target/release/$b" ] || { echo "error: $target/release/$b is missing: run cargo test --release --workspace first" >&2; exit 2; }
        mkdir -p "$ORDERS_LAMBDA_DIR/$b"
        ln -sf "$(cd "$target/release" && pwd)/$b" "$ORDERS_LAMBDA_DIR/$b/bootstrap"
    done
    bash scripts/setup-venv.sh
    phase "boot tests (cargo test --release --test aws lambda_boot -- --ignored)"
    cargo test --release --locked --test aws lambda_boot -- --ignored --nocapture --test-threads=1
    phase "done"
    exit 0
fi

phase "tools"
if [ "$(uname -m)" != aarch64 ]; then
    if ! command -v qemu-aarch64 > /dev/null || [ ! -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ]; then
        [ "$(id -u)" = 0 ] || { echo "error: install qemu-user and libc6-arm64-cross (needs root)" >&2; exit 2; }
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq qemu-user libc6-arm64-cross
    fi
    qemu-aarch64 --version | head -n 1
fi
# moto server, cargo-lambda with zig, the aarch64 target; quick when all are there.
bash scripts/deploy.sh tools

if [ -n "${ORDERS_LAMBDA_DIR:-}" ]; then
    phase "artifacts in $ORDERS_LAMBDA_DIR (no build)"
else
    phase "scripts/deploy.sh build (cargo lambda build --release --arm64)"
    bash scripts/deploy.sh build
    ORDERS_LAMBDA_DIR=$(cd "$target/lambda" && pwd)
fi
export ORDERS_LAMBDA_DIR
for b in "${BINARIES[@]}"; do
    file "$ORDERS_LAMBDA_DIR/$b/bootstrap" 2> /dev/null || ls -l "$ORDERS_LAMBDA_DIR/$b/bootstrap"
done

phase "boot tests (cargo test --release --test aws lambda_boot -- --ignored)"
# --test-threads=1: one function at a time, so each boot log is printed in one piece.
cargo test --release --locked --test aws lambda_boot -- --ignored --nocapture --test-threads=1
phase "done"
