#!/usr/bin/env bash
# Creates .venv in the repository root with the Python tools the tests use (pinned in
# scripts/requirements-dev.txt): moto server (the AWS emulator the AWS-path tests start).
# Safe to re-run: pip skips what is already installed at the pinned version.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-dev.txt
