#!/usr/bin/env bash
# The agent's footprint on a Wayland desktop (the X11 one is scripts/footprint.sh): CPU and
# memory while the desktop is idle, and the latency from a window title changing to its alarm
# being stored; then the screen recorder's cost, as scripts/footprint.sh measures it on X11: a
# terminal printing the time every 50 ms for BUSY_SECONDS with the standard pack loaded (its
# anonymiser alarm wants 15 s of video) and again with it disabled.
#
#   scripts/footprint-wayland.sh [IDLE_SECONDS] [TITLE_CHANGES] [BUSY_SECONDS]
#   VIGILO=OLD/vigilo scripts/footprint-wayland.sh …    # another build, side by side
#
# Starts its own headless sway (as the unprivileged user the tests use, `vigilo-wayland`: sway
# will not run as root) with one foot terminal that sets its title to each line written to a
# FIFO, runs `vigilo run` (the standard pack and a test alarm that fires on every title change),
# measures, and stops everything. Needs root and what scripts/test.sh installs (sway, foot).
set -euo pipefail
IDLE=${1:-60}
CHANGES=${2:-1000}
BUSY=${3:-30}
USER_=vigilo-wayland
cd "$(dirname "$0")/.."
if [[ -z "${VIGILO:-}" ]]; then
    cargo build --release -q
    VIGILO=$PWD/target/release/vigilo
fi
id "$USER_" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$USER_"
WORK=$(mktemp -d)
chmod 755 "$WORK"
RUN=$WORK/run
mkdir "$RUN" && chown "$USER_" "$RUN" && chmod 700 "$RUN"
cleanup() {
    [[ -n "${AGENT:-}" ]] && kill "$AGENT" 2>/dev/null
    pkill -u "$USER_" -f "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
as_user() { runuser -u "$USER_" -- env -i "XDG_RUNTIME_DIR=$RUN" "HOME=$RUN" PATH=/usr/bin:/bin WAYLAND_DISPLAY=wayland-1 "$@"; }

echo "output HEADLESS-1 resolution 1280x800" > "$WORK/sway.conf"
as_user WLR_BACKENDS=headless WLR_LIBINPUT_NO_DEVICES=1 WLR_RENDERER=pixman \
    sway -c "$WORK/sway.conf" >/dev/null 2>&1 &
for _ in $(seq 200); do [[ -S $RUN/wayland-1 ]] && ls "$RUN"/sway-ipc.* >/dev/null 2>&1 && break; sleep 0.05; done
export WAYLAND_DISPLAY=$RUN/wayland-1 SWAYSOCK
SWAYSOCK=$(ls "$RUN"/sway-ipc.*)
mkfifo "$RUN/titles" && chown "$USER_" "$RUN/titles"
as_user foot --title bench-0 sh -c "exec 3<'$RUN/titles'; while read -r t <&3; do printf '\\033]2;%s\\007' \"\$t\"; done" \
    >/dev/null 2>&1 &
for _ in $(seq 200); do swaymsg -t get_tree 2>/dev/null | grep -q '"name": "bench-0"' && break; sleep 0.05; done
exec 4> "$RUN/titles"

source scripts/footprint-agent.sh
start_agent
sleep 5 # settle
t0=$(ticks); s0=$(date +%s.%N)
sleep "$IDLE"
t1=$(ticks); s1=$(date +%s.%N)
RSS=$(awk '/VmRSS/ { print $2 }' "/proc/$AGENT/status")
t2=$(ticks); s2=$(date +%s.%N)
for i in $(seq 1 "$CHANGES"); do
    echo "bench-$i" >&4
    sleep 0.02 # people change windows at human pace
done
sleep 2
t3=$(ticks); s3=$(date +%s.%N)
HWM=$(awk '/VmHWM/ { print $2 }' "/proc/$AGENT/status")
"$VIGILO" status --json > "$WORK/status.json"

# A screen that changes all the time: a terminal printing the time every 50 ms, focused.
as_user foot --title bench-scroll sh -c 'while :; do date +%T.%N; sleep 0.05; done' >/dev/null 2>&1 &
for _ in $(seq 200); do swaymsg -t get_tree 2>/dev/null | grep -q '"name": "bench-scroll"' && break; sleep 0.05; done
swaymsg '[title="^bench-scroll$"] focus' >/dev/null
recording=$(busy_screen)
"$VIGILO" status --json > "$WORK/recording.json"
"$VIGILO" pack disable standard >/dev/null
plain=$(busy_screen)
"$VIGILO" pack enable standard >/dev/null
# What one screenshot of this desktop costs (a process of its own: the agent's memory is not in it).
SHOTS=$("$VIGILO" bench --screenshots 20 --json 2>&1 || true)

python3 - "$WORK/status.json" "$IDLE" "$CHANGES" "$HZ" "$RSS" "$HWM" "$t0 $s0 $t1 $s1" "$t2 $s2 $t3 $s3" \
    "$BUSY" "$recording" "$plain" "$WORK/recording.json" "$SHOTS" <<'PY'
import json, sys
status = json.load(open(sys.argv[1]))
idle, changes, hz = sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
rss, hwm = int(sys.argv[5]) / 1024, int(sys.argv[6]) / 1024
def cpu(span):
    t0, s0, t1, s1 = map(float, span.split())
    return (t1 - t0) / hz / (s1 - s0) * 100
lat = status.get("latency") or {}
print(f"source: {status['sources']['wayland']['detail']}")
print(f"idle desktop, {idle} s:          {cpu(sys.argv[7]):.3f} % of a core   (goal < 0.2 %)")
print(f"resident memory idle / peak:  {rss:.1f} MB / {hwm:.1f} MB   (goal < 25 MB)")
print(f"{changes} title changes:           {cpu(sys.argv[8]):.2f} % of a core while they ran")
print(f"title change -> alarm stored: p50 {lat.get('p50_ms')} ms, p99 {lat.get('p99_ms')} ms, "
      f"max {lat.get('max_ms')} ms over {lat.get('count')} alarms")
print(f"alarms stored: {status['alarms']}; shed: {status['shed'] or 'nothing'}")
busy, recording, plain = sys.argv[9], float(sys.argv[10]), float(sys.argv[11])
print(f"scrolling terminal, {busy} s:  {recording:.2f} % of a core recording video, "
      f"{plain:.2f} % without")
print(f"recorder: {json.load(open(sys.argv[12]))['sources']['video']['detail']}")
try:
    shots = json.loads(sys.argv[13])
    print(f"screenshot of {shots['width']}×{shots['height']}: {shots['ms']:.1f} ms median of "
          f"{shots['screenshots']}, {shots['png_kib']:.0f} KiB, bench peak memory "
          f"{shots['peak_rss_kib'] / 1024:.0f} MiB")
except (ValueError, KeyError):
    print(f"screenshot: {sys.argv[13]}")
PY
