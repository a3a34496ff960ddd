# shellcheck shell=bash
# shellcheck disable=SC2154 # EXAMPLE, root, PHP, api, API_PORT: set by the script that sources this
# examples/lib.sh - what the examples' run.sh scripts share: finding php,
# php-fpm and deferd (building it if need be), running services in the
# background with their logs in a temporary directory, stopping them all in
# order on exit or Ctrl-C, and the helpers of the --check modes.
#
# Sourced, not run: set EXAMPLE (the example's name, for messages and the
# temporary directory), root (the repository), PHP, api (deferd's HTTP API
# URL) and API_PORT first. Afterwards $tmp is the run's directory, removed
# on exit.

die() {
    echo "$EXAMPLE: $*" >&2
    exit 1
}

# ---- what it needs ----------------------------------------------------------

for tool in "$PHP" curl; do
    command -v "$tool" > /dev/null || die "$tool is not installed"
done
php_fpm=
for candidate in ${PHP_FPM:-} php-fpm8.2 /usr/sbin/php-fpm8.2 php-fpm /usr/sbin/php-fpm; do
    if php_fpm=$(command -v "$candidate"); then
        break
    fi
done
[[ -n $php_fpm ]] || die "php-fpm is not installed (apt-get install php-fpm), or set PHP_FPM to it"

if [[ -n ${DEFERD:-} ]]; then
    deferd=$DEFERD
else
    echo "$EXAMPLE: building deferd (make -C $root)" >&2
    make -C "$root" --no-print-directory >&2
    deferd=$root/build/deferd
fi
[[ -x $deferd ]] || die "no deferd binary at $deferd"

# ---- starting and stopping ----------------------------------------------------

# Every request of this script is bounded: a port taken by some other program
# that never answers must not hang it.
curl() {
    command curl --max-time 30 "$@"
}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/$EXAMPLE.XXXXXX")
pids=()
declare -A service # pid -> name, for messages

# stop PID: SIGTERM, SIGKILL if it is still there 10 s later; returns its
# exit status (also of one that had exited already), and takes it off the
# list of services.
stop() {
    local pid=$1 status=0 killer='' p kept=()
    for p in "${pids[@]}"; do
        [[ $p == "$pid" ]] || kept+=("$p")
    done
    pids=("${kept[@]}")
    if kill -TERM "$pid" 2> /dev/null; then
        (sleep 10 && kill -KILL "$pid") > /dev/null 2>&1 &
        killer=$!
    fi
    wait "$pid" || status=$?
    if [[ -n $killer ]]; then
        kill "$killer" 2> /dev/null || true
        wait "$killer" 2> /dev/null || true
    fi
    return "$status"
}

cleanup() {
    local pid
    trap - EXIT INT TERM
    for pid in "${pids[@]}"; do
        stop "$pid" || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# start NAME COMMAND...: runs COMMAND in the background, its output in
# $tmp/NAME.log, in a session of its own: Ctrl-C reaches only this script,
# which then stops everything in order.
start() {
    local name=$1
    shift
    setsid "$@" > "$tmp/$name.log" 2>&1 &
    pids+=($!)
    service[$!]=$name
}

# Dies, with the end of its log, if a service has exited.
all_running() {
    local pid
    for pid in "${pids[@]}"; do
        kill -0 "$pid" 2> /dev/null || die "${service[$pid]} exited; its log:
$(tail -20 "$tmp/${service[$pid]}.log")"
    done
}

# wait_until SECONDS WHAT COMMAND...: runs COMMAND until it succeeds, for at
# most SECONDS. COMMAND may leave what it saw in $seen, for the message.
seen=
wait_until() {
    local seconds=$1 what=$2 deadline
    shift 2
    deadline=$((SECONDS + seconds))
    until "$@"; do
        all_running
        ((SECONDS < deadline)) || die "waited $seconds s for $what${seen:+; last seen: $seen}"
        sleep 0.2
    done
}

# start_php_fpm and start_deferd: start them on the configs the example
# wrote ($tmp/php-fpm.conf with its pool listening on $tmp/php-fpm.sock,
# $tmp/deferd.ini), and wait until they answer. deferd keeps its tasks in
# memory (no -b): they go when the example stops. Its pid is $deferd_pid.
start_php_fpm() {
    local fpm_flags=(-y "$tmp/php-fpm.conf")
    if ((EUID == 0)); then
        fpm_flags+=(-R) # php-fpm refuses to run as root without it
    fi
    start php-fpm "$php_fpm" "${fpm_flags[@]}"
    wait_until 20 "php-fpm to listen on $tmp/php-fpm.sock" test -S "$tmp/php-fpm.sock"
}

start_deferd() {
    start deferd "$deferd" -l "unix:$tmp/deferd.sock" --http "127.0.0.1:$API_PORT" --config "$tmp/deferd.ini"
    # shellcheck disable=SC2034 # used by the sourcing script
    deferd_pid=$!
    wait_until 20 "deferd to answer on $api" curl -fs --max-time 2 -o /dev/null "$api/healthz"
}

# ---- --check -------------------------------------------------------------------

# json_get PATH: the value at PATH (keys and indexes joined by dots) of the
# JSON on stdin; an array is printed as its length, true and false as such.
json_get() {
    # shellcheck disable=SC2016 # PHP code: its $ are PHP's
    "$PHP" -r '
        $value = json_decode(stream_get_contents(STDIN), true, 512, JSON_THROW_ON_ERROR);
        foreach (explode(".", $argv[1]) as $key) {
            $value = $value[$key] ?? null;
        }
        echo is_array($value) ? count($value) : (is_bool($value) ? var_export($value, true) : $value), "\n";
    ' "$1"
}

step() {
    echo "check: $*"
}
