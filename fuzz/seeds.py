#!/usr/bin/env python3
"""Write the seed corpora of the fuzz harnesses into fuzz/corpus/<harness>/.

The seeds are committed; this script documents them and regenerates them
(it only writes the seed-*.bin files it knows, so reproducers of found bugs
kept in the same directories are left alone). Usage: fuzz/seeds.py
"""
import json
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
FULL = b"~f"  # fuzz_http_conn: cycle the log's room


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


# ---- fuzz_http_conn: HTTP requests on connections 0-2, beanstalk on 3 ----

TOKEN = "fuzz-token-0123456789abcdef"


def cfg(history=0, token=False, max_body=0, job_size=0, log=False):
    """The configuration byte of a fuzz_http_conn script (see its top)."""
    return bytes([history | (4 if token else 0) | max_body << 3 | job_size << 5 | (0x80 if log else 0)])


def req(method, path, body=None, headers=(), auth=False, version="1.1"):
    """One HTTP request as script data; body: bytes, str, or a JSON value."""
    if body is not None and not isinstance(body, (bytes, str)):
        body = json.dumps(body, separators=(",", ":"))
    if isinstance(body, str):
        body = body.encode()
    head = f"{method} {path} HTTP/{version}\r\nHost: deferd\r\n"
    if auth:
        head += f"Authorization: Bearer {TOKEN}\r\n"
    for h in headers:
        head += h + "\r\n"
    if body is not None:
        head += f"Content-Length: {len(body)}\r\n"
    return esc(head.encode() + b"\r\n" + (body or b""))


def chunked(method, path, pieces, headers=()):
    """A request with a chunked body."""
    head = f"{method} {path} HTTP/1.1\r\nHost: deferd\r\nTransfer-Encoding: chunked\r\n"
    for h in headers:
        head += h + "\r\n"
    data = head.encode() + b"\r\n"
    for p in pieces:
        p = p.encode()
        data += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    return esc(data + b"0\r\n\r\n")


def get(path, **kw):
    return req("GET", path, **kw)


def post(path, body=None, **kw):
    return req("POST", path, body, **kw)


def delete(path, **kw):
    return req("DELETE", path, **kw)


def bs(*cmds):  # beanstalk commands on connection 3
    return conn(3) + esc(lines(*cmds))


def bsput(body, pri=0, delay=0, ttr=10):
    return esc(put(body, pri, delay, ttr))


ENQ = "/v1/queues/mail/tasks"
HTTP_SEEDS = {
    # Every endpoint once, then the beanstalk side working the same tasks.
    "every-endpoint": cfg() + conn(0)
    + get("/healthz") + SPLIT + get("/metrics") + SPLIT + get("/v1/stats") + SPLIT
    + post(ENQ, {"payload": {"to": "ana@example.org"}, "priority": 10, "ttr": 30}) + SPLIT
    + post(ENQ, {"payload_base64": "aGVsbG8=", "delay": 2.5}) + SPLIT
    + post(ENQ, {"payload": [1, 2.50, "x"], "run_at": "2026-11-22T14:45:00Z", "key": "k1"}) + SPLIT
    + get("/v1/tasks/1") + SPLIT + get("/v1/tasks/2") + SPLIT + get("/v1/tasks/99") + SPLIT
    + get("/v1/queues") + SPLIT + get("/v1/queues/mail") + SPLIT + get("/v1/queues/nope") + SPLIT
    + get(ENQ) + SPLIT + get(ENQ + "?state=delayed&limit=1&payload=1") + SPLIT
    + get(ENQ + "?after=1&state=ready") + SPLIT
    + post("/v1/queues/mail/pause", {"seconds": 300}) + SPLIT + get("/v1/queues/mail") + SPLIT
    + post("/v1/queues/mail/resume") + SPLIT + post("/v1/queues/mail/pause") + SPLIT
    + post("/v1/queues/mail/resume", "") + SPLIT
    + post("/v1/queues/mail/kick", {"bound": 1}) + SPLIT + post("/v1/queues/mail/kick") + SPLIT
    + post(ENQ + "/batch", {"tasks": [{"payload": 1}, {"payload": {"a": None}, "priority": 0}]}) + SPLIT
    + delete("/v1/tasks/2") + SPLIT + delete("/v1/tasks/2") + SPLIT
    + delete("/v1/queues/mail/keys/k1") + SPLIT + delete("/v1/queues/mail/keys/k1") + SPLIT
    + bs("watch mail", "reserve-with-timeout 0", "stats-job 1", "release 1 5 0", "reserve",
         "delete 1", "use mail") + bsput("from beanstalk") + conn(0)
    + get("/v1/tasks/1") + SPLIT + get("/v1/tasks/6") + SPLIT + get("/v1/queues/mail") + SPLIT
    + get("/v1/stats") + SPLIT + get("/metrics"),
    # Unique keys: keep (deduplicated), replace (in place, while waiting),
    # replace while a worker runs it (superseded), cancel by key, cancel of a
    # running task.
    "keys-keep-replace-supersede": cfg() + conn(0)
    + post(ENQ, {"payload": {"room": 301}, "key": "room-301", "run_at": 1795358700}) + SPLIT
    + post(ENQ, {"payload": {"room": 301, "v": 2}, "key": "room-301"}) + SPLIT
    + post(ENQ, {"payload": {"room": 301, "v": 3}, "key": "room-301", "on_conflict": "keep"}) + SPLIT
    + post(ENQ, {"payload": {"room": 301, "v": 4}, "key": "room-301", "on_conflict": "replace",
                 "priority": 7, "ttr": 5, "max_attempts": 2}) + SPLIT
    + bs("watch mail", "reserve-with-timeout 0")
    + conn(0) + post(ENQ, {"payload": "again", "key": "room-301", "on_conflict": "replace"}) + SPLIT
    + get("/v1/tasks/1") + SPLIT + delete("/v1/tasks/1") + SPLIT + get(ENQ + "?state=reserved")
    + SPLIT + delete("/v1/queues/mail/keys/room-301") + SPLIT + get("/v1/tasks/5") + SPLIT
    + post(ENQ, {"payload": 1, "key": "a%2Fb"}) + SPLIT + delete("/v1/queues/mail/keys/a%252Fb")
    + SPLIT + post(ENQ, {"payload": 1, "on_conflict": "replace"}) + SPLIT
    + post(ENQ, {"payload": 1, "key": "", "on_conflict": "other"})
    + bs("delete 1") + conn(0) + get("/v1/tasks/1") + SPLIT + delete("/v1/tasks/1"),
    # Batches: mixed tasks, one key twice, a bad task naming its index,
    # bad shapes.
    "batches": cfg() + conn(1)
    + post(ENQ + "/batch", {"tasks": [{"payload": {"to": "a@example.org"}},
                                      {"payload_base64": "AAAA", "key": "b"},
                                      {"payload": "x", "key": "b", "on_conflict": "replace", "delay": 1},
                                      {"payload": None, "key": "b"}]}) + SPLIT
    + post(ENQ + "/batch", {"tasks": [{"payload": 1}, {"payload": 2, "priority": -1}]}) + SPLIT
    + post(ENQ + "/batch", {"tasks": []}) + SPLIT + post(ENQ + "/batch", {"jobs": []}) + SPLIT
    + post(ENQ + "/batch", {}) + SPLIT + post(ENQ + "/batch", [1]) + SPLIT
    + post(ENQ + "/batch", {"tasks": [1]}) + SPLIT + get(ENQ + "/batch") + SPLIT
    + get(ENQ + "?limit=2") + SPLIT + get(ENQ + "?limit=0") + SPLIT + get(ENQ + "?after=x") + SPLIT
    + get(ENQ + "?state=zzz"),
    # Several requests in one read, answered in order; one asks to close,
    # so what follows it is never read.
    "pipelined": cfg() + conn(2)
    + get("/healthz") + post(ENQ, {"payload": 1}) + get("/v1/tasks/1") + delete("/v1/tasks/1")
    + get("/v1/queues") + req("GET", "/v1/stats", headers=["Connection: close"])
    + get("/healthz") + conn(1)
    + req("GET", "/healthz", version="1.0") + conn(0)
    + req("GET", "/healthz", version="1.0", headers=["Connection: keep-alive"])
    + get("/healthz") + SPLIT + get("/v1/tasks/1") + repeat(1),
    # Chunked request bodies, split across reads.
    "chunked-bodies": cfg() + conn(0)
    + chunked("POST", ENQ, ['{"payload":', ' {"a": [1, 2', ']}, "priority": 3}'])
    + chunked("POST", ENQ + "/batch", ['{"tasks":[{"payload":1},', '{"payload_base64":"AA=="}]}'])
    + bytewise(7) + chunked("POST", "/v1/queues/q/kick", ['{"bound"', ':5}'])
    + bytewise(0) + get("/v1/queues/mail"),
    # Malformed requests and field errors: each answered with its code.
    "bad-requests": cfg() + conn(0)
    + post(ENQ, "{") + SPLIT + post(ENQ, "[]") + SPLIT + post(ENQ, {}) + SPLIT
    + post(ENQ, {"payload": 1, "payload_base64": "AA=="}) + SPLIT
    + post(ENQ, {"payload_base64": "!!"}) + SPLIT + post(ENQ, {"payload": 1, "prio": 1}) + SPLIT
    + post(ENQ, {"payload": 1, "ttr": 0}) + SPLIT + post(ENQ, {"payload": 1, "delay": -1}) + SPLIT
    + post(ENQ, {"payload": 1, "delay": 1, "run_at": 5}) + SPLIT
    + post(ENQ, {"payload": 1, "run_at": "tomorrow"}) + SPLIT
    + post(ENQ, {"payload": 1, "run_at": "2199-01-01T00:00:00Z"}) + SPLIT
    + post(ENQ, {"payload": 1, "max_attempts": 1.5}) + SPLIT
    + post(ENQ, {"payload": 1, "key": "x" * 201}) + SPLIT
    + post(ENQ, '{"payload": 1, "payload": 2}') + SPLIT
    + post("/v1/queues/-bad/tasks", {"payload": 1}) + SPLIT + get("/v1/queues/a%zz") + SPLIT
    + get("/v1/a/b/c/d/e/f/g/h/i") + SPLIT + get("/v2/queues") + SPLIT + get("/") + SPLIT
    + req("PUT", "/v1/queues") + SPLIT + req("PATCH", "/v1/tasks/1") + SPLIT
    + get("/v1/tasks/abc") + SPLIT + get("/v1/tasks/0") + SPLIT
    + get("/v1/tasks/99999999999999999999999") + SPLIT + post("/v1/queues/q/pause", {"seconds": 0})
    + SPLIT + post("/v1/queues/q/pause", {"minutes": 1}) + SPLIT
    + post("/v1/queues/mail/pause", {"seconds": 4294967295}) + SPLIT
    + post("/v1/queues/mail/kick", {"bound": "all"}) + SPLIT + get("/v1/events?queue=-x") + SPLIT
    + conn(1) + esc(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n") + conn(2)
    + esc(b"BREW /pot HTTP/1.1\r\n\r\n") + conn(0) + esc(b"\x16\x03\x01\x02\x00\x01\x00"),
    # Event streams: one following everything, one following a queue; the
    # other connections make tasks happen; heartbeats; the streams end.
    "events-stream": cfg() + conn(1) + get("/v1/events") + conn(2)
    + get("/v1/events?queue=ma%69l") + conn(0)
    + post(ENQ, {"payload": 1, "max_attempts": 1, "ttr": 1}) + SPLIT
    + post("/v1/queues/other/tasks", {"payload": 2}) + SPLIT
    + bs("watch mail", "reserve") + tick(63 + 2) + conn(0)
    + post("/v1/queues/mail/kick") + SPLIT + post(ENQ, {"payload": 3, "key": "k"}) + SPLIT
    + post(ENQ, {"payload": 4, "key": "k", "on_conflict": "replace"}) + SPLIT
    + delete("/v1/tasks/2") + bs("reserve", "bury 1 5", "kick 1", "reserve", "delete 1")
    + tick(63 + 20) + conn(1) + esc(b"ignored") + conn(0) + get("/v1/tasks/1") + conn(2) + EOF
    + conn(1) + DROP,
    # A stream that falls 1 MiB behind is told so and cut off.
    "events-overflow": cfg() + conn(1) + get("/v1/events") + conn(3)
    + esc(b"".join(put("", ttr=1) for _ in range(50))) + repeat(255),
    # A token is required, but not for /healthz.
    "token": cfg(token=True) + conn(0)
    + get("/healthz") + SPLIT + get("/v1/stats") + SPLIT + get("/v1/stats", auth=True) + SPLIT
    + post(ENQ, {"payload": 1}) + SPLIT + post(ENQ, {"payload": 1}, auth=True) + SPLIT
    + req("GET", "/v1/queues", headers=["Authorization: bearer " + TOKEN]) + SPLIT
    + req("GET", "/v1/queues", headers=["Authorization: Bearer " + TOKEN + "x"]) + SPLIT
    + req("GET", "/nowhere") + SPLIT + get("/v1/events", auth=True) + conn(1) + get("/v1/events"),
    # Drain mode and a full disk refuse new tasks, not the rest.
    "drain-and-disk-full": cfg(log=True) + conn(0)
    + post(ENQ, {"payload": 1}) + DRAIN + get("/healthz") + SPLIT + post(ENQ, {"payload": 2})
    + SPLIT + post(ENQ + "/batch", {"tasks": [{"payload": 3}]}) + SPLIT + delete("/v1/tasks/1")
    + DRAIN + FULL + post(ENQ, {"payload": 4}) + SPLIT + post("/v1/queues/mail/pause") + FULL
    + post(ENQ, {"payload": "x" * 200}) + SPLIT + post("/v1/queues/mail/kick") + FULL
    + post("/v1/queues/mail/resume") + SPLIT + get("/v1/stats") + SPLIT + get("/metrics") + FULL
    + get("/v1/stats"),
    # History kept for 3 tasks only; then none at all; then for 10 s.
    "history-small": cfg(history=1) + conn(0)
    + b"".join(post(ENQ, {"payload": i}) + SPLIT for i in range(5))
    + b"".join(delete(f"/v1/tasks/{i}") + SPLIT for i in range(1, 6))
    + b"".join(get(f"/v1/tasks/{i}") + SPLIT for i in range(1, 6)) + get("/v1/stats"),
    "history-none": cfg(history=2) + conn(0)
    + post(ENQ, {"payload": 1, "key": "k"}) + SPLIT + delete("/v1/tasks/1") + SPLIT
    + delete("/v1/tasks/1") + SPLIT + get("/v1/tasks/1") + SPLIT + get("/v1/stats"),
    "history-age": cfg(history=3) + conn(0)
    + post(ENQ, {"payload": 1}) + SPLIT + delete("/v1/tasks/1") + SPLIT + get("/v1/tasks/1")
    + tick(63 + 11) + conn(0) + get("/v1/tasks/1") + SPLIT + delete("/v1/tasks/1"),
    # Small limits: a body over --http-max-body closes; a payload over the
    # task size keeps the connection.
    "small-limits": cfg(max_body=2, job_size=3) + conn(0)
    + post(ENQ, {"payload": "x" * 400}) + SPLIT + post(ENQ, {"payload": "y" * 100}) + SPLIT
    + get("/v1/queues") + conn(1) + post(ENQ, {"payload": "z" * 600}) + get("/healthz") + conn(2)
    + esc(b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n\r\n") + conn(0)
    + chunked("POST", ENQ, ['{"payload":"', "w" * 300, "w" * 300, '"}']),
    "zero-limits": cfg(max_body=3, job_size=2) + conn(0)
    + post(ENQ, {"payload": ""}) + SPLIT + get("/v1/stats") + bs("put 0 0 1 0", "", "put 0 0 1 1", "x"),
    # Back-pressure: the client stops reading; requests wait; then it reads.
    "back-pressure": cfg() + LIMIT + conn(0)
    + get("/healthz") + get("/v1/queues") + post(ENQ, {"payload": 1}) + LIMIT + conn(0)
    + get("/healthz") + get("/healthz") + READ + LIMIT + READ + conn(1) + get("/v1/events")
    + LIMIT + conn(0) + post(ENQ, {"payload": 2}) + READ + EOF,
    # Attempts: a limit of 2 used up by a release and a timeout; failed;
    # listed; kicked back with fresh attempts; cancelled.
    "attempts-failed": cfg() + conn(0)
    + post(ENQ, {"payload": {"n": 1}, "max_attempts": 2, "ttr": 1}) + bs("watch mail", "reserve")
    + conn(3) + esc(lines("release 1 0 0", "reserve")) + tick(63 + 2) + conn(0)
    + get("/v1/tasks/1") + SPLIT + get(ENQ + "?state=failed") + SPLIT + get(ENQ + "?state=buried")
    + SPLIT + get("/v1/queues/mail") + SPLIT + post("/v1/queues/mail/kick") + SPLIT
    + get("/v1/tasks/1") + bs("reserve", "bury 1 0") + conn(0) + get("/v1/tasks/1") + SPLIT
    + delete("/v1/tasks/1") + SPLIT + get("/v1/tasks/1"),
    # A worker waiting in reserve gets an HTTP task at once.
    "waiting-worker": cfg() + bs("watch mail", "reserve") + conn(0)
    + post(ENQ, {"payload": "now"}) + SPLIT + get("/v1/tasks/1") + SPLIT + delete("/v1/tasks/1")
    + bs("touch 1", "delete 1") + conn(0) + get("/v1/tasks/1"),
    # Requests cut into small pieces (compared with whole reads).
    "split-reads": cfg() + bytewise(3) + conn(0)
    + post(ENQ, {"payload": {"a": "b"}, "key": "k"}) + get("/v1/tasks/1")
    + req("GET", "/v1/queues", headers=["X-Long: " + "v" * 50]) + bytewise(1) + conn(1)
    + get("/v1/events") + conn(0) + delete("/v1/queues/mail/keys/k"),
    # Times: delays in fractions, run_at in the past and as Unix seconds,
    # pauses that end; EOF and drops mid-request.
    "times-and-ends": cfg() + conn(0)
    + post(ENQ, {"payload": 1, "delay": 0.25}) + SPLIT + post(ENQ, {"payload": 2, "run_at": 1}) + SPLIT
    + post(ENQ, {"payload": 3, "run_at": "2026-11-22T12:20:01.5+00:00"}) + SPLIT
    + post("/v1/queues/mail/pause", {"seconds": 1}) + tick(10) + NEXT + conn(0)
    + get(ENQ) + SPLIT + get("/v1/queues/mail") + bs("watch mail", "reserve-with-timeout 2") + NEXT
    + JUST_BEFORE + conn(1) + esc(b"POST /v1/queues/mail/tasks HTTP/1.1\r\nContent-Length: 20\r\n\r\n{\"pay")
    + DROP + conn(2) + post(ENQ, {"payload": 5}) + esc(b"GET /heal") + EOF + conn(0)
    + get("/v1/stats") + EOF,
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
    for name, data in HTTP_SEEDS.items():
        write("fuzz_http_conn", name, data)
    for name, text in PARSE_SEEDS.items():
        write("fuzz_bs_parse", name, text.encode("latin-1"))
    for i, (name, args) in enumerate(OPTS_SEEDS.items()):
        write("fuzz_opts", name, bytes([5 + 13 * i]) + b"\x00".join(args))


if __name__ == "__main__":
    main()
