#!/usr/bin/env bash
# Builds vigilo and runs every check and test: the README's test command, and what CI runs.
#
# Installs what the tests need first: a C compiler for the bundled SQLite, and the toolchains the
# example plugins are built from source with (wasm32 Rust, clang for wasm32 with wasi-libc,
# `wit-bindgen c`); every test then runs offline. One profile (release) serves the tests and the
# binary they drive, so the crate graph compiles once.
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
# The C example plugin: clang's wasm32 target, its runtime builtins, a libc without stdio needs;
# the minisign tool, which the signature tests check vigilo against.
for pkg in make clang-22 libclang-rt-22-dev-wasm32 wasi-libc minisign; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# The desktop tests: a real X server, window manager, windows and focus changes; Chromium for
# the browser extension and its native host, and chromedriver to drive it through the console.
# The Wayland tests: sway (headless), foot terminals as its windows, pgrep to find them.
for pkg in xvfb openbox xterm xdotool x11-utils chromium chromium-driver sway foot procps; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# The file-write test mounts an ext4 image on a loop device (as root); the systemd unit example
# is checked with systemd-analyze; pop-ups go to dunst on a private session bus.
for pkg in e2fsprogs mount systemd dbus dunst; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# The fleet tests: a real NATS server with JetStream (the bus between agents and the hub); a
# real syslog server (rsyslog, with its TLS driver; openssl makes its test certificates) for the
# SIEM outputs.
# PostgreSQL for a large hub's store (a throwaway cluster, see scripts/postgres.sh). An OCI
# registry (Debian's docker-registry, the CNCF distribution server) for packs pulled by reference.
for pkg in nats-server rsyslog rsyslog-openssl openssl postgresql docker-registry; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
done
# The JavaScript example plugin: componentize-js from the npm registry.
command -v npm >/dev/null || missing+=(nodejs npm)
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

# The e-mail test's SMTP server: aiosmtpd from PyPI.
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
    echo "== installing aiosmtpd (PyPI)"
    python3 -m pip install -q aiosmtpd || python3 -m pip install -q --break-system-packages aiosmtpd
fi

# `wit-bindgen c` generates the C example's bindings from the contract (~2 min to build once).
WIT_BINDGEN_VERSION=0.63.0
if [[ "$(wit-bindgen --version 2>/dev/null)" != *" $WIT_BINDGEN_VERSION"* ]]; then
    echo "== installing wit-bindgen-cli $WIT_BINDGEN_VERSION (C generator only)"
    cargo install --quiet wit-bindgen-cli@"$WIT_BINDGEN_VERSION" --locked \
        --no-default-features --features c
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --release --all-targets --locked -- -D warnings
echo "== cargo test"
log=$(mktemp)
# The store's unit tests run on SQLite and on this throwaway PostgreSQL cluster (the
# end-to-end tests start clusters of their own).
pg=$(mktemp -d)
trap 'scripts/postgres.sh stop "$pg"; rm -rf "$log" "$pg"' EXIT
VIGILO_TEST_POSTGRES=$(scripts/postgres.sh start "$pg")
export VIGILO_TEST_POSTGRES
cargo test --release --workspace --locked --lib --bins --tests 2>&1 | tee "$log"
# One closing line for the whole run, summed over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "%d passed, %d failed\n", p, f; exit (f > 0) }' "$log"
