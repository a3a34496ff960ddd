#!/usr/bin/env bash
#
# bulk-mail: starts everything the example needs on this machine - deferd,
# php-fpm with a pool of its own on a unix socket, PHP's built-in web server
# for the page - prints the page's URL, and stops it all on Ctrl-C.
#
#   examples/bulk-mail/run.sh           # then open the URL it prints
#   examples/bulk-mail/run.sh --check   # drive the page with curl; exit 0 if all works
#
# Environment: DEFERD (a deferd binary; default: `make` builds build/deferd),
# PHP (php), PHP_FPM (php-fpm8.2), PAGE_PORT (8080), API_PORT (11480: deferd's
# HTTP API), MAIL_RATE and MAIL_BURST (100/s and 1; with --check 2000/s and
# 1, so that the check takes seconds and still runs at the limit),
# CONCURRENCY (4), CHECK_TIMEOUT (seconds --check waits for each step; 120).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)

check=false
case "${1:-}" in
    "") ;;
    --check) check=true ;;
    -h | --help) sed -n '3,14p' "$0" | cut -c3-; exit 0 ;;
    *) echo "usage: $0 [--check]" >&2; exit 2 ;;
esac

PHP=${PHP:-php}
PAGE_PORT=${PAGE_PORT:-8080}
API_PORT=${API_PORT:-11480}
CONCURRENCY=${CONCURRENCY:-4}
CHECK_TIMEOUT=${CHECK_TIMEOUT:-120}
if $check; then
    MAIL_RATE=${MAIL_RATE:-2000/s} MAIL_BURST=${MAIL_BURST:-1}
else
    MAIL_RATE=${MAIL_RATE:-100/s} MAIL_BURST=${MAIL_BURST:-1}
fi
page=http://127.0.0.1:$PAGE_PORT
api=http://127.0.0.1:$API_PORT

EXAMPLE=bulk-mail
# shellcheck source=examples/lib.sh
source "$root/examples/lib.sh"
outbox=$tmp/outbox
mkdir "$outbox"

# The queue "mail" is pushed into the php-fpm pool below, at most MAIL_RATE
# mails a second. A pool of its own keeps web requests and tasks apart
# (docs/push.md, "Sizing php-fpm against a queue").
cat > "$tmp/deferd.ini" << EOF
[mail]
target = fastcgi
address = unix:$tmp/php-fpm.sock
script = $here/push/send-mail.php
concurrency = $CONCURRENCY
rate = $MAIL_RATE
burst = $MAIL_BURST
deadline = 30s
max_attempts = 3
backoff_min = 1s
EOF
cat > "$tmp/php-fpm.conf" << EOF
[global]
pid = "$tmp/php-fpm.pid"
error_log = "$tmp/php-fpm.log"
daemonize = no

[mail]
listen = "$tmp/php-fpm.sock"
pm = static
pm.max_children = $CONCURRENCY
request_terminate_timeout = 60s
env[OUTBOX] = "$outbox"
EOF

start_php_fpm
start_deferd
start page env DEFER_URL="$api" OUTBOX="$outbox" "$PHP" -S "127.0.0.1:$PAGE_PORT" -t "$here/public"
wait_until 20 "the page to answer on $page" curl -fs --max-time 2 -o /dev/null "$page/progress.php"

# ---- by hand ---------------------------------------------------------------------

if ! $check; then
    cat << EOF
bulk-mail is running:
  the page       $page/
  the queue      $api/v1/queues/mail
  the outbox     $outbox
  logs           $tmp/*.log
Ctrl-C stops everything.
EOF
    wait -n "${pids[@]}" || true
    all_running # says which one stopped, and exits
    exit 1
fi

# ---- --check: drive the page, check the outcome -----------------------------------

# progress_is FIELD VALUE: the page's progress.php says FIELD is VALUE.
progress_is() {
    seen=$(curl -sS "$page/progress.php" 2>&1) || return 1
    [[ $(json_get "$1" <<< "$seen" 2> /dev/null) == "$2" ]]
}

step "the page shows the form"
curl -fsS "$page/" | grep -q 'Send to 5,000 subscribers' || die "the page does not show the form"

step "one request to the page queues 5,000 mails"
location=$(curl -fsS -o /dev/null -w '%{redirect_url}' --data-urlencode 'subject=The November newsletter' "$page/send.php")
[[ $location == */\?queued=5000\&already=0\&ms=* ]] || die "send.php sent the browser to '$location'"

step "deferd pushes them into php-fpm, which writes 5,000 files into the outbox"
wait_until "$CHECK_TIMEOUT" "5,000 mails in the outbox" progress_is outbox 5000
wait_until "$CHECK_TIMEOUT" "deferd to count 5,000 mails done" progress_is 'done' 5000
progress=$(curl -fsS "$page/progress.php")
for field in ready reserved delayed failed; do
    [[ $(json_get "$field" <<< "$progress") == 0 ]] || die "$field is not 0: $progress"
done
grep -qx $'To: subscriber4321@example.org\r' "$outbox"/*.eml || die "no mail to subscriber4321 in the outbox"

step "an undeliverable mail fails after 3 attempts, with the exception as its reason"
curl -fsS -o /dev/null --data-urlencode 'subject=Bounce' -d undeliverable=1 "$page/send.php"
wait_until "$CHECK_TIMEOUT" "the undeliverable mail to fail" progress_is failed 1
progress=$(curl -fsS "$page/progress.php")
reason=$(json_get failures.0.last_error <<< "$progress")
expected='Uncaught RuntimeException: SMTP 550 5.1.2 <nobody@mail.example.invalid>: no mail server for mail.example.invalid'
[[ $reason == "attempt 3: php-fpm answered 500: "*"; output: $expected" ]] || die "the failed task's reason is '$reason'"
[[ $(json_get outbox <<< "$progress") == 5000 ]] || die "the undeliverable mail reached the outbox"

step "deferd stops cleanly"
status=0
stop "$deferd_pid" || status=$?
((status == 0)) || die "deferd exited with status $status; its log:
$(cat "$tmp/deferd.log")"
echo "check: all good"
