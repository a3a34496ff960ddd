#!/usr/bin/env python3
"""Write the seed corpora of the fuzz harnesses into fuzz/corpus/<harness>/.

The seeds are committed; this script documents them and regenerates them
(it only writes the seed-*.bin files it knows, so reproducers of found bugs
kept in the same directories are left alone). Usage: fuzz/seeds.py
"""
import os

HERE = os.path.dirname(os.path.abspath(__file__))
CRLF = b"\r\n"


def line(s):
    return s.encode() + CRLF


def lines(*cmds):
    return b"".join(line(c) for c in cmds)


def put(body, pri=0, delay=0, ttr=10):
    if isinstance(body, str):
        body = body.encode()
    return line(f"put {pri} {delay} {ttr} {len(body)}") + body + CRLF


def esc(data):
    """Protocol bytes as script data: '~' doubled."""
    return data.replace(b"~", b"~~")


# Script control sequences of fuzz_bs_conn (see the comment at its top).
def conn(i):
    return b"~" + str(i).encode()


def tick(b):  # advance the clock by step byte b
    return b"~t" + bytes([b])


def secs(n):  # step byte for n whole seconds, 1..64
    return tick(63 + n)


SPLIT = b"~|"
NEXT = b"~T"  # jump to the next deadline
JUST_BEFORE = b"~U"
EOF = b"~e"
DROP = b"~x"
READ = b"~r"
DRAIN = b"~d"
LIMIT = b"~l"
JOBSIZE = b"~z"


COUNTER = b"~#"  # in data: 1, 2, 3, ... one more each time it is sent


def counter_reset(n):
    return b"~c" + bytes([n])


def bytewise(n):
    return b"~b" + bytes([n])


def repeat(n):
    return b"~R" + bytes([n])


CONN_SEEDS = {
    "basic-put-reserve-delete": esc(put("hello") + lines("reserve", "delete 1", "stats")),
    "every-command": esc(
        lines("use t1", "watch t1", "list-tubes", "list-tube-used", "list-tubes-watched")
        + put("a", pri=1023)
        + put("b", pri=1024, delay=5)
        + lines(
            "peek 1", "peek-ready", "peek-delayed", "peek-buried", "stats-job 1",
            "stats-tube t1", "stats-tube default", "reserve-with-timeout 0", "bury 1 7",
            "peek-buried", "kick 1", "kick-job 2", "reserve-job 2", "touch 2",
            "release 2 5 0", "ignore default", "ignore t1", "pause-tube t1 0", "stats",
        )
    ),
    "wake-waiting-reserve-pipelined": conn(0) + esc(lines("reserve", "list-tube-used", "reserve"))
    + conn(1) + esc(put("abc") + put("def")) + conn(0) + READ,
    "ttr-expiry-and-deadline-soon": esc(put("x", ttr=2) + lines("reserve", "reserve"))
    + NEXT + esc(lines("touch 1")) + NEXT + NEXT + esc(lines("stats-job 1", "stats")),
    "reserve-timeouts": esc(lines("reserve-with-timeout 1")) + JUST_BEFORE + NEXT
    + esc(lines("reserve-with-timeout 0", "reserve-with-timeout abc", "reserve-with-timeout -1"))
    + conn(1) + esc(put("late")) + conn(0) + READ,
    "delayed-kick-bury": esc(
        put("d1", delay=5) + put("d2", delay=3) + lines("peek-delayed", "kick 1", "reserve")
        + lines("bury 2 3", "peek-buried", "kick-job 2", "kick 5", "stats-tube default")
    ) + secs(4) + NEXT + esc(lines("peek-ready", "reserve", "release 1 9 2", "stats-job 1"))
    + NEXT + esc(lines("delete 1", "delete 2")),
    "pause-tube-waiters": conn(0) + esc(lines("watch a", "ignore default", "reserve"))
    + conn(1) + esc(lines("use a", "pause-tube a 2") + put("p")) + conn(2)
    + esc(lines("watch a", "reserve-with-timeout 5")) + NEXT + NEXT + conn(1)
    + esc(lines("stats-tube a")),
    "framing-edge-cases": esc(
        b"x" * 222 + CRLF + b"y" * 223 + CRLF + b"list-tube-used\nlist-tube-used" + CRLF
        + b"use a\x00b" + CRLF + CRLF + b"stats " + CRLF + b"PUT 0 0 1 1" + CRLF
        + b"delete" + CRLF + b"delete " + CRLF + b"quitfoo" + CRLF + b"stats" + CRLF
    ),
    "split-reads-bytewise": bytewise(1) + esc(put("split\r\nbody") + lines("reserve", "release 1 0 0"))
    + bytewise(3) + esc(b"z" * 230 + CRLF + lines("stats-job 1")),
    "put-errors": esc(
        line("put 0 0 10 3") + b"abcd" + CRLF
        + line("put 0 0 10") + line("put 4294967296 0 0 1") + put("") + put("ok")
        + line("put 0 0 10 2 x") + b"zz" + CRLF
    ) + JOBSIZE + esc(put("too big for sixteen")) + JOBSIZE + esc(put("x"))
    + JOBSIZE + DRAIN + esc(put("drained") + lines("stats")) + DRAIN
    # JOB_TOO_BIG at the default limit: the 65536-byte body is read and
    # dropped (64 reads of 1 KiB), then the connection is in step again.
    + esc(line("put 0 0 10 65536")) + SPLIT + b"q" * 1024 + repeat(62) + esc(lines("", "stats")),
    "eof-and-drop": conn(0) + esc(lines("reserve")) + EOF + conn(1)
    + esc(put("j1") + put("j2") + lines("reserve", "reserve")) + conn(2)
    + esc(lines("reserve", "stats")) + conn(1) + DROP + conn(2) + READ + conn(0)
    + esc(lines("stats")),
    "back-pressure": LIMIT + LIMIT + esc(lines("stats", "list-tubes", "list-tube-used") + put("bp"))
    + READ + READ + LIMIT + esc(lines("stats")),
    "quit-with-trailing-data": esc(put("q") + lines("quit", "delete 1")) + conn(1)
    + esc(lines("peek 1", "delete 1")),
    "many-jobs-and-reserves": esc(put("m")) + repeat(255) + repeat(255) + conn(1)
    + esc(lines("reserve-with-timeout 0")) + repeat(200) + esc(lines("stats")) + conn(0)
    + esc(lines("delete 3")) + repeat(100) + conn(1) + DROP,
    "many-tubes": esc(b"".join(line(f"watch t{i}") for i in range(60)) + lines("reserve"))
    + conn(1) + esc(lines("use t59") + put("to59") + lines("list-tubes")) + conn(0) + DROP
    + conn(1) + esc(lines("list-tubes")),
    # ~1100 jobs (id pages of 64), then all deleted one by one: the id map's
    # directory grows, shifts probe runs back and shrinks.
    "thousand-jobs-deleted": esc(put("k")) + repeat(255) + repeat(255) + repeat(255)
    + repeat(255) + repeat(80) + esc(b"delete ") + COUNTER + esc(CRLF) + repeat(255)
    + repeat(255) + repeat(255) + repeat(255) + repeat(80) + esc(lines("stats")),
    # Hundreds of tubes watched, then let go at once: the name map grows and
    # shrinks, and list-tubes is long.
    "hundreds-of-tubes": esc(b"watch t") + COUNTER + esc(CRLF) + repeat(255) + repeat(100)
    + conn(1) + esc(b"use t") + counter_reset(7) + COUNTER + esc(CRLF + put("x"))
    + esc(lines("list-tubes")) + conn(0) + DROP + conn(1) + esc(lines("list-tubes", "stats")),
    "half-close-mid-body": esc(line("put 0 0 10 10") + b"abc") + EOF + esc(lines("stats")),
}

PARSE_SEEDS = {
    "put": "put 0 0 10 5",
    "put-max": "put 4294967295 4294967295 4294967295 4294967295",
    "put-overflow": "put 4294967296 0 0 1",
    "put-extra-spaces": "put 0  0 10 5",
    "put-trailing-garbage": "put 0 0 10 5 x",
    "put-trailing-space": "put 0 0 10 5 ",
    "reserve": "reserve",
    "reservefoo": "reservefoo",
    "reserve-with-timeout": "reserve-with-timeout 30",
    "reserve-with-timeout-neg": "reserve-with-timeout -1",
    "reserve-with-timeout-junk": "reserve-with-timeout abc",
    "reserve-with-timeout-huge": "reserve-with-timeout 99999999999999999999",
    "reserve-job": "reserve-job 18446744073709551615",
    "delete-overflow": "delete 18446744073709551616",
    "delete-neg": "delete -1",
    "delete-empty": "delete ",
    "delete-nospace": "delete",
    "release": "release 1 2 3",
    "bury": "bury 1 2",
    "touch": "touch 7",
    "kick": "kick 10",
    "kick-neg": "kick -1",
    "kick-job": "kick-job 3",
    "peek": "peek 0",
    "peek-ready": "peek-ready",
    "peek-ready-x": "peek-ready x",
    "stats-job-noarg": "stats-job",
    "stats-tube": "stats-tube default",
    "use-max-name": "use " + "a" * 200,
    "use-long-name": "use " + "a" * 201,
    "use-dash": "use -a",
    "use-space": "use a b",
    "watch": "watch ()$_+/;.",
    "ignore": "ignore default",
    "list": "list-tubes-watched",
    "pause-tube": "pause-tube default 10",
    "pause-tube-glued": "pause-tubex 5",
    "pause-tube-bad-name": "pause-tube a* 5",
    "quitfoo": "quitfoo",
    "empty": "",
    "nul": "use a\x00b",
    "line-max": "x" * 222,
    "line-too-long": "x" * 223,
    "put-longest": "put " + "0" * 210 + "1 0 10 5",
    "stats-trailing-space": "stats ",
}

OPTS_SEEDS = {
    "listen-port": [b"-l", b"127.0.0.1", b"-p", b"11300"],
    "unix": [b"--listen=unix:/tmp/deferd.sock"],
    "job-size-clamped": [b"-z", b"99999999999"],
    "fsync-forms": [b"--fsync", b"interval=5", b"-f", b"0", b"-F", b"--fsync=always"],
    "cluster": [b"-VVVFcn", b"-z10"],
    "bad-values": [b"--max-connections=0"],
    "missing-arg": [b"-b"],
    "unknown-flag": [b"-q"],
    # An unknown flag inside a group: the message must name -q, and a second
    # parse must not resume the group (glibc getopt's hidden state).
    "unknown-flag-in-group": [b"-qF"],
    "missing-arg-in-group": [b"-Vl"],
    "unknown-long-flag": [b"--verbos", b"-V"],
    "stray-argument": [b"-V", b"extra"],
    "user-help-version": [b"-u", b"nobody", b"-h", b"-v", b"-s", b"1048576"],
}


def write(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"seed-{name}.bin"), "wb") as f:
        f.write(data)


def main():
    for name, data in CONN_SEEDS.items():
        write("fuzz_bs_conn", name, data)
    for name, text in PARSE_SEEDS.items():
        write("fuzz_bs_parse", name, text.encode("latin-1"))
    for i, (name, args) in enumerate(OPTS_SEEDS.items()):
        write("fuzz_opts", name, bytes([5 + 13 * i]) + b"\x00".join(args))


if __name__ == "__main__":
    main()
