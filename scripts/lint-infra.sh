#!/usr/bin/env bash
# Offline checks of the AWS deployment template: cfn-lint (informational rules included, so
# that I3011, deletion policies on stateful resources, is enforced too), then
# `sam validate --lint` (SAM's transform plus cfn-lint on the result), then checkov (security
# and reliability policies; each finding must be fixed or skipped in the template with its
# reason under the resource's Metadata.checkov.skip). Any finding of any of the three fails.
# None needs AWS: the region and credentials below are placeholders that only satisfy the
# CLI's start-up; checkov runs with --skip-download, so it fetches nothing either.
# The tools come from .venv and .venv-checkov (scripts/setup-venv.sh installs the pinned
# versions; checkov has its own venv because it pins a boto3 that SAM CLI's pin excludes).
# The template's consistency with the code is checked by `cargo test --test process template_contract`.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.venv/bin
checkov=.venv-checkov/bin/checkov
for tool in "$venv/cfn-lint" "$venv/sam" "$checkov"; do
  [ -x "$tool" ] || { echo "error: $tool missing; run scripts/setup-venv.sh" >&2; exit 2; }
done
export AWS_DEFAULT_REGION=us-east-1 AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=offline AWS_SECRET_ACCESS_KEY=offline
export SAM_CLI_TELEMETRY=0 SAM_CLI_CONTACT_TELEMETRY=0
unset AWS_PROFILE AWS_SESSION_TOKEN

template=${1:-infra/template.yaml}
# cfn-lint reports errors and warnings by default; `--include-checks I` adds the informational
# rules, and any of them makes it exit non-zero.
echo "cfn-lint $("$venv/cfn-lint" --version | awk '{print $2}') (E, W and I rules): $template"
"$venv/cfn-lint" --include-checks I -- "$template"
echo "sam validate --lint: $template"
"$venv/sam" validate --lint --template "$template"
echo "checkov $("$checkov" --version): $template"
"$checkov" --file "$template" --framework cloudformation --compact --quiet --skip-download
