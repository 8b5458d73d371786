#!/usr/bin/env bash
# Builds vigilo and runs every check and test: the README's test command, and what CI runs.
#
# Installs what the tests need first (nothing beyond Rust today: SQLite is compiled in and every
# test runs offline). One profile (release) serves the tests and the binary they drive, so the
# crate graph compiles once.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null; then
    echo "vigilo needs Rust: https://rustup.rs" >&2
    exit 1
fi
if ! command -v cc >/dev/null; then
    # The bundled SQLite is C.
    apt-get update -qq && apt-get install -y -qq --no-install-recommends gcc libc6-dev
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --release --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --release --workspace --locked --lib --bins --tests 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f; exit (f > 0) }' "$log"
