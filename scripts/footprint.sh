#!/usr/bin/env bash
# The agent's footprint on a real (virtual) desktop: CPU and memory while the desktop is idle,
# and the latency from a window title changing to its alarm being stored.
#
#   scripts/footprint.sh [IDLE_SECONDS] [TITLE_CHANGES] [BUSY_SECONDS]
#   VIGILO=OLD/vigilo scripts/footprint.sh …    # another build, to compare side by side
#
# Then the screen recorder's cost: a terminal scrolling text for BUSY_SECONDS with the standard
# pack loaded (its anonymiser alarm wants 15 s of video, so the screen is recorded), and the
# same again with the standard pack disabled (nothing recorded).
#
# Starts its own Xvfb + openbox + xterm, runs `vigilo run` (the standard pack and one test
# alarm that fires on every title change), measures, and stops everything. Needs what
# scripts/test.sh installs (xvfb openbox xterm xdotool).
set -euo pipefail
IDLE=${1:-60}
CHANGES=${2:-1000}
BUSY=${3:-30}
cd "$(dirname "$0")/.."
if [[ -z "${VIGILO:-}" ]]; then
    cargo build --release -q
    VIGILO=$PWD/target/release/vigilo
fi
WORK=$(mktemp -d)
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT

exec 3> "$WORK/display"
Xvfb -displayfd 3 -screen 0 1280x800x24 -nolisten tcp 2>/dev/null &
PIDS+=($!)
for _ in $(seq 100); do [[ -s "$WORK/display" ]] && break; sleep 0.05; done
export DISPLAY=":$(cat "$WORK/display")"
openbox >/dev/null 2>&1 &
PIDS+=($!)
for _ in $(seq 100); do xprop -root _NET_SUPPORTING_WM_CHECK 2>/dev/null | grep -q "window id" && break; sleep 0.05; done
xterm -fn fixed -T bench-0 -e sleep 100000 &
PIDS+=($!)
for _ in $(seq 100); do xdotool search --name '^bench-0$' >/dev/null 2>&1 && break; sleep 0.05; done
WIN=$(xdotool search --name '^bench-0$' | head -1)
xdotool windowactivate --sync "$WIN"

source scripts/footprint-agent.sh
start_agent
PIDS+=($AGENT)
sleep 5 # settle
t0=$(ticks); s0=$(date +%s.%N)
sleep "$IDLE"
t1=$(ticks); s1=$(date +%s.%N)
RSS=$(awk '/VmRSS/ { print $2 }' "/proc/$AGENT/status")
idle_cpu=$(echo "($t1 - $t0) / $HZ / ($s1 - $s0) * 100" | bc -l)

t2=$(ticks); s2=$(date +%s.%N)
for i in $(seq 1 "$CHANGES"); do
    xdotool set_window --name "bench-$i" "$WIN"
    sleep 0.02 # people change windows at human pace; back-to-back changes measure the spawn storm
done
sleep 2
t3=$(ticks); s3=$(date +%s.%N)
busy_cpu=$(echo "($t3 - $t2) / $HZ / ($s3 - $s2) * 100" | bc -l)
HWM=$(awk '/VmHWM/ { print $2 }' "/proc/$AGENT/status")
STATUS=$("$VIGILO" status --json)

# A screen that changes all the time: a terminal printing the time every 50 ms.
xterm -fn fixed -T bench-scroll -e sh -c 'while :; do date +%T.%N; sleep 0.05; done' &
PIDS+=($!)
for _ in $(seq 100); do xdotool search --name '^bench-scroll$' >/dev/null 2>&1 && break; sleep 0.05; done
xdotool windowactivate --sync "$(xdotool search --name '^bench-scroll$' | head -1)"
recording_cpu=$(busy_screen)
RECORDER=$("$VIGILO" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["sources"]["video"]["detail"])')
"$VIGILO" pack disable standard >/dev/null
plain_cpu=$(busy_screen)
"$VIGILO" pack enable standard >/dev/null

python3 - "$STATUS" "$idle_cpu" "$busy_cpu" "$RSS" "$HWM" "$IDLE" "$CHANGES" "$recording_cpu" "$plain_cpu" "$BUSY" "$RECORDER" <<'PY'
import json, sys
status = json.loads(sys.argv[1])
idle_cpu, busy_cpu = float(sys.argv[2]), float(sys.argv[3])
rss, hwm = int(sys.argv[4]) / 1024, int(sys.argv[5]) / 1024
idle, changes = sys.argv[6], sys.argv[7]
recording_cpu, plain_cpu, busy, recorder = float(sys.argv[8]), float(sys.argv[9]), sys.argv[10], sys.argv[11]
lat = status.get("latency") or {}
print(f"idle desktop, {idle} s:          {idle_cpu:.3f} % of a core   (goal < 0.2 %)")
print(f"resident memory idle / peak:  {rss:.1f} MB / {hwm:.1f} MB   (goal < 25 MB)")
print(f"{changes} title changes:           {busy_cpu:.2f} % of a core while they ran")
print(f"title change -> alarm stored: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms, "
      f"max {lat.get('max_ms')} ms over {lat.get('count')} alarms   (goal p99 < 2 ms)")
print(f"alarms stored: {status['alarms']}; shed: {status['shed'] or 'nothing'}")
print(f"scrolling terminal, {busy} s:  {recording_cpu:.2f} % of a core recording video, "
      f"{plain_cpu:.2f} % without")
print(f"recorder: {recorder}")
PY
