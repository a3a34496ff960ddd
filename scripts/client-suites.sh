#!/usr/bin/env bash
# scripts/client-suites.sh - run beanstalkd client libraries' own test
# suites against deferd and against beanstalkd, and compare the outcomes.
#
# The suites are not ours to ship, and CI cannot download them, so this is
# a separate check rather than part of `make test`: give it checkouts.
#
#   pheanstalk (PHP), at the version Debian packages (php-pda-pheanstalk):
#     git clone https://github.com/pheanstalk/pheanstalk /tmp/pheanstalk
#     git -C /tmp/pheanstalk checkout v4.0.4
#   greenstalk (Python), whose tests start the server binary themselves with
#   beanstalkd's flags (BEANSTALKD_PATH), so deferd runs as a true drop-in:
#     git clone https://github.com/justinmayhew/greenstalk /tmp/greenstalk
#
#   make build/deferd
#   scripts/client-suites.sh pheanstalk=/tmp/pheanstalk greenstalk=/tmp/greenstalk
#
# pheanstalk's tests run against Debian's pheanstalk (the library PHP
# applications use; no composer needed) through a bootstrap of our own.
# Several of them dial 127.0.0.1:11300 whatever SERVER_PORT says, so each
# server in turn listens there: the port must be free.
#
# Prints each suite's summary per server, then the tests whose outcome
# differs. Exit status 0 when every test has the same outcome on both
# servers, 1 otherwise, 2 on bad usage or a missing tool.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
usage() {
    echo "usage: $0 [pheanstalk=CHECKOUT] [greenstalk=CHECKOUT] (at least one)" >&2
    exit 2
}
pheanstalk="" greenstalk=""
for a in "$@"; do
    case $a in
    pheanstalk=*) pheanstalk=$(cd "${a#*=}" && pwd) ;;
    greenstalk=*) greenstalk=$(cd "${a#*=}" && pwd) ;;
    *) usage ;;
    esac
done
[[ -n $pheanstalk || -n $greenstalk ]] || usage
[[ -z $pheanstalk || -d $pheanstalk/tests/Pheanstalk ]] ||
    { echo "$0: $pheanstalk: not a pheanstalk 4 checkout (no tests/Pheanstalk)" >&2; exit 2; }
[[ -z $greenstalk || -f $greenstalk/tests/test_greenstalk.py ]] ||
    { echo "$0: $greenstalk: not a greenstalk checkout (no tests/test_greenstalk.py)" >&2; exit 2; }

DEFERD=${DEFERD:-$root/build/deferd}
BEANSTALKD=${BEANSTALKD:-/usr/bin/beanstalkd}
PYTHON=${PYTHON:-/usr/bin/python3}
AUTOLOAD=${PHEANSTALK_AUTOLOAD:-/usr/share/php/Pheanstalk/autoload.php}
need=("$DEFERD" "$BEANSTALKD")
[[ -n $pheanstalk ]] && need+=("$(command -v phpunit || echo phpunit)" "$(command -v perl || echo perl)")
[[ -n $greenstalk ]] && need+=("$PYTHON")
for t in "${need[@]}"; do
    [[ -x $t ]] || { echo "$0: $t: not found (make build/deferd; apt-get install beanstalkd phpunit python3-pytest)" >&2; exit 2; }
done
if [[ -n $pheanstalk ]]; then
    [[ -f $AUTOLOAD ]] || { echo "$0: $AUTOLOAD: missing (apt-get install php-pda-pheanstalk)" >&2; exit 2; }
    if (exec 3<>/dev/tcp/127.0.0.1/11300) 2>/dev/null; then
        echo "$0: 127.0.0.1:11300 is in use; pheanstalk's tests need it: stop what listens there" >&2
        exit 2
    fi
fi

work=$(mktemp -d /tmp/client-suites.XXXXXX)
pid=""
# shellcheck disable=SC2317 # the EXIT trap
cleanup() {
    if [[ -n $pid ]]; then
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# outcomes JUNIT-XML: each test's outcome, "Class::test passed", sorted.
outcomes() {
    # shellcheck disable=SC2016 # PHP code
    php -r '
        $x = simplexml_load_file($argv[1]) or exit(1);
        foreach ($x->xpath("//testcase") as $t) {
            $r = isset($t->failure) ? "failed" : (isset($t->error) ? "error" : (isset($t->skipped) ? "skipped" : "passed"));
            echo $t["classname"] ?: $t["class"], "::", $t["name"], " ", $r, "\n";
        }' "$1" | sort
}

# compare SUITE: both servers' outcomes for SUITE; 0 when they are the same.
compare() {
    local s=$1
    outcomes "$work/$s-beanstalkd.xml" >"$work/$s-beanstalkd.txt" || { echo "$s: no report from the beanstalkd run"; return 1; }
    outcomes "$work/$s-deferd.xml" >"$work/$s-deferd.txt" || { echo "$s: no report from the deferd run"; return 1; }
    if diff -u "$work/$s-beanstalkd.txt" "$work/$s-deferd.txt" >"$work/$s.diff"; then
        echo "$s: the same outcome on both servers in all $(wc -l <"$work/$s-deferd.txt") tests"
        return 0
    fi
    echo "$s: outcomes that differ (- beanstalkd, + deferd):"
    grep '^[-+][^-+]' "$work/$s.diff"
    tail -n 40 "$work/$s-deferd.out"
    return 1
}

rc=0

if [[ -n $pheanstalk ]]; then
    # The suite is written for PHPUnit 7 and Debian 12 has PHPUnit 9: a copy
    # of it gets the two mechanical changes that needs - setUp() declared
    # `: void`, and @expectedException annotations (gone in PHPUnit 9)
    # turned into expectException() calls - and nothing else.
    cp -r "$pheanstalk/tests/Pheanstalk" "$work/pheanstalk-tests"
    perl -0pi -e 's/function (setUp|tearDown)\(\)\s*\n/function $1(): void\n/g;
        s/\@expectedException\s+(\S+)(.*?function\s+\w+\([^)]*\)[^{]*\{)/$2\n        \$this->expectException($1::class);/gs' \
        "$work"/pheanstalk-tests/*.php
    # The suite's own bootstrap wants composer's vendor/; this one loads
    # Debian's library and the suite's constants instead.
    cat >"$work/bootstrap.php" <<EOF
<?php
require '$AUTOLOAD';
define('SERVER_HOST', '127.0.0.1');
define('SERVER_PORT', 11300);
EOF
    for server in beanstalkd deferd; do
        argv=("$BEANSTALKD" -l 127.0.0.1 -p 11300)
        [[ $server == deferd ]] && argv=("$DEFERD" -l 127.0.0.1 -p 11300 --http off)
        "${argv[@]}" >"$work/pheanstalk-$server.log" 2>&1 &
        pid=$!
        for _ in $(seq 100); do
            (exec 3<>/dev/tcp/127.0.0.1/11300) 2>/dev/null && break
            sleep 0.05
        done
        (cd "$work" && phpunit --colors=never --bootstrap "$work/bootstrap.php" \
            --log-junit "$work/pheanstalk-$server.xml" "$work/pheanstalk-tests" \
            >"$work/pheanstalk-$server.out" 2>&1) || true
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        pid=""
        echo "pheanstalk against $server: $(grep -E '^(OK|Tests:)' "$work/pheanstalk-$server.out" | tr '\n' ' ')"
    done
    compare pheanstalk || rc=1
fi

if [[ -n $greenstalk ]]; then
    # Its tests start the server themselves (BEANSTALKD_PATH), on their own
    # ports and unix socket; the checkout is used as it is.
    for server in beanstalkd deferd; do
        bin=$BEANSTALKD
        [[ $server == deferd ]] && bin=$DEFERD
        (cd "$greenstalk" && PYTHONPATH=src BEANSTALKD_PATH=$bin "$PYTHON" -m pytest -q -p no:cacheprovider \
            --junitxml="$work/greenstalk-$server.xml" tests >"$work/greenstalk-$server.out" 2>&1) || true
        echo "greenstalk against $server: $(tail -n 1 "$work/greenstalk-$server.out")"
    done
    compare greenstalk || rc=1
fi

exit "$rc"
