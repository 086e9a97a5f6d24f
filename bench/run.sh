#!/usr/bin/env bash
# bench/run.sh — supersocket's benchmark suite, with its peer baselines in the same run.
#
# Builds supersocket (the CLI, with "bench" and the echo apps), bench/netecho (Go's net,
# a goroutine per connection), bench/gnetecho (gnet v2) and bench/wsecho (gorilla/websocket
# on net/http), then:
#   1. the load matrix: protocol (line, len, echo) × connections (1, 64, 1000) × message
#      size (64 B, 4 KiB) × pipeline depth (1, 16), against the four servers — supersocket
#      on its goroutine engine and on its epoll engine ("supersocket-epoll", serve -engine
#      epoll), net and gnet — RUNS runs per cell, servers interleaved; the server pinned to
#      CPU SERVER_CPU and the load tool to LOAD_CPU (taskset). Reported: medians, each
#      supersocket ÷ net msgs/s and ÷ gnet server CPU per message, the epoll engine's p99
#      against the goroutine engine's at 1000 connections, pipeline 1.
#      With WS=1 (the default) a WebSocket row group follows: the same cells over
#      WebSocket ("supersocket bench -ws /ws": one message per request and reply) against
#      supersocket's WebSocket listener and wsecho. Reported: supersocket ÷ gorilla msgs/s
#      and server CPU per message.
#   2. idle memory: IDLE connections held open after one exchange each, the server's RSS
#      growth per connection, for the four servers, and with WS=1 for the two WebSocket
#      servers (supersocket's WebSocket figure is held against its own TCP one).
#   2b. new connections (ACCEPT): clients that open a connection, make one exchange and
#      reset it, over and over: connections per second and the server's CPU per connection,
#      for the four servers, ACCEPT_RUNS runs interleaved.
#   3. optionally (GOBENCH=1) the Go benchmarks, compared with benchstat against the
#      revision BENCHSTAT_BASE when it is set.
#
# Usage:
#   bench/run.sh                 the full matrix (about 10 minutes on 2 cores) + idle at 10 000
#   bench/run.sh quick           RUNS=3, 0.4 s runs: about 4 minutes
#   SPLIT=1 MATRIX=0 IDLE= bench/run.sh
#                                only the CPU split of one cell (SPLIT_LOAD), for each server
#   GOBENCH=1 bench/run.sh       also the Go benchmarks (go test -bench . -benchmem ./filter/ .)
#   GOBENCH=1 MATRIX=0 IDLE= BENCHSTAT_BASE=HEAD~1 bench/run.sh
#                                only the Go benchmarks, compared with HEAD~1 by benchstat
#
# Settings (environment):
#   RUNS=3 DURATION=1s WARMUP=200ms       runs per cell (the median is reported), measured
#                                         time and unmeasured warm-up of each run
#   PROTOS="line len echo" CONNS="1 64 1000" SIZES="64 4096" PIPES="1 16"
#   SERVERS="supersocket supersocket-epoll net gnet"
#                                         which servers (labels) to run
#   WS=1 WS_SERVERS="supersocket gorilla" WS_PROTOS="$PROTOS"
#                                         the WebSocket row group (0 skips it), its servers
#                                         and protocols; its cells are CONNS × SIZES × PIPES.
#                                         supersocket serves "-mode ws" when its CLI has it,
#                                         else the hidden "bench -serve APP -ws /ws"
#   BASELINE=<git rev>                    also run "baseline", supersocket built from that
#                                         revision, interleaved with the others; the report
#                                         adds ss ÷ baseline per cell (did a change regress?)
#   MATRIX=1                              0 skips the load matrix
#   IDLE="10000 19000" IDLE_RUNS=3 IDLE_PROTO=echo
#                                         idle-connection counts ("" skips the step); a
#                                         count needs that many open files in the server
#                                         and in the load tool: counts above the hard limit
#                                         (ulimit -Hn) are skipped with a note
#   ACCEPT="8" ACCEPT_RUNS=$RUNS         clients of the new-connections step ("" skips it)
#   GOBENCH=0 GOBENCH_COUNT=6 BENCHSTAT_BASE=<git rev>
#   PROFILE=0                             1: CPU-profile the supersocket server (the hidden
#                                         "supersocket bench -serve APP -cpuprofile FILE" mode)
#                                         under PROFILE_LOAD and print pprof's top functions
#   PROFILE_APP=echo PROFILE_LOAD="-proto echo -conns 64 -pipeline 16 -size 64 -duration 10s"
#   SPLIT=0                               1: where a message's CPU goes, for every server, in
#                                         one cell: perf samples of the server split into the
#                                         kernel, the Go runtime (scheduler, poller, sync,
#                                         system-call stubs, vDSO) and the server's own code,
#                                         each times its CPU per message (needs perf)
#   SPLIT_LOAD="-proto echo -conns 1000 -pipeline 16 -size 64 -duration 4s" SPLIT_RUNS=2
#   SERVER_CPU=0 LOAD_CPU=1 PORT=19000
#   OUT=<dir>                             raw results (default: a new /tmp/supersocket-bench.*)
#
# Raw results: $OUT/load.jsonl and $OUT/idle.jsonl (one "supersocket bench -json" object per
# run), $OUT/report.txt (the tables), $OUT/machine.txt, $OUT/*.log (server and tool logs).
# Re-print the tables any time: bench/bin/supersocket bench -report $OUT/*.jsonl
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
export PATH="$PATH:/usr/local/go/bin"

if [ "${1:-}" = quick ]; then
  : "${RUNS:=3}" "${DURATION:=400ms}" "${WARMUP:=100ms}"
fi
RUNS=${RUNS:-3}
DURATION=${DURATION:-1s}
WARMUP=${WARMUP:-200ms}
PROTOS=${PROTOS:-line len echo}
CONNS=${CONNS:-1 64 1000}
SIZES=${SIZES:-64 4096}
PIPES=${PIPES:-1 16}
SERVERS=${SERVERS:-supersocket supersocket-epoll net gnet}
WS=${WS:-1}
WS_SERVERS=${WS_SERVERS:-supersocket gorilla}
WS_PROTOS=${WS_PROTOS:-$PROTOS}
WS_PATH=/ws
BASELINE=${BASELINE:-}
if [ -n "$BASELINE" ] && [[ " $SERVERS " != *" baseline "* ]]; then
  # The baseline runs right after supersocket, each label once.
  others=""
  for s in $SERVERS; do [ "$s" = supersocket ] || others="$others $s"; done
  SERVERS="supersocket baseline$others"
fi
MATRIX=${MATRIX:-1}
IDLE=${IDLE-10000 19000}
ACCEPT=${ACCEPT-8}
ACCEPT_RUNS=${ACCEPT_RUNS:-$RUNS}
IDLE_RUNS=${IDLE_RUNS:-3}
IDLE_PROTO=${IDLE_PROTO:-echo}
GOBENCH=${GOBENCH:-0}
GOBENCH_COUNT=${GOBENCH_COUNT:-6}
BENCHSTAT_BASE=${BENCHSTAT_BASE:-}
SERVER_CPU=${SERVER_CPU:-0}
LOAD_CPU=${LOAD_CPU:-1}
PORT=${PORT:-19000}
OUT=${OUT:-$(mktemp -d /tmp/supersocket-bench.XXXXXX)}
mkdir -p "$OUT"

log() { printf '%s\n' "$*" >&2; }

# taskset comes with util-linux; install it if this machine lacks it.
if ! command -v taskset >/dev/null; then
  log "taskset not found: installing util-linux"
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && apt-get install -y -qq util-linux >/dev/null
  else
    sudo apt-get update -qq && sudo apt-get install -y -qq util-linux >/dev/null
  fi
fi

log "== building into $here/bin"
mkdir -p "$here/bin"
(cd "$root" && go build -o "$here/bin/supersocket" ./cmd/supersocket)
(cd "$here" && go build -o "$here/bin/" ./netecho ./gnetecho ./wsecho)
ss="$here/bin/supersocket"
if [ -n "$BASELINE" ]; then
  log "== building the baseline, $BASELINE"
  basedir=$(mktemp -d)
  (cd "$root" && git archive --format=tar "$BASELINE") | tar -x -C "$basedir"
  (cd "$basedir" && go build -o "$here/bin/supersocket-baseline" ./cmd/supersocket)
  rm -rf "$basedir"
fi

{
  echo "date: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(cd "$root" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$root" && git diff --quiet HEAD 2>/dev/null || echo ' (with uncommitted changes)')"
  echo "go: $(go version)"
  echo "kernel: $(uname -sr)"
  echo "nproc: $(nproc)"
  lscpu | head -n 20
  echo "open files: soft $(ulimit -Sn), hard $(ulimit -Hn)"
  echo "pinning: servers on CPU $SERVER_CPU, load tool on CPU $LOAD_CPU"
  [ -n "$BASELINE" ] && echo "baseline: $BASELINE ($(cd "$root" && git rev-parse --short "$BASELINE"))"
  echo "settings: RUNS=$RUNS DURATION=$DURATION WARMUP=$WARMUP PROTOS='$PROTOS' CONNS='$CONNS' SIZES='$SIZES' PIPES='$PIPES' SERVERS='$SERVERS' IDLE='$IDLE' ACCEPT='$ACCEPT' WS=$WS WS_SERVERS='$WS_SERVERS' WS_PROTOS='$WS_PROTOS'"
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2

# Other work on the machine skews every figure: measure how busy the CPUs are over one
# second while none of our servers runs, before and after.
busy_check() { # busy_check WHEN
  local a b busy
  read -r -a a < <(grep '^cpu ' /proc/stat)
  sleep 1
  read -r -a b < <(grep '^cpu ' /proc/stat)
  # busy = (total - idle - iowait) / total, from the deltas of the aggregate cpu line.
  busy=$(awk -v t0="$(( a[1]+a[2]+a[3]+a[4]+a[5]+a[6]+a[7]+a[8] ))" -v i0="$(( a[4]+a[5] ))" \
             -v t1="$(( b[1]+b[2]+b[3]+b[4]+b[5]+b[6]+b[7]+b[8] ))" -v i1="$(( b[4]+b[5] ))" \
             'BEGIN { t = t1 - t0; b = 0; if (t > 0) b = 100 * (t - (i1 - i0)) / t; printf "%.0f", b }')
  echo "CPU busy with other work ($1): $busy % of $(nproc) CPUs" >>"$OUT/machine.txt"
  if [ "$busy" -gt 10 ]; then
    log "WARNING: the CPUs were $busy % busy with other work $1: results will be noisy. Busiest processes (lifetime %CPU):"
    ps -eo pid,pcpu,etime,comm --sort=-pcpu | sed -n '2,4p' | tee -a "$OUT/machine.txt" >&2
  fi
}
busy_check "before the runs"

# Servers this script started, by pid, stopped on exit.
declare -A pids=()
cleanup() {
  for p in "${pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do
    wait "$p" 2>/dev/null || true
  done
}
trap cleanup EXIT

# Whether supersocket's CLI serves WebSocket itself ("serve -mode ws", path /ws by
# default); else its WebSocket server is the hidden "bench -serve APP -ws PATH".
ss_mode_ws=0
mode_usage=$("$ss" serve -h 2>&1 | grep -A1 -e '^ *-mode ' || true)
if [[ $mode_usage =~ (^|[^-a-z])ws([^-a-z]|$) ]]; then
  ss_mode_ws=1
fi

# start_server LABEL PROTO PORT [TRANSPORT]: starts a server pinned to SERVER_CPU (over
# TRANSPORT, tcp by default, or ws), waits until it accepts connections, and sets
# pids[LABEL].
start_server() {
  local label=$1 proto=$2 port=$3 transport=${4:-tcp} app
  local addr="127.0.0.1:$port" logf="$OUT/server-$label-$proto-$transport-$port.log"
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    log "port $port is already in use (a server left from an earlier run?): stop it, or set PORT"; exit 1
  fi
  case $label/$transport in
    supersocket/tcp | supersocket-epoll/tcp | baseline/tcp | supersocket/ws)
      case $proto in line) app=lineecho ;; len) app=lenecho ;; echo) app=echo ;; esac
      local bin=$ss engine=goroutine
      [ "$label" = baseline ] && bin="$here/bin/supersocket-baseline"
      [ "$label" = supersocket-epoll ] && engine=epoll
      if [ "$transport" = tcp ] && [ "$label" = baseline ]; then
        # An earlier build may predate -engine: its default engine.
        taskset -c "$SERVER_CPU" "$bin" serve -app "$app" -addr "$addr" -log-level warn \
          -max-connections 1000000 >"$logf" 2>&1 &
      elif [ "$transport" = tcp ]; then
        taskset -c "$SERVER_CPU" "$bin" serve -app "$app" -addr "$addr" -log-level warn \
          -max-connections 1000000 -engine "$engine" >"$logf" 2>&1 &
      elif [ "$ss_mode_ws" = 1 ]; then
        taskset -c "$SERVER_CPU" "$bin" serve -app "$app" -mode ws -addr "$addr" -log-level warn \
          -max-connections 1000000 >"$logf" 2>&1 &
      else
        taskset -c "$SERVER_CPU" "$bin" bench -serve "$app" -ws "$WS_PATH" -addr "$addr" >"$logf" 2>&1 &
      fi
      ;;
    net/tcp) taskset -c "$SERVER_CPU" "$here/bin/netecho" -addr "$addr" -proto "$proto" >"$logf" 2>&1 & ;;
    gnet/tcp) taskset -c "$SERVER_CPU" "$here/bin/gnetecho" -addr "$addr" -proto "$proto" >"$logf" 2>&1 & ;;
    gorilla/ws) taskset -c "$SERVER_CPU" "$here/bin/wsecho" -addr "$addr" -path "$WS_PATH" -proto "$proto" >"$logf" 2>&1 & ;;
    *) log "unknown server $label over $transport"; exit 2 ;;
  esac
  pids[$label]=$!
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      return 0
    fi
    if ! kill -0 "${pids[$label]}" 2>/dev/null; then
      log "$label server for $proto exited; its log:"; cat "$logf" >&2; exit 1
    fi
    sleep 0.1
  done
  log "$label server for $proto did not start listening on $addr"; exit 1
}

stop_servers() {
  local l
  for l in "${!pids[@]}"; do
    kill "${pids[$l]}" 2>/dev/null || true
    wait "${pids[$l]}" 2>/dev/null || true
    unset "pids[$l]"
  done
}

port_of() { # port_of LABEL_INDEX PROTO_INDEX [TRANSPORT]: tcp PORT+0..49, ws PORT+50..79
  local base=0
  [ "${3:-tcp}" = ws ] && base=50
  echo $((PORT + base + 10 * $2 + $1))
}

# bench_flags TRANSPORT: the flags "supersocket bench" needs for the transport.
bench_flags() {
  [ "$1" = ws ] && echo "-ws $WS_PATH"
  return 0
}

read -r -a servers <<<"$SERVERS"
read -r -a ws_servers <<<"$WS_SERVERS"

# matrix_group TRANSPORT PROTOS SERVER...: the matrix's cells of one transport, each
# protocol's servers started together and run interleaved. cell and ncells count on.
matrix_group() {
  local transport=$1 protos=$2 pi=0 proto conns size pipe run k i label
  shift 2
  local group=("$@")
  for proto in $protos; do
    busy_check "before the $proto runs over $transport"
    for i in "${!group[@]}"; do
      start_server "${group[$i]}" "$proto" "$(port_of "$i" "$pi" "$transport")" "$transport"
    done
    for conns in $CONNS; do
      for size in $SIZES; do
        for pipe in $PIPES; do
          cell=$((cell + 1))
          log "[$cell/$ncells] $proto over $transport conns=$conns size=$size pipeline=$pipe"
          for run in $(seq "$RUNS"); do
            # Rotate which server goes first, so drift over time favours none.
            for k in "${!group[@]}"; do
              i=$(((k + run) % ${#group[@]}))
              label=${group[$i]}
              # shellcheck disable=SC2046 # bench_flags is a list of flags
              if ! taskset -c "$LOAD_CPU" "$ss" bench -addr "127.0.0.1:$(port_of "$i" "$pi" "$transport")" \
                $(bench_flags "$transport") -proto "$proto" -conns "$conns" -size "$size" -pipeline "$pipe" \
                -duration "$DURATION" -warmup "$WARMUP" -server-pid "${pids[$label]}" \
                -label "$label" -json >>"$OUT/load.jsonl" 2>>"$OUT/bench.log"; then
                log "  $label over $transport run $run reported errors (see $OUT/load.jsonl, $OUT/bench.log)"
              fi
            done
          done
        done
      done
    done
    stop_servers
    pi=$((pi + 1))
  done
}

if [ "$MATRIX" = 1 ]; then
  : >"$OUT/load.jsonl"
  per_proto=0
  for _ in $CONNS; do for _ in $SIZES; do for _ in $PIPES; do per_proto=$((per_proto + 1)); done; done; done
  ncells=0
  for _ in $PROTOS; do ncells=$((ncells + per_proto)); done
  wscells=0
  if [ "$WS" = 1 ]; then
    for _ in $WS_PROTOS; do wscells=$((wscells + per_proto)); done
  fi
  ncells=$((ncells + wscells))
  log "== load matrix: $((ncells - wscells)) cells × ${#servers[@]} servers + $wscells WebSocket cells × ${#ws_servers[@]} servers, × $RUNS runs of $DURATION (+ $WARMUP warm-up)"
  cell=0
  matrix_group tcp "$PROTOS" "${servers[@]}"
  if [ "$WS" = 1 ]; then
    matrix_group ws "$WS_PROTOS" "${ws_servers[@]}"
  fi
fi

if [ -n "$IDLE" ]; then
  : >"$OUT/idle.jsonl"
  hard=$(ulimit -Hn)
  for n in $IDLE; do
    if [ "$hard" != unlimited ] && [ $((n + 100)) -gt "$hard" ]; then
      log "== idle $n: skipped: each side needs $n open files, the hard limit here is $hard (raise it as root: ulimit -Hn)"
      echo "idle $n skipped: hard open-file limit $hard" >>"$OUT/machine.txt"
      continue
    fi
    idle_servers=()
    for label in "${servers[@]}"; do idle_servers+=("$label/tcp"); done
    if [ "$WS" = 1 ]; then
      for label in "${ws_servers[@]}"; do idle_servers+=("$label/ws"); done
    fi
    log "== idle memory: $n connections × ${#idle_servers[@]} servers × $IDLE_RUNS runs ($IDLE_PROTO)"
    for run in $(seq "$IDLE_RUNS"); do
      for i in "${!idle_servers[@]}"; do
        label=${idle_servers[$i]%/*} transport=${idle_servers[$i]#*/}
        # A fresh server each time: the RSS before is a server that has served nothing.
        start_server "$label" "$IDLE_PROTO" "$((PORT + 80 + i))" "$transport"
        # shellcheck disable=SC2046 # bench_flags is a list of flags
        taskset -c "$LOAD_CPU" "$ss" bench -idle "$n" -addr "127.0.0.1:$((PORT + 80 + i))" $(bench_flags "$transport") \
          -proto "$IDLE_PROTO" -server-pid "${pids[$label]}" -label "$label" -json \
          >>"$OUT/idle.jsonl" 2>>"$OUT/bench.log" || log "  $label over $transport idle run $run reported errors"
        stop_servers
      done
    done
  done
fi

if [ -n "$ACCEPT" ]; then
  : >"$OUT/accept.jsonl"
  for n in $ACCEPT; do
    log "== new connections: $n clients × ${#servers[@]} servers × $ACCEPT_RUNS runs ($IDLE_PROTO)"
    for i in "${!servers[@]}"; do
      start_server "${servers[$i]}" "$IDLE_PROTO" "$((PORT + 85 + i))"
    done
    for run in $(seq "$ACCEPT_RUNS"); do
      for k in "${!servers[@]}"; do
        i=$(((k + run) % ${#servers[@]}))
        label=${servers[$i]}
        taskset -c "$LOAD_CPU" "$ss" bench -accept -conns "$n" -addr "127.0.0.1:$((PORT + 85 + i))" \
          -proto "$IDLE_PROTO" -duration "$DURATION" -warmup "$WARMUP" -server-pid "${pids[$label]}" \
          -label "$label" -json >>"$OUT/accept.jsonl" 2>>"$OUT/bench.log" ||
          log "  $label accept run $run reported errors"
      done
    done
    stop_servers
  done
fi

if [ "${PROFILE:-0}" = 1 ]; then
  app=${PROFILE_APP:-echo}
  load=${PROFILE_LOAD:--proto echo -conns 64 -pipeline 16 -size 64 -duration 10s}
  port=$((PORT + 99))
  log "== CPU profile of supersocket -app $app under: $load"
  taskset -c "$SERVER_CPU" "$ss" bench -serve "$app" -addr "127.0.0.1:$port" \
    -cpuprofile "$OUT/server-$app.cpu.prof" >"$OUT/profile-server.log" 2>&1 &
  pids[profile]=$!
  for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  # shellcheck disable=SC2086 # $load is a list of flags
  taskset -c "$LOAD_CPU" "$ss" bench -addr "127.0.0.1:$port" $load -server-pid "${pids[profile]}" | tee "$OUT/profile-load.txt"
  stop_servers
  go tool pprof -top -nodecount=40 "$ss" "$OUT/server-$app.cpu.prof" 2>/dev/null | tee "$OUT/profile-top.txt"
  echo "the profile: $OUT/server-$app.cpu.prof (go tool pprof -http=: $ss $OUT/server-$app.cpu.prof)"
fi

if [ "${SPLIT:-0}" = 1 ]; then
  load=${SPLIT_LOAD:--proto echo -conns 1000 -pipeline 16 -size 64 -duration 4s}
  proto=$(sed -n 's/.*-proto \([a-z]*\).*/\1/p' <<<"$load")
  proto=${proto:-echo}
  if ! command -v perf >/dev/null; then
    log "== split: skipped: perf is not installed"
  else
    log "== where a message's CPU goes (${SPLIT_RUNS:-2} runs) under: $load"
    : >"$OUT/split.jsonl"
    printf '%-12s %12s %12s %12s %12s\n' server CPU/msg kernel "Go runtime" "own code" | tee "$OUT/split.txt"
    for run in $(seq "${SPLIT_RUNS:-2}"); do
      for i in "${!servers[@]}"; do
        label=${servers[$i]}
        port=$((PORT + 90 + i))
        data="$OUT/split-$label-$run.perf"
        start_server "$label" "$proto" "$port"
        perf record -F 2000 -p "${pids[$label]}" -o "$data" >/dev/null 2>&1 &
        perfpid=$!
        # shellcheck disable=SC2086 # $load is a list of flags
        taskset -c "$LOAD_CPU" "$ss" bench -addr "127.0.0.1:$port" $load -server-pid "${pids[$label]}" \
          -label "$label" -json >>"$OUT/split.jsonl" 2>>"$OUT/bench.log" || log "  $label split run $run reported errors"
        kill -INT "$perfpid" 2>/dev/null || true
        wait "$perfpid" 2>/dev/null || true
        stop_servers
        cpu=$(tail -n 1 "$OUT/split.jsonl" | sed -n 's/.*"server_cpu_ns_per_msg":\([0-9.e+-]*\).*/\1/p')
        # perf report lines: "  12.34%  DSO  [k]|[.]  SYMBOL" (a generic symbol has spaces).
        perf report -i "$data" --stdio --no-children --percent-limit 0 --sort dso,sym 2>/dev/null |
          awk -v cpu="${cpu:-0}" -v label="$label" '
            /^ *[0-9.]+%/ {
              p = $1; sub(/%/, "", p); sym = ""
              for (f = 4; f <= NF; f++) sym = sym " " $f
              if ($3 == "[k]") k += p
              else if ($2 ~ /vdso/ || sym ~ /^ (runtime\.|internal\/runtime|internal\/poll|sync\.|syscall\.)/) r += p
              else o += p
            }
            END {
              t = k + r + o
              if (t == 0) { printf "%-12s no samples\n", label; exit }
              printf "%-12s %9.0f ns %9.0f ns %9.0f ns %9.0f ns\n", label, cpu, cpu * k / t, cpu * r / t, cpu * o / t
            }' | tee -a "$OUT/split.txt"
      done
    done
  fi
fi

busy_check "after the runs"

reports=()
[ -s "$OUT/load.jsonl" ] && reports+=("$OUT/load.jsonl")
[ -s "$OUT/idle.jsonl" ] && reports+=("$OUT/idle.jsonl")
[ -s "$OUT/accept.jsonl" ] && reports+=("$OUT/accept.jsonl")
if [ ${#reports[@]} -gt 0 ]; then
  echo
  grep -E '^(go|nproc|Model name|pinning|settings|CPU busy)' "$OUT/machine.txt" || true
  echo
  "$ss" bench -report "${reports[@]}" | tee "$OUT/report.txt"
fi

if [ "$GOBENCH" = 1 ]; then
  log "== Go benchmarks (count $GOBENCH_COUNT)"
  gobench() { # gobench DIR OUTFILE
    (cd "$1" && go test -run '^$' -bench . -benchmem -count "$GOBENCH_COUNT" ./filter/ .) >"$2"
  }
  gobench "$root" "$OUT/gobench.txt"
  if [ -n "$BENCHSTAT_BASE" ]; then
    tmp=$(mktemp -d)
    trap 'cleanup; rm -rf "$tmp"' EXIT
    log "== benchstat: $BENCHSTAT_BASE vs the work tree"
    mkdir -p "$tmp/base"
    (cd "$root" && git archive --format=tar "$BENCHSTAT_BASE") | tar -x -C "$tmp/base"
    gobench "$tmp/base" "$OUT/gobench-base.txt" || log "  the base revision's benchmarks failed (see $OUT/gobench-base.txt)"
    GOBIN="$tmp/gobin" go install golang.org/x/perf/cmd/benchstat@latest
    "$tmp/gobin/benchstat" base="$OUT/gobench-base.txt" new="$OUT/gobench.txt" | tee "$OUT/benchstat.txt"
  else
    cat "$OUT/gobench.txt"
  fi
fi

log "raw results in $OUT"
