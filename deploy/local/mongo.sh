#!/usr/bin/env bash
# Local MongoDB-protocol server for amends: FerretDB 1.24 (built from the Go module
# proxy) on a private PostgreSQL cluster or on SQLite. See deploy/local/MONGO.md.
#
#   deploy/local/mongo.sh up|down|status|reset|logs [-f]|url|build|check
#
#   up      install what is missing, start, wait until a MongoDB `ping` answers
#   down    SIGTERM (then SIGKILL after MONGO_STOP_TIMEOUT) FerretDB, stop PostgreSQL
#   status  exit 0 when the server answers `ping`, 1 otherwise
#   reset   down, then delete the data directory (binaries and caches are kept)
#   logs    print the last $LOG_LINES lines of the logs (-f follows)
#   url     print the URL the services should use
#   build   only install/build (no start)
#   check   up + conformance + restart durability + kill -9 durability (for CI / by hand)
#
# Environment (all optional):
#   AMENDS_HOME          state root (default <repo>/.local): bin/ cache/ data/mongo logs/ run/
#   MONGO_PORT           listen port on 127.0.0.1 (default 27017)
#   MONGO_BACKEND        postgresql | sqlite (default postgresql)
#   MONGO_READY_TIMEOUT  seconds to wait for readiness (default 60)
#   MONGO_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 20)
#   MONGO_PG_FSYNC       on | off (default off: survives process crashes, not power loss)
#   FERRETDB_VERSION     default v1.24.2 (newest 1.24 patch; 2.x needs DocumentDB ext.)
#   PYTHON               interpreter with pymongo (default <repo>/.venv/bin/python)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
AMENDS_HOME=${AMENDS_HOME:-$REPO_ROOT/.local}
MONGO_PORT=${MONGO_PORT:-27017}
MONGO_BACKEND=${MONGO_BACKEND:-postgresql}
MONGO_READY_TIMEOUT=${MONGO_READY_TIMEOUT:-60}
MONGO_STOP_TIMEOUT=${MONGO_STOP_TIMEOUT:-20}
MONGO_PG_FSYNC=${MONGO_PG_FSYNC:-off}
FERRETDB_VERSION=${FERRETDB_VERSION:-v1.24.2}
PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
LOG_LINES=${LOG_LINES:-200}

BIN_DIR=$AMENDS_HOME/bin
GO_CACHE_ROOT=$AMENDS_HOME/cache/go
DATA_DIR=$AMENDS_HOME/data/mongo
LOG_DIR=$AMENDS_HOME/logs
RUN_DIR=$AMENDS_HOME/run
FERRETDB_BIN=$BIN_DIR/ferretdb-$FERRETDB_VERSION
PID_FILE=$RUN_DIR/mongo.pid
LOG_FILE=$LOG_DIR/mongo.log
PG_DATA=$DATA_DIR/pg
PG_SOCK_DIR=$RUN_DIR/mongo-pg
PG_LOG=$LOG_DIR/mongo-postgres.log
PG_PORT=5432 # only names the unix socket file; PostgreSQL listens on no TCP port
SQLITE_DIR=$DATA_DIR/sqlite
MONGO_URL="mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true&retryWrites=false"

log() { printf '[mongo.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

case "$MONGO_BACKEND" in postgresql | sqlite) ;; *) die "MONGO_BACKEND must be postgresql or sqlite" ;; esac

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ $APT_UPDATED -eq 0 ]]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ---------------------------------------------------------------- install / build

go_env() {
    export GOPATH=$GO_CACHE_ROOT/path GOMODCACHE=$GO_CACHE_ROOT/mod GOCACHE=$GO_CACHE_ROOT/build
    export GOBIN=$BIN_DIR GOFLAGS=-buildvcs=false CGO_ENABLED=0
}

ensure_go() {
    if ! command -v go >/dev/null 2>&1; then
        log "go not found: installing Debian's golang-go (GOTOOLCHAIN=auto fetches a newer Go from the module proxy)"
        apt_install golang-go ca-certificates
        export GOTOOLCHAIN=${GOTOOLCHAIN:-auto}
    fi
}

# FerretDB's cmd/ferretdb panics at start when built by a plain
# `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.x` ("Invalid
# build/version/version.txt"): the module zip lacks the generated version file. So the
# module is fetched from the Go module proxy (`go mod download`), copied, given its
# version.txt, and built with `go build` - same code, same flags as `go install`.
build_ferretdb() {
    [[ -x $FERRETDB_BIN ]] && "$FERRETDB_BIN" --version >/dev/null 2>&1 && return 0
    ensure_go
    go_env
    mkdir -p "$BIN_DIR" "$GO_CACHE_ROOT/src"
    local t0 mod_dir src
    t0=$(date +%s)
    log "building FerretDB $FERRETDB_VERSION (go $(go env GOVERSION)) ..."
    mod_dir=$(cd "$GO_CACHE_ROOT" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    [[ -n $mod_dir && -d $mod_dir ]] || die "go mod download of FerretDB $FERRETDB_VERSION failed"
    src=$GO_CACHE_ROOT/src/FerretDB-$FERRETDB_VERSION
    rm -rf "$src"
    cp -r "$mod_dir" "$src"
    chmod -R u+w "$src"
    echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
    echo "amends-local" >"$src/build/version/package.txt"
    (cd "$src" && go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
    mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
    "$FERRETDB_BIN" --version >/dev/null || die "built FerretDB does not run"
    log "FerretDB $FERRETDB_VERSION built in $(($(date +%s) - t0)) s -> $FERRETDB_BIN"
}

pg_bindir() {
    local d
    d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [[ -n $d && -x $d/postgres ]] && echo "$d"
}

ensure_postgres() {
    if [[ -z $(pg_bindir) ]]; then
        log "installing PostgreSQL from Debian"
        apt_install postgresql
    fi
    [[ -n $(pg_bindir) ]] || die "PostgreSQL server binaries not found after install"
}

ensure_python() {
    [[ -x $PYTHON ]] || die "python not found at $PYTHON (create the venv or set PYTHON)"
    "$PYTHON" -c 'import pymongo' 2>/dev/null || die "$PYTHON has no pymongo"
}

install_all() {
    ensure_python
    build_ferretdb
    [[ $MONGO_BACKEND == postgresql ]] && ensure_postgres
    return 0
}

# ---------------------------------------------------------------- PostgreSQL

# PostgreSQL refuses to run as root: when we are root it runs as the `postgres` user
# (created by Debian's package), owning only $PG_DATA and its socket directory.
PG_USER=
pg_user() {
    if [[ -z $PG_USER ]]; then
        if [[ $(id -u) -eq 0 ]]; then
            id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
            PG_USER=postgres
        else
            PG_USER=$(id -un)
        fi
    fi
    echo "$PG_USER"
}

as_pg() {
    if [[ $(id -u) -eq 0 ]]; then runuser -u "$(pg_user)" -- "$@"; else "$@"; fi
}

pg_ctl_() { as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DATA" "$@"; }

pg_running() { [[ -f $PG_DATA/postmaster.pid ]] && pg_ctl_ status >/dev/null 2>&1; }

pg_start() {
    local bindir u
    bindir=$(pg_bindir)
    u=$(pg_user)
    mkdir -p "$DATA_DIR" "$RUN_DIR" "$LOG_DIR"
    install -d -m 0700 -o "$u" "$PG_SOCK_DIR"
    touch "$PG_LOG" && chown "$u" "$PG_LOG"
    if [[ ! -f $PG_DATA/PG_VERSION ]]; then
        log "initdb $PG_DATA"
        rm -rf "$PG_DATA"
        install -d -m 0700 -o "$u" "$PG_DATA"
        as_pg test -w "$PG_DATA" || die "user $u cannot write $PG_DATA (a parent directory is not traversable?)"
        as_pg "$bindir/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C >>"$PG_LOG" 2>&1 ||
            die "initdb failed, see $PG_LOG"
    fi
    if pg_running; then return 0; fi
    # leftovers of a killed cluster (postmaster gone, children alive) block a restart
    local orphans
    orphans=$(pgrep -u "$u" -f -- "postgres: .*" 2>/dev/null | while read -r p; do
        [[ $(readlink -f "/proc/$p/cwd" 2>/dev/null) == "$(readlink -f "$PG_DATA")" ]] && echo "$p"; done || true)
    [[ -n $orphans ]] && { log "killing orphaned PostgreSQL processes: $orphans"; kill -9 $orphans 2>/dev/null || true; sleep 1; }
    log "starting PostgreSQL ($(basename "$(dirname "$bindir")"), fsync=$MONGO_PG_FSYNC, unix socket only)"
    pg_ctl_ -l "$PG_LOG" -w -t "$MONGO_READY_TIMEOUT" start -o "-c listen_addresses='' \
        -c unix_socket_directories='$PG_SOCK_DIR' -c port=$PG_PORT -c fsync=$MONGO_PG_FSYNC \
        -c full_page_writes=$MONGO_PG_FSYNC -c max_connections=200 -c shared_buffers=256MB \
        -c max_wal_size=1GB" >/dev/null || die "PostgreSQL did not start, see $PG_LOG"
    if ! as_pg "$bindir/psql" -h "$PG_SOCK_DIR" -p "$PG_PORT" -U postgres -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname='ferretdb'" | grep -q 1; then
        as_pg "$bindir/createdb" -h "$PG_SOCK_DIR" -p "$PG_PORT" -U postgres ferretdb
    fi
}

pg_stop() {
    [[ -f $PG_DATA/postmaster.pid ]] || return 0
    [[ -n $(pg_bindir) ]] || return 0
    if pg_running; then
        log "stopping PostgreSQL"
        pg_ctl_ -w -t "$MONGO_STOP_TIMEOUT" -m fast stop >/dev/null 2>&1 ||
            pg_ctl_ -w -t 10 -m immediate stop >/dev/null 2>&1 || true
    fi
}

# ---------------------------------------------------------------- FerretDB process

server_pid() {
    local pid
    [[ -f $PID_FILE ]] || return 1
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "ferretdb" && echo "$pid"
}

ping_once() {
    "$PYTHON" - "$MONGO_URL" <<'PY' >/dev/null 2>&1
import sys
from pymongo import MongoClient
c = MongoClient(sys.argv[1], serverSelectionTimeoutMS=1000, connectTimeoutMS=1000)
c.admin.command("ping")
PY
}

port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$MONGO_PORT") 2>/dev/null
}

wait_ready() {
    local pid=$1 deadline=$((SECONDS + MONGO_READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LOG_FILE" >&2 || true
            die "FerretDB exited during start-up (log: $LOG_FILE)"
        fi
        ping_once && return 0
        sleep 0.3
    done
    tail -n 30 "$LOG_FILE" >&2 || true
    die "not ready after ${MONGO_READY_TIMEOUT}s (log: $LOG_FILE)"
}

cmd_up() {
    local pid t0=$SECONDS
    install_all
    mkdir -p "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
    if pid=$(server_pid); then
        [[ $MONGO_BACKEND == postgresql ]] && pg_start
        wait_ready "$pid"
        log "already running (pid $pid): $MONGO_URL"
        return 0
    fi
    rm -f "$PID_FILE"
    port_busy && die "127.0.0.1:$MONGO_PORT is already in use by another process"
    local -a args=(
        --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr=- --telemetry=disable
        --state-dir="$DATA_DIR" --log-level="${MONGO_LOG_LEVEL:-warn}" --log-format=console
    )
    if [[ $MONGO_BACKEND == postgresql ]]; then
        pg_start
        args+=(--handler=postgresql
            --postgresql-url="postgres://postgres@/ferretdb?host=$PG_SOCK_DIR&port=$PG_PORT&pool_max_conns=50")
    else
        mkdir -p "$SQLITE_DIR"
        args+=(--handler=sqlite --sqlite-url="file:$SQLITE_DIR/")
    fi
    echo "$MONGO_BACKEND" >"$DATA_DIR/backend"
    printf '\n==== %s start %s backend=%s\n' "$(date -Is)" "$FERRETDB_VERSION" "$MONGO_BACKEND" >>"$LOG_FILE"
    setsid "$FERRETDB_BIN" "${args[@]}" </dev/null >>"$LOG_FILE" 2>&1 &
    pid=$!
    echo "$pid" >"$PID_FILE"
    wait_ready "$pid"
    log "ready in $((SECONDS - t0)) s (pid $pid, backend $MONGO_BACKEND): $MONGO_URL"
}

cmd_down() {
    local pid deadline
    if pid=$(server_pid); then
        log "stopping FerretDB (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + MONGO_STOP_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "still alive after ${MONGO_STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$PID_FILE"
    pg_stop
    return 0
}

cmd_status() {
    local pid backend
    backend=$(cat "$DATA_DIR/backend" 2>/dev/null || echo "$MONGO_BACKEND")
    if pid=$(server_pid) && [[ -x $PYTHON ]] && ping_once; then
        echo "ready: FerretDB $FERRETDB_VERSION backend=$backend pid=$pid url=$MONGO_URL"
        return 0
    fi
    echo "not ready (pid: ${pid:-none}, backend=$backend, url=$MONGO_URL)"
    return 1
}

cmd_reset() {
    cmd_down
    log "deleting $DATA_DIR"
    rm -rf "$DATA_DIR"
}

cmd_logs() {
    local files=("$LOG_FILE")
    [[ -f $PG_LOG ]] && files+=("$PG_LOG")
    [[ -f $LOG_FILE ]] || { log "no log yet ($LOG_FILE)"; return 0; }
    if [[ ${1:-} == -f ]]; then tail -n "$LOG_LINES" -F "${files[@]}"; else tail -n "$LOG_LINES" "${files[@]}"; fi
}

cmd_check() {
    local conf=$SCRIPT_DIR/mongo_conformance.py nonce pid
    cmd_up
    "$PYTHON" "$conf" --url "$MONGO_URL" "$@"
    log "durability: graceful restart"
    nonce=$("$PYTHON" "$conf" --url "$MONGO_URL" --phase write | sed -n 's/.*nonce=//p')
    cmd_down
    cmd_up
    "$PYTHON" "$conf" --url "$MONGO_URL" --phase verify --nonce "$nonce"
    log "durability: kill -9 of FerretDB$([[ $MONGO_BACKEND == postgresql ]] && echo ' and PostgreSQL')"
    nonce=$("$PYTHON" "$conf" --url "$MONGO_URL" --phase write | sed -n 's/.*nonce=//p')
    pid=$(server_pid)
    kill -KILL "$pid"
    if [[ $MONGO_BACKEND == postgresql ]]; then
        kill -KILL "$(head -n 1 "$PG_DATA/postmaster.pid")" 2>/dev/null || true
    fi
    while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    cmd_up
    "$PYTHON" "$conf" --url "$MONGO_URL" --phase verify --nonce "$nonce"
    log "check passed"
}

case "${1:-}" in
up) cmd_up ;;
down) cmd_down ;;
status) cmd_status ;;
reset) cmd_reset ;;
logs) shift; cmd_logs "$@" ;;
url) echo "$MONGO_URL" ;;
build) install_all ;;
check) shift; cmd_check "$@" ;;
*)
    echo "usage: $0 up|down|status|reset|logs [-f]|url|build|check [conformance args]" >&2
    exit 2
    ;;
esac
