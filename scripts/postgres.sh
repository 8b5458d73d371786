#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the tests and the benchmarks: `initdb` and `pg_ctl` from
# Debian's postgresql, in a folder of its own, on a free loopback port, trusting local users.
#
#   scripts/postgres.sh start DIR [TLS]  # makes and starts the cluster; prints its postgres:// URL
#                                         # (TLS: a folder with cert.pem and key.pem: TLS on)
#   scripts/postgres.sh stop DIR    # stops it (the folder can then be deleted)
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user the
# package creates, in a folder of its own under /tmp (DIR, perhaps in a folder only root may
# enter, then holds its name, `cluster`, and a link to its log, `server.log`).
set -euo pipefail
command=${1:?start or stop}
dir=${2:?a folder for the cluster}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[[ -x "$bin/initdb" ]] || { echo "postgres.sh: no PostgreSQL (apt install postgresql)" >&2; exit 1; }
as_owner() {
    if [[ $(id -u) == 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi
}
cluster() {
    if [[ -f "$dir/cluster" ]]; then cat "$dir/cluster"; else echo "$dir"; fi
}
case "$command" in
start)
    mkdir -p "$dir"
    if [[ $(id -u) == 0 ]]; then
        mktemp -d /tmp/vigilo-pg.XXXXXX > "$dir/cluster"
        chown postgres: "$(cluster)"
        ln -sf "$(cluster)/server.log" "$dir/server.log"
    fi
    c=$(cluster)
    tls=()
    if [[ -n "${3:-}" ]]; then
        cp "$3/cert.pem" "$3/key.pem" "$c/"
        chmod 600 "$c/key.pem"
        [[ $(id -u) == 0 ]] && chown postgres: "$c/cert.pem" "$c/key.pem"
        tls=(-c ssl=on -c "ssl_cert_file=$c/cert.pem" -c "ssl_key_file=$c/key.pem")
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$c/data" -U vigilo --auth=trust --no-sync -E UTF8 \
        --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    # Loopback only, no unix socket to clash with a system cluster's; fsync off: a test
    # cluster's data need not survive a power cut.
    as_owner "$bin/pg_ctl" -D "$c/data" -l "$c/server.log" -w -t 60 \
        -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=300 ${tls[*]}" \
        start >/dev/null || { cat "$c/server.log" >&2; exit 1; }
    echo "postgres://vigilo@127.0.0.1:$port/postgres"
    ;;
stop)
    c=$(cluster)
    as_owner "$bin/pg_ctl" -D "$c/data" -m immediate stop >/dev/null 2>&1 || true
    if [[ "$c" != "$dir" ]]; then rm -rf "$c"; fi
    ;;
*)
    echo "postgres.sh: start or stop, not $command" >&2
    exit 2
    ;;
esac
