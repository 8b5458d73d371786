#!/usr/bin/env bash
# The fleet's figures in the README ("Fleet: how big, how fast"): a real nats-server and a real
# hub on this machine, `vigilo fleet simulate` for the agents; each run on a fresh bus and hub.
#
#   scripts/fleet-bench.sh [--postgres] [--drain | --rollout] [VIGILO]
#
# --drain runs the drain alone (the hub's own ingest; quick to compare two builds side by side);
# --rollout the rollouts alone.
#
# With --postgres the hub keeps its store in a throwaway PostgreSQL cluster (scripts/postgres.sh,
# on the same machine), emptied for each run, and the saturation runs (the simulator's own
# limit, whatever the hub's store) are left out.
#
# 1. latency: 1,000 agents, 30k alarms paced at 1,000 alarms/s, the hub running;
# 2. saturation: 1,000 and 10,000 agents, 90k alarms committed as fast as they can, the hub
#    running;
# 3. drain: 10,000 agents forward 90k alarms while the hub is stopped; then the hub starts and
#    takes the backlog from its consumer (its own ingest rate, nothing else competing);
# 4. rollout: 1,000 and 10,000 agents watching the publications; a signed pack published
#    through the hub (1.0.0, then 1.1.0 over it): until every agent has fetched, verified and
#    loaded it, and until the hub's rollout counts them all.
set -euo pipefail
cd "$(dirname "$0")/.."
POSTGRES=
DRAIN_ONLY= ROLLOUT_ONLY=
if [[ "${1:-}" == --postgres ]]; then POSTGRES=1; shift; fi
if [[ "${1:-}" == --drain ]]; then DRAIN_ONLY=1; shift; fi
if [[ "${1:-}" == --rollout ]]; then ROLLOUT_ONLY=1; shift; fi
if [[ -n "${1:-}" ]]; then VIGILO=$1; else cargo build --release -q; VIGILO=$PWD/target/release/vigilo; fi
WORK=$(mktemp -d)
BUS= HUB= SIM= STORE=()
cleanup() {
    for p in $SIM $HUB $BUS; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    [[ -n "$POSTGRES" ]] && scripts/postgres.sh stop "$WORK/pg"
    rm -rf "$WORK"
}
trap cleanup EXIT
if [[ -n "$POSTGRES" ]]; then
    PG=$(scripts/postgres.sh start "$WORK/pg")
    echo "== the hub's store: PostgreSQL at $PG"
fi

start_bus() {
    rm -rf "$WORK/bus" "$WORK/ports"; mkdir -p "$WORK/ports"
    nats-server -js -a 127.0.0.1 -p -1 -sd "$WORK/bus" --ports_file_dir "$WORK/ports" 2> "$WORK/bus.log" &
    BUS=$!
    for _ in $(seq 300); do compgen -G "$WORK/ports/*.ports" > /dev/null && break; sleep 0.1; done
    URL=$(python3 -c 'import json,glob,sys; print(json.load(open(glob.glob(sys.argv[1])[0]))["nats"][0])' "$WORK/ports/*.ports")
}
start_hub() {
    rm -f "$WORK/hub/admin-address"
    RUST_LOG=vigilo=info "$VIGILO" --data-dir "$WORK/hub" hub --fleet "$URL" --listen 127.0.0.1:0 \
        "${STORE[@]}" 2> "$WORK/hub.log" &
    HUB=$!
    # Up once it takes alarms (its stream and consumer made).
    for _ in $(seq 300); do grep -q "taking alarms" "$WORK/hub.log" && break; sleep 0.1; done
}
stop() { kill "$1"; wait "$1" 2>/dev/null || true; }
memory() { # NAME PID: its peak resident set
    echo "$1 $(awk '/VmHWM/ {printf "%.0f MiB", $2/1024}' "/proc/$2/status")"
}
fresh() {
    [[ -n "$HUB" ]] && stop "$HUB"; [[ -n "$BUS" ]] && stop "$BUS"; rm -rf "$WORK/hub"
    if [[ -n "$POSTGRES" ]]; then
        # A new database for each run.
        db="run$RANDOM"
        psql "$PG" -qc "CREATE DATABASE $db" > /dev/null
        STORE=(--store "${PG%/*}/$db")
    fi
    start_bus; start_hub
}
simulate() { "$VIGILO" fleet simulate --fleet "$URL" --hub-data "$WORK/hub" --watch bus=$BUS --watch hub=$HUB "$@"; }

rollout() { # N: a pack, 1.0.0 then 1.1.0, to N agents
    local dir=$WORK/rollout
    if [[ ! -d $dir ]]; then
        mkdir -p "$dir"
        "$VIGILO" pack keygen -o "$dir/admin" > /dev/null 2>&1
        for v in 1.0.0 1.1.0; do
            mkdir -p "$dir/dlp-$v"
            cat > "$dir/dlp-$v/pack.toml" <<EOF
[pack]
name = "dlp"
version = "$v"

[[alarm]]
name = "Copy to USB"
kind = "usb"
repeat = "every_match"
conditions = [ { field = "action", op = "eq", value = "file_written" } ]
risk = 3
escalate = [ { after = 3, within = "1h", risk = 6 } ]

[[alarm]]
name = "Large copy to USB"
kind = "usb"
conditions = [ { field = "action", op = "eq", value = "file_written" },
               { field = "bytes", op = "gt", value = 100000000 } ]
risk = 8
EOF
            "$VIGILO" pack build "$dir/dlp-$v" -o "$dir/dlp-$v.tar.gz" 2> /dev/null
            "$VIGILO" pack sign "$dir/dlp-$v.tar.gz" --key "$dir/admin.key" 2> /dev/null
        done
    fi
    echo; echo "== rollout: $1 agents"
    fresh
    simulate --agents "$1" --publish "$dir/dlp-1.0.0.tar.gz" --publish "$dir/dlp-1.1.0.tar.gz" \
        --trusted-key "$dir/admin.pub"
}
if [[ -n "$ROLLOUT_ONLY" ]]; then
    for n in ${ROLLOUT_AGENTS:-1000 10000}; do rollout "$n"; done
    exit 0
fi

if [[ -z "$DRAIN_ONLY" ]]; then
echo "== latency: 1000 agents, 1000 alarms/s"
fresh
simulate --agents 1000 --days 10 --rate 1000
fi

for n in $([[ -n "$POSTGRES$DRAIN_ONLY" ]] || echo 1000 10000); do
    echo; echo "== saturation: $n agents, as fast as they commit"
    fresh
    simulate --agents "$n" --days $((30000 / n))
done

echo; echo "== drain: 10000 agents forward while the hub is stopped; then it starts"
fresh
stop "$HUB"
"$VIGILO" fleet simulate --fleet "$URL" --hub-data "$WORK/hub" --agents 10000 --days 3 > "$WORK/sim.out" &
SIM=$!
until grep -q "committed and acknowledged" "$WORK/sim.out"; do
    kill -0 "$SIM" 2>/dev/null || { cat "$WORK/sim.out"; exit 1; }
    sleep 0.2
done
start_hub
wait "$SIM"; SIM=
cat "$WORK/sim.out"
memory "bus (peak)" "$BUS"
memory "hub (peak)" "$HUB"
