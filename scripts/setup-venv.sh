#!/usr/bin/env bash
# Creates the Python environments of the repository root (safe to re-run: pip skips what is
# already installed at the pinned version):
#   .venv          the tools pinned in scripts/requirements-dev.txt: moto server (the AWS
#                  emulator the AWS-path tests start), cfn-lint and SAM CLI (scripts/lint-infra.sh)
#   .venv-checkov  checkov (scripts/requirements-checkov.txt), in a venv of its own because it
#                  pins boto3==1.35.49 and aws-sam-cli pins boto3[crt]==1.43.108
# It also installs Debian's chromium and chromium-driver when they are missing and it runs as
# root (the console's browser test drives them with selenium); otherwise it says what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium > /dev/null || ! command -v chromedriver > /dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get > /dev/null; then
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null \
            || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver > /dev/null; }
    else
        echo "chromium and chromium-driver are missing: the console's browser test needs them" >&2
    fi
fi
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-dev.txt
[ -x .venv-checkov/bin/python ] || python3 -m venv .venv-checkov
.venv-checkov/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-checkov.txt
