#!/usr/bin/env bash
#
# classroom-network: starts everything the example needs on this machine -
# deferd, php-fpm with a pool of its own on a unix socket, PHP's built-in web
# server for the page - prints the page's URL, and stops it all on Ctrl-C.
#
#   examples/classroom-network/run.sh           # then open the URL it prints
#   examples/classroom-network/run.sh --check   # drive the page with curl; exit 0 if all works
#
# Environment: DEFERD (a deferd binary; default: `make` builds build/deferd),
# PHP (php), PHP_FPM (php-fpm8.2), PAGE_PORT (8081), API_PORT (11481: deferd's
# HTTP API), LESSON_SECONDS (how long a lesson lasts unless the page says
# otherwise; 60), CHECK_TIMEOUT (seconds --check waits for each step; 60).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

check=false
case "${1:-}" in
    "") ;;
    --check) check=true ;;
    -h | --help) sed -n '3,13p' "$0" | cut -c3-; exit 0 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

PHP=${PHP:-php}
PAGE_PORT=${PAGE_PORT:-8081}
API_PORT=${API_PORT:-11481}
LESSON_SECONDS=${LESSON_SECONDS:-60}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-60}
page=http://127.0.0.1:$PAGE_PORT
api=http://127.0.0.1:$API_PORT

EXAMPLE=classroom-network
# shellcheck source=examples/lib.sh
source "$root/examples/lib.sh"
rooms_file=$tmp/rooms.json

# The queue "network" is pushed into the php-fpm pool below: each restore
# task, when it is due, becomes a request to push/restore.php.
cat > "$tmp/deferd.ini" << EOF
[network]
target = fastcgi
address = unix:$tmp/php-fpm.sock
script = $here/push/restore.php
concurrency = 2
deadline = 10s
max_attempts = 5
EOF
cat > "$tmp/php-fpm.conf" << EOF
[global]
pid = "$tmp/php-fpm.pid"
error_log = "$tmp/php-fpm.log"
daemonize = no

[network]
listen = "$tmp/php-fpm.sock"
pm = static
pm.max_children = 2
request_terminate_timeout = 30s
env[ROOMS_FILE] = "$rooms_file"
EOF

start_php_fpm
start_deferd
start page env DEFER_URL="$api" ROOMS_FILE="$rooms_file" LESSON_SECONDS="$LESSON_SECONDS" \
    "$PHP" -S "127.0.0.1:$PAGE_PORT" -t "$here/public"
wait_until 20 "the page to answer on $page" curl -fs --max-time 2 -o /dev/null "$page/rooms.php"

# ---- by hand ---------------------------------------------------------------------

if ! $check; then
    cat << EOF
classroom-network is running:
  the page             $page/
  scheduled restores   $api/v1/queues/network/tasks?state=delayed
  the rooms' state     $rooms_file
  logs                 $tmp/*.log
Ctrl-C stops everything.
EOF
    wait -n "${pids[@]}" || true
    all_running # says which one stopped, and exits
    exit 1
fi

# ---- --check: drive the page, check the outcome -----------------------------------

# press ACTION ROOM [SECONDS]: what a button of the page does.
press() {
    local location
    location=$(curl -fsS -o /dev/null -w '%{redirect_url}' -d "action=$1" -d "room=$2" ${3:+-d "seconds=$3"} "$page/action.php")
    [[ $location == "$page/" ]] || die "action.php ($1 $2) sent the browser to '$location'"
}

# The delayed tasks of the queue "network", from deferd's API.
delayed() {
    curl -fsS "$api/v1/queues/network/tasks?state=delayed"
}

# room_row ROOM: the room's row in the page's table: its data-* attributes.
room_row() {
    curl -fsS "$page/rooms.php" | grep -o "<tr data-room=\"$1\"[^>]*>"
}

# room_is ROOM STATE: the page shows the room open or closed.
room_is() {
    seen=$(room_row "$1") || return 1
    [[ $seen == *"data-state=\"$2\""* ]]
}

step "the page shows the rooms, all open"
for room in 101 102 201 202; do
    room_is "$room" open || die "room $room is not shown open: ${seen:-no row}"
done

step "closing room 101 for 600 s schedules one restore task, keyed by the room"
press close 101 600
tasks=$(delayed)
[[ $(json_get tasks <<< "$tasks") == 1 && $(json_get tasks.0.key <<< "$tasks") == room-101 ]] \
    || die "expected one delayed task with the key room-101: $tasks"
id=$(json_get tasks.0.id <<< "$tasks")
first_run_at=$(json_get tasks.0.run_at <<< "$tasks")
row=$(room_row 101)
[[ $row == *'data-state="closed"'*"data-restore-task=\"$id\" data-restore-at=\"$first_run_at\""* ]] \
    || die "the page does not show room 101 closed with restore task $id at $first_run_at: $row"

step "closing it again, for 1200 s, moves that task: still one, later"
press close 101 1200
tasks=$(delayed)
[[ $(json_get tasks <<< "$tasks") == 1 && $(json_get tasks.0.id <<< "$tasks") == "$id" ]] \
    || die "expected task $id alone, moved: $tasks"
run_at=$(json_get tasks.0.run_at <<< "$tasks")
[[ $run_at > $first_run_at ]] || die "the restore did not move later: $first_run_at, then $run_at"
row=$(room_row 101)
[[ $row == *"data-restore-task=\"$id\" data-restore-at=\"$run_at\""* ]] \
    || die "the page does not show the moved restore ($run_at): $row"

step "\"open now\" cancels the restore and opens the room"
press open 101
[[ $(curl -fsS "$api/v1/tasks/$id" | json_get state) == cancelled ]] || die "task $id is not cancelled"
[[ $(delayed | json_get tasks) == 0 ]] || die "a restore is still scheduled: $(delayed)"
row=$(room_row 101)
[[ $row == '<tr data-room="101" data-state="open">' ]] || die "the page does not show room 101 open: $row"

step "closing room 102 for 2 s: deferd pushes the restore into php-fpm, which opens the room"
press close 102 2
id=$(delayed | json_get tasks.0.id)
[[ -n $id ]] || die "no restore was scheduled for room 102"
wait_until "$CHECK_TIMEOUT" "room 102 to open by itself" room_is 102 open
[[ $(curl -fsS "$api/v1/tasks/$id" | json_get state) == 'done' ]] || die "task $id is not done"
curl -fsS "$page/rooms.php" | grep -q "Room 102: the lesson is over, its network is open again (task $id)" \
    || die "the page does not say that task $id restored room 102"

step "deferd stops cleanly"
status=0
stop "$deferd_pid" || status=$?
((status == 0)) || die "deferd exited with status $status; its log:
$(cat "$tmp/deferd.log")"
echo "check: all good"
