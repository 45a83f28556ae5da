#!/usr/bin/env bash
# Local MongoDB-protocol server for amends. See deploy/local/MONGO.md.
#
#   deploy/local/mongo.sh up|down|status|reset|logs [-f]|url|build|check [args]
#
#   up      install/build what is missing, start, wait until a MongoDB `ping` answers
#   down    SIGTERM, SIGKILL after MONGO_STOP_TIMEOUT (and stop PostgreSQL if used)
#   status  exit 0 when the server answers `ping`, 1 otherwise
#   reset   down, then delete the data directory (binaries and caches are kept)
#   logs    print the last $LOG_LINES lines of the logs (-f follows)
#   url     print the URL the services should use
#   build   only install/build (no start)
#   check   up + mongo_conformance.py [args] + restart durability + kill -9 durability
#
# Servers (MONGO_SERVER):
#   java                 (default) de.bwaldvogel mongo-java-server 1.47 + H2 MVStore file,
#                        jars from Maven Central, started by mongo_server/AmendsMongoServer.java
#   ferretdb-postgresql  FerretDB 1.24 built from the Go module proxy, on a private PostgreSQL
#   ferretdb-sqlite      FerretDB 1.24 on its SQLite backend
#   (both FerretDB variants failed required checks - kept only to re-run the comparison)
#
# Environment (all optional):
#   AMENDS_HOME          state root (default <repo>/.local): bin/ cache/ opt/ data/mongo logs/ run/
#   MONGO_PORT           listen port on 127.0.0.1 (default 27017)
#   MONGO_READY_TIMEOUT  seconds to wait for readiness (default 60)
#   MONGO_STOP_TIMEOUT   seconds between SIGTERM and SIGKILL (default 30)
#   MONGO_LOG_LEVEL      server log level (default warn)
#   MONGO_JAVA_HEAP      -Xmx for the java server (default 1g)
#   MONGO_CACHE_MB       page cache of the H2 MVStore, inside the heap (default 256)
#   MONGO_JAVA_COMMIT    every-write (default: acknowledged writes survive kill -9) | interval
#   MONGO_TTL_INTERVAL   seconds between TTL-index sweeps of the java server (default 60, as mongod)
#   MONGO_PG_FSYNC       on | off (ferretdb-postgresql; default off)
#   FERRETDB_VERSION     default v1.24.2
#   PYTHON               interpreter with pymongo (default <repo>/.venv/bin/python)
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_ROOT=$(cd "$SCRIPT_DIR/../.." && pwd)
AMENDS_HOME=${AMENDS_HOME:-$REPO_ROOT/.local}
MONGO_SERVER=${MONGO_SERVER:-java}
MONGO_PORT=${MONGO_PORT:-27017}
MONGO_READY_TIMEOUT=${MONGO_READY_TIMEOUT:-60}
MONGO_STOP_TIMEOUT=${MONGO_STOP_TIMEOUT:-30}
MONGO_LOG_LEVEL=${MONGO_LOG_LEVEL:-warn}
MONGO_JAVA_HEAP=${MONGO_JAVA_HEAP:-1g}
MONGO_CACHE_MB=${MONGO_CACHE_MB:-256}
MONGO_JAVA_COMMIT=${MONGO_JAVA_COMMIT:-every-write}
MONGO_TTL_INTERVAL=${MONGO_TTL_INTERVAL:-60}
MONGO_PG_FSYNC=${MONGO_PG_FSYNC:-off}
FERRETDB_VERSION=${FERRETDB_VERSION:-v1.24.2}
PYTHON=${PYTHON:-$REPO_ROOT/.venv/bin/python}
LOG_LINES=${LOG_LINES:-200}

BIN_DIR=$AMENDS_HOME/bin
CACHE_DIR=$AMENDS_HOME/cache
DATA_DIR=$AMENDS_HOME/data/mongo
LOG_DIR=$AMENDS_HOME/logs
RUN_DIR=$AMENDS_HOME/run
PID_FILE=$RUN_DIR/mongo.pid
SERVER_FILE=$RUN_DIR/mongo.server
LOCK_FILE=$RUN_DIR/mongo.lock
LOG_FILE=$LOG_DIR/mongo.log
MONGO_URL="mongodb://127.0.0.1:$MONGO_PORT/?directConnection=true&retryWrites=false"

# java server
JAVA_SRC_DIR=$SCRIPT_DIR/mongo_server
JAVA_HOME_DIR=$AMENDS_HOME/opt/mongo-java-server
JAVA_DATA=$DATA_DIR/java
# ferretdb
FERRETDB_BIN=$BIN_DIR/ferretdb-$FERRETDB_VERSION
GO_CACHE_ROOT=$CACHE_DIR/go
PG_DATA=$DATA_DIR/pg
PG_SOCK_DIR=$RUN_DIR/mongo-pg
PG_LOG=$LOG_DIR/mongo-postgres.log
PG_PORT=5432 # only names the unix socket file; PostgreSQL listens on no TCP port
SQLITE_DIR=$DATA_DIR/sqlite

log() { printf '[mongo.sh] %s\n' "$*"; }  # progress on stdout, like kafka.sh
die() { printf '[mongo.sh] ERROR: %s\n' "$*" >&2; exit 1; }

case "$MONGO_SERVER" in java | ferretdb-postgresql | ferretdb-sqlite) ;;
*) die "MONGO_SERVER must be java, ferretdb-postgresql or ferretdb-sqlite" ;;
esac

as_root() { if [[ $(id -u) -eq 0 ]]; then "$@"; else sudo "$@"; fi; }

APT_UPDATED=0
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    if [[ $APT_UPDATED -eq 0 ]]; then as_root apt-get update -qq; APT_UPDATED=1; fi
    log "apt-get install $*"
    as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

ensure_python() {
    [[ -x $PYTHON ]] || die "python not found at $PYTHON (create the venv or set PYTHON)"
    "$PYTHON" -c 'import pymongo' 2>/dev/null || die "$PYTHON has no pymongo"
}

# ---------------------------------------------------------------- java server

ensure_jdk() {
    if ! command -v javac >/dev/null 2>&1 || ! command -v java >/dev/null 2>&1; then
        apt_install default-jdk-headless # Java >= 11 is enough
    fi
    if ! command -v mvn >/dev/null 2>&1; then
        apt_install maven
    fi
}

java_stamp() {
    cat "$JAVA_SRC_DIR/pom.xml" "$JAVA_SRC_DIR/AmendsMongoServer.java" | sha256sum | cut -c1-16
}

build_java() {
    local stamp
    stamp=$(java_stamp)
    if [[ -f $JAVA_HOME_DIR/classes/AmendsMongoServer.class && "$(cat "$JAVA_HOME_DIR/stamp" 2>/dev/null)" == "$stamp" ]]; then
        return 0
    fi
    ensure_jdk
    local t0=$SECONDS tmp=$JAVA_HOME_DIR.tmp
    log "fetching mongo-java-server jars from Maven Central and compiling AmendsMongoServer ..."
    rm -rf "$tmp"
    mkdir -p "$tmp/lib" "$tmp/classes" "$CACHE_DIR/m2"
    mkdir -p "$LOG_DIR"
    if ! mvn -B -Dstyle.color=never -f "$JAVA_SRC_DIR/pom.xml" -Dmaven.repo.local="$CACHE_DIR/m2" \
        -Damends.build.dir="$CACHE_DIR/mongo-server-target" \
        dependency:copy-dependencies -DoutputDirectory="$tmp/lib" -DincludeScope=runtime \
        >"$LOG_DIR/mongo-build.log" 2>&1; then
        tail -n 40 "$LOG_DIR/mongo-build.log" >&2
        die "mvn dependency:copy-dependencies failed (log: $LOG_DIR/mongo-build.log)"
    fi
    javac -nowarn -d "$tmp/classes" -cp "$tmp/lib/*" "$JAVA_SRC_DIR/AmendsMongoServer.java" >&2 ||
        die "javac failed"
    echo "$stamp" >"$tmp/stamp"
    rm -rf "$JAVA_HOME_DIR"
    mv "$tmp" "$JAVA_HOME_DIR"
    log "mongo-java-server ready in $((SECONDS - t0)) s -> $JAVA_HOME_DIR"
}

start_java() {
    mkdir -p "$JAVA_DATA"
    setsid java -Xms64m -Xmx"$MONGO_JAVA_HEAP" -XX:+ExitOnOutOfMemoryError \
        -Dorg.slf4j.simpleLogger.defaultLogLevel="$MONGO_LOG_LEVEL" \
        -Dorg.slf4j.simpleLogger.showDateTime=true \
        -cp "$JAVA_HOME_DIR/lib/*:$JAVA_HOME_DIR/classes" AmendsMongoServer \
        --host 127.0.0.1 --port "$MONGO_PORT" --file "$JAVA_DATA/mongo.mv" \
        --commit "$MONGO_JAVA_COMMIT" --ttl-interval-s "$MONGO_TTL_INTERVAL" \
        --cache-mb "$MONGO_CACHE_MB" </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    echo $!
}

# ---------------------------------------------------------------- ferretdb (evaluation only)

go_env() {
    export GOPATH=$GO_CACHE_ROOT/path GOMODCACHE=$GO_CACHE_ROOT/mod GOCACHE=$GO_CACHE_ROOT/build
    export GOBIN=$BIN_DIR GOFLAGS=-buildvcs=false CGO_ENABLED=0
}

# A plain `go install github.com/FerretDB/FerretDB/cmd/ferretdb@v1.24.2` builds, but the
# binary panics at start ("Invalid build/version/version.txt"): the module zip lacks that
# generated file. So: `go mod download` the module, copy it, write version.txt, `go build`.
build_ferretdb() {
    [[ -x $FERRETDB_BIN ]] && "$FERRETDB_BIN" --version >/dev/null 2>&1 && return 0
    if ! command -v go >/dev/null 2>&1; then
        apt_install golang-go ca-certificates
        export GOTOOLCHAIN=${GOTOOLCHAIN:-auto} # Debian's Go is too old; fetches one via the proxy
    fi
    go_env
    mkdir -p "$BIN_DIR" "$GO_CACHE_ROOT/src"
    local t0=$SECONDS mod_dir src
    log "building FerretDB $FERRETDB_VERSION (go $(go env GOVERSION)) ..."
    mod_dir=$(cd "$GO_CACHE_ROOT" && go mod download -json "github.com/FerretDB/FerretDB@$FERRETDB_VERSION" |
        sed -n 's/^[[:space:]]*"Dir": "\(.*\)",\{0,1\}$/\1/p')
    [[ -n $mod_dir && -d $mod_dir ]] || die "go mod download of FerretDB $FERRETDB_VERSION failed"
    src=$GO_CACHE_ROOT/src/FerretDB-$FERRETDB_VERSION
    rm -rf "$src"
    cp -r "$mod_dir" "$src"
    chmod -R u+w "$src"
    echo "$FERRETDB_VERSION" >"$src/build/version/version.txt"
    (cd "$src" && go build -trimpath -o "$FERRETDB_BIN.tmp" ./cmd/ferretdb)
    mv -f "$FERRETDB_BIN.tmp" "$FERRETDB_BIN"
    log "FerretDB $FERRETDB_VERSION built in $((SECONDS - t0)) s -> $FERRETDB_BIN"
}

pg_bindir() {
    local d
    d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
    if [[ -n $d && -x $d/postgres ]]; then echo "$d"; fi
}

# PostgreSQL refuses to run as root: as root it runs as the `postgres` user.
pg_user() { if [[ $(id -u) -eq 0 ]]; then echo postgres; else id -un; fi; }
as_pg() { if [[ $(id -u) -eq 0 ]]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl_() { as_pg "$(pg_bindir)/pg_ctl" -D "$PG_DATA" "$@"; }
pg_running() { [[ -f $PG_DATA/postmaster.pid ]] && pg_ctl_ status >/dev/null 2>&1; }

pg_start() {
    [[ -n $(pg_bindir) ]] || apt_install postgresql
    local bindir u
    bindir=$(pg_bindir)
    u=$(pg_user)
    install -d -m 0700 -o "$u" "$PG_SOCK_DIR"
    touch "$PG_LOG" && chown "$u" "$PG_LOG"
    if [[ ! -f $PG_DATA/PG_VERSION ]]; then
        rm -rf "$PG_DATA"
        install -d -m 0700 -o "$u" "$PG_DATA"
        as_pg test -w "$PG_DATA" || die "user $u cannot write $PG_DATA (parent not traversable?)"
        as_pg "$bindir/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --locale=C >>"$PG_LOG" 2>&1 ||
            die "initdb failed, see $PG_LOG"
    fi
    pg_running && return 0
    log "starting PostgreSQL (fsync=$MONGO_PG_FSYNC, unix socket only)"
    pg_ctl_ -l "$PG_LOG" -w -t "$MONGO_READY_TIMEOUT" start -o "-c listen_addresses='' \
        -c unix_socket_directories='$PG_SOCK_DIR' -c port=$PG_PORT -c fsync=$MONGO_PG_FSYNC \
        -c full_page_writes=$MONGO_PG_FSYNC -c max_connections=200" >/dev/null 9>&- ||
        die "PostgreSQL did not start, see $PG_LOG"
    as_pg "$bindir/psql" -h "$PG_SOCK_DIR" -p "$PG_PORT" -U postgres -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname='ferretdb'" | grep -q 1 ||
        as_pg "$bindir/createdb" -h "$PG_SOCK_DIR" -p "$PG_PORT" -U postgres ferretdb
}

pg_stop() {
    [[ -f $PG_DATA/postmaster.pid && -n $(pg_bindir) ]] || return 0
    pg_running || return 0
    log "stopping PostgreSQL"
    pg_ctl_ -w -t "$MONGO_STOP_TIMEOUT" -m fast stop >/dev/null 2>&1 ||
        pg_ctl_ -w -t 10 -m immediate stop >/dev/null 2>&1 || true
}

start_ferretdb() {
    local -a args=(
        --listen-addr="127.0.0.1:$MONGO_PORT" --debug-addr=- --telemetry=disable
        --state-dir="$DATA_DIR" --log-level="$MONGO_LOG_LEVEL"
    )
    if [[ $MONGO_SERVER == ferretdb-postgresql ]]; then
        pg_start >&2
        args+=(--handler=postgresql
            --postgresql-url="postgres://postgres@/ferretdb?host=$PG_SOCK_DIR&port=$PG_PORT")
    else
        mkdir -p "$SQLITE_DIR"
        args+=(--handler=sqlite --sqlite-url="file:$SQLITE_DIR/")
    fi
    setsid "$FERRETDB_BIN" "${args[@]}" </dev/null >>"$LOG_FILE" 2>&1 9>&- &
    echo $!
}

# ---------------------------------------------------------------- common

install_all() {
    ensure_python
    case "$MONGO_SERVER" in
    java) build_java ;;
    ferretdb-*) build_ferretdb ;;
    esac
}

# pid of the running server (from the pid file, checked against /proc), else fail
server_pid() {
    local pid
    pid=$(cat "$PID_FILE" 2>/dev/null || true)
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null &&
        tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qE "AmendsMongoServer|ferretdb" && echo "$pid"
}

ping_once() {
    timeout 15 "$PYTHON" - "$MONGO_URL" <<'PY' >/dev/null 2>&1
import sys
from pymongo import MongoClient
c = MongoClient(sys.argv[1], serverSelectionTimeoutMS=2000, connectTimeoutMS=2000, timeoutMS=5000)
c.admin.command("ping")
PY
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$MONGO_PORT") 2>/dev/null; }

wait_ready() {
    local pid=$1 deadline=$((SECONDS + MONGO_READY_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -n 30 "$LOG_FILE" >&2 || true
            die "server exited during start-up (log: $LOG_FILE)"
        fi
        ping_once && return 0
        sleep 0.3
    done
    tail -n 30 "$LOG_FILE" >&2 || true
    die "not ready after ${MONGO_READY_TIMEOUT}s (log: $LOG_FILE)"
}

# Serialises up/down/reset/check between concurrent callers. The servers are started with
# fd 9 closed (9>&-) so they do not inherit - and keep holding - the lock.
with_lock() {
    mkdir -p "$RUN_DIR"
    exec 9>"$LOCK_FILE"
    flock -w 300 9 || die "another mongo.sh holds $LOCK_FILE"
    "$@"
}

cmd_up() {
    local pid running t0=$SECONDS
    install_all
    mkdir -p "$DATA_DIR" "$LOG_DIR" "$RUN_DIR"
    if pid=$(server_pid); then
        running=$(cat "$SERVER_FILE" 2>/dev/null || echo unknown)
        [[ $running == "$MONGO_SERVER" ]] || die "$running is running (pid $pid); run '$0 down' first"
        [[ $MONGO_SERVER == ferretdb-postgresql ]] && pg_start
        wait_ready "$pid"
        log "already running (pid $pid, $MONGO_SERVER): $MONGO_URL"
        return 0
    fi
    rm -f "$PID_FILE"
    port_busy && die "127.0.0.1:$MONGO_PORT is already in use by another process"
    printf '\n==== %s start %s\n' "$(date -Is)" "$MONGO_SERVER" >>"$LOG_FILE"
    case "$MONGO_SERVER" in
    java) pid=$(start_java) ;;
    ferretdb-*) pid=$(start_ferretdb) ;;
    esac
    echo "$pid" >"$PID_FILE"
    echo "$MONGO_SERVER" >"$SERVER_FILE"
    wait_ready "$pid"
    log "ready in $((SECONDS - t0)) s (pid $pid, $MONGO_SERVER): $MONGO_URL"
}

cmd_down() {
    local pid deadline
    if pid=$(server_pid); then
        log "stopping $(cat "$SERVER_FILE" 2>/dev/null || echo server) (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        deadline=$((SECONDS + MONGO_STOP_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
        if kill -0 "$pid" 2>/dev/null; then
            log "still alive after ${MONGO_STOP_TIMEOUT}s: SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
        fi
    fi
    rm -f "$PID_FILE"
    pg_stop
}

cmd_status() {
    local pid server
    server=$(cat "$SERVER_FILE" 2>/dev/null || echo "$MONGO_SERVER")
    if pid=$(server_pid) && [[ -x $PYTHON ]] && ping_once; then
        echo "ready: $server pid=$pid url=$MONGO_URL"
        return 0
    fi
    echo "not ready ($server, pid: ${pid:-none}, url=$MONGO_URL)"
    return 1
}

cmd_reset() {
    cmd_down
    log "deleting $DATA_DIR"
    rm -rf "$DATA_DIR"
}

cmd_logs() {
    [[ -f $LOG_FILE ]] || { log "no log yet ($LOG_FILE)"; return 0; }
    local files=("$LOG_FILE")
    if [[ -f $PG_LOG && "$(cat "$SERVER_FILE" 2>/dev/null)" == ferretdb-postgresql ]]; then files+=("$PG_LOG"); fi
    if [[ ${1:-} == -f ]]; then tail -n "$LOG_LINES" -F "${files[@]}"; else tail -n "$LOG_LINES" "${files[@]}"; fi
}

durability_round() { # $1 = graceful | kill9
    local conf=$SCRIPT_DIR/mongo_conformance.py nonce pid
    nonce=$("$PYTHON" "$conf" --url "$MONGO_URL" --phase write | sed -n 's/.*nonce=//p')
    [[ -n $nonce ]] || die "durability write phase failed"
    if [[ $1 == graceful ]]; then
        log "durability: write, down, up, verify"
        cmd_down
    else
        log "durability: write, kill -9, up, verify"
        pid=$(server_pid) || die "server not running"
        kill -KILL "$pid"
        if [[ $MONGO_SERVER == ferretdb-postgresql && -f $PG_DATA/postmaster.pid ]]; then
            kill -KILL "$(head -n 1 "$PG_DATA/postmaster.pid")" 2>/dev/null || true
        fi
        while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    cmd_up
    "$PYTHON" "$conf" --url "$MONGO_URL" --phase verify --nonce "$nonce"
}

cmd_check() {
    local -a pids=()
    cmd_up
    pids+=(--server-pid "$(server_pid)")
    if [[ $MONGO_SERVER == ferretdb-postgresql && -f $PG_DATA/postmaster.pid ]]; then
        pids+=(--server-pid "$(head -n 1 "$PG_DATA/postmaster.pid")")
    fi
    "$PYTHON" "$SCRIPT_DIR/mongo_conformance.py" --url "$MONGO_URL" "${pids[@]}" "$@"
    durability_round graceful
    durability_round kill9
    log "check passed"
}

case "${1:-}" in
up) with_lock cmd_up ;;
down) with_lock cmd_down ;;
status) cmd_status ;;
reset) with_lock cmd_reset ;;
logs) shift; cmd_logs "$@" ;;
url) echo "$MONGO_URL" ;;
build) with_lock install_all ;;
check) shift; with_lock cmd_check "$@" ;;
*)
    echo "usage: $0 up|down|status|reset|logs [-f]|url|build|check [conformance args]" >&2
    exit 2
    ;;
esac
