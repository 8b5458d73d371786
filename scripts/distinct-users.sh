#!/usr/bin/env bash
# The live agent's memory after COUNT activity events from as many distinct users and computers
# (a terminal server, a hostile event stream): resident set once every event is evaluated, and
# again a minute later.
#
#   scripts/distinct-users.sh [COUNT] [VIGILO]
#
# VIGILO is the binary to measure (default: this checkout's release build), so that an older
# build can be run side by side.
set -euo pipefail
COUNT=${1:-1000000}
cd "$(dirname "$0")/.."
if [[ -n "${2:-}" ]]; then VIGILO=$2; else cargo build --release -q; VIGILO=$PWD/target/release/vigilo; fi
WORK=$(mktemp -d)
AGENT=
cleanup() { [[ -n "$AGENT" ]] && kill "$AGENT" 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT
python3 - "$COUNT" > "$WORK/events.jsonl" <<'PY'
import sys
for n in range(int(sys.argv[1])):
    s = n * 86400 // int(sys.argv[1])
    print('{"ts":"2026-11-02T%02d:%02d:%02dZ","kind":"activity","username":"user%d","computer":"ws-%d",'
          '"executable":"/usr/bin/xterm","title":"work on ticket %d"}' % (s // 3600, s // 60 % 60, s % 60, n, n, n))
PY
"$VIGILO" --data-dir "$WORK/data" run --listen 127.0.0.1:0 --no-x11 --no-usb --no-browser \
    --events "$WORK/events.jsonl" 2> "$WORK/agent.log" &
AGENT=$!
for _ in $(seq 600); do [[ -s "$WORK/data/admin-address" ]] && break; sleep 0.1; done
URL="http://$(cat "$WORK/data/admin-address")"
TOKEN=$(cat "$WORK/data/admin-token")
started=$(date +%s.%N)
until [[ "$(curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/v1/status" | python3 -c 'import json,sys; print(json.load(sys.stdin)["events"])')" -ge "$COUNT" ]]; do
    sleep 0.5
done
took=$(python3 -c "import time; print(round(time.time() - $started, 1))")
rss() { awk '/VmRSS/ {print $2 / 1024 " MB"}' "/proc/$AGENT/status"; }
echo "events $COUNT evaluated in ${took} s; RSS $(rss); peak $(awk '/VmHWM/ {print $2 / 1024 " MB"}' "/proc/$AGENT/status")"
sleep 60
echo "a minute later: RSS $(rss)"
curl -s -H "Authorization: Bearer $TOKEN" "$URL/api/v1/status" | python3 -c 'import json,sys; print("shed", json.load(sys.stdin)["shed"])'
