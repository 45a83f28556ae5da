#!/usr/bin/env bash
# Local, genuine Prometheus beside the running amends services (loopback only).
#
#   deploy/local/prometheus.sh install  build prometheus + promtool once (Go module proxy), print the bin dir
#   deploy/local/prometheus.sh up       install if needed, write the config, start, wait until ready
#   deploy/local/prometheus.sh down     SIGTERM, wait up to 30 s, then SIGKILL
#   deploy/local/prometheus.sh status   running/stopped, pid, address, targets file (exit 0 only if ready)
#   deploy/local/prometheus.sh logs [N] last N lines of its log
#
# Binaries: <repo>/.local/bin/{prometheus,promtool}-$PROMETHEUS_VERSION (git-ignored), built with
# `go install github.com/prometheus/prometheus/cmd/...@$PROMETHEUS_MODULE` (Go >= 1.26.7).
# What it scrapes: the file_sd targets file $PROMETHEUS_TARGETS (default
# $AMENDS_HOME/run/scrape-targets.json), which `amends run` writes with the ports it actually
# used and removes when it stops; Prometheus re-reads it on change, so `up` can come before
# or after the run. Rules: deploy/prometheus/rules/*.rules.yaml (the same file the Kubernetes
# PrometheusRule is generated from). State: $PROMETHEUS_HOME (default $AMENDS_HOME, i.e.
# <repo>/.local): conf/prometheus/prometheus.yml, data/prometheus, logs/prometheus.log,
# run/prometheus.pid.
# Env: PROMETHEUS_PORT (9090) PROMETHEUS_SCRAPE_INTERVAL (5s) PROMETHEUS_RETENTION (1d)
#      PROMETHEUS_TARGETS PROMETHEUS_HOME AMENDS_HOME PROMETHEUS_START_TIMEOUT (60)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

# Prometheus 3.x is published to the Go module proxy as v0.3MM.P (v3.16.0 = v0.316.0).
PROMETHEUS_VERSION="${PROMETHEUS_VERSION:-3.16.0}"
PROMETHEUS_MODULE="${PROMETHEUS_MODULE:-v0.${PROMETHEUS_VERSION%%.*}$(printf '%02d' "$(cut -d. -f2 <<<"$PROMETHEUS_VERSION")").${PROMETHEUS_VERSION##*.}}"
AMENDS_HOME="${AMENDS_HOME:-$REPO_ROOT/.local}"
BIN="$REPO_ROOT/.local/bin"  # tools are per clone, whatever PROMETHEUS_HOME says
PROMETHEUS_HOME="${PROMETHEUS_HOME:-$AMENDS_HOME}"
PROMETHEUS_PORT="${PROMETHEUS_PORT:-9090}"
PROMETHEUS_SCRAPE_INTERVAL="${PROMETHEUS_SCRAPE_INTERVAL:-5s}"
PROMETHEUS_RETENTION="${PROMETHEUS_RETENTION:-1d}"
PROMETHEUS_TARGETS="${PROMETHEUS_TARGETS:-$AMENDS_HOME/run/scrape-targets.json}"
PROMETHEUS_START_TIMEOUT="${PROMETHEUS_START_TIMEOUT:-60}"
# Absolute: Prometheus runs in another directory (see cmd_up).
PROMETHEUS_HOME="$(realpath -m "$PROMETHEUS_HOME")"
PROMETHEUS_TARGETS="$(realpath -m "$PROMETHEUS_TARGETS")"

PROMETHEUS="$BIN/prometheus-$PROMETHEUS_VERSION"
PROMTOOL="$BIN/promtool-$PROMETHEUS_VERSION"
RULES_GLOB="$REPO_ROOT/deploy/prometheus/rules/*.rules.yaml"
# Server-rendered pages (Go templates): a `go install`ed Prometheus has no UI assets.
CONSOLES="$SCRIPT_DIR/prometheus/consoles"
CONF_DIR="$PROMETHEUS_HOME/conf/prometheus"
CONFIG="$CONF_DIR/prometheus.yml"
DATA_DIR="$PROMETHEUS_HOME/data/prometheus"
LOG_DIR="$PROMETHEUS_HOME/logs"
LOG="$LOG_DIR/prometheus.log"
RUN_DIR="$PROMETHEUS_HOME/run"
PID_FILE="$RUN_DIR/prometheus.pid"
ADDRESS="127.0.0.1:$PROMETHEUS_PORT"

say() { printf 'prometheus.sh: %s\n' "$*" >&2; }
die() { printf 'prometheus.sh: error: %s\n' "$*" >&2; exit 1; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# --- install ---------------------------------------------------------------------------------

install() {
  if [[ -x "$PROMETHEUS" && -x "$PROMTOOL" ]]; then
    ln -sfn "prometheus-$PROMETHEUS_VERSION" "$BIN/prometheus"
    ln -sfn "promtool-$PROMETHEUS_VERSION" "$BIN/promtool"
    return 0
  fi
  local go="${GO:-}"
  [[ -n "$go" ]] || go="$(command -v go || true)"
  [[ -n "$go" ]] || { [[ -x /usr/local/go/bin/go ]] && go=/usr/local/go/bin/go; }
  [[ -n "$go" ]] || die "Go >= 1.26.7 is required to build Prometheus (apt-get install golang-go or go.dev)"
  mkdir -p "$BIN" "$REPO_ROOT/.local/cache/go/mod" "$REPO_ROOT/.local/cache/go/build" "$REPO_ROOT/.local/logs"
  (
    # The lock keeps two concurrent installs (tests, make observe) from building twice.
    exec 8>"$REPO_ROOT/.local/cache/go/prometheus.lock"
    flock -w 1800 8 || die "could not take the install lock"
    [[ -x "$PROMETHEUS" && -x "$PROMTOOL" ]] && exit 0
    local t0 tmp ldflags pkg
    t0="$(now)"
    tmp="$(mktemp -d "$REPO_ROOT/.local/cache/go/prometheus.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    say "building Prometheus $PROMETHEUS_VERSION ($PROMETHEUS_MODULE) and promtool from the Go module proxy (one time, several minutes; log .local/logs/prometheus-build.log)"
    # remove_all_sd: only the static and file service discoveries (all amends needs),
    # which leaves out the cloud SDKs and client-go: a much smaller, faster build.
    # Without the -X flags the binaries report an empty version.
    pkg=github.com/prometheus/common/version
    ldflags="-s -w -X $pkg.Version=$PROMETHEUS_VERSION -X $pkg.Branch=module -X $pkg.Revision=$PROMETHEUS_MODULE -X $pkg.BuildUser=amends"
    if ! GOBIN="$tmp" \
      GOMODCACHE="$REPO_ROOT/.local/cache/go/mod" \
      GOCACHE="$REPO_ROOT/.local/cache/go/build" \
      GOFLAGS="-buildvcs=false -trimpath" \
      GOTOOLCHAIN=local \
      CGO_ENABLED=0 \
      "$go" install -tags remove_all_sd -ldflags "$ldflags" \
        "github.com/prometheus/prometheus/cmd/prometheus@$PROMETHEUS_MODULE" \
        "github.com/prometheus/prometheus/cmd/promtool@$PROMETHEUS_MODULE" \
        >"$REPO_ROOT/.local/logs/prometheus-build.log" 2>&1; then
      tail -n 30 "$REPO_ROOT/.local/logs/prometheus-build.log" >&2
      die "go install of Prometheus $PROMETHEUS_MODULE failed"
    fi
    mv "$tmp/promtool" "$PROMTOOL"
    mv "$tmp/prometheus" "$PROMETHEUS"
    say "built in $(elapsed "$t0") s: $PROMETHEUS, $PROMTOOL"
  )
  ln -sfn "prometheus-$PROMETHEUS_VERSION" "$BIN/prometheus"
  ln -sfn "promtool-$PROMETHEUS_VERSION" "$BIN/promtool"
}

# --- config ----------------------------------------------------------------------------------

write_config() {
  mkdir -p "$CONF_DIR" "$DATA_DIR" "$LOG_DIR" "$RUN_DIR" "$(dirname "$PROMETHEUS_TARGETS")"
  # An empty target list until `amends run` writes its own (file_sd wants a valid file).
  [[ -s "$PROMETHEUS_TARGETS" ]] || echo '[]' >"$PROMETHEUS_TARGETS"
  cat >"$CONFIG.tmp" <<EOF
# Generated by deploy/local/prometheus.sh on every 'up'; edit the script, not this file.
# Targets come from $PROMETHEUS_TARGETS (written by \`amends run\`): each carries the labels
# service=<name> and namespace=local, as the Kubernetes PodMonitor sets them, so the
# dashboards and alert rules work unchanged.
global:
  scrape_interval: $PROMETHEUS_SCRAPE_INTERVAL
  evaluation_interval: $PROMETHEUS_SCRAPE_INTERVAL

rule_files:
  - $RULES_GLOB

scrape_configs:
  - job_name: amends
    honor_labels: true
    metrics_path: /metrics
    file_sd_configs:
      - files: [$PROMETHEUS_TARGETS]
        refresh_interval: 5s
  - job_name: prometheus
    static_configs:
      - targets: ["$ADDRESS"]
EOF
  mv "$CONFIG.tmp" "$CONFIG"
  "$PROMTOOL" check config --syntax-only "$CONFIG" >/dev/null \
    || die "generated $CONFIG does not pass promtool check config"
}

# --- process helpers -------------------------------------------------------------------------

is_ours() {  # pid -> 0 if it is a live prometheus using this DATA_DIR
  local pid="$1" cmd state
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  state="$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" || return 1
  [[ "$state" != Z ]] || return 1
  cmd="$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline")" || return 1
  [[ "$cmd" == *"--storage.tsdb.path=$DATA_DIR "* ]]
}

find_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  is_ours "$pid" || return 1
  echo "$pid"
}

ready() { curl -fsS -m 2 "http://$ADDRESS/-/ready" >/dev/null 2>&1; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- commands --------------------------------------------------------------------------------

cmd_up() {
  local t0 pid i
  t0="$(now)"
  install
  if pid="$(find_pid)"; then
    write_config
    kill -HUP "$pid"  # reload the config and the rules
    say "already running (pid $pid) on http://$ADDRESS; config and rules reloaded"
    return 0
  fi
  port_busy "$PROMETHEUS_PORT" && die "port $ADDRESS is already in use (ss -ltnp 'sport = :$PROMETHEUS_PORT'); set PROMETHEUS_PORT"
  write_config
  echo "=== $(date -Is) starting Prometheus $PROMETHEUS_VERSION on $ADDRESS" >>"$LOG"
  # setsid: a Ctrl-C in the terminal that ran `up` does not reach it. The cwd holds
  # static/mantine-ui/index.html, what a build without UI assets serves for / (a pointer
  # to the overview page).
  cd "$SCRIPT_DIR/prometheus/site"  # not named prometheus, web or ui: those change the asset path
  setsid "$PROMETHEUS" \
    "--config.file=$CONFIG" \
    "--storage.tsdb.path=$DATA_DIR" \
    "--storage.tsdb.retention.time=$PROMETHEUS_RETENTION" \
    "--web.listen-address=$ADDRESS" \
    --web.enable-lifecycle \
    "--web.console.templates=$CONSOLES" \
    "--web.console.libraries=$CONSOLES" \
    >>"$LOG" 2>&1 </dev/null &
  pid=$!
  echo "$pid" >"$PID_FILE"
  for ((i = 0; i < PROMETHEUS_START_TIMEOUT * 5; i++)); do
    ready && { say "ready in $(elapsed "$t0") s on http://$ADDRESS (pid $pid, log $LOG)"; return 0; }
    is_ours "$pid" || { tail -n 20 "$LOG" >&2; rm -f "$PID_FILE"; die "Prometheus exited during startup"; }
    sleep 0.2
  done
  tail -n 20 "$LOG" >&2
  die "Prometheus (pid $pid) not ready after ${PROMETHEUS_START_TIMEOUT} s; see $LOG"
}

cmd_down() {
  local pid i
  if ! pid="$(find_pid)"; then
    rm -f "$PID_FILE"
    say "not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do is_ours "$pid" || break; sleep 0.1; done
  if is_ours "$pid"; then
    say "still alive after 30 s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  say "stopped (pid $pid)"
}

cmd_status() {
  local pid
  if pid="$(find_pid)"; then echo "state:    running (pid $pid)"; else echo "state:    stopped"; fi
  echo "version:  $PROMETHEUS_VERSION ($([[ -x "$PROMETHEUS" ]] && echo "built: $PROMETHEUS" || echo "not built"))"
  echo "page:     http://$ADDRESS/consoles/amends.html  (API: http://$ADDRESS/api/v1/...)"
  echo "targets:  $PROMETHEUS_TARGETS"
  echo "rules:    $RULES_GLOB"
  echo "log:      $LOG"
  if ready; then echo "ready:    yes"; return 0; fi
  echo "ready:    no"
  return 1
}

case "${1:-}" in
  install) install; echo "$BIN" ;;
  up|start) cmd_up ;;
  down|stop) cmd_down ;;
  status) cmd_status ;;
  logs) tail -n "${2:-100}" "$LOG" ;;
  -h|--help|help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
