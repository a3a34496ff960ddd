"""Time: TTR expiry, DEADLINE_SOON, reserve timeouts, delays, pauses.

These wait for real seconds (TTRs of 1-2 s), so they are grouped here. They
never assert that something happened quickly - only that it happened, or
that it has not happened yet at a point well before it is due.

(Run against beanstalkd 1.12 with DEFER_TEST_REFERENCE=1, the TTR-expiry
tests can fail now and then: beanstalkd sometimes misses a TTR expiry until
the connection holding the job does something.)"""

import time

from helpers import eventually

DS = b"DEADLINE_SOON\r\n"


def wait_job_state(conn, jid, state, timeout=10.0):
    """stats-job of jid until its state is `state`; returns that stats-job.
    Polls every 0.2 s: beanstalkd 1.12 does not expire TTRs while it is kept
    busy without a pause, which a tighter loop would do."""
    def check():
        s = conn.stats_job(jid)
        return s if s["state"] == state else None

    return eventually(check, timeout=timeout, interval=0.2)


def test_ttr_expiry_returns_job_to_ready(deferd):
    a, b = deferd.connect(), deferd.connect()
    jid = a.put(b"x", ttr=1)
    assert a.reserve() == (jid, b"x")
    st = wait_job_state(b, jid, "ready")
    assert (st["timeouts"], st["reserves"]) == ("1", "1")
    s = b.stats()
    assert (s["job-timeouts"], s["current-jobs-reserved"], s["current-jobs-ready"]) == ("1", "0", "1")
    # The former holder lost it.
    assert a.cmd(b"touch %d\r\n" % jid) == b"NOT_FOUND\r\n"
    assert a.cmd(b"release %d 0 0\r\n" % jid) == b"NOT_FOUND\r\n"
    assert a.cmd(b"bury %d 0\r\n" % jid) == b"NOT_FOUND\r\n"
    assert b.reserve(timeout=0) == (jid, b"x")


def test_ttr_expiry_wakes_a_waiting_reserve(deferd):
    a, b = deferd.connect(), deferd.connect()
    jid = a.put(b"x", ttr=1)
    a.reserve()
    b.send(b"reserve\r\n")
    b.expect_nothing(0.2)
    assert b.reply() == b"RESERVED %d 1\r\nx\r\n" % jid  # after the TTR runs out
    assert b.stats_job(jid)["timeouts"] == "1"


def test_deadline_soon_immediately(client):
    jid = client.put(b"x", ttr=1)
    client.reserve()  # a TTR of 1 s is inside the safety margin at once
    assert client.cmd(b"reserve\r\n") == DS
    assert client.cmd(b"reserve-with-timeout 0\r\n") == DS
    assert client.cmd(b"reserve-with-timeout 10\r\n") == DS
    assert client.stats_job(jid)["state"] == "reserved"
    assert client.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
    assert client.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"


def test_ready_job_wins_over_deadline_soon(client):
    j1 = client.put(b"a", ttr=1)
    j2 = client.put(b"b", ttr=1)
    assert client.reserve()[0] == j1
    assert client.reserve()[0] == j2
    assert client.cmd(b"reserve\r\n") == DS


def test_deadline_soon_while_waiting(deferd):
    c = deferd.connect()
    jid = c.put(b"x", ttr=3)
    c.reserve()
    c.send(b"reserve\r\n")
    c.expect_nothing(0.5)  # 3 s TTR: the margin starts after 2 s
    assert c.reply() == DS
    st = c.stats_job(jid)
    assert st["state"] == "reserved"
    assert c.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"


def test_deadline_soon_cancels_wait_in_all_tubes(deferd):
    c, p = deferd.connect(), deferd.connect()
    c.watch("other")
    c.put(b"x", ttr=2)
    c.reserve()
    c.send(b"reserve-with-timeout 30\r\n")
    assert c.reply() == DS
    assert p.stats()["current-waiting"] == "0"
    assert p.stats_tube("other")["current-waiting"] == "0"
    p.use("other")
    jid = p.put(b"later")
    c.expect_nothing(0.2)  # no longer waiting: nothing delivered
    assert p.stats_job(jid)["state"] == "ready"


def test_touch_restarts_ttr(deferd):
    a, b = deferd.connect(), deferd.connect()
    jid = a.put(b"x", ttr=2)
    a.reserve()
    time.sleep(1.5)
    assert a.cmd(b"touch %d\r\n" % jid) == b"TOUCHED\r\n"
    assert a.stats_job(jid)["time-left"] == "1"  # ttr - 1, read within the same second
    time.sleep(0.8)  # 2.3 s after reserve (past the old deadline), 0.8 s after touch
    assert b.stats_job(jid)["state"] == "reserved"
    assert a.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"


def test_reserve_with_timeout_expires(client):
    assert client.cmd(b"reserve-with-timeout 1\r\n") == b"TIMED_OUT\r\n"
    s = client.stats()
    assert (s["current-waiting"], s["cmd-reserve-with-timeout"]) == ("0", "1")
    # and the connection is usable afterwards
    jid = client.put(b"x")
    assert client.reserve(timeout=1) == (jid, b"x")


def test_reserve_with_timeout_not_early(deferd):
    w, p = deferd.connect(), deferd.connect()
    w.send(b"reserve-with-timeout 2\r\n")
    w.expect_nothing(0.5)
    eventually(lambda: p.stats()["current-waiting"] == "1")
    assert w.reply() == b"TIMED_OUT\r\n"
    assert p.stats()["current-waiting"] == "0"


def test_delayed_job_becomes_ready(deferd):
    c = deferd.connect()
    jid = c.put(b"later", delay=1)
    assert c.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"
    assert c.stats_job(jid)["state"] == "delayed"
    assert c.reserve(timeout=10) == (jid, b"later")  # a waiting reserve gets it


def test_delayed_job_ready_without_waiter(deferd):
    c = deferd.connect()
    jid = c.put(b"later", delay=1)
    st = wait_job_state(c, jid, "ready")
    assert st["time-left"] == "0"
    assert c.stats()["current-jobs-delayed"] == "0"
    assert c.cmd(b"peek-ready\r\n") == b"FOUND %d 5\r\nlater\r\n" % jid


def test_release_with_delay(client):
    jid = client.put(b"x")
    client.reserve()
    assert client.cmd(b"release %d 0 1\r\n" % jid) == b"RELEASED\r\n"
    assert client.stats_job(jid)["state"] == "delayed"
    assert client.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"
    assert client.reserve(timeout=10) == (jid, b"x")


def test_pause_tube_delays_reservation_and_wakes_waiter(deferd):
    w, p = deferd.connect(), deferd.connect()
    jid = p.put(b"x")
    assert p.cmd(b"pause-tube default 2\r\n") == b"PAUSED\r\n"
    assert w.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"
    w.send(b"reserve\r\n")
    w.expect_nothing(0.5)
    s = p.stats_tube("default")
    assert s["pause"] == "2"
    assert s["pause-time-left"] in ("0", "1", "2")
    assert w.reply() == b"RESERVED %d 1\r\nx\r\n" % jid  # once the pause ends
    s = p.stats_tube("default")
    assert (s["pause"], s["pause-time-left"]) == ("0", "0")


def test_pause_tube_put_during_pause_wakes_after(deferd):
    w, p = deferd.connect(), deferd.connect()
    p.cmd(b"pause-tube default 1\r\n")
    w.send(b"reserve\r\n")
    eventually(lambda: p.stats()["current-waiting"] == "1")
    jid = p.put(b"during")
    assert w.reply() == b"RESERVED %d 6\r\nduring\r\n" % jid


def test_pause_only_affects_that_tube(deferd):
    c = deferd.connect()
    c.use("paused")
    c.put(b"p")
    c.use("default")
    jid = c.put(b"d", pri=100)
    c.watch("paused")
    c.cmd(b"pause-tube paused 100\r\n")
    assert c.reserve(timeout=0) == (jid, b"d")
    assert c.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"
    assert c.cmd(b"peek 1\r\n") == b"FOUND 1 1\r\np\r\n"


def test_pause_tube_0(client):
    jid = client.put(b"x")
    assert client.cmd(b"pause-tube default 0\r\n") == b"PAUSED\r\n"
    assert client.reserve(timeout=5) == (jid, b"x")
    assert client.stats_tube("default")["cmd-pause-tube"] == "1"
