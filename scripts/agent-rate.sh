#!/usr/bin/env bash
# The running agent end to end: `vigilo run --events FILE` with the standard pack (the JSONL
# reader thread, the bounded queue, the pipeline thread, every alarm committed to SQLite as it
# fires, the action lanes working beside it), timed from process start until `vigilo status`
# counts every event.
#
#   scripts/agent-rate.sh [EVENTS] [VIGILO]     # EVENTS generated: vigilo synth events --count
#
# Pass another build as VIGILO to compare side by side.
set -euo pipefail
COUNT=${1:-200000}
cd "$(dirname "$0")/.."
VIGILO=${2:-}
if [[ -z "$VIGILO" ]]; then
    cargo build --release -q
    VIGILO=$PWD/target/release/vigilo
fi
WORK=$(mktemp -d)
trap 'kill "$PID" 2>/dev/null || true; rm -rf "$WORK"' EXIT
"$VIGILO" synth events --count "$COUNT" > "$WORK/events.jsonl"
START=$(date +%s.%N)
"$VIGILO" --data-dir "$WORK/data" run --events "$WORK/events.jsonl" --no-x11 --no-browser \
    --no-usb --listen 127.0.0.1:0 >/dev/null 2>&1 &
PID=$!
until n=$("$VIGILO" --data-dir "$WORK/data" status --json 2>/dev/null |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["events"])' 2>/dev/null) &&
    [[ "$n" -ge "$COUNT" ]]; do
    sleep 0.05
done
END=$(date +%s.%N)
ALARMS=$("$VIGILO" --data-dir "$WORK/data" status --json |
    python3 -c 'import json, sys; print(json.load(sys.stdin)["alarms"])')
PEAK=$(awk '/VmHWM/ {print $2}' "/proc/$PID/status")
python3 -c "print(f'{$COUNT} events in {$END - $START:.2f} s: {$COUNT / ($END - $START):,.0f} events/s, {$ALARMS} alarms stored, peak RSS {$PEAK / 1024:.1f} MB')"
