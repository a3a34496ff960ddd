#!/usr/bin/env bash
# bench/php.sh - what a PHP application sees: deferd against beanstalkd from
# PHP's side, in one run, side by side.
#
# Three tables (markdown on stdout; progress on stderr):
#
# 1. Enqueue latency. One php-cli process makes N sequential calls after a
#    warm-up, each timed with hrtime() (bench/php/enqueue.php):
#    Defer\Client::dispatch() (clients/php) to deferd in memory - the target
#    row, p50 under 100 us on loopback - against pheanstalk's put() to
#    beanstalkd, both in memory; for information dispatch() to deferd -b
#    (--fsync always, a reply means fdatasync'd: fewer calls, each waits for
#    the disk) and pheanstalk put() to deferd's beanstalk port.
# 2. HTTP enqueue throughput with keep-alive: wrk (-t1, CONNS connections,
#    bench/php/post.lua: POST /v1/queues/bench/tasks with a small JSON
#    payload) against deferd in memory, versus bsload -m put with the same
#    connections and the same task body size against the same deferd build's
#    beanstalk port, for the same time. Target: HTTP at least half the
#    beanstalk rate. wrk must report no non-2xx answer and no socket error,
#    and the server must hold as many tasks as wrk counted answers.
# 3. Push and pull. N no-op tasks are preloaded, then timed until all are
#    done:
#    - fastcgi: deferd pushes into php-fpm (started here: pm = static,
#      WORKERS children, its own unix socket), deferd in memory and deferd -b;
#    - exec: deferd runs php-cli per task (bench/php/noop.php), WORKERS at once;
#    - pull: WORKERS php-cli processes with a pheanstalk reserve/delete loop
#      (bench/php/pull-worker.php) against beanstalkd, and for information
#      against deferd.
#    The push queues come from a --config file; they are paused
#    (POST /v1/queues/{q}/pause) while bsload fills them, and the clock runs
#    from the resume request to the poll (bench/php/push-wait.php) that sees
#    the queue's push counter "succeeded" reach N: a few dozen polls a run,
#    the wait between two halving as the end nears, down to 5 ms, so that
#    polling costs the server next to nothing and the clock stops at most
#    5 ms late. Every attempt must succeed. Pull workers
#    connect first and all start at the same wall-clock moment; the clock
#    stops when the last one finds the tube empty. Target: fastcgi push
#    (deferd in memory) at least as fast as the pull workers on beanstalkd.
#
# How it measures (the spirit of bench/run.sh):
# - The server is pinned to BENCH_SERVER_CPU, all the load - php-cli, wrk,
#   bsload, the php-fpm master and so its children, the php-cli commands of
#   the exec target (their command line starts with taskset) - to
#   BENCH_CLIENT_CPU.
# - A fresh server (and data directory) for every repeat; repeats are
#   interleaved, the order of the variants rotated each repeat; tables show
#   medians, and ratios are ratios of medians.
# - Server CPU per operation: the server's CPU time, all threads
#   (se.sum_exec_runtime in /proc/PID/task/*/sched, else utime+stime of
#   /proc/PID/stat), read around the measured part only, divided by the
#   operations. PHP's own CPU per operation is shown too: getrusage() in the
#   PHP scripts, the pool's children's CPU time for php-fpm, and deferd's
#   reaped children (cutime+cstime) for exec.
# - php-fpm runs for the whole push scenario (its children are the load, not
#   the server under test); one warm-up run of 200 tasks fills its opcache.
# - Time: about 5 minutes with the defaults on 2 cores; BENCH_QUICK=1 about
#   1 minute.
#
# Environment (defaults in brackets):
#   DEFERD [build/deferd]  BSLOAD [build/bsload]  BEANSTALKD [/usr/bin/beanstalkd]
#   PHP [php8.2, else php]  PHP_FPM [php-fpm8.2]  WRK [wrk]
#   PHEANSTALK_AUTOLOAD [/usr/share/php/Pheanstalk/autoload.php]
#   BENCH_QUICK=1            ~1-minute smoke run: 3 repeats, fewer calls and
#                            tasks, 1 s HTTP runs
#   BENCH_REPEATS [5; quick 3]  repeats per variant
#   BENCH_SCENARIOS          subset of: latency http fastcgi exec pull
#                            [all of them]
#   BENCH_LAT_CALLS [20000; quick 5000]  timed calls per latency run
#   BENCH_LAT_DURABLE_CALLS [3000; quick 1000]  ... for dispatch() to deferd -b
#   BENCH_LAT_WARMUP [1000; quick 300]   untimed calls first
#   BENCH_SECS [3; quick 1]  seconds per HTTP/beanstalk throughput run
#   BENCH_CONNS [50]         connections for the throughput runs
#   BENCH_PUSH_TASKS [50000; quick 10000] tasks per fastcgi and pull run
#   BENCH_EXEC_TASKS [1000; quick 200]    tasks per exec run
#   BENCH_WORKERS [8]        php-fpm children = push concurrency = pull workers
#   BENCH_SERVER_CPU [0]  BENCH_CLIENT_CPU [1]
#   BENCH_OUT [mktemp -d /tmp/defer-php-bench.XXXXXX]  logs, php-raw.txt and
#                            php-table.md (apart from run.sh's); kept
#   BENCH_DATA_DIR [$BENCH_OUT]  where deferd -b's data directories go (a
#                            temporary directory inside it, removed at exit);
#                            must be a real disk: if it is tmpfs and
#                            BENCH_DATA_DIR was not given, /var/tmp is used
#
# Exit status: 0, or 1 if a measurement failed (an unexpected answer, a
# crash, a timeout, a wrong count of tasks); its cell then reads FAIL. A
# missed target is not a failure. 2: bad usage or a missing tool.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
helpers=$here/php
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }

ME=php.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

DEFERD=$(abs "${DEFERD:-build/deferd}")
BSLOAD=$(abs "${BSLOAD:-build/bsload}")
BEANSTALKD=${BEANSTALKD:-/usr/bin/beanstalkd}
PHP=${PHP:-$(command -v php8.2 || command -v php || echo php)}
PHP_FPM=${PHP_FPM:-$(command -v php-fpm8.2 || echo php-fpm8.2)}
WRK=${WRK:-$(command -v wrk || echo wrk)}
export PHEANSTALK_AUTOLOAD=${PHEANSTALK_AUTOLOAD:-/usr/share/php/Pheanstalk/autoload.php}

if [[ ${BENCH_QUICK:-0} == 1 ]]; then
    d_repeats=3 d_lat=5000 d_lat_dur=1000 d_warm=300 d_secs=1 d_push=10000 d_exec=200
else
    d_repeats=5 d_lat=20000 d_lat_dur=3000 d_warm=1000 d_secs=3 d_push=50000 d_exec=1000
fi
REPEATS=${BENCH_REPEATS:-$d_repeats}
LAT_CALLS=${BENCH_LAT_CALLS:-$d_lat}
LAT_DURABLE_CALLS=${BENCH_LAT_DURABLE_CALLS:-$d_lat_dur}
LAT_WARMUP=${BENCH_LAT_WARMUP:-$d_warm}
SECS=${BENCH_SECS:-$d_secs}
CONNS=${BENCH_CONNS:-50}
PUSH_TASKS=${BENCH_PUSH_TASKS:-$d_push}
EXEC_TASKS=${BENCH_EXEC_TASKS:-$d_exec}
WORKERS=${BENCH_WORKERS:-8}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
ALL_SCENARIOS="latency http fastcgi exec pull"
read -r -a _scen <<<"${BENCH_SCENARIOS:-$ALL_SCENARIOS}"
SCENARIOS=" ${_scen[*]} "
want() { [[ $SCENARIOS == *" $1 "* ]]; }

for s in $SCENARIOS; do
    [[ " $ALL_SCENARIOS " == *" $s "* ]] || die "BENCH_SCENARIOS: unknown '$s' (known: $ALL_SCENARIOS)"
done
for v in REPEATS LAT_CALLS LAT_DURABLE_CALLS LAT_WARMUP CONNS PUSH_TASKS EXEC_TASKS WORKERS \
    SERVER_CPU CLIENT_CPU; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v}: expected a whole number"
done
[[ $SECS =~ ^[0-9]+$ && $SECS -ge 1 ]] || die "BENCH_SECS=$SECS: expected whole seconds (wrk's -d)"
((REPEATS >= 1 && LAT_CALLS >= 1 && LAT_DURABLE_CALLS >= 1 && PUSH_TASKS >= 1 && EXEC_TASKS >= 1 &&
    WORKERS >= 1 && CONNS >= 1)) || die "repeats, calls, tasks, workers and connections must be at least 1"

# What each scenario needs.
need=("$DEFERD" "$BSLOAD")
want latency && need+=("$PHP" "$BEANSTALKD")
want http && need+=("$WRK")
want fastcgi && need+=("$PHP_FPM")
want exec && need+=("$PHP")
want pull && need+=("$PHP" "$BEANSTALKD")
for b in "${need[@]}"; do
    [[ -x $b ]] || die "$b: not found or not executable (build deferd and bsload with" \
        "make BUILD=DIR DIR/deferd DIR/bsload and set DEFERD/BSLOAD; PHP, PHP_FPM, WRK, BEANSTALKD" \
        "name the other tools)"
done
if want latency || want pull; then
    [[ -f $PHEANSTALK_AUTOLOAD ]] ||
        die "$PHEANSTALK_AUTOLOAD: no pheanstalk (apt-get install php-pda-pheanstalk, or set PHEANSTALK_AUTOLOAD)"
fi
command -v curl >/dev/null || die "curl is needed (to check and pause deferd's HTTP API)"

OUT=${BENCH_OUT:-$(mktemp -d /tmp/defer-php-bench.XXXXXX)}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RAW=$OUT/php-raw.txt
: >"$RAW"

fs_of() { findmnt -no FSTYPE -T "$1" 2>/dev/null || stat -f -c %T "$1" 2>/dev/null || echo "?"; }
DATA_PARENT=${BENCH_DATA_DIR:-$OUT}
mkdir -p "$DATA_PARENT"
if [[ -z ${BENCH_DATA_DIR:-} ]] && [[ $(fs_of "$DATA_PARENT") == tmpfs || $(fs_of "$DATA_PARENT") == ramfs ]]; then
    say "php.sh: $DATA_PARENT is on $(fs_of "$DATA_PARENT"); deferd -b's data directories go to /var/tmp"
    DATA_PARENT=/var/tmp
fi

# Everything temporary: sockets and configs (short paths, for unix sockets)
# and the data directories. Both are removed at exit.
WORK=$(mktemp -d /tmp/defer-php.XXXXXX)
DATA=$(mktemp -d "$DATA_PARENT/php-bench-data.XXXXXX")
DATA_FS=$(fs_of "$DATA")
DATA_DEV=$(findmnt -no SOURCE -T "$DATA" 2>/dev/null || echo "?")
[[ $DATA_FS == tmpfs || $DATA_FS == ramfs ]] &&
    say "php.sh: WARNING: $DATA is on $DATA_FS: fsync costs nothing there, the deferd -b rows mean nothing"

if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_LOAD=(taskset -c "$CLIENT_CPU")
else
    say "php.sh: taskset missing or a single CPU: running unpinned"
    PIN_SERVER=() PIN_LOAD=()
fi

# ---- processes ----

declare -A LIVE=() # pid -> what, for everything started and not yet reaped
FPM_PID=""

# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
    local p kids
    trap - INT TERM
    for p in "${!LIVE[@]}"; do
        kids=$(pgrep -P "$p" 2>/dev/null || true)
        kill -TERM "$p" 2>/dev/null || true
        # php-fpm's master takes its children along on SIGTERM; anything
        # still there a moment later is killed.
        for _ in 1 2 3 4 5 6 7 8 9 10; do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        # shellcheck disable=SC2086 # a list of pids
        kill -KILL "$p" $kids 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    rm -rf "$WORK" "$DATA"
}
trap cleanup EXIT
trap 'say "php.sh: interrupted"; exit 130' INT TERM

# run_waited LOG CMD...: CMD in the background, waited for (so a signal to
# this script is handled at once), its stdout into LOG.out and stderr into
# LOG.err; returns its exit status. Adds its CPU time (it is reaped here)
# to the shell's children's times, which `times` reports.
run_waited() {
    local log=$1 pid rc=0
    shift
    "$@" >"$log.out" 2>"$log.err" &
    pid=$!
    LIVE[$pid]=cmd
    wait "$pid" || rc=$?
    unset "LIVE[$pid]"
    return "$rc"
}

# Sets CHILD_MS to the CPU time (ms) of this shell's reaped children so
# far, user + system. Not from a $(...) subshell: its `times` would count
# the subshell's children only.
children_cpu_ms() {
    local f=$WORK/times
    times >"$f"
    CHILD_MS=$(awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%.3f", t * 1000 }' "$f")
}

# CPU time of PID's reaped children (cutime + cstime), in ms.
reaped_cpu_ms() {
    awk -v hz="$HZ" '{sub(/.*\) /, ""); printf "%.3f", ($14 + $15) * 1000 / hz}' "/proc/$1/stat" 2>/dev/null ||
        echo 0
}

# Servers. Variants:
#   deferd        in memory, beanstalk port + HTTP API
#   deferd-wal    -b DIR --fsync always (a fresh DIR under $DATA)
#   beanstalkd    in memory
# With PUSH_CONFIG set, deferd gets --config "$PUSH_CONFIG".
SRV_PID="" SRV_PORT="" SRV_HTTP="" SRV_DIR="" PUSH_CONFIG=""

# start_server VARIANT TAG: sets SRV_PID, SRV_PORT (beanstalk), SRV_HTTP
# (deferd's HTTP port) and SRV_DIR (deferd-wal's data directory).
start_server() {
    local v=$1 tag=$2 port http pid out argv
    SRV_DIR=""
    [[ $v == deferd-wal ]] && SRV_DIR=$(mktemp -d "$DATA/$tag.XXXXXX")
    for attempt in 1 2 3 4 5; do
        port=$(pick_port "")
        http=$(pick_port "$port")
        case $v in
        deferd) argv=("$DEFERD" -l 127.0.0.1 -p "$port" --http "127.0.0.1:$http") ;;
        deferd-wal) argv=("$DEFERD" -l 127.0.0.1 -p "$port" --http "127.0.0.1:$http"
            -b "$SRV_DIR" --fsync always) ;;
        beanstalkd) argv=("$BEANSTALKD" -l 127.0.0.1 -p "$port") http="" ;;
        *) die "internal error: variant $v" ;;
        esac
        [[ $v == deferd* && -n $PUSH_CONFIG ]] && argv+=(--config "$PUSH_CONFIG")
        "${PIN_SERVER[@]}" "${argv[@]}" >>"$OUT/$v-$tag.log" 2>&1 &
        pid=$!
        LIVE[$pid]=server
        for _ in $(seq 100); do
            alive "$pid" || break
            if out=$("$BSLOAD" -m stats -p "$port" -T 2 2>/dev/null) && [[ " $out " == *" pid=$pid "* ]] &&
                { [[ -z $http ]] || curl -sf -o /dev/null "http://127.0.0.1:$http/healthz"; }; then
                SRV_PID=$pid SRV_PORT=$port SRV_HTTP=$http
                return 0
            fi
            sleep 0.05
        done
        stop_server "$pid"
        say "php.sh: $v did not come up on ports $port/$http (attempt $attempt; see $OUT/$v-$tag.log)"
    done
    die "cannot start $v"
}

# stop_server PID: SIGTERM, 5 s, SIGKILL; removes deferd-wal's directory.
stop_server() {
    local pid=$1
    terminate "$pid"
    unset "LIVE[$pid]"
    [[ -n $SRV_DIR ]] && rm -rf "$SRV_DIR"
    SRV_DIR=""
}

# stats_of PORT: bsload's line of the server's beanstalk stats.
stats_of() { "$BSLOAD" -m stats -p "$1" -T 10 2>&1; }

# expect_jobs NAME KEY N: the server's stat KEY is N.
expect_jobs() {
    local out
    out=$(stats_of "$SRV_PORT") || { say "  $1: stats failed: $out"; return 1; }
    if [[ $(field "$out" "$2") != "$3" ]]; then
        say "  $1: expected $2=$3, the server says: $out"
        return 1
    fi
}

# http_call METHOD PATH: deferd's answer (exit status 1 unless 2xx).
http_call() {
    curl -sf -X "$1" -H 'Content-Length: 0' "http://127.0.0.1:$SRV_HTTP$2"
}

# ---- results ----

# cell KEY VARIANT DECIMALS: the median for a table cell, FAIL or -.
cell() {
    local m
    if [[ -n ${FAILED[$1|$2]:-} ]]; then echo FAIL; return; fi
    m=$(med "$1" "$2")
    if [[ -n $m ]]; then awk -v m="$m" -v d="$3" 'BEGIN {printf "%.*f", d, m}'; else echo "-"; fi
}
# ratio A B: A/B with 2 decimals, or n/a.
ratio() {
    [[ -n $1 && -n $2 ]] || { echo "n/a"; return; }
    awk -v a="$1" -v b="$2" 'BEGIN {if (b > 0) printf "%.2f", a / b; else print "n/a"}'
}
# met VALUE OP LIMIT: yes, **no**, or nothing when VALUE is n/a.
met() {
    [[ -n $1 && $1 != n/a ]] || { echo ""; return; }
    if awk -v v="$1" -v t="$3" -v op="$2" 'BEGIN {exit !(op == "<" ? v < t : v >= t)}'; then
        echo "yes"
    else
        echo "**no**"
    fi
}

# ---- 1. enqueue latency ----

# Variants: client@server.
LAT_VARIANTS="defer@deferd pheanstalk@beanstalkd defer@deferd-wal pheanstalk@deferd"
declare -A LAT_TITLE=(
    [defer@deferd]="Defer\\Client::dispatch() → deferd (in memory)"
    [pheanstalk@beanstalkd]="pheanstalk put() → beanstalkd (in memory)"
    [defer@deferd-wal]="Defer\\Client::dispatch() → deferd -b (fsync always)"
    [pheanstalk@deferd]="pheanstalk put() → deferd's beanstalk port (in memory)")

latency_run() {
    local v=$1 r=$2 client=${1%@*} server=${1#*@} port n out log
    n=$LAT_CALLS
    [[ $server == deferd-wal ]] && n=$LAT_DURABLE_CALLS
    start_server "$server" latency
    port=$SRV_PORT
    [[ $client == defer ]] && port=$SRV_HTTP
    log=$WORK/latency
    if run_waited "$log" "${PIN_LOAD[@]}" "$PHP" "$helpers/enqueue.php" --client="$client" --port="$port" \
        --n="$n" --warmup="$LAT_WARMUP" --pid="$SRV_PID" && out=$(cat "$log.out") &&
        [[ $(field "$out" n) == "$n" ]] && alive "$SRV_PID" &&
        expect_jobs "$v" current-jobs-ready $((n + LAT_WARMUP)); then
        echo "latency $v r=$r $out" >>"$RAW"
        for k in p50_us p99_us php_cpu_us_per_op srv_cpu_us_per_op; do record "lat_$k" "$v" "$(field "$out" $k)"; done
        say "  [latency] $r/$REPEATS ${LAT_TITLE[$v]}: p50 $(field "$out" p50_us) us," \
            "p99 $(field "$out" p99_us) us, PHP CPU $(field "$out" php_cpu_us_per_op) us/call," \
            "server CPU $(field "$out" srv_cpu_us_per_op) us/call ($n calls)"
    else
        say "  [latency] $r/$REPEATS ${LAT_TITLE[$v]}: FAILED: $(tail -n 3 "$log.err" 2>/dev/null)"
        echo "latency $v r=$r FAILED $(tail -n 3 "$log.err" 2>/dev/null | tr '\n' ' ')" >>"$RAW"
        for k in p50_us p99_us php_cpu_us_per_op srv_cpu_us_per_op; do fail "lat_$k" "$v"; done
    fi
    stop_server "$SRV_PID"
}

# ---- 2. HTTP enqueue throughput ----

HTTP_BODY='{"payload":{"to":"x@example.org","n":1}}'
TASK_BYTES=28 # the task body deferd keeps: {"to":"x@example.org","n":1}

http_run() {
    local v=$1 r=$2 log=$WORK/http c0 c1 k0 k1 out rps n bad err total
    start_server deferd "http"
    c0=$(cpu_ms "$SRV_PID")
    children_cpu_ms
    k0=$CHILD_MS
    if [[ $v == http ]]; then
        if run_waited "$log" "${PIN_LOAD[@]}" env BENCH_HTTP_QUEUE=bench BENCH_HTTP_BODY="$HTTP_BODY" \
            "$WRK" -t1 -c "$CONNS" -d "${SECS}s" --timeout 10s -s "$helpers/post.lua" \
            "http://127.0.0.1:$SRV_HTTP"; then
            out=$(cat "$log.out")
            rps=$(awk '/^Requests\/sec:/ {print $2}' <<<"$out")
            n=$(awk '/ requests in / {print $1}' <<<"$out")
            bad=$(awk -F: '/Non-2xx or 3xx responses/ {gsub(/ /, "", $2); print $2}' <<<"$out")
            err=$(grep -m1 'Socket errors' <<<"$out" || true)
        else
            out="" rps="" n=""
        fi
    else
        if run_waited "$log" "${PIN_LOAD[@]}" "$BSLOAD" -p "$SRV_PORT" -m put -c "$CONNS" -d "$SECS" \
            -s "$TASK_BYTES" -t bench; then
            out=$(cat "$log.out")
            rps=$(field "$out" ops_per_sec) n=$(field "$out" ops) bad="" err=""
        else
            out="" rps="" n=""
        fi
    fi
    children_cpu_ms
    k1=$CHILD_MS
    c1=$(cpu_ms "$SRV_PID")
    echo "http $v r=$r $(tr '\n' ' ' <<<"$out")" >>"$RAW"
    total=$(field "$(stats_of "$SRV_PORT")" total-jobs)
    if [[ -z $rps || -z $n || $n == "?" || $n == 0 ]]; then
        say "  [http] $r/$REPEATS $v: FAILED: $(tail -n 3 "$log.err" "$log.out" 2>/dev/null | tr '\n' ' ')"
        fail http_rps "$v"; fail http_cpu "$v"; fail http_client_cpu "$v"
    elif [[ -n $bad || -n $err ]]; then
        say "  [http] $r/$REPEATS $v: FAILED: wrk saw ${bad:-0} non-2xx answers${err:+, $err}"
        fail http_rps "$v"; fail http_cpu "$v"; fail http_client_cpu "$v"
    elif ! [[ $total =~ ^[0-9]+$ ]] || ((total < n || total > n + CONNS)) || ! alive "$SRV_PID"; then
        say "  [http] $r/$REPEATS $v: FAILED: the client counted $n tasks, the server holds $total"
        fail http_rps "$v"; fail http_cpu "$v"; fail http_client_cpu "$v"
    else
        record http_rps "$v" "$rps"
        record http_cpu "$v" "$(awk -v a="$c0" -v b="$c1" -v n="$total" 'BEGIN {printf "%.2f", (b - a) * 1000 / n}')"
        record http_client_cpu "$v" "$(awk -v a="$k0" -v b="$k1" -v n="$n" 'BEGIN {printf "%.2f", (b - a) * 1000 / n}')"
        say "  [http] $r/$REPEATS $v: $rps tasks/s ($n in ${SECS} s), server CPU" \
            "$(awk -v a="$c0" -v b="$c1" -v n="$total" 'BEGIN {printf "%.2f", (b - a) * 1000 / n}') us/task," \
            "client CPU $(awk -v a="$k0" -v b="$k1" -v n="$n" 'BEGIN {printf "%.2f", (b - a) * 1000 / n}') us/task"
    fi
    stop_server "$SRV_PID"
}

# ---- 3. push and pull ----

PUSH_VARIANTS=""
want fastcgi && PUSH_VARIANTS+=" fastcgi@deferd fastcgi@deferd-wal"
want exec && PUSH_VARIANTS+=" exec@deferd"
want pull && PUSH_VARIANTS+=" pull@beanstalkd pull@deferd"
declare -A PUSH_TITLE=(
    [fastcgi@deferd]="fastcgi push into php-fpm (pm = static, $WORKERS children), deferd in memory"
    [fastcgi@deferd-wal]="fastcgi push into php-fpm, deferd -b (fsync always)"
    [exec@deferd]="exec push, php-cli per task ($WORKERS at once), deferd in memory"
    [pull@beanstalkd]="$WORKERS php-cli pull workers (pheanstalk reserve/delete) → beanstalkd"
    [pull@deferd]="$WORKERS php-cli pull workers (pheanstalk reserve/delete) → deferd (in memory)")

start_fpm() {
    local conf=$WORK/fpm.conf
    FPM_SOCK=$WORK/fpm.sock
    cat >"$conf" <<EOF
; php-fpm for bench/php.sh: one static pool of $WORKERS children
[global]
pid = $WORK/fpm.pid
error_log = $OUT/php-fpm.log
daemonize = no

[tasks]
listen = $FPM_SOCK
listen.mode = 0666
listen.backlog = 1024
pm = static
pm.max_children = $WORKERS
pm.max_requests = 0
EOF
    local as_root=()
    (($(id -u) == 0)) && as_root=(-R)
    "${PIN_LOAD[@]}" "$PHP_FPM" -F "${as_root[@]}" -y "$conf" >>"$OUT/php-fpm.log" 2>&1 &
    FPM_PID=$!
    LIVE[$FPM_PID]="php-fpm"
    for _ in $(seq 100); do
        alive "$FPM_PID" || break
        if [[ -S $FPM_SOCK ]] && (($(pgrep -c -P "$FPM_PID" || true) == WORKERS)); then
            return 0
        fi
        sleep 0.05
    done
    die "php-fpm did not start (see $OUT/php-fpm.log)"
}

stop_fpm() {
    [[ -n $FPM_PID ]] || return 0
    kill -QUIT "$FPM_PID" 2>/dev/null || true
    for _ in $(seq 50); do
        alive "$FPM_PID" || break
        sleep 0.1
    done
    kill -KILL "$FPM_PID" 2>/dev/null || true
    wait "$FPM_PID" 2>/dev/null || true
    unset "LIVE[$FPM_PID]"
    FPM_PID=""
}

# CPU time (ms) of php-fpm's pool children.
fpm_cpu_ms() {
    local p t=0
    for p in $(pgrep -P "$FPM_PID"); do
        t=$(awk -v a="$t" -v b="$(cpu_ms "$p")" 'BEGIN {printf "%.3f", a + b}')
    done
    echo "$t"
}

write_push_config() {
    PUSH_CONFIG=$WORK/deferd.ini
    local pin=""
    ((${#PIN_LOAD[@]})) && pin="'$(command -v taskset)' -c $CLIENT_CPU "
    {
        echo "; push queues of bench/php.sh"
        if want fastcgi; then
            echo "[fpm]"
            echo "target = fastcgi"
            echo "address = unix:$FPM_SOCK"
            echo "script = $helpers/noop.php"
            echo "concurrency = $WORKERS"
        fi
        if want exec; then
            echo "[cli]"
            echo "target = exec"
            echo "command = ${pin}'$PHP' '$helpers/noop.php'"
            echo "concurrency = $WORKERS"
        fi
    } >"$PUSH_CONFIG"
}

# push_run KIND SERVER N TAG: one timed push run of N tasks on a fresh server.
# Sets RESULT to "secs srv_cpu_us_per_task php_cpu_us_per_task", or fails.
# (Not run in a subshell: the servers must stay this shell's children.)
push_run() {
    local kind=$1 server=$2 n=$3 tag=$4 queue c0 c1 p0 p1 out log=$WORK/push
    queue=fpm
    [[ $kind == exec ]] && queue=cli
    start_server "$server" "$tag"
    if ! http_call POST "/v1/queues/$queue/pause" >/dev/null; then
        say "  [$kind] pausing queue $queue failed"
        stop_server "$SRV_PID"
        return 1
    fi
    if ! run_waited "$log-fill" "${PIN_LOAD[@]}" "$BSLOAD" -p "$SRV_PORT" -m fill -t "$queue" -n "$n" \
        -s "$TASK_BYTES" -c 1 -D 64 -T 120 || ! expect_jobs "$kind" current-jobs-ready "$n"; then
        say "  [$kind] filling $n tasks failed: $(tail -n 2 "$log-fill.err")"
        stop_server "$SRV_PID"
        return 1
    fi
    c0=$(cpu_ms "$SRV_PID")
    if [[ $kind == exec ]]; then p0=$(reaped_cpu_ms "$SRV_PID"); else p0=$(fpm_cpu_ms); fi
    if ! run_waited "$log" "${PIN_LOAD[@]}" "$PHP" "$helpers/push-wait.php" --port="$SRV_HTTP" \
        --queue="$queue" --n="$n" --timeout=600; then
        say "  [$kind] the push run failed: $(cat "$log.out" "$log.err" 2>/dev/null | tr '\n' ' ')"
        http_call GET "/v1/queues/$queue" >>"$RAW" 2>&1 || true
        stop_server "$SRV_PID"
        return 1
    fi
    c1=$(cpu_ms "$SRV_PID")
    if [[ $kind == exec ]]; then p1=$(reaped_cpu_ms "$SRV_PID"); else p1=$(fpm_cpu_ms); fi
    out=$(cat "$log.out")
    echo "push $kind@$server $tag n=$n $out srv_cpu_ms=$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')" \
        "php_cpu_ms=$(awk -v a="$p0" -v b="$p1" 'BEGIN {print b - a}')" >>"$RAW"
    if ! expect_jobs "$kind" current-jobs-ready 0 || ! expect_jobs "$kind" current-jobs-reserved 0 ||
        ! alive "$SRV_PID"; then
        stop_server "$SRV_PID"
        return 1
    fi
    stop_server "$SRV_PID"
    RESULT=$(awk -v s="$(field "$out" secs)" -v a="$c0" -v b="$c1" -v p="$p0" -v q="$p1" -v n="$n" \
        'BEGIN {printf "%s %.2f %.2f", s, (b - a) * 1000 / n, (q - p) * 1000 / n}')
}

# pull_run SERVER N: WORKERS pheanstalk workers drain N preloaded tasks;
# sets RESULT as push_run does.
pull_run() {
    local server=$1 n=$2 c0 c1 start i pids=() rc=0 lead out deleted end cpu
    start_server "$server" pull
    if ! run_waited "$WORK/pull-fill" "${PIN_LOAD[@]}" "$BSLOAD" -p "$SRV_PORT" -m fill -t bench -n "$n" \
        -s "$TASK_BYTES" -c 1 -D 64 -T 120 || ! expect_jobs pull current-jobs-ready "$n"; then
        say "  [pull] filling $n tasks failed: $(tail -n 2 "$WORK/pull-fill.err")"
        stop_server "$SRV_PID"
        return 1
    fi
    # Every worker connects and watches, then waits for the common start:
    # PHP's start-up (some 20 ms of CPU each, all on one CPU) is not timed.
    lead=$(awk -v w="$WORKERS" 'BEGIN {printf "%.2f", 0.3 + 0.05 * w}')
    start=$(awk -v t="$EPOCHREALTIME" -v l="$lead" 'BEGIN {printf "%.6f", t + l}')
    c0=$(cpu_ms "$SRV_PID")
    for ((i = 1; i <= WORKERS; i++)); do
        "${PIN_LOAD[@]}" "$PHP" "$helpers/pull-worker.php" --port="$SRV_PORT" --start="$start" \
            >"$WORK/pull-$i.out" 2>"$WORK/pull-$i.err" &
        pids+=($!)
        LIVE[$!]=worker
    done
    for i in "${pids[@]}"; do
        wait "$i" || rc=1
        unset "LIVE[$i]"
    done
    c1=$(cpu_ms "$SRV_PID")
    out=$(cat "$WORK"/pull-*.out)
    echo "pull $server n=$n $(tr '\n' ' ' <<<"$out")srv_cpu_ms=$(awk -v a="$c0" -v b="$c1" 'BEGIN {print b - a}')" >>"$RAW"
    deleted=$(awk '{split($1, a, "="); s += a[2]} END {print s + 0}' <<<"$out")
    end=$(awk '{split($3, a, "="); if (a[2] > m) m = a[2]} END {printf "%.6f", m}' <<<"$out")
    cpu=$(awk '{split($4, a, "="); s += a[2]} END {printf "%.0f", s}' <<<"$out")
    if ((rc != 0)) || [[ $deleted != "$n" ]] || ! expect_jobs pull current-jobs-ready 0 ||
        ! expect_jobs pull current-jobs-reserved 0 || ! alive "$SRV_PID"; then
        say "  [pull] $server: FAILED: $deleted of $n deleted;" \
            "$(cat "$WORK"/pull-*.err 2>/dev/null | sort -u | head -n 3 | tr '\n' ' ')"
        stop_server "$SRV_PID"
        return 1
    fi
    stop_server "$SRV_PID"
    RESULT=$(awk -v s="$start" -v e="$end" -v a="$c0" -v b="$c1" -v c="$cpu" -v n="$n" \
        'BEGIN {printf "%.4f %.2f %.2f", e - s, (b - a) * 1000 / n, c / n}')
}

pushpull_run() {
    local v=$1 r=$2 kind=${1%@*} server=${1#*@} n ok=0 secs srv php
    n=$PUSH_TASKS
    [[ $kind == exec ]] && n=$EXEC_TASKS
    RESULT=""
    if [[ $kind == pull ]]; then pull_run "$server" "$n" && ok=1
    else push_run "$kind" "$server" "$n" "$kind" && ok=1; fi
    if ((ok)) && [[ -n $RESULT ]]; then
        read -r secs srv php <<<"$RESULT"
        record push_rate "$v" "$(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.1f", n / s}')"
        record push_cpu "$v" "$srv"
        record push_php "$v" "$php"
        say "  [$kind] $r/$REPEATS ${PUSH_TITLE[$v]}: $n tasks in $secs s" \
            "($(awk -v n="$n" -v s="$secs" 'BEGIN {printf "%.0f", n / s}') tasks/s), server CPU $srv us/task," \
            "PHP CPU $php us/task"
    else
        say "  [$kind] $r/$REPEATS ${PUSH_TITLE[$v]}: FAILED"
        fail push_rate "$v"; fail push_cpu "$v"; fail push_php "$v"
    fi
}

# ---- the run ----

CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo "?")
FSYNC_US=$(fsync_probe "$DATA" || true)
LOAD_START=$(cut -d' ' -f1 /proc/loadavg)
MACHINE="$(nproc) CPUs ($CPU_MODEL), Linux $(uname -r); deferd -b data directories on $DATA_DEV ($DATA_FS)"
MACHINE+=", a 4 KiB O_DSYNC write there took ${FSYNC_US:-?} us before the run"
say "php.sh: deferd=$DEFERD beanstalkd=$BEANSTALKD bsload=$BSLOAD php=$PHP php-fpm=$PHP_FPM wrk=$WRK"
say "php.sh: $MACHINE; load average $LOAD_START; logs and raw results in $OUT"
say "php.sh: repeats=$REPEATS calls=$LAT_CALLS (durable $LAT_DURABLE_CALLS, warm-up $LAT_WARMUP)" \
    "secs=$SECS conns=$CONNS push/pull tasks=$PUSH_TASKS exec tasks=$EXEC_TASKS workers=$WORKERS"
t0=$SECONDS

if want latency; then
    say "== enqueue latency from php-cli"
    for r in $(seq "$REPEATS"); do
        # shellcheck disable=SC2086
        for v in $(rotation "$r" $LAT_VARIANTS); do latency_run "$v" "$r"; done
    done
fi

if want http; then
    say "== HTTP enqueue throughput (wrk, keep-alive) against beanstalk put (bsload), $CONNS connections"
    for r in $(seq "$REPEATS"); do
        for v in $(rotation "$r" http beanstalk); do http_run "$v" "$r"; done
    done
fi

if [[ -n $PUSH_VARIANTS ]]; then
    say "== push and pull"
    PUSH_CONFIG=""
    if want fastcgi; then
        start_fpm
        write_push_config
        # Warm php-fpm up (opcache, the children's first requests); not recorded.
        push_run fastcgi deferd 200 warmup || die "the fastcgi warm-up run failed (see $OUT)"
    elif want exec; then
        write_push_config
    fi
    for r in $(seq "$REPEATS"); do
        # shellcheck disable=SC2086
        for v in $(rotation "$r" $PUSH_VARIANTS); do
            pushpull_run "$v" "$r"
        done
    done
    PUSH_CONFIG=""
    stop_fpm
fi

FSYNC_END=$(fsync_probe "$DATA" || true)
MACHINE+=" and ${FSYNC_END:-?} us after it"

# ---- the tables ----

{
    if want latency; then
        echo "Enqueue latency from one php-cli process, sequential calls (µs):"
        echo
        echo "| client → server | p50 | p99 | PHP CPU per call | server CPU per call | target | met |"
        echo "|---|---:|---:|---:|---:|---:|:---:|"
        for v in $LAT_VARIANTS; do
            target="" ok=""
            if [[ $v == defer@deferd ]]; then
                target="p50 < 100 µs"
                ok=$(met "$(med lat_p50_us "$v")" "<" 100)
            fi
            calls=$LAT_CALLS
            [[ $v == *@deferd-wal ]] && calls=$LAT_DURABLE_CALLS
            echo "| ${LAT_TITLE[$v]}, $calls calls | $(cell lat_p50_us "$v" 1) | $(cell lat_p99_us "$v" 1) |" \
                "$(cell lat_php_cpu_us_per_op "$v" 1) | $(cell lat_srv_cpu_us_per_op "$v" 1) | $target | $ok |"
        done
        echo "| ratio dispatch() → deferd / put() → beanstalkd |" \
            "$(ratio "$(med lat_p50_us defer@deferd)" "$(med lat_p50_us pheanstalk@beanstalkd)")x |" \
            "$(ratio "$(med lat_p99_us defer@deferd)" "$(med lat_p99_us pheanstalk@beanstalkd)")x |" \
            "$(ratio "$(med lat_php_cpu_us_per_op defer@deferd)" "$(med lat_php_cpu_us_per_op pheanstalk@beanstalkd)")x |" \
            "$(ratio "$(med lat_srv_cpu_us_per_op defer@deferd)" "$(med lat_srv_cpu_us_per_op pheanstalk@beanstalkd)")x | | |"
        echo
    fi
    if want http; then
        echo "Enqueue throughput into deferd (in memory), $CONNS kept-alive connections, ${SECS} s:"
        echo
        echo "| client → deferd | tasks/s | server CPU per task (µs) | client CPU per task (µs) | target | met |"
        echo "|---|---:|---:|---:|---:|:---:|"
        echo "| HTTP: wrk -t1, POST /v1/queues/bench/tasks \`$HTTP_BODY\` | $(cell http_rps http 0) |" \
            "$(cell http_cpu http 2) | $(cell http_client_cpu http 2) | | |"
        echo "| beanstalk: bsload put, $TASK_BYTES-byte bodies (the same task size) | $(cell http_rps beanstalk 0) |" \
            "$(cell http_cpu beanstalk 2) | $(cell http_client_cpu beanstalk 2) | | |"
        hr=$(ratio "$(med http_rps http)" "$(med http_rps beanstalk)")
        echo "| ratio HTTP / beanstalk | ${hr}x |" \
            "$(ratio "$(med http_cpu http)" "$(med http_cpu beanstalk)")x |" \
            "$(ratio "$(med http_client_cpu http)" "$(med http_client_cpu beanstalk)")x |" \
            "tasks/s ≥ 0.5x | $(met "$hr" ">=" 0.5) |"
        echo
    fi
    if [[ -n $PUSH_VARIANTS ]]; then
        echo "No-op tasks, preloaded, run until all are done:"
        echo
        echo "| how the tasks run | tasks | tasks/s | server CPU per task (µs) | PHP CPU per task (µs) | target | met |"
        echo "|---|---:|---:|---:|---:|---:|:---:|"
        for v in $PUSH_VARIANTS; do
            n=$PUSH_TASKS
            [[ $v == exec@* ]] && n=$EXEC_TASKS
            echo "| ${PUSH_TITLE[$v]} | $n | $(cell push_rate "$v" 0) | $(cell push_cpu "$v" 2) |" \
                "$(cell push_php "$v" 1) | | |"
        done
        if want fastcgi && want pull; then
            pr=$(ratio "$(med push_rate fastcgi@deferd)" "$(med push_rate pull@beanstalkd)")
            echo "| ratio fastcgi push (deferd in memory) / pull workers (beanstalkd) | | ${pr}x |" \
                "$(ratio "$(med push_cpu fastcgi@deferd)" "$(med push_cpu pull@beanstalkd)")x |" \
                "$(ratio "$(med push_php fastcgi@deferd)" "$(med push_php pull@beanstalkd)")x |" \
                "tasks/s ≥ 1x | $(met "$pr" ">=" 1) |"
        fi
        echo
    fi
    echo "Medians of $REPEATS interleaved repeats, a fresh server each; server on CPU $SERVER_CPU," \
        "all PHP processes, php-fpm, wrk and bsload on CPU $CLIENT_CPU. Server CPU = the server's" \
        "CPU time (all threads) around the measured part / operations; for push rows it is what" \
        "deferd adds per pushed task, for pull rows what the server spends per reserve+delete." \
        "PHP CPU = the PHP processes' own CPU time per call or task (php-fpm's children;" \
        "php-cli commands reaped by deferd; the pull workers' getrusage())."
    echo "Machine: $MACHINE; 1-minute load average $LOAD_START when the run started."
} | tee "$OUT/php-table.md"

say "php.sh: done in $((SECONDS - t0)) s; raw results in $RAW"
exit $((FAILED_ANY ? 1 : 0))
