#!/usr/bin/env bash
# Build, deploy, seed, test and remove the AWS deployment (infra/template.yaml).
#
#   scripts/deploy.sh tools     install cargo-lambda (with zig) and SAM CLI into .venv, checkov into
#                               .venv-checkov, add the arm64 target
#   scripts/deploy.sh build     cargo lambda build --release --arm64 of the five Lambda binaries
#   scripts/deploy.sh deploy    sam deploy --guided (first time; later runs reuse samconfig.toml)
#   scripts/deploy.sh url       print the API URL of the deployed stack
#   scripts/deploy.sh admin-token  print an admin access token: the operator client's client
#                               credentials at the stack's token endpoint, scope orders/admin
#                               (needs the AWS CLI; only with the stack's own user pool)
#   scripts/deploy.sh seed      PUT the catalogue the embedded store seeds itself with; needs
#                               TOKEN=<admin access token> (PUT /inventory is admin-only)
#   scripts/deploy.sh test      run test-api.sh against the deployed API, passing it TOKEN (a
#                               customer's access token) and ADMIN_TOKEN (an admin's)
#   scripts/deploy.sh delete    delete the stack; its six tables and its user pool
#                               (DeletionPolicy Retain, deletion protection on) stay with their
#                               data: it names them and prints the commands that remove them
#
# Env: STACK (default orders), AWS_REGION / AWS_PROFILE as the AWS CLI understands them;
# TOKEN / ADMIN_TOKEN as above: every route but /health and /openapi.json needs
# `Authorization: Bearer <token>` (docs/DEPLOY.md, "Identity on AWS").
# Needs AWS credentials for deploy/url/admin-token/seed/test/delete; build and tools need none.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH" SAM_CLI_TELEMETRY=0
STACK=${STACK:-orders}
BINARIES=(orders orders-processor orders-steps orders-warehouse orders-payment-sim)
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

# The names of the stack's tables, from its outputs (<Logical>TableName).
stack_tables() {
  sam list stack-outputs --stack-name "$STACK" --output json |
    jq -r '.[] | select(.OutputKey | endswith("TableName")) | .OutputValue'
}

# One output of the stack, empty when it has none of that name.
stack_output() {
  sam list stack-outputs --stack-name "$STACK" --output json |
    jq -r --arg key "$1" '.[] | select(.OutputKey == $key) | .OutputValue'
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
    # cargo-lambda writes under cargo's target directory, which CARGO_TARGET_DIR moves (the
    # template's CodeUris point at target/, so only a build for `deploy` must use the default).
    out=${CARGO_TARGET_DIR:-target}/lambda
    for b in "${BINARIES[@]}"; do
      [ -f "$out/$b/bootstrap" ] || die "$out/$b/bootstrap was not built"
      ls -l "$out/$b/bootstrap"
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
  admin-token)
    need sam "run: scripts/deploy.sh tools"
    need jq "install jq"
    need curl "install curl"
    need aws "install the AWS CLI"
    pool=$(stack_output UserPoolId) client=$(stack_output OperatorClientId)
    endpoint=$(stack_output TokenEndpoint)
    [ -n "$pool" ] && [ -n "$client" ] && [ -n "$endpoint" ] ||
      die "stack $STACK has no user pool outputs (deployed with an external JwtIssuer?)"
    secret=$(aws cognito-idp describe-user-pool-client --user-pool-id "$pool" \
      --client-id "$client" --query UserPoolClient.ClientSecret --output text)
    # The secret goes to curl on its standard input, never on a command line.
    token=$(printf 'user = "%s:%s"\n' "$client" "$secret" |
      curl -sS -K - -X POST "$endpoint" \
        -H 'Content-Type: application/x-www-form-urlencoded' \
        -d grant_type=client_credentials -d scope=orders/admin |
      jq -r '.access_token // empty')
    [ -n "$token" ] || die "the token endpoint $endpoint issued no access token"
    echo "$token"
    ;;
  seed)
    need curl "install curl"
    base=$(api_url)
    auth=()
    [ -n "${TOKEN:-}" ] && auth=(-H "Authorization: Bearer $TOKEN")
    for entry in "${CATALOGUE[@]}"; do
      product=${entry%%=*} available=${entry#*=}
      status=$(curl -sS -o /dev/null -w '%{http_code}' -X PUT "$base/inventory/$product" \
        "${auth[@]}" -H 'Content-Type: application/json' -d "{\"available\": $available}")
      case "$status" in
        200) ;;
        401 | 403) die "PUT /inventory/$product answered $status: TOKEN must be an admin's access token (TOKEN=\$(scripts/deploy.sh admin-token))" ;;
        *) die "PUT /inventory/$product answered $status" ;;
      esac
      echo "inventory $product = $available"
    done
    ;;
  test)
    # Cold starts and STANDARD transitions make a saga slower than in-process: wait longer.
    # Identity is on: test-api.sh sends TOKEN (a customer) and ADMIN_TOKEN (an admin).
    BASE_URL=$(api_url) SAGA_TIMEOUT=${SAGA_TIMEOUT:-90} \
      TOKEN=${TOKEN:-} ADMIN_TOKEN=${ADMIN_TOKEN:-} bash test-api.sh
    ;;
  delete)
    need sam "run: scripts/deploy.sh tools"
    need jq "install jq"
    # The tables are read from the stack before it goes (its outputs name each one).
    tables=()
    while IFS= read -r name; do
      [ -n "$name" ] && tables+=("$name")
    done < <(stack_tables)
    [ "${#tables[@]}" -gt 0 ] || die "no table outputs on stack $STACK (deployed? AWS_REGION?)"
    # The user pool (absent with an external JwtIssuer) is kept the same way.
    pool=$(stack_output UserPoolId)
    echo "Deleting stack $STACK. These tables are NOT deleted with it (DeletionPolicy Retain,"
    echo "deletion protection on); they keep their data:"
    printf '  %s\n' "${tables[@]}"
    [ -z "$pool" ] || echo "Nor is its Cognito user pool $pool, with its users."
    sam delete --stack-name "$STACK"
    if sam list stack-outputs --stack-name "$STACK" --output json >/dev/null 2>&1; then
      die "stack $STACK still exists (deletion declined or failed); nothing was removed"
    fi
    echo "Stack $STACK is deleted. Left behind, with their data:"
    printf '  %s\n' "${tables[@]}"
    echo "A new stack named $STACK cannot be created while they exist. To remove them for good:"
    region=${AWS_REGION:+ --region $AWS_REGION}
    for name in "${tables[@]}"; do
      echo "  aws dynamodb update-table --table-name $name --no-deletion-protection-enabled$region"
      echo "  aws dynamodb delete-table --table-name $name$region"
    done
    if [ -n "$pool" ]; then
      echo "Left behind too: the user pool $pool and its users (a new stack creates a new pool)."
      echo "To remove it for good (update-user-pool resets the settings it is not given):"
      echo "  aws cognito-idp update-user-pool --user-pool-id $pool --deletion-protection INACTIVE$region"
      echo "  aws cognito-idp delete-user-pool --user-pool-id $pool$region"
    fi
    ;;
  *)
    sed -n '2,23p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
