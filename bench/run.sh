#!/usr/bin/env bash
# bench/run.sh - deferd against beanstalkd, side by side, with bench/bsload.
#
# Why this shape:
# - Both servers are measured in the same run, on the same machine, by the
#   same client, so the ratio column means something even on a noisy box.
# - The server is pinned to one CPU and the client to another (taskset), so
#   they do not steal each other's time slices; each server is single-threaded
#   anyway, so one CPU is all it can use.
# - Repeats are interleaved (deferd, beanstalkd, beanstalkd, deferd, ...) so
#   that slow drift on the machine (other builds, thermal state) hits both
#   alike, and the table shows medians, which shrug off one bad repeat.
# - Every repeat gets a fresh server: put scenarios leave hundreds of
#   thousands of jobs behind, and a server already holding them (bigger
#   heaps, a warmed or fragmented allocator) is not measuring the same thing
#   as an empty one. Start-up costs ~0.1 s, which is cheap next to that.
# - The put-latency rows come from the same runs as "put, 50 connections":
#   a separate run would be the identical workload.
# - Besides ops/s, each throughput scenario reports the server's CPU time
#   per operation, read from /proc around the run: on a shared machine it
#   moves much less than wall-clock rates do.
# - Durable rows: deferd with a data directory (--fsync always: a reply
#   means fdatasync'd) against beanstalkd -b -f0 (fsync per command) and
#   Redis with appendonly yes + appendfsync always, all on the same disk,
#   under the run's own directory (BENCH_DATA_DIR; not tmpfs, or fsync
#   costs nothing), a fresh data directory per repeat, deleted afterwards.
#   The durable put round measures every server it needs in one interleaved
#   rotation (deferd durable, beanstalkd -f0, Redis, deferd in memory), and
#   the rows "vs beanstalkd", "vs Redis" and "vs in memory" all use the same
#   deferd runs. Redis is loaded by bsload --redis (LPUSH of the same 100-byte
#   bodies into one list, same connections, same duration): the same client
#   on both sides, since redis-benchmark costs twice the CPU per request and
#   the client CPU is shared too.
# - Recovery: fill N 100-byte jobs into a durable server, stop it (SIGTERM),
#   then time from the exec of a new server on that directory until it
#   answers `stats` (polled every few ms by bsload on the client CPU). The
#   directories are filled once and restarted REC_REPEATS times each,
#   interleaved; the page cache is warm (the files were just written).
# - Churn: 100 live jobs, then N put+delete pairs (bsload -m churn,
#   pipelined), then `du -sb` of the data directory.
# - Time: about 8-10 minutes on 2 cores with the defaults (the memory
#   scenario, 1M jobs into beanstalkd and out again, and beanstalkd's churn
#   and 1M-job fill are the longest parts); BENCH_QUICK=1 takes 1-2 minutes.
#
# Environment (defaults in brackets):
#   DEFERD [build/deferd]  BSLOAD [build/bsload]  BEANSTALKD [/usr/bin/beanstalkd]
#   BENCH_QUICK=1          1-2-minute smoke run (fewer repeats, shorter runs,
#                          200000 jobs instead of 1000000)
#   BENCH_REPEATS [5]      repeats per scenario and server
#   BENCH_SECS [3]         seconds per throughput measurement
#   BENCH_CONNS [50]       connections for the multi-connection scenarios
#   BENCH_DEPTH [32]       commands in flight per connection, pipelined scenario
#   BENCH_DRAIN_JOBS [200000]  jobs pre-filled for the drain scenario
#   BENCH_MEM_JOBS [1000000]   100-byte jobs for the memory scenario
#   BENCH_MEM_REPEATS [3]  repeats of the memory scenario
#   BENCH_TRIM_WAIT [3]    seconds to wait after draining before reading RSS
#   BENCH_REDIS_CLIENT [bsload]  what loads Redis: bsload --redis (the same
#                          client as for deferd) or redis-benchmark
#   BENCH_REDIS_OPS [200000]   LPUSH commands per redis-benchmark run
#   BENCH_RECOVERY_JOBS [1000000]  jobs in the log for the recovery scenario
#   BENCH_RECOVERY_REPEATS [3]     restarts per server in the recovery scenario
#   BENCH_CHURN_OPS [1000000]  put+delete pairs for the churn scenario
#   BENCH_CHURN_LIVE [100]     jobs kept alive through the churn
#   BENCH_CHURN_SETTLE [2]     seconds to wait after the churn before du
#   BENCH_CHURN_REPEATS [1]    repeats of the churn scenario
#   BENCH_SCENARIOS        subset, e.g. "put_c1 memory" (default: all of
#                          put_c1 put_c50 put_pipe drain cycle memory
#                          durable_put durable_cycle redis durable_vs_memory
#                          recovery churn)
#   BENCH_SERVER_CPU [0]  BENCH_CLIENT_CPU [1]
#   BENCH_OUT              directory for logs and raw results [mktemp]
#   BENCH_DATA_DIR [$BENCH_OUT]  where the servers' data directories go (a
#                          temporary directory inside it, removed at exit)
#   REDIS_SERVER [/usr/bin/redis-server]  REDIS_BENCHMARK [/usr/bin/redis-benchmark]
#   REDIS_CLI [/usr/bin/redis-cli]
#
# Output: progress on stderr, markdown tables on stdout (also saved as
# $BENCH_OUT/table.md), with a target column (the goals in
# docs/performance.md) and whether the median meets it. Exit status is
# non-zero if any measurement failed (unexpected reply, crash, timeout);
# the table then shows FAIL there. A missed target is not a failure.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }

DEFERD=$(abs "${DEFERD:-build/deferd}")
BSLOAD=$(abs "${BSLOAD:-build/bsload}")
BEANSTALKD=${BEANSTALKD:-/usr/bin/beanstalkd}
REDIS_SERVER=${REDIS_SERVER:-/usr/bin/redis-server}
REDIS_BENCHMARK=${REDIS_BENCHMARK:-/usr/bin/redis-benchmark}
REDIS_CLI=${REDIS_CLI:-/usr/bin/redis-cli}
REDIS_CLIENT=${BENCH_REDIS_CLIENT:-bsload}

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
    q_repeats=3 q_secs=1 q_drain=50000 q_mem=200000 q_mem_repeats=1
    q_redis=60000 q_rec=200000 q_rec_repeats=1 q_churn=200000
else
    q_repeats=5 q_secs=3 q_drain=200000 q_mem=1000000 q_mem_repeats=3
    q_redis=200000 q_rec=1000000 q_rec_repeats=3 q_churn=1000000
fi
REPEATS=${BENCH_REPEATS:-$q_repeats}
SECS=${BENCH_SECS:-$q_secs}
CONNS=${BENCH_CONNS:-50}
DEPTH=${BENCH_DEPTH:-32}
DRAIN_JOBS=${BENCH_DRAIN_JOBS:-$q_drain}
MEM_JOBS=${BENCH_MEM_JOBS:-$q_mem}
MEM_REPEATS=${BENCH_MEM_REPEATS:-$q_mem_repeats}
TRIM_WAIT=${BENCH_TRIM_WAIT:-3}
REDIS_OPS=${BENCH_REDIS_OPS:-$q_redis}
REC_JOBS=${BENCH_RECOVERY_JOBS:-$q_rec}
REC_REPEATS=${BENCH_RECOVERY_REPEATS:-$q_rec_repeats}
CHURN_OPS=${BENCH_CHURN_OPS:-$q_churn}
CHURN_LIVE=${BENCH_CHURN_LIVE:-100}
CHURN_SETTLE=${BENCH_CHURN_SETTLE:-2}
CHURN_REPEATS=${BENCH_CHURN_REPEATS:-1}
ALL_SCENARIOS="put_c1 put_c50 put_pipe drain cycle memory"
ALL_SCENARIOS+=" durable_put durable_cycle redis durable_vs_memory recovery churn"
read -r -a scenario_list <<<"${BENCH_SCENARIOS:-$ALL_SCENARIOS}"
SCENARIOS="${scenario_list[*]}"
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/defer-bench.XXXXXX)}
mkdir -p "$OUT"
RAW=$OUT/raw.txt
: >"$RAW"

ME=run.sh
# shellcheck source=bench/lib.sh
. "$here/lib.sh"

want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
for sc in $SCENARIOS; do
    [[ " $ALL_SCENARIOS " == *" $sc "* ]] ||
        die "BENCH_SCENARIOS: unknown scenario '$sc' (known: $ALL_SCENARIOS)"
done

for b in "$DEFERD" "$BSLOAD" "$BEANSTALKD"; do
    [[ -x "$b" ]] || die "$b: not found or not executable (build it: make BUILD=... \$BUILD/deferd \$BUILD/bsload)"
done
[[ $REDIS_CLIENT == bsload || $REDIS_CLIENT == redis-benchmark ]] ||
    die "BENCH_REDIS_CLIENT=$REDIS_CLIENT: expected bsload or redis-benchmark"
if want redis; then
    redis_bins=("$REDIS_SERVER" "$REDIS_CLI")
    [[ $REDIS_CLIENT == redis-benchmark ]] && redis_bins+=("$REDIS_BENCHMARK")
    for b in "${redis_bins[@]}"; do
        [[ -x "$b" ]] || die "$b: not found (apt-get install redis-server redis-tools," \
            "or leave 'redis' out of BENCH_SCENARIOS)"
    done
fi
for n in REPEATS SECS CONNS DEPTH DRAIN_JOBS MEM_JOBS MEM_REPEATS TRIM_WAIT REDIS_OPS REC_JOBS \
    REC_REPEATS CHURN_OPS CHURN_LIVE CHURN_SETTLE CHURN_REPEATS; do
    [[ "${!n}" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$n=${!n}: expected a number"
done

# The servers' data directories: one temporary directory, removed at exit.
DATA_PARENT=${BENCH_DATA_DIR:-$OUT}
mkdir -p "$DATA_PARENT"
DATA=$(mktemp -d "$DATA_PARENT/data.XXXXXX")

# Pinning: server and client on different CPUs when there are two or more.
if command -v taskset >/dev/null && (($(nproc) >= 2)); then
    PIN_SERVER=(taskset -c "$SERVER_CPU")
    PIN_CLIENT=(taskset -c "$CLIENT_CPU")
else
    say "run.sh: taskset missing or a single CPU: running unpinned"
    PIN_SERVER=() PIN_CLIENT=()
fi

# ---- servers ----

SRV_PID="" SRV_PORT=""
declare -A LIVE=() # pids of servers started and not yet stopped

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
    local p
    for p in "${!LIVE[@]}"; do
        kill -KILL "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    [[ -n ${DATA:-} ]] && rm -rf "$DATA"
}
trap cleanup EXIT
trap 'say "run.sh: interrupted"; exit 130' INT TERM

# The servers, by variant name. Variants with a data directory get a fresh
# one under $DATA unless the caller passes its own.
#   deferd          in memory (no -b)
#   deferd-wal      -b DIR --fsync always (the default policy, spelled out)
#   beanstalkd      in memory
#   beanstalkd-f0   -b DIR -f0: fsync after every write, fully durable
#   beanstalkd-wal  -b DIR with its default -f 50 (for fills and replay)
#   redis           appendonly yes, appendfsync always, no RDB snapshots
declare -A LABEL=([deferd]="deferd" [deferd-wal]="deferd -b (fsync always)"
    [beanstalkd]="beanstalkd" [beanstalkd-f0]="beanstalkd -b -f0"
    [beanstalkd-wal]="beanstalkd -b" [redis]="Redis (appendfsync always)")
needs_dir() { [[ $1 == *-wal || $1 == *-f0 || $1 == redis ]]; }

# deferd's HTTP API (where it has one) is not measured here: turn it off,
# so that no instance takes or competes for its fixed default port.
DEFERD_EXTRA=()
"$DEFERD" --help 2>&1 | grep -q -- '--http ADDR' && DEFERD_EXTRA=(--http off)

# server_argv VARIANT PORT DIR: sets ARGV to the command line.
server_argv() {
    local v=$1 port=$2 dir=$3
    case $v in
    deferd) ARGV=("$DEFERD" -l 127.0.0.1 -p "$port" "${DEFERD_EXTRA[@]}") ;;
    deferd-wal) ARGV=("$DEFERD" -l 127.0.0.1 -p "$port" "${DEFERD_EXTRA[@]}" -b "$dir"
        --fsync always) ;;
    beanstalkd) ARGV=("$BEANSTALKD" -l 127.0.0.1 -p "$port") ;;
    beanstalkd-f0) ARGV=("$BEANSTALKD" -l 127.0.0.1 -p "$port" -b "$dir" -f0) ;;
    beanstalkd-wal) ARGV=("$BEANSTALKD" -l 127.0.0.1 -p "$port" -b "$dir") ;;
    redis) ARGV=("$REDIS_SERVER" --bind 127.0.0.1 --port "$port" --dir "$dir" --save ""
        --appendonly yes --appendfsync always --daemonize no --protected-mode no
        --logfile "") ;;
    *) die "internal error: unknown server variant $v" ;;
    esac
}

# server_pid_is VARIANT PORT PID [TIMEOUT]: the server on PORT answers and
# reports PID as its own (which rules out talking to some other process on
# a reused port). Prints bsload's stats line for the beanstalk servers.
server_pid_is() {
    local out
    if [[ $1 == redis ]]; then
        out=$(timeout "${4:-2}" "$REDIS_CLI" -h 127.0.0.1 -p "$2" info server 2>/dev/null) &&
            [[ $out == *"process_id:$3"* ]]
    else
        out=$("$BSLOAD" -m stats -p "$2" -T "${4:-2}" 2>/dev/null) &&
            [[ " $out " == *" pid=$3 "* ]] && echo "$out"
    fi
}

declare -A OWNED_DIR=() # pid -> data directory to delete when it stops
SRV_STATUS=0

# start_server VARIANT LOGTAG [DIR]: sets SRV_PID and SRV_PORT.
start_server() {
    local name=$1 tag=$2 dir=${3:-} own=0 port pid
    if needs_dir "$name" && [[ -z $dir ]]; then
        dir=$(mktemp -d "$DATA/$name-$tag.XXXXXX")
        own=1
    fi
    for _attempt in 1 2 3 4 5; do
        port=$(pick_port "") || exit 2
        server_argv "$name" "$port" "$dir"
        "${PIN_SERVER[@]}" "${ARGV[@]}" >>"$OUT/$name-$tag.log" 2>&1 &
        pid=$!
        LIVE[$pid]=1
        for _ in $(seq 100); do
            alive "$pid" || break
            if server_pid_is "$name" "$port" "$pid" >/dev/null; then
                SRV_PID=$pid SRV_PORT=$port
                ((own)) && OWNED_DIR[$pid]=$dir
                return 0
            fi
            sleep 0.05
        done
        stop_server "$pid"
        say "run.sh: $name did not come up on port $port (see $OUT/$name-$tag.log); retrying"
    done
    ((own)) && rm -rf "$dir"
    die "cannot start $name"
}

# stop_server PID: SIGTERM, up to 5 s to exit, then SIGKILL. Sets
# SRV_STATUS to its exit status; deletes the data directory it was given by
# start_server.
stop_server() {
    local pid=$1
    terminate "$pid"
    unset "LIVE[$pid]"
    if [[ -n ${OWNED_DIR[$pid]:-} ]]; then
        rm -rf "${OWNED_DIR[$pid]}"
        unset "OWNED_DIR[$pid]"
    fi
}

rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# ---- measurements ----

# load NAME TAG ARGS...: run bsload against the current server; prints its
# line with the server's CPU time added (srv_cpu_ms, srv_cpu_us_per_op),
# logs it, and fails (with the reason on stderr) if bsload or the server
# failed.
load() {
    local name=$1 tag=$2 out rc=0 cpu0 cpu1
    shift 2
    cpu0=$(cpu_ms "$SRV_PID")
    out=$("${PIN_CLIENT[@]}" "$BSLOAD" -p "$SRV_PORT" "$@" 2>>"$OUT/bsload-errors.txt") || rc=$?
    cpu1=$(cpu_ms "$SRV_PID" 2>/dev/null || echo "$cpu0")
    out+=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$(field "$out" ops)" 'BEGIN {
        per = n > 0 ? (b - a) * 1000 / n : 0
        printf " srv_cpu_ms=%.1f srv_cpu_us_per_op=%.2f", b - a, per }')
    echo "$name $tag $out (rc=$rc)" >>"$RAW"
    if ((rc != 0)); then
        say "  $name: bsload $* failed (exit $rc): $(tail -n 1 "$OUT/bsload-errors.txt")"
        return 1
    fi
    if ! alive "$SRV_PID"; then
        say "  $name: the server died during bsload $* (see $OUT/$name-$tag.log)"
        return 1
    fi
    echo "$out"
}

# Results: RES[data-key|server] = space-separated values of the repeats.
ROWS=()
declare -A ROW_TITLE ROW_FMT ROW_DATA ROW_A ROW_B ROW_TARGET ROW_SCEN ROW_TABLE

# row KEY SCENARIO FMT TITLE [TARGET]: a row of the first table, deferd
# against beanstalkd, both in memory; KEY is also the data key. TARGET:
# ratio>=X, a<=X, a<X (a: deferd's median) or handback (memory).
row() {
    ROWS+=("$1")
    ROW_SCEN[$1]=$2 ROW_FMT[$1]=$3 ROW_TITLE[$1]=$4 ROW_TARGET[$1]=${5:-}
    ROW_DATA[$1]=$1 ROW_A[$1]=deferd ROW_B[$1]=beanstalkd ROW_TABLE[$1]=1
}
# drow ID SCENARIO DATA-KEY A B FMT TITLE [TARGET]: a row of the second
# table (durability): variant A (a deferd) against variant B ("-": none).
drow() {
    ROWS+=("$1")
    ROW_SCEN[$1]=$2 ROW_DATA[$1]=$3 ROW_A[$1]=$4 ROW_B[$1]=$5 ROW_FMT[$1]=$6 ROW_TITLE[$1]=$7
    ROW_TARGET[$1]=${8:-} ROW_TABLE[$1]=2
}

# The order of servers for repeat r: alternate which goes first.
order() {
    if (($1 % 2)); then echo "deferd beanstalkd"; else echo "beanstalkd deferd"; fi
}

# throughput SCENARIO ROW ARGS...: fresh server per repeat, one bsload run.
throughput() {
    local sc=$1 key=$2 r name out
    shift 2
    for r in $(seq "$REPEATS"); do
        for name in $(order "$r"); do
            start_server "$name" "$sc"
            if out=$(load "$name" "$sc" "$@"); then
                record "$key" "$name" "$(field "$out" ops_per_sec)"
                record "${key}_cpu" "$name" "$(field "$out" srv_cpu_us_per_op)"
                if [[ $sc == put_c50 ]]; then
                    record put_c50_p50 "$name" "$(field "$out" p50_us)"
                    record put_c50_p99 "$name" "$(field "$out" p99_us)"
                    record put_c50_p999 "$name" "$(field "$out" p999_us)"
                fi
                say "  [$sc] $r/$REPEATS $name: $(field "$out" ops_per_sec) ops/s" \
                    "p50=$(field "$out" p50_us)us p99=$(field "$out" p99_us)us" \
                    "server CPU $(field "$out" srv_cpu_us_per_op)us/op"
            else
                fail "$key" "$name"
                fail "${key}_cpu" "$name"
                [[ $sc == put_c50 ]] && fail put_c50_p50 "$name" && fail put_c50_p99 "$name" &&
                    fail put_c50_p999 "$name"
            fi
            stop_server "$SRV_PID"
        done
    done
}

# expect_ready NAME N: the server holds exactly N ready jobs.
expect_ready() {
    local out ready
    out=$("$BSLOAD" -m stats -p "$SRV_PORT" 2>&1) || { say "  $1: stats failed: $out"; return 1; }
    ready=$(field "$out" current-jobs-ready)
    if [[ $ready != "$2" ]]; then
        say "  $1: expected $2 ready jobs, the server has $ready ($out)"
        return 1
    fi
}

# Pre-fill, then drain with CONNS connections; the rate of the drain only.
drain() {
    local r name out n
    for r in $(seq "$REPEATS"); do
        for name in $(order "$r"); do
            start_server "$name" drain
            if load "$name" drain-fill -m fill -c 4 -D 64 -n "$DRAIN_JOBS" -T 600 >/dev/null &&
                expect_ready "$name" "$DRAIN_JOBS" &&
                out=$(load "$name" drain -m drain -c "$CONNS" -T 600); then
                n=$(field "$out" ops)
                if [[ $n != "$DRAIN_JOBS" ]]; then
                    # Not fatal: the rate is still a rate; but say so loudly.
                    say "  [drain] WARNING: $name drained $n of $DRAIN_JOBS jobs" \
                        "(reserve-with-timeout 0 said TIMED_OUT with jobs left)"
                    echo "WARNING $name drained $n of $DRAIN_JOBS" >>"$RAW"
                fi
                record drain "$name" "$(field "$out" ops_per_sec)"
                record drain_cpu "$name" "$(field "$out" srv_cpu_us_per_op)"
                say "  [drain] $r/$REPEATS $name: $(field "$out" ops_per_sec) jobs/s ($n jobs)," \
                    "server CPU $(field "$out" srv_cpu_us_per_op)us/job"
            else
                fail drain "$name"
                fail drain_cpu "$name"
            fi
            stop_server "$SRV_PID"
        done
    done
}

# After a drain, the queue should be empty; if a TIMED_OUT came early and
# left jobs behind, say so and drain again (memory must be measured empty).
drain_rest() {
    expect_ready "$1" 0 2>/dev/null && return 0
    say "  [memory] WARNING: $1: jobs left after the drain; draining again"
    echo "WARNING $1 jobs left after mem-drain" >>"$RAW"
    load "$1" mem-drain2 -m drain -s 100 -c "$CONNS" -D 16 -T 900 >/dev/null && expect_ready "$1" 0
}

# Fill MEM_JOBS 100-byte jobs; RSS per job; drain; RSS after TRIM_WAIT s.
# The drain here is pipelined (-D 16) just to get it over with: its rate is
# not what this scenario measures.
memory() {
    local r name before after drained out
    for r in $(seq "$MEM_REPEATS"); do
        for name in $(order "$r"); do
            start_server "$name" memory
            before=$(rss_kb "$SRV_PID")
            if load "$name" mem-fill -m fill -s 100 -c 4 -D 64 -n "$MEM_JOBS" -T 900 >/dev/null &&
                expect_ready "$name" "$MEM_JOBS"; then
                after=$(rss_kb "$SRV_PID")
                if out=$(load "$name" mem-drain -m drain -s 100 -c "$CONNS" -D 16 -T 900) &&
                    drain_rest "$name"; then
                    sleep "$TRIM_WAIT"
                    drained=$(rss_kb "$SRV_PID")
                    record mem_idle "$name" "$(awk -v k="$before" 'BEGIN{printf "%.1f", k/1024}')"
                    record mem_full "$name" "$(awk -v k="$after" 'BEGIN{printf "%.1f", k/1024}')"
                    record mem_per_job "$name" \
                        "$(awk -v a="$after" -v b="$before" -v n="$MEM_JOBS" \
                            'BEGIN{printf "%.1f", (a-b)*1024/n}')"
                    record mem_drained "$name" "$(awk -v k="$drained" 'BEGIN{printf "%.1f", k/1024}')"
                    say "  [memory] $r/$MEM_REPEATS $name: RSS ${before} kB idle," \
                        "${after} kB with $MEM_JOBS jobs, ${drained} kB ${TRIM_WAIT}s after" \
                        "draining ($(field "$out" ops_per_sec) jobs/s drain)"
                    echo "$name memory before_kb=$before after_kb=$after drained_kb=$drained" >>"$RAW"
                    stop_server "$SRV_PID"
                    continue
                fi
            fi
            for k in mem_idle mem_full mem_per_job mem_drained; do fail "$k" "$name"; done
            stop_server "$SRV_PID"
        done
    done
}

# ---- durable scenarios ----

# redis_load TAG: LPUSH of 100-byte values into one list on the current
# (Redis) server with CONNS connections, one command in flight each: by
# default with bsload --redis for SECS seconds (the client that loads
# deferd, so the two sides differ only in the server), or with
# redis-benchmark -n REDIS_OPS (BENCH_REDIS_CLIENT=redis-benchmark; it costs
# about twice bsload's CPU per request, which matters on a busy client CPU).
# Prints a line in bsload's key=value form with the server's CPU time
# added; checks afterwards that the list holds every value pushed.
redis_load() {
    local tag=$1 out rc=0 cpu0 cpu1 line len
    if [[ $REDIS_CLIENT == bsload ]]; then
        out=$(load redis "$tag" --redis -t bench -m put -c "$CONNS" -d "$SECS") || return 1
        len=$(timeout 10 "$REDIS_CLI" -h 127.0.0.1 -p "$SRV_PORT" llen bench 2>/dev/null || echo "?")
        if [[ $len != "$(field "$out" ops)" ]]; then
            say "  redis: the list holds $len entries after $(field "$out" ops) LPUSHes"
            return 1
        fi
        echo "$out"
        return 0
    fi
    cpu0=$(cpu_ms "$SRV_PID")
    out=$(timeout 600 "${PIN_CLIENT[@]}" "$REDIS_BENCHMARK" -h 127.0.0.1 -p "$SRV_PORT" \
        -t lpush -c "$CONNS" -n "$REDIS_OPS" -d 100 --csv 2>>"$OUT/redis-benchmark-errors.txt") ||
        rc=$?
    cpu1=$(cpu_ms "$SRV_PID" 2>/dev/null || echo "$cpu0")
    line=$(printf '%s\n' "$out" | tr -d '"' | awk -F, '$1 == "LPUSH"')
    len=$(timeout 10 "$REDIS_CLI" -h 127.0.0.1 -p "$SRV_PORT" llen mylist 2>/dev/null || echo "?")
    out=$(echo "$line" | awk -F, -v a="$cpu0" -v b="$cpu1" -v n="$REDIS_OPS" -v len="$len" \
        -v c="$CONNS" '{
        printf "mode=redis-lpush conns=%s ops=%d ops_per_sec=%.0f p50_us=%.1f p99_us=%.1f", \
            c, n, $2, $5 * 1000, $7 * 1000
        printf " list_len=%s srv_cpu_ms=%.1f srv_cpu_us_per_op=%.2f", len, b - a, (b - a) * 1000 / n
    }')
    echo "redis $tag $out (rc=$rc)" >>"$RAW"
    if ((rc != 0)) || [[ -z $line ]]; then
        say "  redis: redis-benchmark failed (exit $rc): $(tail -n 1 "$OUT/redis-benchmark-errors.txt")"
        return 1
    fi
    if [[ $len != "$REDIS_OPS" ]]; then
        say "  redis: the list holds $len entries after $REDIS_OPS LPUSHes"
        return 1
    fi
    if ! alive "$SRV_PID"; then
        say "  redis: the server died during redis-benchmark (see $OUT/redis-$tag.log)"
        return 1
    fi
    echo "$out"
}

# throughput_vs SCENARIO "VARIANTS" BSLOAD-ARGS...: like throughput, for any
# set of server variants, rotated each repeat; a fresh server (and data
# directory) per repeat. Redis gets LPUSH instead of put (redis_load).
# Records SCENARIO, SCENARIO_cpu, SCENARIO_p50, SCENARIO_p99 per variant.
throughput_vs() {
    local sc=$1 variants=$2 r name out
    shift 2
    for r in $(seq "$REPEATS"); do
        # shellcheck disable=SC2086
        for name in $(rotation "$r" $variants); do
            start_server "$name" "$sc"
            if [[ $name == redis ]]; then
                out=$(redis_load "$sc") || out=""
            else
                out=$(load "$name" "$sc" "$@") || out=""
            fi
            if [[ -n $out ]]; then
                record "$sc" "$name" "$(field "$out" ops_per_sec)"
                record "${sc}_cpu" "$name" "$(field "$out" srv_cpu_us_per_op)"
                record "${sc}_p50" "$name" "$(field "$out" p50_us)"
                record "${sc}_p99" "$name" "$(field "$out" p99_us)"
                say "  [$sc] $r/$REPEATS ${LABEL[$name]}: $(field "$out" ops_per_sec) ops/s" \
                    "p50=$(field "$out" p50_us)us p99=$(field "$out" p99_us)us" \
                    "server CPU $(field "$out" srv_cpu_us_per_op)us/op"
            else
                for k in "$sc" "${sc}_cpu" "${sc}_p50" "${sc}_p99"; do fail "$k" "$name"; done
            fi
            stop_server "$SRV_PID"
        done
    done
}

# The wall clock in microseconds.
now_us() { echo "${EPOCHREALTIME/[.,]/}"; }

# time_to_first_reply VARIANT DIR TAG: exec the server on DIR and time
# until it answers `stats` (with its own pid, holding REC_JOBS ready jobs).
# Sets REC_MS; leaves the server running (SRV_PID, SRV_PORT). Not to be run
# in a subshell: the server must be this shell's child.
time_to_first_reply() {
    local name=$1 dir=$2 tag=$3 port pid t0 t1 out
    port=$(pick_port "") || return 1
    server_argv "$name" "$port" "$dir"
    t0=$(now_us)
    "${PIN_SERVER[@]}" "${ARGV[@]}" >>"$OUT/$name-$tag.log" 2>&1 &
    pid=$!
    LIVE[$pid]=1
    SRV_PID=$pid SRV_PORT=$port
    # A refused connection (not listening yet) fails at once: poll every
    # 2 ms. A connection accepted during the replay waits for the reply.
    while :; do
        if out=$("${PIN_CLIENT[@]}" "$BSLOAD" -m stats -p "$port" -T 120 2>/dev/null); then
            t1=$(now_us)
            break
        fi
        if ! alive "$pid"; then
            say "  [recovery] $name exited during start-up (see $OUT/$name-$tag.log)"
            return 1
        fi
        if (($(now_us) - t0 > 120000000)); then
            say "  [recovery] $name: no reply within 120 s"
            return 1
        fi
        sleep 0.002
    done
    REC_MS=$(awk -v us=$((t1 - t0)) 'BEGIN {printf "%.1f", us / 1000}')
    if [[ " $out " != *" pid=$pid "* ]]; then
        say "  [recovery] $name: another process answered on port $port: $out"
        return 1
    fi
    if [[ $(field "$out" current-jobs-ready) != "$REC_JOBS" ]]; then
        say "  [recovery] $name recovered $(field "$out" current-jobs-ready) jobs, not $REC_JOBS"
        return 1
    fi
}

# Fill REC_JOBS jobs into a durable deferd and into beanstalkd -b (its
# default -f 50 for the fill: what is measured is the replay), stop both,
# then restart each REC_REPEATS times, interleaved, timing exec -> first
# reply. deferd also logs its own replay time ("recovered N tasks ... in X
# ms"), shown as a second row.
recovery() {
    local name dir out r logms
    declare -A rdir=()
    for name in deferd-wal beanstalkd-wal; do
        dir="$DATA/recovery-$name"
        rm -rf "$dir"
        mkdir -p "$dir"
        start_server "$name" recovery-fill "$dir"
        if out=$(load "$name" rec-fill -m fill -s 100 -c 4 -D 64 -n "$REC_JOBS" -T 1800) &&
            expect_ready "$name" "$REC_JOBS"; then
            rdir[$name]=$dir
            say "  [recovery] ${LABEL[$name]}: filled $REC_JOBS jobs at" \
                "$(field "$out" ops_per_sec) jobs/s"
        else
            for k in rec_ms rec_log_ms; do fail "$k" "$name"; done
        fi
        stop_server "$SRV_PID"
        echo "$name recovery-fill exit=$SRV_STATUS du_bytes=$(du -sb "$dir" | cut -f1)" >>"$RAW"
        if [[ $name == deferd-wal && $SRV_STATUS != 0 ]]; then
            say "  [recovery] WARNING: deferd exited with status $SRV_STATUS after SIGTERM"
        fi
    done
    for r in $(seq "$REC_REPEATS"); do
        for name in $(rotation "$r" deferd-wal beanstalkd-wal); do
            [[ -n ${rdir[$name]:-} ]] || continue
            if time_to_first_reply "$name" "${rdir[$name]}" recovery; then
                record rec_ms "$name" "$REC_MS"
                logms=""
                if [[ $name == deferd-wal ]]; then
                    logms=$(grep -o "recovered $REC_JOBS tasks from .* in [0-9.]* ms" \
                        "$OUT/$name-recovery.log" | tail -n 1 | awk '{print $(NF-1)}')
                    if [[ -n $logms ]]; then
                        record rec_log_ms "$name" "$logms"
                    else
                        fail rec_log_ms "$name"
                    fi
                fi
                say "  [recovery] $r/$REC_REPEATS ${LABEL[$name]}: first reply ${REC_MS} ms after" \
                    "exec${logms:+ (its log: replay $logms ms)}"
                echo "$name recovery jobs=$REC_JOBS first_reply_ms=$REC_MS log_ms=${logms:-}" >>"$RAW"
            else
                fail rec_ms "$name"
                [[ $name == deferd-wal ]] && fail rec_log_ms "$name"
            fi
            stop_server "$SRV_PID"
        done
    done
    for name in deferd-wal beanstalkd-wal; do rm -rf "$DATA/recovery-$name"; done
}

# CHURN_LIVE jobs, then CHURN_OPS put+delete pairs (pipelined, 4 x 64),
# then the size of the data directory, after CHURN_SETTLE s (deferd
# compacts in the background). beanstalkd -b with its default -f 50: the
# policy changes when data reaches the disk, not how much there is.
churn() {
    local r name dir out bytes files
    for r in $(seq "$CHURN_REPEATS"); do
        for name in $(rotation "$r" deferd-wal beanstalkd-wal); do
            dir=$(mktemp -d "$DATA/churn-$name.XXXXXX")
            start_server "$name" churn "$dir"
            if load "$name" churn-live -m fill -s 100 -c 1 -D 16 -n "$CHURN_LIVE" -T 60 >/dev/null &&
                out=$(load "$name" churn -m churn -s 100 -c 4 -D 64 -n "$CHURN_OPS" -T 1800) &&
                expect_ready "$name" "$CHURN_LIVE"; then
                sleep "$CHURN_SETTLE"
                bytes=$(du -sb "$dir" | cut -f1)
                files=$(find "$dir" -type f | wc -l)
                record churn_du "$name" "$(awk -v b="$bytes" 'BEGIN {printf "%.2f", b / 1048576}')"
                say "  [churn] $r/$CHURN_REPEATS ${LABEL[$name]}: $bytes bytes in $files files after" \
                    "$CHURN_OPS put+delete pairs ($(field "$out" ops_per_sec) pairs/s)"
                echo "$name churn ops=$CHURN_OPS live=$CHURN_LIVE du_bytes=$bytes files=$files" \
                    "$(find "$dir" -type f -printf '%f:%s ')" >>"$RAW"
            else
                fail churn_du "$name"
            fi
            stop_server "$SRV_PID"
            rm -rf "$dir"
        done
    done
}

R="$CONNS conns"
row put_c1 put_c1 int "put, 1 connection (ops/s)"
row put_c50 put_c50 int "put, $CONNS connections (ops/s)" "ratio>=1.3"
row put_pipe put_pipe int "put, $CONNS connections x $DEPTH in flight (ops/s)" "ratio>=3"
row drain drain int "reserve+delete drain of $DRAIN_JOBS jobs, $R (jobs/s)"
row cycle cycle int "put->reserve->delete, $CONNS connections (cycles/s)" "ratio>=1.3"
row put_c50_p50 put_c50 lat "put latency p50, $R (us)"
row put_c50_p99 put_c50 lat "put latency p99, $R (us)"
row put_c50_p999 put_c50 lat "put latency p99.9, $R (us)"
row put_c1_cpu put_c1 cpu "server CPU per put, 1 connection (us)"
row put_c50_cpu put_c50 cpu "server CPU per put, $R (us)"
row put_pipe_cpu put_pipe cpu "server CPU per put, $CONNS x $DEPTH in flight (us)"
row drain_cpu drain cpu "server CPU per drained job (reserve+delete) (us)"
row cycle_cpu cycle cpu "server CPU per put->reserve->delete cycle (us)"
row mem_per_job memory mem "RSS per queued 100-byte job (bytes)" "a<=200"
row mem_idle memory mem "RSS idle (MiB)"
row mem_full memory mem "RSS with $MEM_JOBS jobs queued (MiB)"
row mem_drained memory mem "RSS ${TRIM_WAIT} s after draining them all (MiB)" "handback"

drow dput durable_put dput deferd-wal beanstalkd-f0 int \
    "put, $R: deferd -b vs beanstalkd -b -f0 (ops/s)" "ratio>=20"
drow dcycle durable_cycle dcycle deferd-wal beanstalkd-f0 int \
    "put->reserve->delete, $R: deferd -b vs beanstalkd -b -f0 (cycles/s)" "ratio>=20"
drow dput_redis redis dput deferd-wal redis int \
    "put, $R: deferd -b vs Redis LPUSH, appendfsync always (ops/s)" "ratio>=1.5"
drow dput_mem durable_vs_memory dput deferd-wal deferd int \
    "put, $R: deferd -b vs deferd in memory (ops/s)" "ratio>=0.6"
drow dput_p50 durable_put dput_p50 deferd-wal beanstalkd-f0 lat \
    "durable put latency p50, $R: vs beanstalkd -b -f0 (us)"
drow dput_p99 durable_put dput_p99 deferd-wal beanstalkd-f0 lat \
    "durable put latency p99, $R: vs beanstalkd -b -f0 (us)"
drow dput_redis_p99 redis dput_p99 deferd-wal redis lat \
    "durable put latency p99, $R: vs Redis LPUSH (us)"
drow dput_cpu durable_put dput_cpu deferd-wal beanstalkd-f0 cpu \
    "server CPU per durable put, $R: vs beanstalkd -b -f0 (us)"
drow dput_redis_cpu redis dput_cpu deferd-wal redis cpu \
    "server CPU per durable put, $R: vs Redis LPUSH (us)"
drow dcycle_cpu durable_cycle dcycle_cpu deferd-wal beanstalkd-f0 cpu \
    "server CPU per durable cycle, $R: vs beanstalkd -b -f0 (us)"
drow rec_ms recovery rec_ms deferd-wal beanstalkd-wal mem \
    "recovery of $REC_JOBS tasks, exec to first reply: deferd vs beanstalkd (ms)" "a<1000"
drow rec_log_ms recovery rec_log_ms deferd-wal - mem \
    "recovery of $REC_JOBS tasks, replay time in deferd's log line (ms)" "a<1000"
drow churn_du churn churn_du deferd-wal beanstalkd-wal mem2 \
    "data dir after $CHURN_LIVE live + $CHURN_OPS put/delete pairs: vs beanstalkd -b (MiB)"

# Where the data directories live, and how fast that disk syncs.
DATA_FS=$(findmnt -no FSTYPE -T "$DATA" 2>/dev/null || stat -f -c %T "$DATA" 2>/dev/null || echo "?")
FSYNC_US=""
if want durable_put || want durable_cycle || want redis || want durable_vs_memory ||
    want recovery || want churn; then
    [[ $DATA_FS == tmpfs || $DATA_FS == ramfs ]] &&
        say "run.sh: WARNING: $DATA is on $DATA_FS: fsync costs nothing there, the durable" \
            "rows mean nothing (set BENCH_DATA_DIR to a directory on a real disk)"
    FSYNC_US=$(fsync_probe "$DATA" "${PIN_SERVER[@]}" || true)
fi
CPU_MODEL=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo 2>/dev/null || echo "?")
MACHINE="$(nproc) CPUs ($CPU_MODEL), Linux $(uname -r); data directories on $DATA_FS"

# The machine may be shared: note how busy it was around the run.
LOAD_START=$(cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo "?")
say "bench: deferd=$DEFERD beanstalkd=$BEANSTALKD bsload=$BSLOAD"
say "bench: $MACHINE; load average $LOAD_START${FSYNC_US:+; a 4 KiB O_DSYNC write takes $FSYNC_US us}"
awk -v l="$LOAD_START" 'BEGIN {exit !(l + 0 > 0.5)}' &&
    say "bench: WARNING: the machine is busy (load average $LOAD_START): expect noisy figures"
say "bench: repeats=$REPEATS secs=$SECS conns=$CONNS depth=$DEPTH drain_jobs=$DRAIN_JOBS" \
    "mem_jobs=$MEM_JOBS mem_repeats=$MEM_REPEATS redis_ops=$REDIS_OPS rec_jobs=$REC_JOBS" \
    "rec_repeats=$REC_REPEATS churn_ops=$CHURN_OPS; logs in $OUT"
t0=$SECONDS
want put_c1 && { say "== put, 1 connection"; throughput put_c1 put_c1 -m put -c 1 -d "$SECS"; }
want put_c50 && { say "== put, $CONNS connections"; throughput put_c50 put_c50 -m put -c "$CONNS" -d "$SECS"; }
want put_pipe && { say "== put, $CONNS connections, $DEPTH in flight"
    throughput put_pipe put_pipe -m put -c "$CONNS" -D "$DEPTH" -d "$SECS"; }
want drain && { say "== drain"; drain; }
want cycle && { say "== put->reserve->delete cycle"; throughput cycle cycle -m cycle -c "$CONNS" -d "$SECS"; }
want memory && { say "== memory"; memory; }
# One interleaved round for every durable-put comparison asked for.
dput_variants=""
want durable_put && dput_variants+=" beanstalkd-f0"
want redis && dput_variants+=" redis"
want durable_vs_memory && dput_variants+=" deferd"
if [[ -n $dput_variants ]]; then
    say "== durable put, $CONNS connections: deferd -b against$dput_variants"
    throughput_vs dput "deferd-wal$dput_variants" -m put -c "$CONNS" -d "$SECS"
fi
want durable_cycle && { say "== durable put->reserve->delete, $CONNS connections"
    throughput_vs dcycle "deferd-wal beanstalkd-f0" -m cycle -c "$CONNS" -d "$SECS"; }
want recovery && { say "== recovery of $REC_JOBS tasks"; recovery; }
want churn && { say "== data directory after $CHURN_OPS put/delete pairs"; churn; }
# The disk may be shared too: measure its sync latency again at the end.
if [[ -n $FSYNC_US ]]; then
    FSYNC_US_END=$(fsync_probe "$DATA" "${PIN_SERVER[@]}" || true)
    MACHINE+="; a 4 KiB O_DSYNC write (dd, preallocated file) took $FSYNC_US us before"
    MACHINE+=" the run and ${FSYNC_US_END:-?} us after it"
fi

# ---- the tables ----

fmt() { # FMT VALUE
    case $1 in
    int) awk -v v="$2" 'BEGIN{printf "%.0f", v}' ;;
    cpu | mem2) awk -v v="$2" 'BEGIN{printf "%.2f", v}' ;;
    *) awk -v v="$2" 'BEGIN{printf "%.1f", v}' ;;
    esac
}


target_text() {
    case $1 in
    "") echo "" ;;
    ratio\>=*) echo "≥ ${1#ratio>=}x" ;;
    a\<=*) echo "≤ ${1#a<=}" ;;
    a\<*) echo "< ${1#a<}" ;;
    handback) echo "handed back" ;;
    esac
}

# target_met SPEC A B RATIO: yes, no, or nothing when it cannot be judged.
target_met() {
    local spec=$1 a=$2 ratio=$4 ok=""
    case $spec in
    ratio\>=*)
        [[ $ratio != n/a && -n $ratio ]] &&
            ok=$(awk -v r="$ratio" -v t="${spec#ratio>=}" 'BEGIN{print (r >= t)}') ;;
    a\<=*) [[ -n $a ]] && ok=$(awk -v a="$a" -v t="${spec#a<=}" 'BEGIN{print (a <= t)}') ;;
    a\<*) [[ -n $a ]] && ok=$(awk -v a="$a" -v t="${spec#a<}" 'BEGIN{print (a < t)}') ;;
    handback)
        # Drained RSS within 10% of the growth the jobs caused, above idle.
        local idle full drained
        idle=$(med mem_idle deferd) full=$(med mem_full deferd)
        drained=$(med mem_drained deferd)
        [[ -n $idle && -n $full && -n $drained ]] &&
            ok=$(awk -v i="$idle" -v f="$full" -v d="$drained" \
                'BEGIN{print (d <= i + 0.1 * (f - i))}') ;;
    esac
    case $ok in 1) echo "yes" ;; 0) echo "**no**" ;; *) echo "" ;; esac
}

print_table() {
    local table=$1 id key a b ca cb ma mb ratio
    if ((table == 1)); then
        echo "| scenario | deferd | beanstalkd | ratio deferd/beanstalkd | target | met |"
    else
        echo "| scenario | deferd | other | ratio deferd/other | target | met |"
    fi
    echo "|---|---:|---:|---:|---:|:---:|"
    for id in "${ROWS[@]}"; do
        ((ROW_TABLE[$id] == table)) || continue
        want "${ROW_SCEN[$id]}" || continue
        key=${ROW_DATA[$id]} a=${ROW_A[$id]} b=${ROW_B[$id]}
        ma=$(med "$key" "$a") mb=""
        [[ $b != - ]] && mb=$(med "$key" "$b")
        ca="-" cb="-"
        [[ -n $ma ]] && ca=$(fmt "${ROW_FMT[$id]}" "$ma")
        [[ -n ${FAILED[$key|$a]:-} ]] && ca=FAIL
        [[ -n $mb ]] && cb=$(fmt "${ROW_FMT[$id]}" "$mb")
        [[ $b != - && -n ${FAILED[$key|$b]:-} ]] && cb=FAIL
        ratio="n/a"
        if [[ -n $ma && -n $mb ]]; then
            ratio=$(awk -v a="$ma" -v b="$mb" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }')
        fi
        echo "| ${ROW_TITLE[$id]} | $ca | $cb | $ratio | $(target_text "${ROW_TARGET[$id]}") |" \
            "$(target_met "${ROW_TARGET[$id]}" "$ma" "$mb" "$ratio") |"
    done
}

have_table() {
    local id
    for id in "${ROWS[@]}"; do
        ((ROW_TABLE[$id] == $1)) && want "${ROW_SCEN[$id]}" && return 0
    done
    return 1
}

{
    if have_table 1; then
        echo "In memory, deferd against beanstalkd:"
        echo
        print_table 1
        echo
    fi
    if have_table 2; then
        echo "Durability: deferd -b DIR (--fsync always) against beanstalkd -b DIR -f0," \
            "Redis (appendonly yes, appendfsync always) and deferd in memory; recovery and" \
            "churn against beanstalkd -b DIR (its default -f 50):"
        echo
        print_table 2
        echo
    fi
    echo "Medians of $REPEATS interleaved repeats ($MEM_REPEATS for memory, $REC_REPEATS" \
        "restarts for recovery, $CHURN_REPEATS for churn), fresh server each;" \
        "server on CPU $SERVER_CPU, client on CPU $CLIENT_CPU; ${SECS} s per throughput run" \
        "(Redis: $(if [[ $REDIS_CLIENT == bsload ]]; then echo "bsload --redis, LPUSH";
            else echo "redis-benchmark -t lpush -n $REDIS_OPS -d 100"; fi))." \
        "ops/s: higher is better; latency, CPU, memory and time: lower is better." \
        "Server CPU per op = the server's CPU time (all threads) during the run / ops;" \
        "it is steadier than ops/s on a busy machine."
    echo "Machine: $MACHINE; 1-minute load average $LOAD_START when the run started."
} | tee "$OUT/table.md"

say "bench: done in $((SECONDS - t0)) s; raw results in $RAW"
exit $((FAILED_ANY ? 1 : 0))
