"""Push dispatch (docs/push.md): deferd runs a queue's tasks itself, against
real targets started by the tests:

* fastcgi - a real php-fpm8.2 with its own pool on a unix socket in a temp
  dir (push_helpers.PhpFpm), running a script that records every request
  and counts the runs in progress under a lock;
* http    - a Python ThreadingHTTPServer that records requests, headers and
  bodies and counts the requests in flight (push_helpers.RecordingServer);
* exec    - real commands (sh, sleep, head), from a --config file.

Covered: success and the contract (payload bytes and JSON, the task id /
queue / attempt headers and environment), failure statuses, PHP exceptions
and fatal errors, deadlines (the attempt is cut, the retry follows; the
task's TTR when the queue sets none), php-fpm's own request_terminate_timeout,
targets that are down and come back, the concurrency limit (counted in the
target), the rate limit and burst, the retry schedule with exponential
backoff, bury after the last attempt (the queue's max_attempts or the
task's own), kick, restarts with attempts in flight (SIGKILL, and SIGTERM
with the grace period both ways), commands killed with their whole process
group, no zombies, huge outputs that cost no memory, the API's validation,
409 for config-file queues, settings that survive a restart, target none,
and a bad config file.

Timing: no test asserts that something happened *fast*: states are polled
with bounded waits (WAIT), and only lower bounds that physics guarantees are
checked (a rate limit cannot start N tasks sooner than its tokens allow; a
retry cannot come before its backoff). Times measured by the targets (PHP's
microtime, Python's time.time) and by the test are the same wall clock;
EPS absorbs its rounding.
"""

import base64
import json
import os
import re
import signal
import subprocess
import threading
import time

import pytest

from helpers import (
    DEFERD,
    SANITIZER_MARKERS,
    STOP_TIMEOUT,
    HttpClient,
    bs_worker,
    eventually,
    free_port,
    metric,
    parse_rfc3339,
    quote_queue,
)
from push_helpers import (
    PHP_FPM,
    PhpFpm,
    RecordingServer,
    RssSampler,
    alive,
    children,
    crash,
    rss_kb,
    write_config,
    zombies,
)

pytestmark = pytest.mark.deferd_only

WAIT = 30.0  # seconds: the longest any state is waited for
EPS = 0.01  # seconds: clock rounding, in lower bounds only


# ---------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------


@pytest.fixture
def make_fpm(tmp_path):
    """A factory for php-fpm masters (started unless start=False); every one
    is stopped, workers included, after the test."""
    if not os.path.exists(PHP_FPM):
        pytest.fail("php-fpm not found at %s (make test installs php-fpm8.2)" % PHP_FPM)
    made = []

    def make(start=True, **kw):
        f = PhpFpm(tmp_path / ("php%d" % len(made)), **kw)
        made.append(f)
        if start:
            f.start()
        return f

    try:
        yield make
    finally:
        for f in made:
            f.stop()


@pytest.fixture
def fpm(make_fpm):
    return make_fpm()


@pytest.fixture
def make_web():
    """A factory for recording HTTP servers, all stopped after the test."""
    made = []

    def make(respond=None, port=0):
        s = RecordingServer(respond, port)
        made.append(s)
        return s

    try:
        yield make
    finally:
        for s in made:
            s.stop()


@pytest.fixture
def push(make_http_deferd):
    """A factory: a deferd with the HTTP API -> (server, HttpClient). Unless
    the test gives its own, --shutdown-grace is 2 s, so that stopping a
    server with an attempt still running stays short."""
    clients = []

    def start(args=(), env=None):
        args = list(args)
        if "--shutdown-grace" not in args:
            args += ["--shutdown-grace", "2"]
        srv = make_http_deferd(args, env=env)
        h = HttpClient(srv.http_port, timeout=10)
        clients.append(h)
        return srv, h

    yield start
    for h in clients:
        h.close()


def fastcgi(fpm, pool="tasks", **kw):
    s = {"target": "fastcgi", "address": fpm.address(pool), "script": fpm.script}
    s.update(kw)
    return s


def put_queue(h, queue, settings, expect=200):
    r = h.request("PUT", "/v1/queues/%s" % quote_queue(queue), json=settings)
    assert r.status == expect, r
    return r.json()


def push_info(h, queue):
    return h.queue(queue)["push"]


def wait_task(h, tid, *states, timeout=WAIT):
    """Poll the task until its state is one of `states`; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        t = h.task(tid)
        if t["state"] in states:
            return t
        if time.monotonic() > deadline:
            raise AssertionError("task %d not %s within %.0f s: %r" % (tid, "/".join(states), timeout, t))
        time.sleep(0.02)


def wait_tasks(h, ids, *states, timeout=WAIT, each_poll=None):
    """Poll until every task is in one of `states`; each_poll() runs at
    every round (to sample counters meanwhile). Returns {id: task}."""
    deadline = time.monotonic() + timeout
    while True:
        if each_poll:
            each_poll()
        ts = {i: h.task(i) for i in ids}
        if all(t["state"] in states for t in ts.values()):
            return ts
        if time.monotonic() > deadline:
            left = {i: t["state"] for i, t in ts.items() if t["state"] not in states}
            raise AssertionError("tasks not %s within %.0f s: %r" % ("/".join(states), timeout, left))
        time.sleep(0.02)


def enqueue_many(h, queue, payloads):
    r = h.post("/v1/queues/%s/tasks/batch" % quote_queue(queue), json={"tasks": [{"payload": p} for p in payloads]})
    assert r.status == 200, r
    return [t["id"] for t in r.json()["tasks"]]


def stop_gracefully(srv, timeout=STOP_TIMEOUT):
    """Wait for a server that was sent SIGTERM to exit by itself (a second
    SIGTERM would end it at once), then check it like the fixtures do."""
    try:
        srv.proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("deferd did not exit within %.0f s of SIGTERM:\n%s" % (timeout, srv.stderr()))
    srv.stop_and_check()


def lower_bound_starts(starts, t0, rate, burst):
    """Under a token bucket (rate per second, at most `burst` tokens, at most
    full at t0), the k-th start (0-based) needs k+1 tokens: it cannot come
    before t0 + (k + 1 - burst) / rate. Returns the violations."""
    bad = []
    for k, s in enumerate(sorted(starts)):
        earliest = t0 + max(0, k + 1 - burst) / rate
        if s < earliest - EPS:
            bad.append((k, round(s - t0, 4), round(earliest - t0, 4)))
    return bad


def exec_config(tmp_path, body, name="push.ini"):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return write_config(tmp_path / name, body.replace("{work}", str(work))), work


# ---------------------------------------------------------------------------
# fastcgi: the contract, outcomes
# ---------------------------------------------------------------------------


def test_fastcgi_success_and_the_contract(fpm, push):
    srv, h = push()
    q = "push/contract"
    p = put_queue(h, q, fastcgi(fpm))["push"]
    assert (p["target"], p["address"], p["script"], p["source"]) == ("fastcgi", fpm.address(), fpm.script, "api")
    assert (p["concurrency"], p["rate"], p["burst"], p["deadline"], p["max_attempts"]) == (1, 0, 1, 0, 5)
    assert (p["backoff_min"], p["backoff_max"]) == (1, 300)

    # JSON, as sent (whitespace between tokens removed, digits kept).
    raw = '{"payload": {"to": "ada@example.org", "n": [1, 2.50, "\u00e9", "\\u00e9"], "x": {"a": null}}}'
    r = h.post("/v1/queues/%s/tasks" % quote_queue(q), body=raw.encode())
    assert r.status == 201, r
    tj = r.json()["id"]
    # Bytes: every byte value, CR LF and NUL included.
    blob = bytes(range(256)) + b"\r\n\x00end"
    tb = h.enqueue(q, {"payload_base64": base64.b64encode(blob).decode()})["id"]
    # And a job put over the beanstalk protocol into the pushed queue.
    c = srv.connect()
    c.use(q.encode())
    tbs = c.put(b"from beanstalk \x01\x02")
    c.close()

    for tid in (tj, tb, tbs):
        t = wait_task(h, tid, "done")
        assert t["attempts"] == 1 and t["last_error"] is None and t["finished_at"] is not None, t

    (rj,), (rb,), (rbs,) = fpm.runs_of(tj), fpm.runs_of(tb), fpm.runs_of(tbs)
    assert rj["body"] == '{"to":"ada@example.org","n":[1,2.50,"\u00e9","\\u00e9"],"x":{"a":null}}'.encode()
    assert rj["content_type"] == "application/json"
    assert rb["body"] == blob and rb["content_type"] == "application/octet-stream"
    assert rbs["body"] == b"from beanstalk \x01\x02" and rbs["content_type"] == "application/octet-stream"
    for rec, tid in ((rj, tj), (rb, tb), (rbs, tbs)):
        assert rec["id"] == str(tid) and rec["queue"] == q and rec["attempt"] == 1, rec
        assert rec["method"] == "POST" and rec["script"] == fpm.script, rec
        assert rec["content_length"] == str(len(rec["body"])), rec

    p = push_info(h, q)
    assert (p["running"], p["attempts"], p["succeeded"], p["failed"], p["timed_out"], p["gave_up"]) == (0, 3, 3, 0, 0, 0)


def test_fastcgi_failure_statuses_exceptions_and_counters(fpm, push):
    srv, h = push()
    put_queue(h, "q", fastcgi(fpm, concurrency=4, max_attempts=1))
    failing = {
        "status500": {"status": 500, "body": "boom"},
        "status404": {"status": 404},
        "status302": {"status": 302, "body": "moved"},
        "exception": {"throw": "SMTP refused"},
        "fatal_shown": {"fatal": True, "display_errors": True},
    }
    succeeding = [{"status": 201}, {"status": 204}, {}]
    names = list(failing)
    ids = enqueue_many(h, "q", [failing[n] for n in names] + succeeding)
    fail_ids, ok_ids = dict(zip(names, ids)), ids[len(names) :]
    ts = wait_tasks(h, ids, "done", "failed")

    for tid in ok_ids:
        assert ts[tid]["state"] == "done", ts[tid]
    for n, tid in fail_ids.items():
        assert ts[tid]["state"] == "failed" and ts[tid]["attempts"] == 1, ts[tid]
        assert ts[tid]["finished_at"] is not None, ts[tid]
    err = {n: ts[tid]["last_error"] for n, tid in fail_ids.items()}
    assert err["status500"] == "attempt 1: php-fpm answered 500: boom", err
    assert err["status404"] == "attempt 1: php-fpm answered 404 with no output", err
    assert err["status302"] == "attempt 1: php-fpm answered 302: moved", err
    # An uncaught exception: PHP answers 500 and logs the fatal error on
    # FastCGI stderr; the reason quotes it.
    assert err["exception"].startswith("attempt 1: php-fpm answered 500: "), err
    assert "PHP Fatal error:" in err["exception"] and "Uncaught RuntimeException: SMTP refused" in err["exception"], err
    # With display_errors on, PHP answers 200 all the same: still a failure.
    assert err["fatal_shown"].startswith("attempt 1: php-fpm answered 200, but PHP reported a fatal error"), err
    assert "no_such_function_here()" in err["fatal_shown"], err

    p = push_info(h, "q")
    assert (p["running"], p["attempts"], p["succeeded"], p["failed"], p["timed_out"], p["gave_up"]) == (0, 8, 3, 5, 0, 5)
    qo = h.queue("q")
    assert (qo["failed"], qo["ready"], qo["reserved"]) == (5, 0, 0), qo
    r = h.get("/v1/queues/q/tasks?state=failed")
    assert r.status == 200 and sorted(t["id"] for t in r.json()["tasks"]) == sorted(fail_ids.values()), r

    samples, types = h.metrics()
    assert types["defer_push_running"] == "gauge"
    assert types["defer_push_attempts_total"] == "counter"
    assert types["defer_push_attempt_seconds_total"] == "counter"
    assert metric(samples, "defer_push_running", queue="q") == 0
    assert metric(samples, "defer_push_attempts_total", queue="q", outcome="succeeded") == 3
    assert metric(samples, "defer_push_attempts_total", queue="q", outcome="failed") == 5
    assert metric(samples, "defer_push_attempts_total", queue="q", outcome="timed_out") == 0
    assert metric(samples, "defer_push_attempt_seconds_total", queue="q") > 0


# ---------------------------------------------------------------------------
# fastcgi: deadlines
# ---------------------------------------------------------------------------


def test_fastcgi_deadline_cuts_the_attempt_and_the_retry_follows(fpm, push):
    srv, h = push()
    put_queue(h, "short", fastcgi(fpm, concurrency=2, deadline="300ms", backoff_min="100ms", backoff_max="100ms",
                                  max_attempts=3))
    put_queue(h, "by-ttr", fastcgi(fpm, max_attempts=1))  # deadline 0: the task's TTR
    t0 = time.time()
    once = h.enqueue("short", {"payload": {"sleep_ms": 8000, "sleep_attempts": 1}})["id"]
    always = h.enqueue("short", {"payload": {"sleep_ms": 8000}, "max_attempts": 2})["id"]
    by_ttr = h.enqueue("by-ttr", {"payload": {"sleep_ms": 8000}, "ttr": 1})["id"]

    t = wait_task(h, once, "done")
    assert t["attempts"] == 2, t
    runs = fpm.runs_of(once)
    assert [r["attempt"] for r in runs] == [1, 2], runs
    # The retry comes after the deadline (300 ms) and the backoff (100 ms).
    assert runs[1]["t"] >= t0 + 0.4 - EPS, (runs[1]["t"] - t0)

    t = wait_task(h, always, "failed")
    assert t["attempts"] == 2, t  # the task's own max_attempts (2), not the queue's (3)
    assert t["last_error"].startswith("attempt 2: deadline of 0.300 s passed; "), t
    assert "php-fpm was running the script" in t["last_error"], t
    assert [r["attempt"] for r in fpm.runs_of(always)] == [1, 2]

    t = wait_task(h, by_ttr, "failed")
    assert t["last_error"].startswith("attempt 1: deadline of 1 s passed; "), t
    assert parse_rfc3339(t["finished_at"]) - parse_rfc3339(t["created_at"]) >= 1.0 - EPS, t

    p = push_info(h, "short")
    assert (p["succeeded"], p["timed_out"], p["failed"], p["gave_up"], p["running"]) == (1, 3, 0, 1, 0), p
    p = push_info(h, "by-ttr")
    assert (p["succeeded"], p["timed_out"], p["gave_up"]) == (0, 1, 1), p
    samples, _ = h.metrics()
    assert metric(samples, "defer_push_attempts_total", queue="short", outcome="timed_out") == 3


def test_fastcgi_request_terminate_timeout_of_php_fpm(make_fpm, push):
    """php-fpm's own request_terminate_timeout kills the worker; deferd sees
    the connection close before the end of the request."""
    fpm = make_fpm(pools={"short": "request_terminate_timeout = 1s"})
    srv, h = push()
    put_queue(h, "q", fastcgi(fpm, pool="short", deadline="30s", max_attempts=1))
    tid = h.enqueue("q", {"payload": {"sleep_ms": 10000}})["id"]
    t = wait_task(h, tid, "failed")
    assert re.match(r"^attempt 1: php-fpm (closed|broke) the connection before (finishing|the end of) the request",
                    t["last_error"]), t
    assert len(fpm.runs_of(tid)) == 1


# ---------------------------------------------------------------------------
# fastcgi: php-fpm down, concurrency, rate, backoff, bury, kick
# ---------------------------------------------------------------------------


def test_fastcgi_php_fpm_down_then_back(make_fpm, push):
    fpm = make_fpm(start=False)
    srv, h = push()
    # max_attempts 0: no limit, the task waits for php-fpm however long.
    put_queue(h, "q", fastcgi(fpm, backoff_min="100ms", backoff_max="200ms", max_attempts=0))
    a = h.enqueue("q", {"payload": {"n": 1}})["id"]
    eventually(lambda: h.task(a)["attempts"] >= 3, WAIT, what="3 attempts against a missing php-fpm")
    t = h.task(a)
    assert t["state"] in ("ready", "delayed", "reserved"), t
    assert t["last_error"].startswith("attempt "), t
    assert "cannot connect to php-fpm at %s" % fpm.address() in t["last_error"], t
    assert "is php-fpm running?" in t["last_error"], t
    assert fpm.records() == []

    fpm.start()
    t = wait_task(h, a, "done")
    (run,) = fpm.runs_of(a)
    assert run["attempt"] == t["attempts"] >= 3, (run, t)

    # Down again (stopped), then back again.
    fpm.stop()
    b = h.enqueue("q", {"payload": {"n": 2}})["id"]
    eventually(lambda: h.task(b)["attempts"] >= 2, WAIT, what="2 attempts against a stopped php-fpm")
    assert "cannot connect to php-fpm at %s" % fpm.address() in h.task(b)["last_error"]
    fpm.start()
    wait_task(h, b, "done")
    assert len(fpm.runs_of(b)) == 1
    p = push_info(h, "q")
    assert p["succeeded"] == 2 and p["failed"] >= 3 and p["gave_up"] == 0, p


def test_fastcgi_concurrency_is_never_exceeded(fpm, push):
    srv, h = push()
    put_queue(h, "q", fastcgi(fpm, concurrency=3))  # php-fpm has 6 workers
    ids = enqueue_many(h, "q", [{"sleep_ms": 300, "n": i} for i in range(9)])
    seen = []
    wait_tasks(h, ids, "done", each_poll=lambda: seen.append(push_info(h, "q")["running"]))
    starts = fpm.records()
    assert len(starts) == 9
    # Counted in the target: never more than 3 at once, and 3 were reached
    # (the limit is what bounds it, not something else).
    assert max(r["running"] for r in starts) == 3, [r["running"] for r in starts]
    assert max(seen) <= 3, seen
    assert push_info(h, "q")["running"] == 0


def test_fastcgi_rate_limit_from_the_config_file(fpm, push, tmp_path):
    cfg = write_config(tmp_path / "push.ini", """\
; a rate-limited queue
[limited]
target = fastcgi
address = %s
script = %s
concurrency = 10
rate = 300/m
burst = 1
""" % (fpm.address(), fpm.script))
    srv, h = push(["--config", cfg])
    t0 = time.time()  # the bucket holds at most one token (burst 1) now
    ids = enqueue_many(h, "limited", [{"n": i} for i in range(6)])
    wait_tasks(h, ids, "done")
    p = push_info(h, "limited")
    assert (p["rate"], p["burst"], p["concurrency"], p["source"]) == (5, 1, 10, "config"), p
    starts = [r["t"] for r in fpm.records()]
    assert len(starts) == 6
    # 6 tasks at 5/s with burst 1 cannot all start in less than 1 s.
    assert lower_bound_starts(starts, t0, rate=5, burst=1) == [], sorted(s - t0 for s in starts)


def test_fastcgi_fast_rate_limit_keeps_the_server_responsive(fpm, push, tmp_path):
    # A regression test: the rate limiter's timer, re-armed at 0 ms from
    # its own callback, once spun libuv's timer loop forever (libuv < 1.45)
    # - the server stopped answering at about 100 tasks/s and above.
    srv, h = push(["-b", str(tmp_path / "data")])
    put_queue(h, "fast", fastcgi(fpm, concurrency=4, rate="2000/s"))
    n = 1500
    enqueue_many(h, "fast", [{"n": i} for i in range(n)])
    deadline = time.monotonic() + 60
    while True:
        assert h.get("/healthz").status == 200  # answers all along
        p = push_info(h, "fast")
        if p["succeeded"] == n:
            break
        assert time.monotonic() < deadline, p
        time.sleep(0.05)
    assert len(fpm.records()) == n


def test_fastcgi_retry_schedule_backs_off_exponentially(fpm, push):
    srv, h = push()
    put_queue(h, "q", fastcgi(fpm, backoff_min="200ms", backoff_max="800ms", max_attempts=5))
    tid = h.enqueue("q", {"payload": {"fail_attempts": 4}})["id"]
    t = wait_task(h, tid, "done")
    assert t["attempts"] == 5, t
    starts = fpm.runs_of(tid)
    ends = [r for r in fpm.records("end") if r["id"] == str(tid)]
    assert [r["attempt"] for r in starts] == [1, 2, 3, 4, 5]
    assert [r["attempt"] for r in ends] == [1, 2, 3, 4, 5]
    # The wait after failed attempt n lies in [max(min, b/2), b] with
    # b = min(max, min * 2^(n-1)): at least 0.2, 0.2, 0.4, 0.4 s. The end
    # record is written before php-fpm answers, so the gap from it to the
    # next start is at least the wait.
    gaps = []
    for n in range(1, 5):
        b = min(0.8, 0.2 * 2 ** (n - 1))
        low = max(0.2, b / 2)
        gap = starts[n]["t"] - ends[n - 1]["t"]
        gaps.append(round(gap, 4))
        assert gap >= low - EPS, (n, gaps, low)
    p = push_info(h, "q")
    assert (p["attempts"], p["failed"], p["succeeded"], p["gave_up"]) == (5, 4, 1, 0), p


def test_fastcgi_bury_after_the_last_attempt_and_kick(fpm, push, tmp_path):
    broken = tmp_path / "broken"
    broken.write_text("")
    srv, h = push()
    put_queue(h, "q", fastcgi(fpm, concurrency=3, max_attempts=3, backoff_min="50ms", backoff_max="100ms"))
    pl = {"fail_while": str(broken)}
    a = h.enqueue("q", {"payload": pl})["id"]  # the queue's max_attempts: 3
    b = h.enqueue("q", {"payload": pl, "max_attempts": 2})["id"]  # the task's own
    c = h.enqueue("q", {"payload": pl, "max_attempts": 4})["id"]
    want = {a: 3, b: 2, c: 4}

    def all_failed(rounds):
        def check():
            ts = {i: h.task(i) for i in want}
            return all(t["state"] == "failed" for t in ts.values()) and all(
                len(fpm.runs_of(i)) == rounds * n for i, n in want.items())
        eventually(check, WAIT, what="every task failed (round %d)" % rounds)
        for i, n in want.items():
            t = h.task(i)
            assert t["attempts"] == n, t
            assert t["last_error"] == "attempt %d: php-fpm answered 500: SMTP refused" % n, t
            assert t["finished_at"] is not None, t

    all_failed(1)
    for i, n in want.items():
        assert [r["attempt"] for r in fpm.runs_of(i)] == list(range(1, n + 1))
    p = push_info(h, "q")
    assert (p["gave_up"], p["failed"], p["succeeded"], p["running"]) == (3, 9, 0, 0), p
    assert h.queue("q")["failed"] == 3

    # A kick gives each a fresh set of attempts: they run n times again.
    r = h.post("/v1/queues/q/kick", json={})
    assert r.status == 200 and r.json() == {"kicked": 3}, r
    all_failed(2)
    for i, n in want.items():
        assert [r["attempt"] for r in fpm.runs_of(i)] == list(range(1, n + 1)) * 2
    assert push_info(h, "q")["gave_up"] == 6

    # Fixed, and kicked: done, at a first attempt.
    broken.unlink()
    r = h.post("/v1/queues/q/kick", json={})
    assert r.status == 200 and r.json() == {"kicked": 3}, r
    wait_tasks(h, list(want), "done")
    for i in want:
        assert fpm.runs_of(i)[-1]["attempt"] == 1
    assert push_info(h, "q")["succeeded"] == 3


# ---------------------------------------------------------------------------
# restarts
# ---------------------------------------------------------------------------


def test_restart_after_a_crash_runs_the_attempts_in_flight_again(fpm, push, tmp_path):
    data = str(tmp_path / "data")
    slow = tmp_path / "slow"
    slow.write_text("")
    srv, h = push(["-b", data])
    put_queue(h, "q", fastcgi(fpm, concurrency=3))
    ids = enqueue_many(h, "q", [{"slow_while": str(slow), "n": i} for i in range(3)])
    eventually(lambda: len(fpm.records()) == 3, WAIT, what="3 attempts running")
    for i in ids:
        assert h.task(i)["state"] == "reserved"
    crash(srv)
    slow.unlink()  # the runs deferd left behind end now; what they did is lost

    srv, h = push(["-b", data])
    wait_tasks(h, ids, "done")
    for i in ids:
        assert len(fpm.runs_of(i)) == 2, fpm.runs_of(i)
    assert push_info(h, "q")["succeeded"] == 3


def test_sigterm_lets_a_short_attempt_finish_within_the_grace(fpm, push, tmp_path):
    data = str(tmp_path / "data")
    slow = tmp_path / "slow"
    slow.write_text("")
    srv, h = push(["-b", data, "--shutdown-grace", "30"])
    put_queue(h, "q", fastcgi(fpm))  # concurrency 1
    first = h.enqueue("q", {"payload": {"slow_while": str(slow)}})["id"]
    eventually(lambda: fpm.runs_of(first), WAIT, what="the first attempt running")
    # A beanstalk worker holds the second task, and the limit leaves room
    # for it; the worker goes away after SIGTERM, which makes the task ready
    # again during the grace period.
    second = h.enqueue("q", {"payload": {"n": 2}})["id"]
    w = bs_worker(srv, b"q")
    assert w.reserve(timeout=5)[0] == second
    put_queue(h, "q", fastcgi(fpm, concurrency=2))
    srv.signal(signal.SIGTERM)
    time.sleep(0.2)
    w.close()
    time.sleep(1.0)
    # The attempt cannot end while the flag is there: deferd waits for it,
    # and starts nothing new meanwhile.
    assert srv.proc.poll() is None, "deferd exited during the grace period:\n" + srv.stderr()
    assert fpm.runs_of(second) == []
    slow.unlink()
    stop_gracefully(srv)
    assert fpm.runs_of(second) == []

    srv, h = push(["-b", data])
    # The outcome was logged before the exit: done, not run again.
    assert h.task(first)["state"] == "done"
    wait_task(h, second, "done")
    assert len(fpm.runs_of(first)) == 1
    assert len(fpm.runs_of(second)) == 1


def test_sigterm_aborts_a_long_attempt_after_the_grace_and_it_runs_again(fpm, push, tmp_path):
    data = str(tmp_path / "data")
    slow = tmp_path / "slow"
    slow.write_text("")
    srv, h = push(["-b", data, "--shutdown-grace", "1"])
    put_queue(h, "q", fastcgi(fpm))
    tid = h.enqueue("q", {"payload": {"slow_while": str(slow)}})["id"]
    eventually(lambda: fpm.runs_of(tid), WAIT, what="the attempt running")
    t_sig = time.monotonic()
    srv.signal(signal.SIGTERM)
    try:
        srv.proc.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise AssertionError("deferd did not stop after its grace period:\n" + srv.stderr())
    # It waited the grace period (1 s) for the attempt, which could not end.
    assert time.monotonic() - t_sig >= 1.0 - EPS
    srv.stop_and_check()
    slow.unlink()

    srv, h = push(["-b", data])
    wait_task(h, tid, "done")
    assert len(fpm.runs_of(tid)) == 2, fpm.runs_of(tid)


# ---------------------------------------------------------------------------
# http
# ---------------------------------------------------------------------------


def json_respond(rec):
    """Answer what the payload asks: {"status": N, "body": "...", "headers": {...}}."""
    try:
        p = json.loads(rec["body"] or b"{}")
    except ValueError:
        p = {}
    if not isinstance(p, dict):
        p = {}
    return p.get("status", 200), p.get("body", ""), p.get("headers", {})


def test_http_success_and_the_contract(make_web, push):
    web = make_web()
    srv, h = push(["-z", "4000000"])
    url = "http://ana:s%%3Acret@127.0.0.1:%d/hooks/defer?src=deferd" % web.port
    p = put_queue(h, "hooks", {"target": "http", "url": url})["push"]
    assert p["target"] == "http", p
    raw = b'{"payload": {"to": "ana@example.org", "list": [1, 2.50, true]}}'
    r = h.post("/v1/queues/hooks/tasks", body=raw)
    assert r.status == 201, r
    tj = r.json()["id"]
    blob = os.urandom(2 * 1024 * 1024) + b"\x00\r\n"  # large: sent with Expect: 100-continue, or chunked
    tb = h.enqueue("hooks", {"payload_base64": base64.b64encode(blob).decode()})["id"]
    for tid in (tj, tb):
        t = wait_task(h, tid, "done")
        assert t["attempts"] == 1 and t["last_error"] is None, t

    (rj,), (rb,) = web.of(tj), web.of(tb)
    assert rj["body"] == b'{"to":"ana@example.org","list":[1,2.50,true]}'
    assert rj["headers"]["content-type"] == "application/json"
    assert rb["body"] == blob
    assert rb["headers"]["content-type"] == "application/octet-stream"
    for rec, tid in ((rj, tj), (rb, tb)):
        hd = rec["headers"]
        assert rec["method"] == "POST" and rec["path"] == "/hooks/defer?src=deferd", rec["path"]
        assert (hd["x-defer-task-id"], hd["x-defer-queue"], hd["x-defer-attempt"]) == (str(tid), "hooks", "1"), hd
        assert hd["authorization"] == "Basic " + base64.b64encode(b"ana:s:cret").decode(), hd


def test_http_extra_headers_are_sent(make_web, push, tmp_path):
    web = make_web()
    cfg = write_config(tmp_path / "push.ini", """\
[from-file]
target = http
url = %s
header = Authorization: Bearer 7f0c9c1e
header = X-Trace: a b c
""" % web.url("/file"))
    srv, h = push(["--config", cfg])
    p = put_queue(h, "from-api", {"target": "http", "url": web.url("/api"),
                                  "headers": {"X-Api-Key": "k-123", "X-Trace": "d e"}})["push"]
    # Shown without their values (credentials, often); sent with them.
    assert p["headers"] == {"X-Api-Key": "***", "X-Trace": "***"}, p
    assert push_info(h, "from-file")["headers"] == {"Authorization": "***", "X-Trace": "***"}
    a = h.enqueue("from-file", {"payload": {}})["id"]
    b = h.enqueue("from-api", {"payload": {}})["id"]
    wait_tasks(h, [a, b], "done")
    (ra,), (rb,) = web.of(a), web.of(b)
    assert ra["headers"].get("authorization") == "Bearer 7f0c9c1e", ra["headers"]
    assert ra["headers"].get("x-trace") == "a b c", ra["headers"]
    assert rb["headers"].get("x-api-key") == "k-123", rb["headers"]
    assert rb["headers"].get("x-trace") == "d e", rb["headers"]


def test_http_failure_statuses(make_web, push):
    web = make_web(json_respond)
    srv, h = push()
    url = "http://deferd:hunter2@127.0.0.1:%d/hook" % web.port
    put_queue(h, "q", {"target": "http", "url": url, "concurrency": 4, "max_attempts": 1})
    failing = {
        "503": {"status": 503, "body": "overloaded"},
        "404": {"status": 404},
        "302": {"status": 302, "headers": {"Location": "/elsewhere"}},
        "400long": {"status": 400, "body": "x" * 5000 + "END"},
    }
    names = list(failing)
    ids = enqueue_many(h, "q", [failing[n] for n in names] + [{"status": 201}, {"status": 204}, {"status": 200}])
    fail_ids, ok_ids = dict(zip(names, ids)), ids[len(names) :]
    ts = wait_tasks(h, ids, "done", "failed")
    for tid in ok_ids:
        assert ts[tid]["state"] == "done", ts[tid]
    err = {}
    for n, tid in fail_ids.items():
        assert ts[tid]["state"] == "failed" and ts[tid]["attempts"] == 1, ts[tid]
        err[n] = ts[tid]["last_error"]
        assert err[n].startswith("attempt 1: POST "), err
        assert "hunter2" not in err[n], err  # the URL's password is not repeated
    assert "answered 503: overloaded" in err["503"], err
    assert "answered 404 with an empty body" in err["404"], err
    assert "answered 302, a redirect" in err["302"], err
    assert "answered 400: xxx" in err["400long"] and "END" not in err["400long"], err
    assert len(err["400long"]) < 700, err  # only the start of the answer is kept
    # Redirects are not followed.
    assert not [r for r in web.requests if r["path"] != "/hook"]
    p = push_info(h, "q")
    assert (p["succeeded"], p["failed"], p["gave_up"], p["running"]) == (3, 4, 4, 0), p


def test_http_redirect_reason_hides_the_urls_password(make_web, push):
    web = make_web(lambda rec: (302, "", {"Location": "/elsewhere"}))
    srv, h = push()
    put_queue(h, "q", {"target": "http", "url": "http://deferd:hunter2@127.0.0.1:%d/hook" % web.port,
                       "max_attempts": 1})
    tid = h.enqueue("q", {"payload": {}})["id"]
    t = wait_task(h, tid, "failed")
    assert "answered 302, a redirect" in t["last_error"], t
    assert "hunter2" not in t["last_error"], t


def test_http_target_down_then_back(make_web, push):
    port = free_port()
    srv, h = push()
    put_queue(h, "q", {"target": "http", "url": "http://127.0.0.1:%d/hook" % port, "backoff_min": "100ms",
                       "backoff_max": "200ms", "max_attempts": 0})
    tid = h.enqueue("q", {"payload": {"n": 1}})["id"]
    eventually(lambda: h.task(tid)["attempts"] >= 2, WAIT, what="2 attempts against a closed port")
    t = h.task(tid)
    assert t["state"] != "failed" and "connection refused" in t["last_error"], t
    web = make_web(port=port)
    t = wait_task(h, tid, "done")
    (rec,) = web.of(tid)
    assert rec["headers"]["x-defer-attempt"] == str(t["attempts"])


def test_http_deadline_cuts_the_request_and_the_retry_follows(make_web, push):
    def respond(rec):
        p = json.loads(rec["body"])
        if p.get("slow") == "always" or rec["headers"]["x-defer-attempt"] == "1":
            rec["delay"] = 8
        return 200, "ok"

    web = make_web(respond)
    srv, h = push()
    put_queue(h, "q", {"target": "http", "url": web.url(), "deadline": "300ms", "backoff_min": "100ms",
                       "backoff_max": "100ms", "max_attempts": 3, "concurrency": 2})
    t0 = time.time()
    once = h.enqueue("q", {"payload": {"slow": "first"}})["id"]
    always = h.enqueue("q", {"payload": {"slow": "always"}, "max_attempts": 1})["id"]
    t = wait_task(h, once, "done")
    assert t["attempts"] == 2, t
    reqs = web.of(once)
    assert [r["headers"]["x-defer-attempt"] for r in reqs] == ["1", "2"]
    assert reqs[1]["t"] >= t0 + 0.4 - EPS, reqs[1]["t"] - t0
    t = wait_task(h, always, "failed")
    assert t["last_error"].startswith("attempt 1: deadline of 0.300 s passed; "), t
    p = push_info(h, "q")
    assert (p["succeeded"], p["timed_out"], p["gave_up"]) == (1, 2, 1), p


def test_http_concurrency_is_never_exceeded(make_web, push):
    def respond(rec):
        rec["delay"] = 0.3
        return 200, "ok"

    web = make_web(respond)
    srv, h = push()
    put_queue(h, "q", {"target": "http", "url": web.url(), "concurrency": 4})
    ids = enqueue_many(h, "q", [{"n": i} for i in range(12)])
    seen = []
    wait_tasks(h, ids, "done", each_poll=lambda: seen.append(push_info(h, "q")["running"]))
    assert web.count() == 12
    assert web.max_inflight == 4, web.max_inflight
    assert max(seen) <= 4, seen


def test_http_rate_limit_and_burst(make_web, push):
    web = make_web()
    srv, h = push()
    put_queue(h, "q", {"target": "http", "url": web.url(), "concurrency": 10, "rate": 4, "burst": 3})
    t0 = time.time()  # the bucket holds at most 3 tokens now
    ids = enqueue_many(h, "q", [{"n": i} for i in range(7)])
    wait_tasks(h, ids, "done")
    starts = [r["t"] for r in web.requests]
    assert len(starts) == 7
    # 3 at once, then one every 0.25 s: the 7th not before t0 + 1 s.
    assert lower_bound_starts(starts, t0, rate=4, burst=3) == [], sorted(s - t0 for s in starts)


# ---------------------------------------------------------------------------
# exec
# ---------------------------------------------------------------------------


def test_exec_success_and_the_contract(push, tmp_path):
    cfg, work = exec_config(tmp_path, """\
[run]
target = exec
command = sh -c 'cat > "in.$DEFER_TASK_ID"; env > "env.$DEFER_TASK_ID"; pwd > "pwd.$DEFER_TASK_ID"'
workdir = {work}
concurrency = 2
""")
    srv, h = push(["--config", cfg, "-z", "3000000"],
                  env={"PUSH_TEST_MARK": "inherited", "DEFER_QUEUE": "spoofed", "DEFER_ATTEMPT": "99"})
    p = push_info(h, "run")
    assert (p["target"], p["source"], p["workdir"], p["concurrency"]) == ("exec", "config", str(work), 2), p
    r = h.post("/v1/queues/run/tasks", body=b'{"payload": {"to": "ada", "n": [1, 2.50]}}')
    assert r.status == 201, r
    tj = r.json()["id"]
    blob = os.urandom(1024 * 1024) + b"\n\x00last line\n"  # larger than a pipe's buffer
    tb = h.enqueue("run", {"payload_base64": base64.b64encode(blob).decode()})["id"]
    for tid in (tj, tb):
        t = wait_task(h, tid, "done")
        assert t["attempts"] == 1 and t["last_error"] is None, t

    def env_of(tid):
        lines = (work / ("env.%d" % tid)).read_text().splitlines()
        return dict(l.split("=", 1) for l in lines if "=" in l)

    assert (work / ("in.%d" % tj)).read_bytes() == b'{"to":"ada","n":[1,2.50]}'
    assert (work / ("in.%d" % tb)).read_bytes() == blob
    for tid, kind in ((tj, "json"), (tb, "bytes")):
        env = env_of(tid)
        assert env["DEFER_TASK_ID"] == str(tid) and env["DEFER_QUEUE"] == "run", env
        assert env["DEFER_ATTEMPT"] == "1" and env["DEFER_PAYLOAD_TYPE"] == kind, env
        assert env["PUSH_TEST_MARK"] == "inherited", env
        assert (work / ("pwd.%d" % tid)).read_text().strip() == os.path.realpath(str(work))


def test_exec_exit_status_and_the_output_tail_in_last_error(push, tmp_path):
    cfg, work = exec_config(tmp_path, """\
[fail]
target = exec
command = sh -c 'echo "to stdout"; echo "it broke on attempt $DEFER_ATTEMPT" >&2; exit 3'
max_attempts = 2
backoff_min = 50ms
backoff_max = 50ms

[loud]
target = exec
command = sh -c 'head -c 20000 /dev/zero | tr "\\0" e >&2; printf "THE-END\\n" >&2; exit 1'
max_attempts = 1

[quiet]
target = exec
command = sh -c 'echo only-stdout; exit 4'
max_attempts = 1

[signal]
target = exec
command = sh -c 'kill -KILL $$'
max_attempts = 1

[ok]
target = exec
command = true

[gone]
target = exec
command = {work}/prog.sh
max_attempts = 1
""")
    prog = work / "prog.sh"
    prog.write_text("#!/bin/sh\nexit 0\n")
    prog.chmod(0o755)
    srv, h = push(["--config", cfg, "-z", "2000000"])
    prog.unlink()  # it was there at start-up; it is not when the task runs
    ids = {q: h.enqueue(q, {"payload": {"q": q}})["id"] for q in ("fail", "loud", "quiet", "signal", "gone")}
    # A command that does not read its stdin is not held up by a payload
    # larger than a pipe's buffer.
    ids["ok"] = h.enqueue("ok", {"payload_base64": base64.b64encode(b"x" * 1000000).decode()})["id"]
    ts = wait_tasks(h, list(ids.values()), "done", "failed")
    t = {q: ts[i] for q, i in ids.items()}
    assert t["ok"]["state"] == "done", t["ok"]
    for q in ("fail", "loud", "quiet", "signal", "gone"):
        assert t[q]["state"] == "failed", t[q]
    assert t["gone"]["last_error"].startswith("attempt 1: cannot start %s" % prog), t["gone"]
    assert t["fail"]["attempts"] == 2
    assert t["fail"]["last_error"] == "attempt 2: exit status 3; stderr: it broke on attempt 2", t["fail"]
    loud = t["loud"]["last_error"]
    assert loud.startswith("attempt 1: exit status 1; stderr: ...eee") and loud.endswith("eeeTHE-END"), loud
    assert len(loud) < 700, len(loud)
    assert t["quiet"]["last_error"] == "attempt 1: exit status 4; stdout: only-stdout", t["quiet"]
    assert t["signal"]["last_error"] == "attempt 1: killed by signal 9", t["signal"]


def test_exec_deadline_kills_the_whole_process_group(push, tmp_path):
    cfg, work = exec_config(tmp_path, """\
[slow]
target = exec
command = sh -c 'echo $$ > "sh.$DEFER_TASK_ID.$DEFER_ATTEMPT"; sleep 100 & echo $! > "bg.$DEFER_TASK_ID.$DEFER_ATTEMPT"; sleep 100'
workdir = {work}
deadline = 1s
max_attempts = 2
backoff_min = 50ms
backoff_max = 50ms

[stubborn]
target = exec
command = sh -c 'trap "" TERM; echo $$ > "sh.$DEFER_TASK_ID.$DEFER_ATTEMPT"; sleep 100 & echo $! > "bg.$DEFER_TASK_ID.$DEFER_ATTEMPT"; sleep 100'
workdir = {work}
deadline = 1s
max_attempts = 1
""")
    srv, h = push(["--config", cfg])
    slow = h.enqueue("slow", {"payload": {}})["id"]
    stubborn = h.enqueue("stubborn", {"payload": {}})["id"]

    t = wait_task(h, slow, "failed")
    assert t["attempts"] == 2, t
    assert t["last_error"].startswith("attempt 2: deadline of 1 s passed; ") and "SIGTERM" in t["last_error"], t
    # Ignoring SIGTERM buys 5 s, then SIGKILL.
    t = wait_task(h, stubborn, "failed")
    assert t["last_error"].startswith("attempt 1: deadline of 1 s passed; killed after not stopping"), t
    assert parse_rfc3339(t["finished_at"]) - parse_rfc3339(t["created_at"]) >= 6.0 - EPS, t

    pids = {}
    for f in work.iterdir():
        if f.name.startswith(("sh.", "bg.")):
            pids[f.name] = int(f.read_text())
    assert len(pids) == 6, sorted(pids)  # sh and its background child, 3 attempts
    eventually(lambda: not [n for n, pid in pids.items() if alive(pid)], 10, what="every process of the aborted commands gone")
    eventually(lambda: zombies(srv.pid) == [], 10, what="no zombie children of deferd")
    p = push_info(h, "slow")
    assert (p["timed_out"], p["gave_up"], p["running"]) == (2, 1, 0), p


def test_exec_leaves_no_zombies(push, tmp_path):
    cfg, work = exec_config(tmp_path, """\
[many]
target = exec
command = sh -c 'sleep 0.05; exit $(( DEFER_TASK_ID % 3 ))'
concurrency = 4
max_attempts = 1
""")
    srv, h = push(["--config", cfg])
    ids = enqueue_many(h, "many", [{"n": i} for i in range(20)])
    ts = wait_tasks(h, ids, "done", "failed")
    for i, t in ts.items():
        assert t["state"] == ("done" if i % 3 == 0 else "failed"), t
        if i % 3:
            assert t["last_error"] == "attempt 1: exit status %d" % (i % 3), t
    # Every child reaped: none left at all, defunct or not.
    eventually(lambda: children(srv.pid) == [], 10, what="no children of deferd left")


def test_exec_huge_stdout_does_not_grow_memory(push, tmp_path):
    cfg, work = exec_config(tmp_path, """\
[flood]
target = exec
command = sh -c 'head -c 300000000 /dev/zero'

[flood-fail]
target = exec
command = sh -c 'head -c 50000000 /dev/zero | tr "\\0" y; echo LAST-LINE; exit 2'
max_attempts = 1
""")
    srv, h = push(["--config", cfg])
    base = rss_kb(srv.pid)
    with RssSampler(srv.pid) as s:
        ok = h.enqueue("flood", {"payload": {}})["id"]
        bad = h.enqueue("flood-fail", {"payload": {}})["id"]
        wait_task(h, ok, "done")
        t = wait_task(h, bad, "failed")
    assert t["last_error"].startswith("attempt 1: exit status 2; stdout: ...yyy"), t
    assert t["last_error"].endswith("yyyLAST-LINE") and len(t["last_error"]) < 700, t
    # 300 MB went through; deferd keeps a tail of 4 KiB.
    assert s.samples > 0
    assert s.peak_kb - base < 64 * 1024, (base, s.peak_kb)


def test_exec_sigterm_beyond_the_grace_kills_the_command_and_it_runs_again(push, tmp_path):
    cfg, work = exec_config(tmp_path, """\
[job]
target = exec
command = sh -c 'if [ -e slow ]; then echo $$ > "sh.$$"; sleep 100 & echo $! > "bg.$$"; sleep 100; fi; echo ran >> "ran.$DEFER_TASK_ID"'
workdir = {work}
""")
    (work / "slow").write_text("")
    data = str(tmp_path / "data")
    srv, h = push(["--config", cfg, "-b", data, "--shutdown-grace", "1"])
    tid = h.enqueue("job", {"payload": {}})["id"]
    eventually(lambda: [f for f in work.iterdir() if f.name.startswith("bg.")], WAIT, what="the command running")
    srv.signal(signal.SIGTERM)
    stop_gracefully(srv)
    pids = [int(f.read_text()) for f in work.iterdir() if f.name.startswith(("sh.", "bg."))]
    assert len(pids) == 2
    eventually(lambda: not [p for p in pids if alive(p)], 10, what="the aborted command's processes gone")
    assert not (work / ("ran.%d" % tid)).exists()

    (work / "slow").unlink()
    srv, h = push(["--config", cfg, "-b", data])
    wait_task(h, tid, "done")
    assert (work / ("ran.%d" % tid)).read_text() == "ran\n"


# ---------------------------------------------------------------------------
# huge outputs of the other targets
# ---------------------------------------------------------------------------


def test_fastcgi_huge_output_does_not_grow_memory(fpm, push):
    srv, h = push()
    put_queue(h, "q", fastcgi(fpm))
    base = rss_kb(srv.pid)
    with RssSampler(srv.pid) as s:
        tid = h.enqueue("q", {"payload": {"out_mb": 300}})["id"]
        wait_task(h, tid, "done")
    (end,) = [r for r in fpm.records("end") if r["id"] == str(tid)]
    assert end["output_mb"] == 300 and end["aborted"] == 0, end  # all of it was read
    assert s.peak_kb - base < 64 * 1024, (base, s.peak_kb)


def test_http_huge_answer_does_not_grow_memory(make_web, push):
    sent = []

    def chunks():
        mb = b"z" * (1 << 20)
        for _ in range(300):
            yield mb
            sent.append(1)

    web = make_web(lambda rec: (200, chunks))
    srv, h = push()
    put_queue(h, "q", {"target": "http", "url": web.url()})
    base = rss_kb(srv.pid)
    with RssSampler(srv.pid) as s:
        tid = h.enqueue("q", {"payload": {}})["id"]
        wait_task(h, tid, "done")
    assert len(sent) == 300
    assert s.peak_kb - base < 64 * 1024, (base, s.peak_kb)


# ---------------------------------------------------------------------------
# settings: the API, the config file, restarts
# ---------------------------------------------------------------------------


def test_put_validation_errors_name_the_field(push, tmp_path):
    srv, h = push()
    url = "http://127.0.0.1:9/hook"
    good = put_queue(h, "v", {"target": "http", "url": url, "concurrency": 2})["push"]
    cases = [
        ({"url": url}, "target"),
        ({"target": "smtp"}, "target"),
        ({"target": "fastcgi", "script": "/srv/x.php"}, "address"),
        ({"target": "fastcgi", "address": "unix:/run/x.sock", "script": "x.php"}, "script"),
        ({"target": "http"}, "url"),
        ({"target": "http", "url": "ftp://example.org/"}, "url"),
        ({"target": "http", "url": url, "concurrency": 0}, "concurrency"),
        ({"target": "http", "url": url, "concurrency": 10001}, "concurrency"),
        ({"target": "http", "url": url, "concurrency": "many"}, "concurrency"),
        ({"target": "http", "url": url, "rate": "fast"}, "rate"),
        ({"target": "http", "url": url, "rate": -1}, "rate"),
        ({"target": "http", "url": url, "burst": 0}, "burst"),
        ({"target": "http", "url": url, "deadline": "soon"}, "deadline"),
        ({"target": "http", "url": url, "max_attempts": -1}, "max_attempts"),
        ({"target": "http", "url": url, "backoff_min": "10s", "backoff_max": "1s"}, "backoff_min"),
        ({"target": "http", "url": url, "colour": "blue"}, "colour"),
        ({"target": "http", "url": url, "headers": {"Bad Name": "x"}}, "header"),
        ({"target": "http", "url": url, "headers": ["X-A: b"]}, "headers"),
        ({"target": "http", "url": url, "address": "unix:/run/x.sock"}, "address"),
    ]
    for body, field in cases:
        r = h.request("PUT", "/v1/queues/v", json=body)
        assert r.status == 400, (body, r)
        assert r.error_code == "invalid_settings", (body, r)
        assert field in r.error_message, (body, field, r.error_message)
    for raw in (b'{"target": ', b'["http"]', b""):
        r = h.request("PUT", "/v1/queues/v", body=raw)
        assert r.status == 400, (raw, r)
    # exec is refused over the network, whatever the command.
    pwned = tmp_path / "pwned"
    for q in ("v", "fresh"):
        r = h.request("PUT", "/v1/queues/%s" % q, json={"target": "exec", "command": "touch %s" % pwned})
        assert r.status == 400 and r.error_code == "invalid_settings", r
        assert "config file" in r.error_message, r
    # Nothing was changed by the refused requests, and nothing runs.
    assert push_info(h, "v") == good
    tid = h.enqueue("fresh", {"payload": {}})["id"]
    assert push_info(h, "fresh") is None
    time.sleep(0.5)
    assert h.task(tid)["state"] == "ready" and not pwned.exists()


def test_a_config_file_queue_is_fixed(push, tmp_path, make_web):
    web = make_web()
    cfg = write_config(tmp_path / "push.ini", """\
[fixed]
target = http
url = %s
concurrency = 2
""" % web.url("/fixed"))
    srv, h = push(["--config", cfg])
    before = push_info(h, "fixed")
    assert (before["source"], before["target"], before["url"], before["concurrency"]) == ("config", "http", web.url("/fixed"), 2)
    for body in ({"target": "none"}, {"target": "http", "url": web.url("/other")}, {"target": "exec", "command": "true"}):
        r = h.request("PUT", "/v1/queues/fixed", json=body)
        assert r.status == 409 and r.error_code == "conflict", (body, r)
        assert "config file" in r.error_message, r
    assert push_info(h, "fixed") == before
    tid = h.enqueue("fixed", {"payload": {}})["id"]
    wait_task(h, tid, "done")
    assert [r["path"] for r in web.requests] == ["/fixed"]
    # Other queues are still the API's.
    put_queue(h, "free", {"target": "http", "url": web.url("/free")})


def test_settings_survive_a_crash_and_target_none_a_restart(make_web, push, tmp_path):
    web = make_web()
    data = str(tmp_path / "data")
    srv, h = push(["-b", data])
    settings = {"target": "http", "url": web.url("/s"), "headers": {"X-Token": "t1"}, "concurrency": 3,
                "rate": "120/m", "burst": 2, "deadline": "1500ms", "max_attempts": 7, "backoff_min": "250ms",
                "backoff_max": "10s"}
    # The API shows header values as *** (credentials, often).
    want = {"target": "http", "url": web.url("/s"), "headers": {"X-Token": "***"}, "concurrency": 3, "rate": 2,
            "burst": 2, "deadline": 1.5, "max_attempts": 7, "backoff_min": 0.25, "backoff_max": 10, "source": "api"}
    p = put_queue(h, "s", settings)["push"]
    assert {k: p[k] for k in want} == want, p
    crash(srv)  # logged before the answer: a crash right after keeps them

    srv, h = push(["-b", data])
    p = push_info(h, "s")
    assert {k: p[k] for k in want} == want, p
    assert (p["running"], p["attempts"]) == (0, 0), p
    tid = h.enqueue("s", {"payload": {"after": "crash"}})["id"]
    wait_task(h, tid, "done")
    (rec,) = web.of(tid)
    assert rec["path"] == "/s"

    r = put_queue(h, "s", {"target": "none"})
    assert r["push"] is None, r
    srv.stop_and_check()
    srv, h = push(["-b", data])
    tid = h.enqueue("s", {"payload": {"after": "none"}})["id"]
    assert push_info(h, "s") is None
    time.sleep(0.5)
    assert h.task(tid)["state"] == "ready" and web.of(tid) == []
    w = bs_worker(srv, b"s")
    assert w.reserve(timeout=2)[0] == tid
    w.close()


def test_target_none_stops_pushing(make_web, push):
    release = threading.Event()

    def respond(rec):
        if json.loads(rec["body"]).get("hold"):
            release.wait(WAIT)
        return 200, "ok"

    web = make_web(respond)
    srv, h = push()
    put_queue(h, "q", {"target": "http", "url": web.url()})
    a = h.enqueue("q", {"payload": {"n": 1}})["id"]
    wait_task(h, a, "done")
    b = h.enqueue("q", {"payload": {"hold": True}})["id"]
    eventually(lambda: web.of(b), WAIT, what="the held request arriving")

    r = put_queue(h, "q", {"target": "none"})
    assert r["push"] is None, r
    # The attempt running keeps going, and its outcome counts.
    release.set()
    wait_task(h, b, "done")
    c = h.enqueue("q", {"payload": {"n": 3}})["id"]
    time.sleep(0.8)
    assert h.task(c)["state"] == "ready" and web.of(c) == []
    assert h.queue("q")["push"] is None
    # Tasks now wait for pull workers.
    w = bs_worker(srv, b"q")
    rid, body = w.reserve(timeout=2)
    assert rid == c and json.loads(body) == {"n": 3}
    assert w.cmd(b"release %d 0 0\r\n" % c) == b"RELEASED\r\n"
    w.close()
    # Pushing again takes it.
    put_queue(h, "q", {"target": "http", "url": web.url()})
    wait_task(h, c, "done")
    assert len(web.of(c)) == 1


BAD_CONFIGS = [
    # (file, words the message must hold)
    ("; the mail queue\n[mail]\ntarget = fastcgi\naddress = unix:/run/php/php8.2-fpm.sock\nscript = /srv/send.php\n"
     "concurrency = eight\n", ["line 6", "concurrency", "eight"]),
    ("[mail]\ntarget = http\ncolour = blue\n", ["line 3", "colour"]),
    ("[mail]\ntarget = http\nurl = http://127.0.0.1:9/\nthis is not a setting\n", ["line 4"]),
    ("[mail]\ntarget = http\nurl = http://127.0.0.1:9/\ndeadline = soon\n", ["line 4", "deadline", "soon"]),
    ("[mail]\ntarget = http\nurl = http://127.0.0.1:9/\nrate = 10/week\n", ["line 4", "rate"]),
    ("[mail]\ntarget = smtp\n", ["line 2", "smtp"]),
    ("target = http\n", ["line 1"]),
    ("[bad name!]\ntarget = http\n", ["line 2", "bad name!"]),
    ("[a]\ntarget = http\nurl = http://127.0.0.1:9/\n[b]\ntarget = http\nurl = http://127.0.0.1:9/\n[a]\n"
     "concurrency = 2\n", ["line 8", "[a]"]),
    # Whole-section problems: no one line to blame.
    ("[mail]\nconcurrency = 2\n", ["[mail]", "target"]),
    ("[mail]\ntarget = fastcgi\nscript = /srv/send.php\n", ["[mail]", "address"]),
    ("[mail]\ntarget = exec\nworkdir = /tmp\n", ["[mail]", "command"]),
    ("[mail]\ntarget = exec\ncommand = /nonexistent/program --flag\n", ["mail", "/nonexistent/program"]),
]


def run_deferd_expecting_failure(tmp_path, args):
    argv = [DEFERD, "-l", "127.0.0.1", "-p", str(free_port()), "--http", "off"] + list(args)
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=15, cwd=str(tmp_path))
    except subprocess.TimeoutExpired:
        raise AssertionError("deferd kept running with %r" % (args,))
    err = r.stderr.decode("utf-8", "replace") + r.stdout.decode("utf-8", "replace")
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err
    assert r.returncode != 0, (args, r.returncode, err)
    return err


@pytest.mark.parametrize("text,words", BAD_CONFIGS, ids=range(len(BAD_CONFIGS)))
def test_a_bad_config_file_stops_deferd_at_start(tmp_path, text, words):
    path = write_config(tmp_path / "bad.ini", text)
    err = run_deferd_expecting_failure(tmp_path, ["--config", path])
    for w in words:
        assert w in err, (w, err)
    if any(w.startswith("line ") for w in words):
        assert path in err, err


def test_a_missing_config_file_stops_deferd_at_start(tmp_path):
    err = run_deferd_expecting_failure(tmp_path, ["--config", str(tmp_path / "nope.ini")])
    assert "nope.ini" in err, err
