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
# - Time: about 7-9 minutes on 2 cores with the defaults (the memory
#   scenario, 1M jobs into beanstalkd and out again, is the longest part);
#   BENCH_QUICK=1 takes about a minute.
#
# Environment (defaults in brackets):
#   DEFERD [build/deferd]  BSLOAD [build/bsload]  BEANSTALKD [/usr/bin/beanstalkd]
#   BENCH_QUICK=1          ~1-minute smoke run (fewer repeats, shorter runs)
#   BENCH_REPEATS [5]      repeats per scenario and server
#   BENCH_SECS [3]         seconds per throughput measurement
#   BENCH_CONNS [50]       connections for the multi-connection scenarios
#   BENCH_DEPTH [32]       commands in flight per connection, pipelined scenario
#   BENCH_DRAIN_JOBS [200000]  jobs pre-filled for the drain scenario
#   BENCH_MEM_JOBS [1000000]   100-byte jobs for the memory scenario
#   BENCH_MEM_REPEATS [3]  repeats of the memory scenario
#   BENCH_TRIM_WAIT [3]    seconds to wait after draining before reading RSS
#   BENCH_SCENARIOS        subset, e.g. "put_c1 memory" (default: all of
#                          put_c1 put_c50 put_pipe drain cycle memory)
#   BENCH_SERVER_CPU [0]  BENCH_CLIENT_CPU [1]
#   BENCH_OUT              directory for logs and raw results [mktemp]
#
# Output: progress on stderr, a markdown table on stdout (also saved as
# $BENCH_OUT/table.md). Exit status is non-zero if any measurement failed
# (unexpected reply, crash, timeout); the table then shows FAIL there.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
abs() { case $1 in /*) echo "$1" ;; *) echo "$root/$1" ;; esac; }

DEFERD=$(abs "${DEFERD:-build/deferd}")
BSLOAD=$(abs "${BSLOAD:-build/bsload}")
BEANSTALKD=${BEANSTALKD:-/usr/bin/beanstalkd}

if [[ "${BENCH_QUICK:-0}" == 1 ]]; then
    q_repeats=3 q_secs=1 q_drain=50000 q_mem=200000 q_mem_repeats=1
else
    q_repeats=5 q_secs=3 q_drain=200000 q_mem=1000000 q_mem_repeats=3
fi
REPEATS=${BENCH_REPEATS:-$q_repeats}
SECS=${BENCH_SECS:-$q_secs}
CONNS=${BENCH_CONNS:-50}
DEPTH=${BENCH_DEPTH:-32}
DRAIN_JOBS=${BENCH_DRAIN_JOBS:-$q_drain}
MEM_JOBS=${BENCH_MEM_JOBS:-$q_mem}
MEM_REPEATS=${BENCH_MEM_REPEATS:-$q_mem_repeats}
TRIM_WAIT=${BENCH_TRIM_WAIT:-3}
SCENARIOS=${BENCH_SCENARIOS:-put_c1 put_c50 put_pipe drain cycle memory}
SERVER_CPU=${BENCH_SERVER_CPU:-0}
CLIENT_CPU=${BENCH_CLIENT_CPU:-1}
OUT=${BENCH_OUT:-$(mktemp -d /tmp/defer-bench.XXXXXX)}
mkdir -p "$OUT"
RAW=$OUT/raw.txt
: >"$RAW"

SERVERS=(deferd beanstalkd)
declare -A BIN=([deferd]=$DEFERD [beanstalkd]=$BEANSTALKD)

say() { printf '%s\n' "$*" >&2; }
die() { say "run.sh: $*"; exit 2; }

for b in "$DEFERD" "$BSLOAD" "$BEANSTALKD"; do
    [[ -x "$b" ]] || die "$b: not found or not executable (build it: make BUILD=... \$BUILD/deferd \$BUILD/bsload)"
done
for n in REPEATS SECS CONNS DEPTH DRAIN_JOBS MEM_JOBS MEM_REPEATS TRIM_WAIT; do
    [[ "${!n}" =~ ^[0-9]+([.][0-9]+)?$ ]] || die "$n=${!n}: expected a number"
done

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
    done
}
trap cleanup EXIT
trap 'say "run.sh: interrupted"; exit 130' INT TERM

# A port no socket uses now, below the kernel's ephemeral range: bsload's
# own client sockets (and their TIME_WAIT leftovers) take ports from that
# range, and a server could not bind one of them. A race with another
# program is still possible; start_server retries and checks who answers.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
PORT_LOW=10000 PORT_SPAN=$((EPHEMERAL_LOW - 10000))
((PORT_SPAN >= 1000)) || PORT_LOW=20000 PORT_SPAN=10000
pick_port() {
    local p
    for _ in $(seq 50); do
        p=$((PORT_LOW + RANDOM % PORT_SPAN))
        if ! command -v ss >/dev/null || ! ss -Htan "sport = :$p" | grep -q .; then
            echo "$p"
            return
        fi
    done
    die "no free port found"
}

# start_server NAME LOGTAG: sets SRV_PID and SRV_PORT.
start_server() {
    local name=$1 tag=$2 port pid out
    for _attempt in 1 2 3 4 5; do
        port=$(pick_port) || exit 2
        "${PIN_SERVER[@]}" "${BIN[$name]}" -l 127.0.0.1 -p "$port" >>"$OUT/$name-$tag.log" 2>&1 &
        pid=$!
        LIVE[$pid]=1
        # Ready when the server on that port reports *our* pid in its stats:
        # that rules out talking to some other process on a reused port.
        for _ in $(seq 100); do
            alive "$pid" || break
            if out=$("$BSLOAD" -m stats -p "$port" -T 2 2>/dev/null) &&
                [[ " $out " == *" pid=$pid "* ]]; then
                SRV_PID=$pid SRV_PORT=$port
                return 0
            fi
            sleep 0.05
        done
        stop_server "$pid"
        say "run.sh: $name did not come up on port $port (see $OUT/$name-$tag.log); retrying"
    done
    die "cannot start $name"
}

stop_server() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        alive "$pid" || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    unset "LIVE[$pid]"
}

# Running, and not a zombie: a crashed child stays a zombie until waited
# for, and kill -0 would still succeed on it.
alive() {
    local state
    state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# CPU time the server has used, in ms, all threads. Wall-clock rates on a
# shared machine move with whatever else runs; CPU per operation moves much
# less, so the table shows both. se.sum_exec_runtime has microsecond
# precision; /proc/PID/stat's ticks (10 ms) are the fallback.
HZ=$(getconf CLK_TCK 2>/dev/null || echo 100)
cpu_ms() {
    local sum
    sum=$(cat /proc/"$1"/task/*/sched 2>/dev/null |
        awk '/^se\.sum_exec_runtime/ {s += $3; n++} END {if (n) printf "%.3f", s}')
    if [[ -n $sum ]]; then
        echo "$sum"
    else
        awk -v hz="$HZ" '{sub(/.*\) /, ""); printf "%.3f", ($12 + $13) * 1000 / hz}' "/proc/$1/stat"
    fi
}

rss_kb() {
    awk '/^VmRSS:/ {print $2}' "/proc/$1/status"
}

# ---- measurements ----

# field LINE KEY: the value of key=value in a bsload output line.
field() {
    local kv
    for kv in $1; do
        [[ $kv == "$2="* ]] && { echo "${kv#*=}"; return; }
    done
    echo "?"
}

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

# Results: RES[scenario-row|server] = space-separated values of the repeats.
declare -A RES FAILED
ROWS=()
declare -A ROW_TITLE ROW_FMT

row() { # KEY FMT TITLE
    ROWS+=("$1")
    ROW_FMT[$1]=$2
    ROW_TITLE[$1]=$3
}
record() { RES[$1|$2]+=" $3"; }
fail() { FAILED[$1|$2]=1; FAILED_ANY=1; }
FAILED_ANY=0

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

row put_c1 int "put, 1 connection (ops/s)"
row put_c50 int "put, $CONNS connections (ops/s)"
row put_pipe int "put, $CONNS connections x $DEPTH in flight (ops/s)"
row drain int "reserve+delete drain of $DRAIN_JOBS jobs, $CONNS conns (jobs/s)"
row cycle int "put->reserve->delete, $CONNS connections (cycles/s)"
row put_c50_p50 lat "put latency p50, $CONNS conns (us)"
row put_c50_p99 lat "put latency p99, $CONNS conns (us)"
row put_c50_p999 lat "put latency p99.9, $CONNS conns (us)"
row put_c1_cpu cpu "server CPU per put, 1 connection (us)"
row put_c50_cpu cpu "server CPU per put, $CONNS connections (us)"
row put_pipe_cpu cpu "server CPU per put, $CONNS x $DEPTH in flight (us)"
row drain_cpu cpu "server CPU per drained job (reserve+delete) (us)"
row cycle_cpu cpu "server CPU per put->reserve->delete cycle (us)"
row mem_per_job mem "RSS per queued 100-byte job (bytes)"
row mem_idle mem "RSS idle (MiB)"
row mem_full mem "RSS with $MEM_JOBS jobs queued (MiB)"
row mem_drained mem "RSS ${TRIM_WAIT} s after draining them all (MiB)"

say "bench: deferd=$DEFERD beanstalkd=$BEANSTALKD bsload=$BSLOAD"
say "bench: repeats=$REPEATS secs=$SECS conns=$CONNS depth=$DEPTH drain_jobs=$DRAIN_JOBS" \
    "mem_jobs=$MEM_JOBS mem_repeats=$MEM_REPEATS; logs in $OUT"
t0=$SECONDS
want() { [[ " $SCENARIOS " == *" $1 "* ]]; }
want put_c1 && { say "== put, 1 connection"; throughput put_c1 put_c1 -m put -c 1 -d "$SECS"; }
want put_c50 && { say "== put, $CONNS connections"; throughput put_c50 put_c50 -m put -c "$CONNS" -d "$SECS"; }
want put_pipe && { say "== put, $CONNS connections, $DEPTH in flight"
    throughput put_pipe put_pipe -m put -c "$CONNS" -D "$DEPTH" -d "$SECS"; }
want drain && { say "== drain"; drain; }
want cycle && { say "== put->reserve->delete cycle"; throughput cycle cycle -m cycle -c "$CONNS" -d "$SECS"; }
want memory && { say "== memory"; memory; }

# ---- the table ----

median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {
        if (NR == 0) exit
        if (NR % 2) print a[(NR+1)/2]; else print (a[NR/2] + a[NR/2+1]) / 2 }'
}

fmt() { # FMT VALUE
    case $1 in
    int) awk -v v="$2" 'BEGIN{printf "%.0f", v}' ;;
    cpu) awk -v v="$2" 'BEGIN{printf "%.2f", v}' ;;
    *) awk -v v="$2" 'BEGIN{printf "%.1f", v}' ;;
    esac
}

{
    echo "| scenario | deferd | beanstalkd | ratio deferd/beanstalkd |"
    echo "|---|---:|---:|---:|"
    for key in "${ROWS[@]}"; do
        [[ -n "${RES[$key|deferd]:-}${FAILED[$key|deferd]:-}${RES[$key|beanstalkd]:-}${FAILED[$key|beanstalkd]:-}" ]] || continue
        declare -A cell=()
        declare -A med=()
        for name in "${SERVERS[@]}"; do
            if [[ -n "${FAILED[$key|$name]:-}" ]]; then
                cell[$name]=FAIL
            else
                # shellcheck disable=SC2086
                med[$name]=$(median ${RES[$key|$name]:-})
                cell[$name]=$(fmt "${ROW_FMT[$key]}" "${med[$name]}")
            fi
        done
        ratio="n/a"
        if [[ -n "${med[deferd]:-}" && -n "${med[beanstalkd]:-}" ]]; then
            ratio=$(awk -v a="${med[deferd]}" -v b="${med[beanstalkd]}" \
                'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "n/a" }')
        fi
        echo "| ${ROW_TITLE[$key]} | ${cell[deferd]} | ${cell[beanstalkd]} | $ratio |"
        unset cell med
    done
    echo
    echo "Medians of $REPEATS interleaved repeats ($MEM_REPEATS for memory), fresh server each;" \
        "server on CPU $SERVER_CPU, bsload on CPU $CLIENT_CPU; ${SECS} s per throughput run." \
        "ops/s: higher is better; latency, CPU and memory: lower is better." \
        "Server CPU per op = the server's CPU time (all threads) during the run / ops;" \
        "it is steadier than ops/s on a busy machine."
} | tee "$OUT/table.md"

say "bench: done in $((SECONDS - t0)) s; raw results in $RAW"
exit $((FAILED_ANY ? 1 : 0))
