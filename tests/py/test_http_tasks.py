"""What tasks do over the HTTP API (docs/http-api.md): unique keys (keep,
replace in place, supersede a running holder, released when the task ends),
attempt limits (failed after TTR expiries or releases, last_error, kick
gives fresh attempts), cancel, the history of finished tasks and its
retention, the /v1/events stream, and /metrics against what is really
there. Workers are beanstalk connections, as in production."""

import json
import socket
import time

import pytest

from helpers import (
    RFC3339_MS,
    HttpClient,
    bs_worker,
    eventually,
    metric,
    parse_rfc3339,
    quote_queue,
)

pytestmark = pytest.mark.deferd_only


def check_error(r, status, code):
    assert r.status == status, r
    assert r.json()["error"]["code"] == code, r
    return r.json()["error"]["message"]


def wait_state(http, tid, state, timeout=15):
    return eventually(lambda: (lambda t: t if t["state"] == state else None)(http.task(tid)), timeout=timeout)


# ---------------------------------------------------------------------------
# keys: keep
# ---------------------------------------------------------------------------


def test_keep_returns_the_holder(http):
    t = http.enqueue("net", {"payload": {"v": 1}, "key": "room-301", "priority": 5})
    for on_conflict in (None, "keep"):
        task = {"payload": {"v": 2}, "key": "room-301", "priority": 9, "delay": 100}
        if on_conflict:
            task["on_conflict"] = on_conflict
        r = http.post("/v1/queues/net/tasks", json=task)
        assert r.status == 200, r
        assert r.header("location") is None
        d = r.json()
        assert d["deduplicated"] is True
        assert "replaced" not in d and "superseded" not in d
        # The holder, unchanged.
        assert d["id"] == t["id"] and d["payload"] == {"v": 1} and d["priority"] == 5 and d["state"] == "ready"
    q = http.queue("net")
    assert q["ready"] == 1 and q["delayed"] == 0 and q["total_enqueued"] == 1


def test_keys_are_per_queue(http):
    a = http.enqueue("a", {"payload": 1, "key": "k"})
    b = http.enqueue("b", {"payload": 1, "key": "k"})
    assert a["id"] != b["id"]
    assert http.enqueue("a", {"payload": 2, "key": "k"}, expect=200)["id"] == a["id"]
    assert http.enqueue("b", {"payload": 2, "key": "k"}, expect=200)["id"] == b["id"]


def test_keep_with_a_reserved_holder(http_deferd, http):
    t = http.enqueue("q", {"payload": 1, "key": "k"})
    with bs_worker(http_deferd, b"q") as w:
        assert w.reserve(timeout=2)[0] == t["id"]
        d = http.enqueue("q", {"payload": 2, "key": "k"}, expect=200)
        assert d["id"] == t["id"] and d["deduplicated"] is True and d["state"] == "reserved"


def test_key_is_released_when_the_task_is_done(http_deferd, http):
    t = http.enqueue("q", {"payload": 1, "key": "once"})
    with bs_worker(http_deferd, b"q") as w:
        jid, _ = w.reserve(timeout=2)
        assert w.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
    n = http.enqueue("q", {"payload": 2, "key": "once"})
    assert n["id"] != t["id"] and n["key"] == "once"
    # The finished one keeps its key in the history.
    assert http.task(t["id"])["key"] == "once"


def test_key_is_released_when_the_task_is_cancelled(http):
    t = http.enqueue("q", {"payload": 1, "key": "k"})
    assert http.delete("/v1/tasks/%d" % t["id"]).status == 200
    n = http.enqueue("q", {"payload": 2, "key": "k"})
    assert n["id"] != t["id"]
    r = http.delete("/v1/queues/q/keys/k")
    assert r.status == 200 and r.json()["id"] == n["id"]
    assert http.enqueue("q", {"payload": 3, "key": "k"})["id"] > n["id"]


def test_key_is_released_when_a_beanstalk_client_deletes_a_waiting_task(http_deferd, http):
    t = http.enqueue("q", {"payload": 1, "key": "k", "delay": 600})
    with http_deferd.connect() as c:
        assert c.cmd(b"delete %d\r\n" % t["id"]) == b"DELETED\r\n"
    assert http.task(t["id"])["state"] == "cancelled"
    assert http.enqueue("q", {"payload": 2, "key": "k"})["id"] != t["id"]


# ---------------------------------------------------------------------------
# keys: replace
# ---------------------------------------------------------------------------


def test_replace_a_ready_holder_in_place(http_deferd, http):
    t = http.enqueue("net", {"payload": {"action": "toggle"}, "key": "room-301", "priority": 5, "ttr": 10,
                             "max_attempts": 2})
    run_at = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(time.time() + 3600))
    r = http.post("/v1/queues/net/tasks", json={"payload": {"action": "restore"}, "key": "room-301",
                                                "on_conflict": "replace", "priority": 7, "ttr": 20,
                                                "max_attempts": 4, "run_at": run_at})
    assert r.status == 200, r
    assert r.header("location") is None
    n = r.json()
    assert n["replaced"] is True and "deduplicated" not in n and "superseded" not in n
    assert n["id"] == t["id"] and n["key"] == "room-301"
    assert (n["payload"], n["priority"], n["ttr"], n["max_attempts"]) == ({"action": "restore"}, 7, 20, 4)
    assert (n["state"], n["run_at"], n["attempts"]) == ("delayed", run_at, 0)
    assert n["created_at"] == t["created_at"]
    got = http.task(t["id"])
    assert {k: v for k, v in got.items()} == {k: v for k, v in n.items() if k != "replaced"}
    q = http.queue("net")
    assert (q["ready"], q["delayed"]) == (0, 1)
    # Replaced again, without a delay: ready now, and a worker gets the new body.
    n = http.enqueue("net", {"payload": "now", "key": "room-301", "on_conflict": "replace"}, expect=200)
    assert (n["id"], n["state"], n["run_at"], n["priority"], n["ttr"], n["max_attempts"]) == (
        t["id"], "ready", None, 1024, 60, 0)
    with bs_worker(http_deferd, b"net") as w:
        assert w.reserve(timeout=2) == (t["id"], b'"now"')
        st = w.stats_job(t["id"])
        assert (st["pri"], st["ttr"]) == ("1024", "60")


def test_replace_with_base64_and_a_delay(http):
    t = http.enqueue("q", {"payload": {"j": 1}, "key": "k"})
    n = http.enqueue("q", {"payload_base64": "AP8=", "key": "k", "on_conflict": "replace", "delay": 50}, expect=200)
    assert n["id"] == t["id"] and n["payload_base64"] == "AP8=" and "payload" not in n
    assert n["state"] == "delayed"
    # And back to JSON.
    n = http.enqueue("q", {"payload": [1], "key": "k", "on_conflict": "replace"}, expect=200)
    assert n["payload"] == [1] and "payload_base64" not in n and n["state"] == "ready"


def test_replace_a_buried_holder_gives_fresh_attempts(http_deferd, http):
    http.enqueue("q", {"payload": 1, "key": "k", "max_attempts": 3})
    with bs_worker(http_deferd, b"q") as w:
        jid, _ = w.reserve(timeout=2)
        assert w.cmd(b"bury %d 1\r\n" % jid) == b"BURIED\r\n"
        b = http.task(jid)
        assert b["state"] == "buried" and b["attempts"] == 1
        n = http.enqueue("q", {"payload": 2, "key": "k", "on_conflict": "replace", "max_attempts": 3}, expect=200)
        assert (n["id"], n["state"], n["attempts"], n["payload"]) == (jid, "ready", 0, 2)
        q = http.queue("q")
        assert (q["ready"], q["buried"], q["failed"]) == (1, 0, 0)
        assert w.reserve(timeout=2) == (jid, b"2")
        assert http.task(jid)["attempts"] == 1


def test_replace_a_failed_holder_makes_it_live_again(http_deferd, http):
    http.enqueue("q", {"payload": 1, "key": "k", "max_attempts": 1})
    with bs_worker(http_deferd, b"q") as w:
        jid, _ = w.reserve(timeout=2)
        assert w.cmd(b"release %d 0 0\r\n" % jid) == b"RELEASED\r\n"
        f = http.task(jid)
        assert f["state"] == "failed" and f["attempts"] == 1 and f["last_error"]
        assert http.queue("q")["failed"] == 1
        # A failed holder still holds its key.
        d = http.enqueue("q", {"payload": 9, "key": "k"}, expect=200)
        assert d["deduplicated"] is True and d["id"] == jid and d["state"] == "failed"
        n = http.enqueue("q", {"payload": 2, "key": "k", "on_conflict": "replace", "max_attempts": 2, "delay": 0.2},
                         expect=200)
        assert (n["id"], n["state"], n["attempts"], n["max_attempts"]) == (jid, "delayed", 0, 2)
        assert n["last_error"] is None
        q = http.queue("q")
        assert (q["delayed"], q["buried"], q["failed"]) == (1, 0, 0), q
        # Two fresh attempts.
        got = w.reserve(timeout=5)
        assert got == (jid, b"2")
        assert w.cmd(b"release %d 0 0\r\n" % jid) == b"RELEASED\r\n"
        assert http.task(jid)["state"] == "ready"
        assert w.reserve(timeout=2)[0] == jid
        assert w.cmd(b"release %d 0 0\r\n" % jid) == b"RELEASED\r\n"
        assert http.task(jid)["state"] == "failed"
    samples, _ = http.metrics()
    assert metric(samples, "defer_tasks", queue="q", state="failed") == 1
    assert metric(samples, "defer_tasks", queue="q", state="buried") == 0


def test_replace_without_a_holder_creates(http):
    r = http.post("/v1/queues/q/tasks", json={"payload": 1, "key": "new", "on_conflict": "replace"})
    assert r.status == 201 and r.header("location") == "/v1/tasks/%d" % r.json()["id"], r
    assert not {"replaced", "deduplicated", "superseded"} & set(r.json())


def test_replace_a_reserved_holder_supersedes_it(http_deferd, http):
    old = http.enqueue("net", {"payload": "toggle", "key": "room-301"})
    w = bs_worker(http_deferd, b"net")
    assert w.reserve(timeout=2) == (old["id"], b'"toggle"')
    r = http.post("/v1/queues/net/tasks", json={"payload": "restore", "key": "room-301", "on_conflict": "replace"})
    assert r.status == 201, r
    new = r.json()
    assert new["superseded"] == old["id"]
    assert "replaced" not in new and "deduplicated" not in new
    assert new["id"] != old["id"] and new["key"] == "room-301" and new["state"] == "ready"
    assert r.header("location") == "/v1/tasks/%d" % new["id"]
    # The running attempt carries on without the key.
    o = http.task(old["id"])
    assert (o["state"], o["key"], o["payload"]) == ("reserved", None, "toggle")
    assert http.enqueue("net", {"payload": "x", "key": "room-301"}, expect=200)["id"] == new["id"]
    # The worker finishes the old one: the new one keeps the key.
    assert w.cmd(b"delete %d\r\n" % old["id"]) == b"DELETED\r\n"
    assert http.task(old["id"])["state"] == "done"
    d = http.enqueue("net", {"payload": "y", "key": "room-301"}, expect=200)
    assert d["id"] == new["id"] and d["payload"] == "restore"
    r = http.delete("/v1/queues/net/keys/room-301")
    assert r.status == 200 and r.json()["id"] == new["id"]
    w.close()


def test_superseded_task_released_by_its_worker_runs_again_without_the_key(http_deferd, http):
    old = http.enqueue("q", {"payload": 1, "key": "k"})
    with bs_worker(http_deferd, b"q") as w:
        w.reserve(timeout=2)
        new = http.enqueue("q", {"payload": 2, "key": "k", "on_conflict": "replace"})
        assert new["superseded"] == old["id"]
        assert w.cmd(b"release %d 0 0\r\n" % old["id"]) == b"RELEASED\r\n"
        o = http.task(old["id"])
        assert (o["state"], o["key"]) == ("ready", None)
        # Cancelling by key takes the new holder, not the old task.
        r = http.delete("/v1/queues/q/keys/k")
        assert r.json()["id"] == new["id"]
        assert http.task(old["id"])["state"] == "ready"


# ---------------------------------------------------------------------------
# attempts
# ---------------------------------------------------------------------------


def test_ttr_expiries_until_failed(http_deferd, http):
    t = http.enqueue("att", {"payload": "slow", "ttr": 1, "max_attempts": 2})
    w = bs_worker(http_deferd, b"att")
    assert w.reserve(timeout=2)[0] == t["id"]
    r = http.task(t["id"])
    assert (r["state"], r["attempts"]) == ("reserved", 1)
    first = wait_state(http, t["id"], "ready")
    assert first["attempts"] == 1
    assert first["last_error"] == "attempt 1 timed out (ttr 1 s)"
    assert first["finished_at"] is None
    assert w.reserve(timeout=5)[0] == t["id"]
    f = wait_state(http, t["id"], "failed")
    assert f["attempts"] == 2 and f["max_attempts"] == 2
    assert f["last_error"] == "attempt 2 timed out (ttr 1 s)"
    # A beanstalk client sees a buried job.
    st = w.stats_job(t["id"])
    assert st["state"] == "buried" and st["timeouts"] == "2"
    assert w.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"
    q = http.queue("att")
    assert (q["ready"], q["buried"], q["failed"]) == (0, 0, 1)
    samples, _ = http.metrics()
    assert metric(samples, "defer_failed_total", queue="att") == 1
    assert metric(samples, "defer_timeouts_total", queue="att") == 2
    assert metric(samples, "defer_tasks", queue="att", state="failed") == 1
    w.close()


def test_releases_until_failed(http_deferd, http):
    t = http.enqueue("att", {"payload": 1, "max_attempts": 3})
    with bs_worker(http_deferd, b"att") as w:
        for attempt in (1, 2):
            assert w.reserve(timeout=2)[0] == t["id"]
            assert w.cmd(b"release %d 0 0\r\n" % t["id"]) == b"RELEASED\r\n"
            r = http.task(t["id"])
            assert (r["state"], r["attempts"]) == ("ready", attempt)
        assert w.reserve(timeout=2)[0] == t["id"]
        # The worker is still told RELEASED.
        assert w.cmd(b"release %d 0 0\r\n" % t["id"]) == b"RELEASED\r\n"
        f = http.task(t["id"])
        assert (f["state"], f["attempts"]) == ("failed", 3)
        assert "released by a worker" in f["last_error"]
        assert w.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"


def test_last_error_after_a_release_with_attempts_left(http_deferd, http):
    # "An attempt fails when its TTR runs out or a worker releases it";
    # last_error says why the last attempt failed.
    t = http.enqueue("att", {"payload": 1, "max_attempts": 5})
    with bs_worker(http_deferd, b"att") as w:
        w.reserve(timeout=2)
        assert w.cmd(b"release %d 0 0\r\n" % t["id"]) == b"RELEASED\r\n"
    r = http.task(t["id"])
    assert r["state"] == "ready" and r["attempts"] == 1
    assert r["last_error"] is not None and "released by a worker" in r["last_error"], r


def test_release_with_a_delay_counts_an_attempt(http_deferd, http):
    t = http.enqueue("att", {"payload": 1, "max_attempts": 2})
    with bs_worker(http_deferd, b"att") as w:
        w.reserve(timeout=2)
        assert w.cmd(b"release %d 0 100\r\n" % t["id"]) == b"RELEASED\r\n"
        r = http.task(t["id"])
        assert (r["state"], r["attempts"]) == ("delayed", 1) and r["run_at"] is not None


def test_no_limit_by_default(http_deferd, http):
    t = http.enqueue("att", {"payload": 1})
    with bs_worker(http_deferd, b"att") as w:
        for _ in range(6):
            w.reserve(timeout=2)
            assert w.cmd(b"release %d 0 0\r\n" % t["id"]) == b"RELEASED\r\n"
    r = http.task(t["id"])
    assert (r["state"], r["attempts"], r["max_attempts"]) == ("ready", 6, 0)


def test_buried_by_a_worker_is_buried_not_failed(http_deferd, http):
    t = http.enqueue("att", {"payload": 1, "max_attempts": 1})
    with bs_worker(http_deferd, b"att") as w:
        w.reserve(timeout=2)
        assert w.cmd(b"bury %d 0\r\n" % t["id"]) == b"BURIED\r\n"
    r = http.task(t["id"])
    assert (r["state"], r["attempts"], r["last_error"], r["finished_at"]) == ("buried", 1, None, None)
    q = http.queue("att")
    assert (q["buried"], q["failed"]) == (1, 0)


def test_kick_gives_fresh_attempts(http_deferd, http):
    a = http.enqueue("att", {"payload": "a", "max_attempts": 1})
    b = http.enqueue("att", {"payload": "b", "max_attempts": 1})
    with bs_worker(http_deferd, b"att") as w:
        for t in (a, b):
            assert w.reserve(timeout=2)[0] == t["id"]
            assert w.cmd(b"release %d 0 0\r\n" % t["id"]) == b"RELEASED\r\n"
            assert http.task(t["id"])["state"] == "failed"
        # Over HTTP (queue kick) and over beanstalk (kick-job).
        r = http.post("/v1/queues/att/kick", json={"bound": 1})
        assert r.json() == {"kicked": 1}
        assert w.cmd(b"kick-job %d\r\n" % b["id"]) == b"KICKED\r\n"
        for t in (a, b):
            k = http.task(t["id"])
            assert (k["state"], k["attempts"], k["max_attempts"]) == ("ready", 0, 1), k
        q = http.queue("att")
        assert (q["ready"], q["failed"], q["buried"]) == (2, 0, 0)
        # One fresh attempt each.
        jid, _ = w.reserve(timeout=2)
        assert http.task(jid)["attempts"] == 1
        assert w.cmd(b"release %d 0 0\r\n" % jid) == b"RELEASED\r\n"
        assert http.task(jid)["state"] == "failed"


def test_timeout_of_a_beanstalk_task_has_a_last_error(http_deferd, http):
    with http_deferd.connect() as c:
        jid = c.put(b"bs", ttr=1)
        assert c.reserve(timeout=1)[0] == jid
        t = wait_state(http, jid, "ready")
    assert t["last_error"] == "attempt 1 timed out (ttr 1 s)"
    assert t["max_attempts"] == 0 and t["attempts"] == 1


# ---------------------------------------------------------------------------
# history
# ---------------------------------------------------------------------------


def test_history_of_a_done_task(http_deferd, http):
    t = http.enqueue("h", {"payload": {"x": 1}, "key": "k", "priority": 3, "ttr": 30, "max_attempts": 4})
    with bs_worker(http_deferd, b"h") as w:
        w.reserve(timeout=2)
        assert w.cmd(b"release %d 3 0\r\n" % t["id"]) == b"RELEASED\r\n"
        w.reserve(timeout=2)
        before = time.time()
        assert w.cmd(b"delete %d\r\n" % t["id"]) == b"DELETED\r\n"
    d = http.task(t["id"])
    assert (d["id"], d["queue"], d["state"], d["key"]) == (t["id"], "h", "done", "k")
    assert (d["priority"], d["ttr"], d["attempts"], d["max_attempts"]) == (3, 30, 2, 4)
    assert d["created_at"] == t["created_at"] and d["run_at"] is None
    assert RFC3339_MS.match(d["finished_at"])
    assert abs(parse_rfc3339(d["finished_at"]) - before) < 60
    assert parse_rfc3339(d["finished_at"]) >= parse_rfc3339(d["created_at"])
    samples, _ = http.metrics()
    assert samples[("defer_history_tasks", frozenset())] == 1


def test_history_of_a_cancelled_task(http):
    t = http.enqueue("h", {"payload": 1, "key": "c"})
    c = http.delete("/v1/tasks/%d" % t["id"]).json()
    g = http.task(t["id"])
    assert g == c
    assert (g["state"], g["key"], g["attempts"]) == ("cancelled", "c", 0)
    assert RFC3339_MS.match(g["finished_at"])


def test_failed_task_has_finished_at(http_deferd, http):
    # finished_at: "when it ended (done, failed, cancelled); null while alive".
    t = http.enqueue("h", {"payload": 1, "max_attempts": 1})
    with bs_worker(http_deferd, b"h") as w:
        w.reserve(timeout=2)
        assert w.cmd(b"release %d 0 0\r\n" % t["id"]) == b"RELEASED\r\n"
    f = http.task(t["id"])
    assert f["state"] == "failed"
    assert f["finished_at"] is not None and RFC3339_MS.match(f["finished_at"]), f


def test_history_of_a_failed_task_deleted_by_a_worker(http_deferd, http):
    t = http.enqueue("h", {"payload": 1, "max_attempts": 1, "key": "fk"})
    with bs_worker(http_deferd, b"h") as w:
        w.reserve(timeout=2)
        assert w.cmd(b"release %d 0 0\r\n" % t["id"]) == b"RELEASED\r\n"
        assert w.cmd(b"delete %d\r\n" % t["id"]) == b"DELETED\r\n"
    f = http.task(t["id"])
    assert (f["state"], f["attempts"], f["key"]) == ("failed", 1, "fk")
    assert "released by a worker" in f["last_error"]
    assert RFC3339_MS.match(f["finished_at"])
    check_error(http.delete("/v1/tasks/%d" % t["id"]), 409, "finished")


def test_history_max(make_http_deferd):
    srv = make_http_deferd(["--history-max", "3"])
    with HttpClient(srv.http_port) as h:
        ids = [h.enqueue("h", {"payload": i})["id"] for i in range(5)]
        for tid in ids:
            assert h.delete("/v1/tasks/%d" % tid).status == 200
        for tid in ids[:2]:
            check_error(h.get("/v1/tasks/%d" % tid), 404, "not_found")
            check_error(h.delete("/v1/tasks/%d" % tid), 404, "not_found")
        for tid in ids[2:]:
            assert h.task(tid)["state"] == "cancelled"
        assert h.get("/v1/stats").json()["history"] == 3
        samples, _ = h.metrics()
        assert samples[("defer_history_tasks", frozenset())] == 3


def test_history_age(make_http_deferd):
    srv = make_http_deferd(["--history-age", "1"])
    with HttpClient(srv.http_port) as h:
        t = h.enqueue("h", {"payload": 1})
        assert h.delete("/v1/tasks/%d" % t["id"]).status == 200
        assert h.task(t["id"])["state"] == "cancelled"
        eventually(lambda: h.get("/v1/tasks/%d" % t["id"]).status == 404, timeout=10)
        check_error(h.get("/v1/tasks/%d" % t["id"]), 404, "not_found")
        eventually(lambda: h.get("/v1/stats").json()["history"] == 0, timeout=10)


def test_no_history(make_http_deferd):
    srv = make_http_deferd(["--history-max", "0"])
    with HttpClient(srv.http_port) as h:
        t = h.enqueue("h", {"payload": 1})
        r = h.delete("/v1/tasks/%d" % t["id"])
        assert r.status == 200 and r.json()["id"] == t["id"] and r.json()["state"] == "cancelled", r
        check_error(h.get("/v1/tasks/%d" % t["id"]), 404, "not_found")


def test_cancel_answers_the_task_without_a_history(make_http_deferd):
    # "200 with the task, now cancelled" - also when no history is kept.
    srv = make_http_deferd(["--history-max", "0"])
    with HttpClient(srv.http_port) as h:
        t = h.enqueue("h", {"payload": 1, "key": "k", "priority": 4})
        r = h.delete("/v1/queues/h/keys/k")
        assert r.status == 200, r
        c = r.json()
        missing = {"id", "queue", "state", "priority", "ttr", "attempts", "max_attempts", "key", "created_at",
                   "run_at", "finished_at", "last_error"} - set(c)
        assert not missing, (missing, c)
        assert (c["queue"], c["priority"], c["key"], c["created_at"]) == ("h", 4, "k", t["created_at"])
        assert RFC3339_MS.match(c["finished_at"])


# ---------------------------------------------------------------------------
# events
# ---------------------------------------------------------------------------


class Events:
    """A /v1/events follower."""

    def __init__(self, port, query="", token=None):
        self.h = HttpClient(port, token=token, timeout=10)
        self.h.send(self.h.encode("GET", "/v1/events" + query))
        version, status, reason, headers = self.h.read_head()
        self.status = status
        self.headers = dict(headers)

    def next(self):
        """The next event that is not a heartbeat."""
        while True:
            chunk = self.h.read_chunk()
            assert chunk, "the stream ended"
            assert chunk.endswith(b"\n") and chunk.count(b"\n") == 1, chunk
            e = json.loads(chunk)
            if e.get("event") != "heartbeat":
                return e

    def take(self, n):
        return [self.next() for _ in range(n)]

    def close(self):
        self.h.close()


def put(srv, tube, body=b"x", ttr=60):
    """A task put over beanstalk (its id comes from INSERTED, so these tests
    do not depend on enqueue answers while a stream is followed)."""
    with srv.connect() as c:
        c.use(tube)
        return c.put(body, ttr=ttr)


def ready_ids(http, q):
    r = http.get("/v1/queues/%s/tasks?state=ready" % quote_queue(q))
    assert r.status == 200, r
    return [t["id"] for t in r.json()["tasks"]]


def test_events_stream(http_deferd, http):
    ev = Events(http_deferd.http_port)
    assert ev.status == 200
    assert ev.headers["transfer-encoding"] == "chunked"
    assert ev.headers["content-type"].startswith("application/x-ndjson")
    a = put(http_deferd, b"ev", b"task a")
    w = bs_worker(http_deferd, b"ev")
    w.reserve(timeout=2)
    assert w.cmd(b"release %d 0 0\r\n" % a) == b"RELEASED\r\n"
    w.reserve(timeout=2)
    assert w.cmd(b"bury %d 0\r\n" % a) == b"BURIED\r\n"
    assert http.post("/v1/queues/ev/kick").json() == {"kicked": 1}
    w.reserve(timeout=2)
    assert w.cmd(b"delete %d\r\n" % a) == b"DELETED\r\n"
    assert http.post("/v1/queues/ev/tasks", json={"payload": 2, "key": "k"}).status == 201
    (b,) = ready_ids(http, "ev")
    assert http.post("/v1/queues/ev/tasks", json={"payload": 3, "key": "k", "on_conflict": "replace"}).status == 200
    r = http.delete("/v1/queues/ev/keys/k")
    assert r.status == 200 and r.json()["id"] == b, r
    want = [("enqueued", a), ("reserved", a), ("released", a), ("reserved", a), ("buried", a), ("kicked", a),
            ("reserved", a), ("done", a), ("enqueued", b), ("replaced", b), ("cancelled", b)]
    got = ev.take(len(want))
    assert [(e["event"], e["task"]) for e in got] == want, got
    for e in got:
        assert set(e) == {"time", "event", "task", "queue"}, e
        assert e["queue"] == "ev" and RFC3339_MS.match(e["time"])
    # Timed out, then failed.
    assert http.post("/v1/queues/ev/tasks", json={"payload": 4, "ttr": 1, "max_attempts": 1}).status == 201
    (c,) = ready_ids(http, "ev")
    assert w.reserve(timeout=2)[0] == c
    got = ev.take(4)
    assert [(e["event"], e["task"]) for e in got] == [("enqueued", c), ("reserved", c),
                                                       ("timed_out", c), ("failed", c)], got
    w.close()
    ev.close()


def test_enqueue_answers_stay_intact_while_events_are_followed(http_deferd, http):
    ev = Events(http_deferd.http_port)
    r = http.post("/v1/queues/ev/tasks", json={"payload": {"n": 1}, "key": "k"})
    assert r.status == 201
    t = json.loads(r.body)  # the answer is the task object, nothing else
    assert t["payload"] == {"n": 1} and "event" not in t
    r = http.post("/v1/queues/ev/tasks", json={"payload": 2, "key": "k", "on_conflict": "replace"})
    assert json.loads(r.body)["replaced"] is True
    r = http.post("/v1/queues/ev/tasks/batch", json={"tasks": [{"payload": 3}, {"payload": 4}]})
    assert [x["payload"] for x in json.loads(r.body)["tasks"]] == [3, 4]
    assert [e["event"] for e in ev.take(4)] == ["enqueued", "replaced", "enqueued", "enqueued"]
    ev.close()


def test_events_for_one_queue(http_deferd, http):
    ev = Events(http_deferd.http_port, "?queue=mail%2Feu")
    assert ev.status == 200
    put(http_deferd, b"other")
    put(http_deferd, b"mail")
    t = put(http_deferd, b"mail/eu")
    put(http_deferd, b"other")
    u = put(http_deferd, b"mail/eu")
    got = ev.take(2)
    assert [(e["event"], e["task"], e["queue"]) for e in got] == [("enqueued", t, "mail/eu"),
                                                                  ("enqueued", u, "mail/eu")]
    ev.close()


def test_many_followers_and_closing_frees_them(http_deferd, http):
    port = http_deferd.http_port
    followers = [Events(port) for _ in range(5)]
    t = put(http_deferd, b"ev")
    for f in followers:
        assert f.next()["task"] == t
    samples, _ = http.metrics()
    assert metric(samples, "defer_connections", protocol="http") == 6
    for f in followers:
        f.close()
    # The server notices at the next event at the latest.
    put(http_deferd, b"ev")

    def conns():
        s, _ = http.metrics()
        return metric(s, "defer_connections", protocol="http") == 1

    eventually(conns)


def test_follower_that_does_not_keep_up_is_cut_off(http_deferd, http):
    # It reads nothing while some 8 MB of events happen: more than the
    # kernel's buffers and the server's allowance together.
    slow = HttpClient(http_deferd.http_port, timeout=30)
    slow.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    slow.send(slow.encode("GET", "/v1/events?queue=flood"))
    assert slow.read_head()[1] == 200
    with HttpClient(http_deferd.http_port, timeout=60) as h:
        for _ in range(10):
            assert h.post("/v1/queues/flood/tasks/batch", json={"tasks": [{"payload": 1}] * 10000}).status == 200
    events = []
    while True:
        chunk = slow.read_chunk()
        if not chunk:
            break
        events.append(json.loads(chunk)["event"])
    assert events[-1] == "overflow", events[-3:]
    assert set(events[:-1]) <= {"enqueued", "heartbeat"}
    assert 1000 < len(events) < 100000
    slow.expect_eof()
    slow.close()
    assert http.get("/healthz").status == 200
    assert http.queue("flood")["ready"] == 100000


@pytest.mark.parametrize("query", ["?queue=-bad", "?queue=", "?queue=a%20b", "?queue=%zz"])
def test_events_invalid_queue(http, query):
    r = http.get("/v1/events" + query)
    check_error(r, 400, "invalid_field")


# ---------------------------------------------------------------------------
# metrics
# ---------------------------------------------------------------------------


def test_metrics_match_reality(http_deferd, http):
    http.enqueue("m", {"payload": 1})
    http.enqueue("m", {"payload": 2, "delay": 600})
    held = http.enqueue("m", {"payload": 3, "priority": 0})
    buried = http.enqueue("m", {"payload": 4, "priority": 1})
    failed = http.enqueue("m", {"payload": 5, "priority": 2, "max_attempts": 1})
    done = http.enqueue("m", {"payload": 6, "priority": 3})
    cancelled = http.enqueue("m", {"payload": 7, "delay": 600})
    http.enqueue("n/x", {"payload": 8})
    w = bs_worker(http_deferd, b"m")
    got = [w.reserve(timeout=2)[0] for _ in range(4)]
    assert got == [held["id"], buried["id"], failed["id"], done["id"]]
    assert w.cmd(b"bury %d 0\r\n" % buried["id"]) == b"BURIED\r\n"
    assert w.cmd(b"release %d 0 0\r\n" % failed["id"]) == b"RELEASED\r\n"
    assert w.cmd(b"delete %d\r\n" % done["id"]) == b"DELETED\r\n"
    assert http.delete("/v1/tasks/%d" % cancelled["id"]).status == 200

    r = http.get("/metrics")
    assert r.status == 200
    assert r.header("content-type").startswith("text/plain")
    samples, types = http.metrics()
    assert types["defer_tasks"] == "gauge"
    for c in ("defer_enqueued_total", "defer_reserved_total", "defer_done_total", "defer_failed_total",
              "defer_cancelled_total", "defer_timeouts_total"):
        assert types[c] == "counter", c
    for g in ("defer_connections", "defer_resident_memory_bytes", "defer_task_bytes", "defer_draining"):
        assert types[g] == "gauge", g
    want = {"ready": 1, "delayed": 1, "reserved": 1, "buried": 1, "failed": 1}
    for state, n in want.items():
        assert metric(samples, "defer_tasks", queue="m", state=state) == n, state
    assert metric(samples, "defer_tasks", queue="n/x", state="ready") == 1
    # The same numbers as the queue object.
    q = http.queue("m")
    for state in want:
        assert q[state] == want[state]
    assert metric(samples, "defer_enqueued_total", queue="m") == 7
    assert metric(samples, "defer_reserved_total", queue="m") == 4
    assert metric(samples, "defer_done_total", queue="m") == 1
    assert metric(samples, "defer_failed_total", queue="m") == 1
    assert metric(samples, "defer_cancelled_total", queue="m") == 1
    assert metric(samples, "defer_timeouts_total", queue="m") == 0
    assert metric(samples, "defer_connections", protocol="beanstalk") == 1
    assert metric(samples, "defer_connections", protocol="http") == 1
    assert samples[("defer_resident_memory_bytes", frozenset())] > 0
    assert samples[("defer_task_bytes", frozenset())] > 0
    assert samples[("defer_draining", frozenset())] == 0
    # Without a log there is no fsync histogram.
    assert not [k for k in samples if k[0].startswith("defer_log_fsync_seconds")]
    w.close()


def test_metrics_with_a_log(make_http_deferd, tmp_path):
    srv = make_http_deferd(["-b", str(tmp_path / "data")])
    with HttpClient(srv.http_port) as h:
        for i in range(20):
            h.enqueue("m", {"payload": i})
        samples, types = h.metrics()
    assert types["defer_log_fsync_seconds"] == "histogram"
    buckets = sorted(
        ((float(dict(k[1])["le"]), v) for k, v in samples.items() if k[0] == "defer_log_fsync_seconds_bucket"),
    )
    assert len(buckets) >= 2 and buckets[-1][0] == float("inf")
    counts = [v for _, v in buckets]
    assert counts == sorted(counts), buckets  # cumulative
    assert buckets[-1][1] == samples[("defer_log_fsync_seconds_count", frozenset())]
    assert samples[("defer_log_fsync_seconds_count", frozenset())] >= 1
    assert samples[("defer_log_fsync_seconds_sum", frozenset())] >= 0
    assert types["defer_log_bytes"] == "gauge"
    assert samples[("defer_log_bytes", frozenset())] > 0
