# shellcheck shell=bash
# bench/lib.sh - what bench/run.sh and bench/php.sh share: messages,
# process and CPU accounting, ports, key=value fields, medians, the order
# of interleaved repeats and the disk probe. Sourced, not run; the script
# sets ME (its name, for messages) first.

say() { printf '%s\n' "$*" >&2; }
die() { say "$ME: $*"; exit 2; }

# Running, and not a zombie: a crashed child stays a zombie until waited
# for, and kill -0 would still succeed on it.
alive() {
    local state
    state=$(awk '/^State:/ {print $2}' "/proc/$1/status" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# terminate PID: SIGTERM, up to 5 s to exit, then SIGKILL (noted in $RAW);
# reaps it and sets SRV_STATUS to its exit status.
# shellcheck disable=SC2034 # SRV_STATUS is for the scripts
terminate() {
    local pid=$1
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 50); do
        alive "$pid" || break
        sleep 0.1
    done
    if alive "$pid"; then
        say "$ME: pid $pid did not exit within 5 s of SIGTERM; killing it"
        echo "WARNING pid $pid needed SIGKILL" >>"$RAW"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    SRV_STATUS=0
    wait "$pid" 2>/dev/null || SRV_STATUS=$?
}

# cpu_ms PID: the CPU time PID has used, in ms, all threads. Wall-clock
# rates on a shared machine move with whatever else runs; CPU per operation
# moves much less, so the tables show both. se.sum_exec_runtime has
# microsecond precision; /proc/PID/stat's ticks (10 ms) are the fallback.
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

# pick_port AVOID: a port other than AVOID ("" for none) that no socket
# uses now, below the kernel's ephemeral range: the load generators' own
# client sockets (and their TIME_WAIT leftovers) take ports from that
# range, and a server could not bind one of them. A race with another
# program is still possible; the callers retry and check who answers.
read -r EPHEMERAL_LOW _ </proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
PORT_LOW=10000 PORT_SPAN=$((EPHEMERAL_LOW - 10000))
((PORT_SPAN >= 1000)) || PORT_LOW=20000 PORT_SPAN=10000
pick_port() {
    local p
    for _ in $(seq 100); do
        p=$((PORT_LOW + RANDOM % PORT_SPAN))
        [[ $p == "${1:-}" ]] && continue
        if ! command -v ss >/dev/null || ! ss -Htan "sport = :$p" | grep -q .; then
            echo "$p"
            return
        fi
    done
    die "no free port found"
}

# field LINE KEY: the value of KEY=value in a line of key=value pairs (what
# bsload and the PHP helpers print), or "?".
field() {
    local kv
    for kv in $1; do
        [[ $kv == "$2="* ]] && { echo "${kv#*=}"; return; }
    done
    echo "?"
}

# Results: RES[key|variant] collects one value per repeat; a failed repeat
# marks FAILED[key|variant], and the table shows FAIL there.
declare -A RES=() FAILED=()
FAILED_ANY=0
record() { RES[$1|$2]+=" $3"; }
# shellcheck disable=SC2034 # FAILED_ANY makes the scripts' exit status
fail() { FAILED[$1|$2]=1; FAILED_ANY=1; }

median() {
    printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {
        if (NR == 0) exit
        if (NR % 2) print a[(NR + 1) / 2]; else print (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# med KEY VARIANT: the median of the repeats, or nothing (no result, or a
# failed repeat).
med() {
    [[ -z ${FAILED[$1|$2]:-} && -n ${RES[$1|$2]:-} ]] || return 0
    # shellcheck disable=SC2086
    median ${RES[$1|$2]}
}

# rotation R ITEM...: the items in the order for repeat R (rotated by one
# each repeat, so each goes first, second, ... in turn).
rotation() {
    local r=$1
    shift
    local n=$# i
    for ((i = 0; i < n; i++)); do
        local k=$(((r - 1 + i) % n + 1))
        printf '%s ' "${!k}"
    done
}

# fsync_probe DIR [PIN...]: the fdatasync latency (µs) of the disk under
# DIR, the way the logs use it: 4 KiB writes into preallocated space, each
# synced (O_DSYNC), 1000 of them; run under PIN (a taskset command) if
# given.
fsync_probe() {
    local f=$1/fsync-probe out
    shift
    fallocate -l 16M "$f" 2>/dev/null || true
    out=$(LC_ALL=C "$@" dd if=/dev/zero of="$f" bs=4096 count=1000 oflag=dsync conv=notrunc 2>&1 |
        awk '/copied/ {for (i = 1; i <= NF; i++) if ($i == "s,") print $(i - 1)}')
    rm -f "$f"
    [[ -n $out ]] && awk -v s="$out" 'BEGIN {printf "%.0f", s * 1e6 / 1000}'
}
