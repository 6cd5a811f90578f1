#!/usr/bin/env bash
# Third-party checks of workflow/statemachine.asl.json, beside the project's own loader (which
# `cargo test` runs): npm asl-validator (the ASL JSON schema and its paths) and @wmfs/statelint
# (the ASL specification's rules). statelint wants a URI in every Resource, so it reads a copy
# with each ${...FunctionArn} substitution filled in with a placeholder ARN, as the template's
# DefinitionSubstitutions fill them on deploy. The packages are installed, pinned, into
# target/asl-lint (offline after the first run).
set -euo pipefail
cd "$(dirname "$0")/.."
definition=${1:-workflow/statemachine.asl.json}
tools=target/asl-lint
if [ ! -x "$tools/node_modules/.bin/statelint" ] || [ ! -x "$tools/node_modules/.bin/asl-validator" ]; then
    mkdir -p "$tools"
    npm install --silent --no-audit --no-fund --prefix "$tools" asl-validator@4.0.0 @wmfs/statelint@1.30.0
fi
echo "asl-validator $("$tools/node_modules/.bin/asl-validator" --version): $definition"
"$tools/node_modules/.bin/asl-validator" --json-path "$definition"
filled="$tools/statemachine.filled.json"
sed -E 's/\$\{[A-Za-z]+FunctionArn\}/arn:aws:lambda:us-east-1:123456789012:function:orders-steps/g; s|\$\{WarehouseQueueUrl\}|https://sqs.us-east-1.amazonaws.com/123456789012/orders-warehouse|g' "$definition" > "$filled"
echo "statelint: $definition (substitutions filled)"
"$tools/node_modules/.bin/statelint" "$filled"
echo "statelint: valid"
