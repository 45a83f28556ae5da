#!/usr/bin/env bash
# Local, genuine Apache Kafka (KRaft, one combined broker+controller node) for amends.
#
#   deploy/local/kafka.sh up       install jars if needed, format storage once, start, wait until ready
#   deploy/local/kafka.sh down     SIGTERM, wait up to KAFKA_STOP_TIMEOUT s, then SIGKILL
#   deploy/local/kafka.sh status   running/stopped, pid, ports, protocol check (exit 0 only if ready)
#   deploy/local/kafka.sh logs [-f] [N]   last N lines of the broker log (follow with -f)
#   deploy/local/kafka.sh reset    stop and delete the data dir (next `up` starts from an empty broker)
#   deploy/local/kafka.sh install  only resolve/cache the jars (no start)
#
# Jars come from Maven Central through deploy/local/kafka/pom.xml and are cached in
# $AMENDS_HOME/cache/kafka-$KAFKA_VERSION/libs. State lives under $AMENDS_HOME (default
# <repo>/.local, git-ignored): data/kafka, logs/kafka.log, run/kafka.pid. See deploy/local/KAFKA.md.
# Env: KAFKA_PORT (9092) KAFKA_CONTROLLER_PORT (9093) KAFKA_PARTITIONS (4) KAFKA_HEAP KAFKA_JVM_OPTS
#      KAFKA_START_TIMEOUT (90) KAFKA_STOP_TIMEOUT (30) KAFKA_EXTRA_CONFIG KAFKA_VERSION AMENDS_HOME
#      PYTHON (<repo>/.venv/bin/python) JAVA/JAVA_HOME MVN KAFKA_MAVEN_REPO
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

AMENDS_HOME="${AMENDS_HOME:-$REPO_ROOT/.local}"
KAFKA_VERSION="${KAFKA_VERSION:-4.4.0}"
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_PARTITIONS="${KAFKA_PARTITIONS:-4}"
KAFKA_HEAP="${KAFKA_HEAP:--Xms256m -Xmx512m}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true -Djava.net.preferIPv4Stack=true}"
KAFKA_START_TIMEOUT="${KAFKA_START_TIMEOUT:-90}"
KAFKA_STOP_TIMEOUT="${KAFKA_STOP_TIMEOUT:-30}"
# KAFKA_EXTRA_CONFIG: extra server.properties lines ("key=value", newline separated), appended last.
PYTHON="${PYTHON:-$REPO_ROOT/.venv/bin/python}"
if [[ -n "${JAVA:-}" ]]; then :; elif [[ -n "${JAVA_HOME:-}" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi
MVN="${MVN:-mvn}"
# Optional: a private Maven local repository (default: Maven's own, ~/.m2/repository).
KAFKA_MAVEN_REPO="${KAFKA_MAVEN_REPO:-}"

POM="$SCRIPT_DIR/kafka/pom.xml"
LOG4J_CONF="$SCRIPT_DIR/kafka/log4j2.properties"
WAIT_PY="$SCRIPT_DIR/wait_kafka.py"

CACHE_DIR="$AMENDS_HOME/cache/kafka-$KAFKA_VERSION"
LIBS="$CACHE_DIR/libs"
MARKER="$CACHE_DIR/.complete"
DATA_DIR="$AMENDS_HOME/data/kafka"
LOG_DIRS="$DATA_DIR/logs"
CLUSTER_ID_FILE="$DATA_DIR/cluster.id"
CONF_DIR="$AMENDS_HOME/conf/kafka"
SERVER_PROPS="$CONF_DIR/server.properties"
LOG_DIR="$AMENDS_HOME/logs"
RUN_DIR="$AMENDS_HOME/run"
PID_FILE="$RUN_DIR/kafka.pid"
LOCK_FILE="$RUN_DIR/kafka.lock"
# Put on the java command line so our broker can be told apart from any other JVM.
MARK="-Damends.kafka.home=$AMENDS_HOME"

say() { printf 'kafka.sh: %s\n' "$*"; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

with_lock() {
  mkdir -p "$RUN_DIR"
  exec 9>"$LOCK_FILE"
  flock -w 300 9 || die "could not take $LOCK_FILE"
}

# --- process helpers -------------------------------------------------------------------------

is_ours() {  # pid -> 0 if it is a live (non-zombie) kafka.Kafka started for this AMENDS_HOME
  local pid="$1" cmd state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ "$state" != Z ]] || return 1
  cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmd" == *"$MARK "* && "$cmd" == *" kafka.Kafka "* ]]
}

find_pid() {  # prints the broker pid (pid file first, then a /proc scan if the pid file was lost)
  local pid f
  if [[ -f "$PID_FILE" ]]; then
    pid="$(cat "$PID_FILE" 2>/dev/null || true)"
    if is_ours "$pid"; then echo "$pid"; return 0; fi
  fi
  for f in $(grep -lsaF -- "$MARK" /proc/[0-9]*/cmdline 2>/dev/null || true); do
    pid="${f#/proc/}"; pid="${pid%/cmdline}"
    if is_ours "$pid"; then echo "$pid"; return 0; fi
  done
  return 1
}

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

probe() {  # extra args go to wait_kafka.py
  "$PYTHON" "$WAIT_PY" --bootstrap "127.0.0.1:$KAFKA_PORT" "$@"
}

check_python() {
  [[ -x "$PYTHON" ]] || die "python not found at $PYTHON (set PYTHON=...; needs aiokafka)"
  "$PYTHON" -c 'import aiokafka' 2>/dev/null || die "$PYTHON cannot import aiokafka"
}

check_java() {
  command -v "$JAVA" >/dev/null 2>&1 || die "java not found (set JAVA or JAVA_HOME; Kafka 4.x needs Java 17+)"
  local v
  v="$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')"
  [[ "${v%%.*}" =~ ^[0-9]+$ && "${v%%.*}" -ge 17 ]] || die "Kafka $KAFKA_VERSION needs Java 17+, $JAVA is '$v'"
}

# --- install ---------------------------------------------------------------------------------

marker_value() { printf '%s %s\n' "$KAFKA_VERSION" "$(sha256sum "$POM" | cut -c1-16)"; }

install_jars() {
  if [[ -f "$MARKER" && "$(cat "$MARKER")" == "$(marker_value)" ]] && compgen -G "$LIBS/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null; then
    return 0
  fi
  command -v "$MVN" >/dev/null 2>&1 || die "maven ($MVN) not found; needed once to fetch Kafka $KAFKA_VERSION jars"
  local t0 tmp
  t0="$(now)"
  say "resolving Kafka $KAFKA_VERSION jars with Maven into $LIBS ..."
  mkdir -p "$CACHE_DIR"
  tmp="$(mktemp -d "$CACHE_DIR/libs.tmp.XXXXXX")"
  local args=(-B -Dstyle.color=never -f "$POM" dependency:copy-dependencies "-Dkafka.version=$KAFKA_VERSION" "-DoutputDirectory=$tmp")
  [[ -n "$KAFKA_MAVEN_REPO" ]] && args+=("-Dmaven.repo.local=$KAFKA_MAVEN_REPO")
  mkdir -p "$LOG_DIR"
  # Maven's output goes to a file (quiet mode still emits terminal escape codes here).
  if ! "$MVN" "${args[@]}" >"$LOG_DIR/kafka-maven.log" 2>&1; then
    rm -rf "$tmp"
    tail -n 30 "$LOG_DIR/kafka-maven.log" >&2
    die "maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (log: $LOG_DIR/kafka-maven.log)"
  fi
  compgen -G "$tmp/kafka_2.13-$KAFKA_VERSION.jar" >/dev/null || { rm -rf "$tmp"; die "kafka_2.13-$KAFKA_VERSION.jar missing after resolution"; }
  rm -rf "$LIBS" "$MARKER"
  mv "$tmp" "$LIBS"
  chmod 755 "$LIBS"
  marker_value >"$MARKER"
  say "cached $(ls "$LIBS" | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $(elapsed "$t0")s"
}

# --- config + format -------------------------------------------------------------------------

write_config() {
  mkdir -p "$CONF_DIR" "$LOG_DIRS" "$LOG_DIR"
  cat >"$SERVER_PROPS.tmp" <<EOF
# Generated by deploy/local/kafka.sh on every 'up'; edit the script, not this file.
# KRaft, single combined broker+controller node, loopback only, sized for a small dev box.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$LOG_DIRS

# Topics: auto-created on first use, $KAFKA_PARTITIONS partitions, no replication.
auto.create.topics.enable=true
num.partitions=$KAFKA_PARTITIONS
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=8
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
share.coordinator.state.topic.num.partitions=4
group.initial.rebalance.delay.ms=0
delete.topic.enable=true

# Small machine: few threads, small segments, 1 day / 1 GiB per partition retention.
num.network.threads=2
num.io.threads=4
background.threads=4
num.recovery.threads.per.data.dir=1
num.replica.fetchers=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
log.segment.bytes=67108864
log.retention.hours=24
log.retention.bytes=1073741824
log.retention.check.interval.ms=300000

# After a kill -9 the restarted broker cannot re-register until the old registration's
# session expires (DUPLICATE_BROKER_REGISTRATION); default 9 s, shortened for fast recovery.
broker.session.timeout.ms=4000
broker.heartbeat.interval.ms=1000
EOF
  if [[ -n "${KAFKA_EXTRA_CONFIG:-}" ]]; then
    printf '\n# From $KAFKA_EXTRA_CONFIG (last value of a key wins):\n%s\n' "$KAFKA_EXTRA_CONFIG" >>"$SERVER_PROPS.tmp"
  fi
  mv "$SERVER_PROPS.tmp" "$SERVER_PROPS"
}

java_base() {  # common JVM flags for the broker and the storage tool
  # shellcheck disable=SC2206
  JAVA_CMD=("$JAVA" $KAFKA_HEAP $KAFKA_JVM_OPTS "$MARK"
    "-Dlog4j2.configurationFile=file:$LOG4J_CONF" "-Dkafka.logs.dir=$LOG_DIR"
    -cp "$LIBS/*")
}

format_storage() {
  [[ -f "$LOG_DIRS/meta.properties" ]] && return 0
  local cid
  if [[ -s "$CLUSTER_ID_FILE" ]]; then
    cid="$(cat "$CLUSTER_ID_FILE")"
  else
    # A Kafka Uuid: 16 random bytes, URL-safe base64 without padding, not starting with '-'.
    cid="$("$PYTHON" -c 'import base64,os
while True:
    s = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not s.startswith("-"): print(s); break')"
    echo "$cid" >"$CLUSTER_ID_FILE"
  fi
  say "formatting $LOG_DIRS (cluster id $cid)"
  local JAVA_CMD
  java_base
  # The storage tool is short-lived: give it a small heap whatever KAFKA_HEAP says.
  "${JAVA_CMD[@]}" -Xmx256m kafka.tools.StorageTool format \
    --cluster-id "$cid" --config "$SERVER_PROPS" --ignore-formatted >>"$LOG_DIR/kafka.out" 2>&1 \
    || { tail -n 20 "$LOG_DIR/kafka.out" >&2; die "storage format failed (see $LOG_DIR/kafka.out)"; }
}

# --- commands --------------------------------------------------------------------------------

cmd_install() {
  with_lock
  install_jars
  say "Kafka $KAFKA_VERSION jars ready in $LIBS"
}

cmd_up() {
  local t0 pid rc
  t0="$(now)"
  check_python
  with_lock
  if pid="$(find_pid)"; then
    echo "$pid" >"$PID_FILE"
    if probe --once --quiet --timeout 5; then
      say "already running and ready (pid $pid, 127.0.0.1:$KAFKA_PORT); nothing to do"
      return 0
    fi
    say "already running (pid $pid) but not ready yet; waiting up to ${KAFKA_START_TIMEOUT}s"
  else
    rm -f "$PID_FILE"
    local p
    for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"; do
      if port_busy "$p"; then
        die "port 127.0.0.1:$p is already in use by another process (ss -ltnp 'sport = :$p'); set KAFKA_PORT / KAFKA_CONTROLLER_PORT"
      fi
    done
    check_java
    install_jars
    write_config
    format_storage
    local JAVA_CMD
    java_base
    {
      echo "=== $(date -Is) starting Kafka $KAFKA_VERSION: ${JAVA_CMD[*]} kafka.Kafka $SERVER_PROPS"
    } >>"$LOG_DIR/kafka.out"
    # setsid: own session, so a Ctrl-C in the terminal that ran `up` does not reach the broker.
    # 9>&-: the broker must not inherit (and so keep holding) the kafka.lock descriptor.
    setsid "${JAVA_CMD[@]}" kafka.Kafka "$SERVER_PROPS" >>"$LOG_DIR/kafka.out" 2>&1 </dev/null 9>&- &
    pid=$!
    echo "$pid" >"$PID_FILE"
    say "started Kafka $KAFKA_VERSION (pid $pid), waiting for 127.0.0.1:$KAFKA_PORT (timeout ${KAFKA_START_TIMEOUT}s)"
  fi
  rc=0
  probe --timeout "$KAFKA_START_TIMEOUT" --pid "$pid" || rc=$?
  if [[ $rc -eq 0 ]]; then
    say "ready in $(elapsed "$t0")s (bootstrap 127.0.0.1:$KAFKA_PORT, log $LOG_DIR/kafka.log)"
    return 0
  fi
  {
    echo "--- last lines of $LOG_DIR/kafka.log:"
    tail -n 25 "$LOG_DIR/kafka.log" 2>/dev/null || true
    # stdout/stderr of this run only (JVM errors that happen before log4j is up).
    echo "--- $LOG_DIR/kafka.out (this run):"
    awk '/^=== / { buf = ""; next } { buf = buf $0 "\n" } END { printf "%s", buf }' \
      "$LOG_DIR/kafka.out" 2>/dev/null | tail -n 15 || true
  } >&2
  if [[ $rc -eq 2 ]]; then
    rm -f "$PID_FILE"
    die "broker exited during startup"
  fi
  die "broker (pid $pid) not ready after ${KAFKA_START_TIMEOUT}s; still running, see 'kafka.sh logs' or run 'kafka.sh down'"
}

cmd_down() {
  local pid i
  with_lock
  if ! pid="$(find_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  say "stopping Kafka (pid $pid)"
  local t0; t0="$(now)"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < KAFKA_STOP_TIMEOUT * 10; i++)); do
    is_ours "$pid" || break
    sleep 0.1
  done
  if is_ours "$pid"; then
    say "still alive after ${KAFKA_STOP_TIMEOUT}s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do is_ours "$pid" || break; sleep 0.1; done
  fi
  rm -f "$PID_FILE"
  say "stopped in $(elapsed "$t0")s"
}

cmd_status() {
  local pid rss ready=1
  if pid="$(find_pid)"; then
    rss="$(awk '/^VmRSS/ {printf "%d MiB", $2/1024}' "/proc/$pid/status" 2>/dev/null || echo '?')"
    echo "state:      running"
    echo "pid:        $pid (rss $rss)"
  else
    echo "state:      stopped"
    echo "pid:        -"
  fi
  echo "version:    $KAFKA_VERSION ($( [[ -f "$MARKER" ]] && echo "jars cached in $LIBS" || echo "jars not installed"))"
  echo "bootstrap:  127.0.0.1:$KAFKA_PORT (controller 127.0.0.1:$KAFKA_CONTROLLER_PORT)"
  echo "data:       $DATA_DIR"
  echo "log:        $LOG_DIR/kafka.log"
  if [[ -x "$PYTHON" ]] && probe --once --quiet --timeout 5 2>/dev/null; then
    ready=0
    echo "protocol:   ok (describe_cluster answered)"
  else
    echo "protocol:   not answering"
  fi
  return "$ready"
}

cmd_logs() {
  local follow=0 n=100 a
  for a in "$@"; do
    case "$a" in
      -f|--follow) follow=1 ;;
      [0-9]*) n="$a" ;;
      *) die "usage: kafka.sh logs [-f] [N]" ;;
    esac
  done
  [[ -f "$LOG_DIR/kafka.log" ]] || die "no log yet at $LOG_DIR/kafka.log"
  if [[ $follow -eq 1 ]]; then exec tail -n "$n" -F "$LOG_DIR/kafka.log"; fi
  tail -n "$n" "$LOG_DIR/kafka.log"
}

cmd_reset() {
  cmd_down
  with_lock
  rm -rf "$DATA_DIR"
  say "deleted $DATA_DIR (next 'up' formats a fresh, empty broker)"
}

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
}

case "${1:-}" in
  up|start) cmd_up ;;
  down|stop) cmd_down ;;
  status) cmd_status ;;
  logs) shift; cmd_logs "$@" ;;
  reset) cmd_reset ;;
  install) cmd_install ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
