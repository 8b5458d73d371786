# Sourced by scripts/footprint.sh and scripts/footprint-wayland.sh: starts `vigilo run` ($VIGILO)
# on the desktop the caller started, with its data in $WORK/data and a test alarm that fires on
# every title starting "bench-"; sets AGENT to its PID. `ticks` reads the agent's CPU ticks,
# `busy_screen` its CPU over $BUSY seconds.
start_agent() {
    export VIGILO_DATA_DIR=$WORK/data
    "$VIGILO" run --listen 127.0.0.1:0 --no-usb 2>"${AGENT_LOG:-$WORK/agent.log}" &
    AGENT=$!
    for _ in $(seq 200); do [[ -s "$VIGILO_DATA_DIR/admin-address" ]] && break; sleep 0.05; done
    mkdir -p "$WORK/pack"
    cat > "$WORK/pack/pack.toml" <<'TOML'
[pack]
name = "footprint"
version = "1.0.0"

[[alarm]]
name = "Title seen"
kind = "activity"
repeat = "every_match"
conditions = [ { field = "title", op = "starts_with", value = "bench-" } ]
risk = 1
TOML
    "$VIGILO" pack build "$WORK/pack" -o "$WORK/pack.tar.gz" >/dev/null 2>&1
    "$VIGILO" pack upload "$WORK/pack.tar.gz" >/dev/null
}
ticks() { awk '{ print $14 + $15 }' "/proc/$AGENT/stat"; }
# The agent's CPU, in % of a core, over $BUSY seconds after 2 s to settle.
busy_screen() {
    local t0 s0 t1 s1
    sleep 2
    t0=$(ticks); s0=$(date +%s.%N)
    sleep "$BUSY"
    t1=$(ticks); s1=$(date +%s.%N)
    echo "($t1 - $t0) / $HZ / ($s1 - $s0) * 100" | bc -l
}
HZ=$(getconf CLK_TCK)
