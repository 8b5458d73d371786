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
# The bundled SQLite is C; example plugins are built from source for wasm32 with Debian's
# rustc-web (rustup cannot add targets on these machines; elsewhere `rustup target add
# wasm32-unknown-unknown` serves the same purpose and `vigilo plugin build` uses it).
missing=()
command -v cc >/dev/null || missing+=(gcc libc6-dev)
if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
    for pkg in rustc-web cargo-web rust-web-src lld-22; do
        dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
    done
fi
if ((${#missing[@]})); then
    echo "== installing ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
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
