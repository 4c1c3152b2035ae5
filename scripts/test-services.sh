#!/usr/bin/env bash
# The real servers the tests run against: a private Redis and a private
# PostgreSQL cluster, on 127.0.0.1 only, on free ports, with their state under
# .test-services/ in this checkout (gitignored).
#
#   scripts/test-services.sh start [--no-install]   install if missing (apt), start, or reuse running ones
#   scripts/test-services.sh stop                   stop the servers this script started (by their PIDs)
#   scripts/test-services.sh status                 print the state file
#
# `make test` runs `start`, which installs Debian's redis-server and postgresql
# when their binaries are missing (CI is a fresh Debian machine: nothing
# installed by hand survives). tests/conftest.py runs `start --no-install` when
# a test first needs a server, so `pytest` alone also works once they are
# installed. The ports are written to .test-services/state.env, which the
# fixtures read: several checkouts on one machine each get their own servers.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
STATE_DIR="$ROOT/.test-services"
STATE="$STATE_DIR/state.env"
INSTALL=1

log() { echo "test-services: $*" >&2; }
die() { log "$*"; exit 1; }

free_port() {
    # Bind port 0 and report what the kernel chose; the window until the
    # server binds it is tiny, and a failed start is retried on a new port.
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# A PID is ours only if it is alive and still runs the program we started
# (PIDs are reused after a reboot or a crash).
pid_runs() {
    local pid="$1" prog="$2"
    [[ -n "$pid" && -r "/proc/$pid/cmdline" ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q "$prog"
}

apt_install() {
    [[ $INSTALL == 1 ]] || die "$1 is not installed (run 'make test-services' or: apt-get install -y $1)"
    [[ $(id -u) == 0 ]] || die "$1 is not installed and installing it needs root: sudo apt-get install -y $1"
    log "installing $1 from Debian"
    if [[ -z "${APT_UPDATED:-}" ]]; then
        DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}

# The newest Debian PostgreSQL server binaries; not whatever is on PATH (a
# hand-made link there would not exist on a fresh machine).
pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
    [[ -n "$d" && -x "$d/postgres" && -x "$d/initdb" && -x "$d/pg_ctl" ]] && echo "$d"
}

# PostgreSQL refuses to run as root: as root, run it as the package's
# `postgres` user (or `nobody`); otherwise as ourselves.
pg_user() {
    if [[ $(id -u) != 0 ]]; then id -un
    elif id postgres >/dev/null 2>&1; then echo postgres
    else echo nobody
    fi
}

as_pg() {
    if [[ $(id -u) == 0 ]]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

load_state() {
    REDIS_PORT="" REDIS_PID="" PG_PORT="" PG_PID="" PG_DATA="" PG_USER=""
    # shellcheck disable=SC1090
    [[ -f "$STATE" ]] && source "$STATE"
    return 0
}

write_state() {
    mkdir -p "$STATE_DIR"
    cat >"$STATE.tmp" <<EOF
REDIS_PORT=$REDIS_PORT
REDIS_PID=$REDIS_PID
REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
PG_PORT=$PG_PORT
PG_PID=$PG_PID
PG_DATA=$PG_DATA
PG_USER=$PG_USER
PG_URL=postgresql://$PG_USER@127.0.0.1:$PG_PORT/postgres
EOF
    mv "$STATE.tmp" "$STATE"
}

redis_ok() { pid_runs "$REDIS_PID" redis-server && redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null | grep -q PONG; }

start_redis() {
    if redis_ok; then log "redis reused on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"; return; fi
    command -v redis-server >/dev/null && command -v redis-cli >/dev/null || apt_install redis-server
    local dir="$STATE_DIR/redis" attempt
    mkdir -p "$dir"
    for attempt in 1 2 3; do
        REDIS_PORT=$(free_port)
        rm -f "$dir/redis.pid"
        # No persistence: test data is thrown away; protected mode and the
        # 127.0.0.1 bind keep it private to this machine.
        redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes \
            --daemonize yes --pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --dir "$dir" \
            --save "" --appendonly no 9>&- >&2 || true
        for _ in $(seq 50); do
            REDIS_PID=$(cat "$dir/redis.pid" 2>/dev/null || true)
            if redis_ok; then log "redis started on 127.0.0.1:$REDIS_PORT (pid $REDIS_PID)"; return; fi
            sleep 0.1
        done
        log "redis did not start on port $REDIS_PORT (attempt $attempt): $(tail -n 3 "$dir/redis.log" 2>/dev/null)"
    done
    die "could not start redis-server; see $dir/redis.log"
}

# The cluster's folder must be writable by the user postgres runs as; a
# checkout under /root is not, so then it lives in /tmp instead.
pg_data_dir() {
    local wanted="$STATE_DIR/postgres"
    mkdir -p "$STATE_DIR"
    if [[ $(id -u) == 0 ]]; then
        mkdir -p "$wanted"
        chown "$PG_USER" "$wanted"
        if as_pg test -w "$wanted"; then echo "$wanted"; return; fi
        local alt="/tmp/personable-test-postgres-$(echo "$ROOT" | cksum | cut -d' ' -f1)"
        mkdir -p "$alt" && chown "$PG_USER" "$alt" && chmod 700 "$alt"
        echo "$alt"
    else
        mkdir -p "$wanted" && echo "$wanted"
    fi
}

pg_ok() {
    pid_runs "$PG_PID" postgres && [[ -n "$PG_PORT" ]] &&
        "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" 2>/dev/null
}

start_postgres() {
    PG_BIN=$(pg_bindir || true)
    if [[ -z "$PG_BIN" ]]; then
        apt_install postgresql
        PG_BIN=$(pg_bindir) || die "postgresql installed but no /usr/lib/postgresql/*/bin/postgres"
    fi
    [[ -n "$PG_USER" ]] || PG_USER=$(pg_user)
    if pg_ok; then log "postgres reused on 127.0.0.1:$PG_PORT (pid $PG_PID)"; return; fi
    PG_USER=$(pg_user)
    PG_DATA=$(pg_data_dir)
    if [[ ! -f "$PG_DATA/PG_VERSION" ]]; then
        # Trust auth is acceptable only because it listens on 127.0.0.1 and
        # holds nothing but throwaway test databases.
        as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U "$PG_USER" -A trust -E UTF8 --no-sync >"$STATE_DIR/initdb.log" 2>&1 ||
            die "initdb failed: $(tail -n 5 "$STATE_DIR/initdb.log")"
    fi
    local attempt
    for attempt in 1 2 3; do
        PG_PORT=$(free_port)
        # Durability off: a test cluster that loses its tail on a crash is fine,
        # and every CREATE DATABASE per test would otherwise fsync.
        if as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start -o \
            "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DATA -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
            >/dev/null 2>&1 9>&-; then
            PG_PID=$(head -n 1 "$PG_DATA/postmaster.pid")
            if pg_ok; then log "postgres started on 127.0.0.1:$PG_PORT (pid $PG_PID, data $PG_DATA)"; return; fi
        fi
        log "postgres did not start on port $PG_PORT (attempt $attempt): $(tail -n 3 "$PG_DATA/server.log" 2>/dev/null)"
    done
    die "could not start postgres; see $PG_DATA/server.log"
}

stop_pid() {
    local pid="$1" prog="$2" name="$3" sig="$4"
    if ! pid_runs "$pid" "$prog"; then log "$name not running"; return; fi
    kill "-$sig" "$pid"
    for _ in $(seq 100); do pid_runs "$pid" "$prog" || { log "$name stopped (pid $pid)"; return; }; sleep 0.1; done
    log "$name (pid $pid) did not stop in 10 s; killing it"
    kill -KILL "$pid" || true
}

cmd="${1:-start}"
[[ "${2:-}" == "--no-install" ]] && INSTALL=0
mkdir -p "$STATE_DIR"
# One `start` at a time per checkout (make and pytest may race for it). The
# servers must not inherit this descriptor (9>&- below), or they would hold
# the lock for as long as they run.
exec 9>"$STATE_DIR/.lock"
flock 9
load_state
case "$cmd" in
    start)
        start_redis
        start_postgres
        write_state
        ;;
    stop)
        stop_pid "$REDIS_PID" redis-server redis TERM
        # SIGINT is PostgreSQL's "fast" shutdown (SIGTERM would wait for every
        # client to disconnect); its backends are the postmaster's children.
        stop_pid "$PG_PID" postgres postgres INT
        rm -f "$STATE"
        ;;
    status)
        if [[ -f "$STATE" ]]; then cat "$STATE"; else log "not started"; exit 1; fi
        ;;
    *)
        die "usage: $0 start [--no-install] | stop | status"
        ;;
esac
