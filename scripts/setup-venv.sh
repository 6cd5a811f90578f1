#!/usr/bin/env bash
# Creates the Python environments of the repository root (safe to re-run: pip skips what is
# already installed at the pinned version):
#   .venv          the tools pinned in scripts/requirements-dev.txt: moto server (the AWS
#                  emulator the AWS-path tests start), cfn-lint and SAM CLI (scripts/lint-infra.sh)
#   .venv-checkov  checkov (scripts/requirements-checkov.txt), in a venv of its own because it
#                  pins boto3==1.35.49 and aws-sam-cli pins boto3[crt]==1.43.108
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-dev.txt
[ -x .venv-checkov/bin/python ] || python3 -m venv .venv-checkov
.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-checkov.txt
