"""The HTTP API under concurrency and crashes (docs/http-api.md):

* unique-key races: many connections enqueue the same key at the same
  moment (keep, replace, and replace while the holder is running): exactly
  one task holds the key, everyone is pointed at it;
* with a log (-b DIR), across SIGKILL and a restart: keys (dedup still
  works, replaced payloads, superseded holders), the history of finished
  tasks, attempts / failed state / last_error, whether a payload was JSON,
  and ids that never repeat; a crash at a random moment while keyed
  enqueues are in flight;
* a full disk (a small tmpfs): 507 storage_full for new tasks, other
  requests still work, and the server recovers.
"""

import base64
import os
import random
import subprocess
import threading
import time

import pytest

from helpers import HttpClient, bs_worker, eventually

pytestmark = pytest.mark.deferd_only


def crash(srv):
    """SIGKILL, as a power cut would stop the process."""
    srv.kill()
    srv.checked = True
    assert srv.sanitizer_report() is None, srv.stderr()


# ---------------------------------------------------------------------------
# races
# ---------------------------------------------------------------------------


def race(port, n, make_task, queue="race"):
    """n connections, each sends one enqueue at the same moment; returns the
    responses in thread order."""
    clients = [HttpClient(port, timeout=30) for _ in range(n)]
    barrier = threading.Barrier(n)
    results = [None] * n

    def run(i):
        data = clients[i].encode("POST", "/v1/queues/%s/tasks" % queue, json=make_task(i))
        barrier.wait()
        clients[i].send(data)
        results[i] = clients[i].read_response()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
        assert not t.is_alive()
    for c in clients:
        c.close()
    assert all(results), results
    return results


def test_many_connections_same_key_keep(http_deferd, http):
    rs = race(http_deferd.http_port, 50, lambda i: {"payload": {"from": i}, "key": "same"})
    created = [r for r in rs if r.status == 201]
    assert len(created) == 1, [r.status for r in rs]
    holder = created[0].json()
    for r in rs:
        if r is created[0]:
            continue
        assert r.status == 200, r
        d = r.json()
        assert d["deduplicated"] is True and d["id"] == holder["id"] and d["payload"] == holder["payload"]
    q = http.queue("race")
    assert (q["ready"], q["total_enqueued"]) == (1, 1)
    assert http.task(holder["id"])["key"] == "same"


def test_many_connections_same_key_replace(http_deferd, http):
    rs = race(http_deferd.http_port, 50,
              lambda i: {"payload": {"from": i}, "key": "same", "on_conflict": "replace", "priority": i})
    created = [r for r in rs if r.status == 201]
    assert len(created) == 1, [r.status for r in rs]
    tid = created[0].json()["id"]
    for r in rs:
        if r is not created[0]:
            assert r.status == 200 and r.json()["replaced"] is True and r.json()["id"] == tid, r
    q = http.queue("race")
    assert q["ready"] == 1 and q["total_enqueued"] == 1
    final = http.task(tid)
    # The last one applied wins, whole: its payload with its priority.
    assert final["priority"] == final["payload"]["from"]
    listed = http.get("/v1/queues/race/tasks?state=ready").json()["tasks"]
    assert [t["id"] for t in listed] == [tid]


def test_many_connections_replace_while_the_holder_runs(http_deferd, http):
    old = http.enqueue("race", {"payload": "old", "key": "same"})
    w = bs_worker(http_deferd, b"race")
    assert w.reserve(timeout=2)[0] == old["id"]
    rs = race(http_deferd.http_port, 50, lambda i: {"payload": i, "key": "same", "on_conflict": "replace"})
    created = [r for r in rs if r.status == 201]
    assert len(created) == 1, [r.status for r in rs]
    new = created[0].json()
    assert new["superseded"] == old["id"]
    for r in rs:
        if r is not created[0]:
            assert r.status == 200 and r.json()["replaced"] is True and r.json()["id"] == new["id"], r
    q = http.queue("race")
    assert (q["ready"], q["reserved"], q["total_enqueued"]) == (1, 1, 2)
    assert http.task(old["id"])["key"] is None
    w.close()


def test_many_connections_many_keys(http_deferd, http):
    # 60 connections, 6 keys, keep: one task per key.
    rs = race(http_deferd.http_port, 60, lambda i: {"payload": i, "key": "k%d" % (i % 6)})
    by_key = {}
    for i, r in enumerate(rs):
        assert r.status in (200, 201), r
        by_key.setdefault("k%d" % (i % 6), set()).add(r.json()["id"])
    assert all(len(ids) == 1 for ids in by_key.values()), by_key
    assert sum(r.status == 201 for r in rs) == 6
    assert http.queue("race")["ready"] == 6


# ---------------------------------------------------------------------------
# across SIGKILL
# ---------------------------------------------------------------------------


def test_keys_survive_a_crash(make_http_deferd, tmp_path):
    data = str(tmp_path / "data")
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        kept = h.enqueue("net", {"payload": {"room": 301}, "key": "room-301", "delay": 3600})
        rep = h.enqueue("net", {"payload": "v1", "key": "room-302", "priority": 5})
        h.enqueue("net", {"payload": "v2", "key": "room-302", "on_conflict": "replace", "priority": 6}, expect=200)
        old = h.enqueue("net", {"payload": "running", "key": "room-303", "priority": 0})
        w = bs_worker(srv, b"net")
        assert w.reserve(timeout=2)[0] == old["id"]
        new = h.enqueue("net", {"payload": "newer", "key": "room-303", "on_conflict": "replace"})
        assert new["superseded"] == old["id"]
        gone = h.enqueue("net", {"payload": 1, "key": "room-304"})
        assert h.delete("/v1/queues/net/keys/room-304").status == 200
        other = h.enqueue("mail", {"payload": 1, "key": "room-301"})
    crash(srv)
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        d = h.enqueue("net", {"payload": "again", "key": "room-301"}, expect=200)
        assert d["deduplicated"] is True and d["id"] == kept["id"] and d["payload"] == {"room": 301}
        assert d["state"] == "delayed" and d["run_at"] == kept["run_at"]
        d = h.enqueue("net", {"payload": "again", "key": "room-302"}, expect=200)
        assert (d["id"], d["payload"], d["priority"]) == (rep["id"], "v2", 6)
        d = h.enqueue("net", {"payload": "again", "key": "room-303"}, expect=200)
        assert d["id"] == new["id"] and d["payload"] == "newer"
        # The superseded task came back (its reservation ended with the
        # process) without the key.
        o = h.task(old["id"])
        assert (o["state"], o["key"], o["payload"]) == ("ready", None, "running")
        # A cancelled holder's key is free.
        n = h.enqueue("net", {"payload": 2, "key": "room-304"})
        assert n["id"] > gone["id"]
        assert h.enqueue("mail", {"payload": 2, "key": "room-301"}, expect=200)["id"] == other["id"]
        r = h.delete("/v1/queues/net/keys/room-302")
        assert r.status == 200 and r.json()["id"] == rep["id"]


def test_history_survives_a_crash(make_http_deferd, tmp_path):
    data = str(tmp_path / "data")
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        done = h.enqueue("h", {"payload": 1, "key": "d", "priority": 0, "max_attempts": 3})
        failed = h.enqueue("h", {"payload": 2, "key": "f", "priority": 1, "max_attempts": 1})
        cancelled = h.enqueue("h", {"payload": 3, "key": "c", "delay": 100})
        with bs_worker(srv, b"h") as w:
            assert w.reserve(timeout=2)[0] == done["id"]
            assert w.cmd(b"delete %d\r\n" % done["id"]) == b"DELETED\r\n"
            assert w.reserve(timeout=2)[0] == failed["id"]
            assert w.cmd(b"release %d 1 0\r\n" % failed["id"]) == b"RELEASED\r\n"
            assert w.cmd(b"delete %d\r\n" % failed["id"]) == b"DELETED\r\n"
        assert h.delete("/v1/tasks/%d" % cancelled["id"]).status == 200
        before = {t["id"]: h.task(t["id"]) for t in (done, failed, cancelled)}
    assert [before[t["id"]]["state"] for t in (done, failed, cancelled)] == ["done", "failed", "cancelled"]
    crash(srv)
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        for tid, t in before.items():
            assert h.task(tid) == t
        assert h.get("/v1/stats").json()["history"] == 3
        # Finished tasks stay finished.
        assert h.delete("/v1/tasks/%d" % done["id"]).status == 409
        assert h.delete("/v1/tasks/%d" % cancelled["id"]).json() == before[cancelled["id"]]
    # And a second restart, after a clean stop, still has them.
    srv.stop_and_check()
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        for tid, t in before.items():
            assert h.task(tid) == t


def test_history_retention_applies_after_a_restart(make_http_deferd, tmp_path):
    data = str(tmp_path / "data")
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        ids = [h.enqueue("h", {"payload": i})["id"] for i in range(6)]
        for tid in ids:
            assert h.delete("/v1/tasks/%d" % tid).status == 200
    crash(srv)
    srv = make_http_deferd(["-b", data, "--history-max", "2"])
    with HttpClient(srv.http_port) as h:
        assert [h.get("/v1/tasks/%d" % tid).status for tid in ids] == [404] * 4 + [200] * 2


def test_attempts_and_failures_survive_a_crash(make_http_deferd, tmp_path):
    data = str(tmp_path / "data")
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        failed = h.enqueue("a", {"payload": "f", "max_attempts": 2, "priority": 0, "key": "fk"})
        partly = h.enqueue("a", {"payload": "p", "max_attempts": 3, "priority": 1})
        timed = h.enqueue("a", {"payload": "t", "max_attempts": 4, "priority": 2, "ttr": 1})
        w = bs_worker(srv, b"a")
        for _ in range(2):
            assert w.reserve(timeout=2)[0] == failed["id"]
            assert w.cmd(b"release %d 0 0\r\n" % failed["id"]) == b"RELEASED\r\n"
        assert w.reserve(timeout=2)[0] == partly["id"]
        assert w.cmd(b"release %d 1 0\r\n" % partly["id"]) == b"RELEASED\r\n"
        assert w.reserve(timeout=2)[0] == partly["id"]
        assert w.cmd(b"bury %d 1\r\n" % partly["id"]) == b"BURIED\r\n"
        assert w.reserve(timeout=2)[0] == timed["id"]
        eventually(lambda: h.task(timed["id"])["state"] == "ready")
        w.close()
        before = {t["id"]: h.task(t["id"]) for t in (failed, partly, timed)}
    assert before[failed["id"]]["state"] == "failed" and before[failed["id"]]["last_error"]
    assert before[timed["id"]]["last_error"] == "attempt 1 timed out (ttr 1 s)"
    crash(srv)
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        for tid, t in before.items():
            assert h.task(tid) == t
        q = h.queue("a")
        assert (q["ready"], q["buried"], q["failed"]) == (1, 1, 1), q
        # Still holding its key while failed; kick gives fresh attempts.
        assert h.enqueue("a", {"payload": "x", "key": "fk"}, expect=200)["id"] == failed["id"]
        assert h.post("/v1/queues/a/kick").json() == {"kicked": 2}
        k = h.task(failed["id"])
        assert (k["state"], k["attempts"]) == ("ready", 0)
    crash(srv)
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        k = h.task(failed["id"])
        assert (k["state"], k["attempts"], k["max_attempts"]) == ("ready", 0, 2)
        # Two fresh attempts after the kick, not zero.
        with bs_worker(srv, b"a") as w:
            assert w.reserve(timeout=2)[0] == failed["id"]
            assert w.cmd(b"release %d 0 0\r\n" % failed["id"]) == b"RELEASED\r\n"
        assert h.task(failed["id"])["state"] == "ready"


def test_replaced_failed_holder_stays_live_after_a_crash(make_http_deferd, tmp_path):
    data = str(tmp_path / "data")
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        t = h.enqueue("a", {"payload": 1, "key": "k", "max_attempts": 1})
        with bs_worker(srv, b"a") as w:
            w.reserve(timeout=2)
            assert w.cmd(b"release %d 0 0\r\n" % t["id"]) == b"RELEASED\r\n"
        assert h.task(t["id"])["state"] == "failed"
        n = h.enqueue("a", {"payload": 2, "key": "k", "on_conflict": "replace", "max_attempts": 3}, expect=200)
        assert (n["state"], n["attempts"], n["last_error"]) == ("ready", 0, None)
    crash(srv)
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        got = h.task(t["id"])
        assert got == {k: v for k, v in n.items() if k != "replaced"}
        q = h.queue("a")
        assert (q["ready"], q["buried"], q["failed"]) == (1, 0, 0), q


def test_payload_kinds_survive_a_crash(make_http_deferd, tmp_path):
    data = str(tmp_path / "data")
    srv = make_http_deferd(["-b", data])
    raw = bytes(range(256))
    with HttpClient(srv.http_port) as h:
        j = h.enqueue("p", {"payload": {"text": "ünï ✓ 😀", "list": [1, None, True], "n": -3}})
        s = h.enqueue("p", {"payload": "a string"})
        b = h.enqueue("p", {"payload_base64": base64.b64encode(raw).decode()})
        looks_json = h.enqueue("p", {"payload_base64": base64.b64encode(b'{"a":1}').decode()})
        swapped = h.enqueue("p", {"payload": {"was": "json"}, "key": "sw"})
        h.enqueue("p", {"payload_base64": "AAE=", "key": "sw", "on_conflict": "replace"}, expect=200)
    with srv.connect() as c:
        c.use(b"p")
        bs = c.put(b'["put over beanstalk"]')
    crash(srv)
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        assert h.task(j["id"])["payload"] == {"text": "ünï ✓ 😀", "list": [1, None, True], "n": -3}
        assert h.task(s["id"])["payload"] == "a string"
        t = h.task(b["id"])
        assert "payload" not in t and base64.b64decode(t["payload_base64"]) == raw
        t = h.task(looks_json["id"])
        assert "payload" not in t and base64.b64decode(t["payload_base64"]) == b'{"a":1}'
        t = h.task(swapped["id"])
        assert "payload" not in t and t["payload_base64"] == "AAE="
        t = h.task(bs)
        assert "payload" not in t and base64.b64decode(t["payload_base64"]) == b'["put over beanstalk"]'


def test_ids_never_repeat_across_crashes(make_http_deferd, tmp_path):
    data = str(tmp_path / "data")
    seen = set()
    for round_ in range(3):
        srv = make_http_deferd(["-b", data])
        with HttpClient(srv.http_port) as h:
            ids = [h.enqueue("ids", {"payload": i})["id"] for i in range(5)]
            ids += [t["id"] for t in h.post("/v1/queues/ids/tasks/batch",
                                             json={"tasks": [{"payload": 1}] * 5}).json()["tasks"]]
            assert not seen & set(ids), (round_, sorted(seen & set(ids)))
            assert min(ids) > max(seen, default=0)
            seen |= set(ids)
            # Everything finishes: nothing is left to carry the ids.
            for tid in ids:
                assert h.delete("/v1/tasks/%d" % tid).status == 200
        crash(srv)


def test_crash_while_keyed_enqueues_are_in_flight(make_http_deferd, tmp_path):
    """Each thread owns its keys and replaces them over and over; after a
    SIGKILL at a random moment every acknowledged key still has one task,
    holding at least the last acknowledged payload (or one in flight)."""
    data = str(tmp_path / "data")
    srv = make_http_deferd(["-b", data])
    port = srv.http_port
    acked = {}  # key -> (id, last acknowledged n)
    inflight = {}  # key -> n sent without an answer
    lock = threading.Lock()
    stop = threading.Event()

    def worker(tid):
        rnd = random.Random(tid)
        try:
            h = HttpClient(port, timeout=10)
        except OSError:
            return
        n = 0
        try:
            while not stop.is_set():
                n += 1
                key = "t%d-k%d" % (tid, rnd.randrange(8))
                with lock:
                    inflight[key] = n
                r = h.post("/v1/queues/crash/tasks",
                           json={"payload": {"n": n, "key": key}, "key": key, "on_conflict": "replace"})
                assert r.status in (200, 201), r
                with lock:
                    prev = acked.get(key)
                    if prev is not None:
                        assert r.json()["id"] == prev[0], (key, prev, r)
                    acked[key] = (r.json()["id"], n)
                    del inflight[key]
        except (OSError, EOFError):
            return
        finally:
            h.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    time.sleep(random.uniform(0.5, 1.2))
    crash(srv)
    stop.set()
    for t in threads:
        t.join(30)
    assert len(acked) > 4, "too little work to mean anything"
    srv = make_http_deferd(["-b", data])
    with HttpClient(srv.http_port) as h:
        listed = []
        after = 0
        while True:
            body = h.get("/v1/queues/crash/tasks?state=ready&limit=1000&payload=1&after=%d" % after).json()
            listed += body["tasks"]
            if body["next"] is None:
                break
            after = body["next"]
        keys = [t["key"] for t in listed]
        assert len(keys) == len(set(keys)), "a key held by two tasks"
        by_key = {t["key"]: t for t in listed}
        for key, (tid, n) in acked.items():
            t = by_key.get(key)
            assert t is not None, "acknowledged key %s lost" % key
            assert t["id"] == tid
            assert t["payload"]["n"] == n or t["payload"]["n"] == inflight.get(key), (key, n, t)
            d = h.enqueue("crash", {"payload": 0, "key": key}, expect=200)
            assert d["id"] == tid


# ---------------------------------------------------------------------------
# a full disk
# ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs: a real file system that really fills up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): %s" % r.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_is_507_for_new_tasks_only(make_http_deferd, small_disk):
    data = small_disk / "data"
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (1536 * 1024))
    srv = make_http_deferd(["-b", str(data)])
    payload = base64.b64encode(b"f" * 2000).decode()
    acked = []
    with HttpClient(srv.http_port) as h:
        for i in range(5000):
            r = h.post("/v1/queues/full/tasks", json={"payload_base64": payload, "key": "k%d" % i})
            if r.status == 507:
                break
            assert r.status == 201, r
            acked.append(r.json()["id"])
        else:
            pytest.fail("the disk never filled up")
        assert len(acked) > 100
        assert r.json()["error"]["code"] == "storage_full", r
        assert "full" in r.json()["error"]["message"]
        r = h.post("/v1/queues/full/tasks/batch", json={"tasks": [{"payload_base64": payload}] * 3})
        assert r.status == 507 and r.json()["error"]["code"] == "storage_full", r
        # Other requests still work: reads, cancels, health.
        assert h.get("/healthz").status == 200
        assert h.task(acked[0])["state"] == "ready"
        for tid in acked[:20]:
            r = h.delete("/v1/tasks/%d" % tid)
            assert r.status == 200 and r.json()["state"] == "cancelled", r
        assert h.queue("full")["ready"] == len(acked) - 20
        assert h.get("/v1/stats").json()["log"]["disk_full"] is True
        samples, _ = h.metrics()
        assert samples[("defer_log_disk_full", frozenset())] == 1
    crash(srv)
    srv = make_http_deferd(["-b", str(data)])
    with HttpClient(srv.http_port) as h:
        assert h.queue("full")["ready"] == len(acked) - 20
        assert h.get("/v1/tasks/%d" % acked[0]).json()["state"] == "cancelled"
        # Space returns: new tasks are taken again.
        os.unlink(filler)
        eventually(lambda: h.post("/v1/queues/full/tasks", json={"payload": "ok"}).status == 201, timeout=15)
        # And the keys acknowledged before the disk filled still hold.
        d = h.enqueue("full", {"payload": 1, "key": "k%d" % (len(acked) - 1)}, expect=200)
        assert d["id"] == acked[-1]
