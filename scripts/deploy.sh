#!/usr/bin/env bash
# Build, deploy, seed, test and remove the AWS deployment (infra/template.yaml).
#
#   scripts/deploy.sh tools     install cargo-lambda (with zig) and SAM CLI into .venv, add the arm64 target
#   scripts/deploy.sh build     cargo lambda build --release --arm64 of the three Lambda binaries
#   scripts/deploy.sh deploy    sam deploy --guided (first time; later runs reuse samconfig.toml)
#   scripts/deploy.sh url       print the API URL of the deployed stack
#   scripts/deploy.sh seed      PUT the catalogue the embedded store seeds itself with
#   scripts/deploy.sh test      run test-api.sh against the deployed API
#   scripts/deploy.sh delete    delete the stack (tables and their data included)
#
# Env: STACK (default orders), AWS_REGION / AWS_PROFILE as the AWS CLI understands them.
# Needs AWS credentials for deploy/url/seed/test/delete; build and tools need none.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
STACK=${STACK:-orders}
BINARIES=(orders orders-processor orders-steps)
CARGO_LAMBDA_VERSION=1.9.2

# What the embedded store starts with (domain/src/catalogue.rs); the deployed tables
# start empty.
CATALOGUE=(laptop=1000000 monitor=1000000 keyboard=1000000 mouse=1000000 headphones=1000000 sold-out=0)

die() { echo "error: $*" >&2; exit 2; }
need() { command -v "$1" >/dev/null 2>&1 || die "'$1' not found; $2"; }

api_url() {
  need sam "run: scripts/deploy.sh tools"
  need jq "install jq"
  local url
  url=$(sam list stack-outputs --stack-name "$STACK" --output json |
    jq -r '.[] | select(.OutputKey == "ApiUrl") | .OutputValue')
  [ -n "$url" ] || die "stack $STACK has no ApiUrl output (deployed?)"
  echo "$url"
}

case "${1:-}" in
  tools)
    bash scripts/setup-venv.sh
    .venv/bin/pip install --quiet --disable-pip-version-check "cargo-lambda==$CARGO_LAMBDA_VERSION"
    rustup target add aarch64-unknown-linux-gnu
    ;;
  build)
    need cargo-lambda "run: scripts/deploy.sh tools"
    args=()
    for b in "${BINARIES[@]}"; do args+=(--bin "$b"); done
    # Release, arm64 (Graviton), statically the same code as `cargo run`: the runtime is
    # chosen by AWS_LAMBDA_RUNTIME_API at start, not at compile time.
    cargo lambda build --release --arm64 --workspace "${args[@]}"
    for b in "${BINARIES[@]}"; do
      [ -f "target/lambda/$b/bootstrap" ] || die "target/lambda/$b/bootstrap was not built"
      ls -l "target/lambda/$b/bootstrap"
    done
    ;;
  deploy)
    need sam "run: scripts/deploy.sh tools"
    for b in "${BINARIES[@]}"; do
      [ -f "target/lambda/$b/bootstrap" ] || die "target/lambda/$b/bootstrap missing; run: scripts/deploy.sh build"
    done
    bash scripts/lint-infra.sh
    if [ -f samconfig.toml ]; then
      sam deploy --template-file infra/template.yaml --config-file "$PWD/samconfig.toml"
    else
      sam deploy --guided --template-file infra/template.yaml --stack-name "$STACK" \
        --capabilities CAPABILITY_IAM --resolve-s3 --config-file "$PWD/samconfig.toml"
    fi
    echo "API: $(api_url)"
    ;;
  url)
    api_url
    ;;
  seed)
    need curl "install curl"
    base=$(api_url)
    for entry in "${CATALOGUE[@]}"; do
      product=${entry%%=*} available=${entry#*=}
      status=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "$base/inventory/$product" \
        -H 'Content-Type: application/json' -d "{\"available\": $available}")
      [ "$status" = 200 ] || die "PUT /inventory/$product answered $status"
      echo "inventory $product = $available"
    done
    ;;
  test)
    # Cold starts and STANDARD transitions make a saga slower than in-process: wait longer.
    BASE_URL=$(api_url) SAGA_TIMEOUT=${SAGA_TIMEOUT:-90} bash test-api.sh
    ;;
  delete)
    need sam "run: scripts/deploy.sh tools"
    sam delete --stack-name "$STACK"
    ;;
  *)
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
