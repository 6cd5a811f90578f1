#!/usr/bin/env bash
# Offline checks of the AWS deployment template: cfn-lint, then `sam validate --lint` (SAM's
# transform plus cfn-lint on the result). Neither needs AWS: the region and credentials below
# are placeholders that only satisfy the CLI's start-up, and nothing here opens a connection
# to AWS. The tools come from .venv (scripts/setup-venv.sh installs the pinned versions).
# The template's consistency with the code is checked by `cargo test --test process template_contract`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv/bin
for tool in cfn-lint sam; do
  [ -x "$venv/$tool" ] || { echo "error: $venv/$tool missing; run scripts/setup-venv.sh" >&2; exit 2; }
done
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline
export SAM_CLI_TELEMETRY=0 SAM_CLI_CONTACT_TELEMETRY=0
unset AWS_PROFILE AWS_SESSION_TOKEN

template=${1:-infra/template.yaml}
echo "cfn-lint $("$venv/cfn-lint" --version | awk '{print $2}'): $template"
"$venv/cfn-lint" "$template"
echo "sam validate --lint: $template"
"$venv/sam" validate --lint --template "$template"
