"""Worker and other commands: reserve family, delete, release, bury, touch,
watch/ignore, peek family, kick, kick-job, quit, connection close."""

import socket
import struct

import pytest

from helpers import eventually

NF = b"NOT_FOUND\r\n"


# ---- reserve ----


def test_reserve_order_priority_then_id(client):
    ids = {}
    for name, pri in [("p5", 5), ("p1a", 1), ("p9", 9), ("p1b", 1), ("p0", 0), ("p5b", 5)]:
        ids[name] = client.put(name, pri=pri)
    got = [client.reserve()[1].decode() for _ in range(6)]
    assert got == ["p0", "p1a", "p1b", "p5", "p5b", "p9"]


def test_reserve_order_across_watched_tubes(client):
    client.use("a")
    client.put("a3", pri=3)
    client.put("a1", pri=1)
    client.use("b")
    client.put("b1", pri=1)
    client.put("b0", pri=0)
    client.use("c")
    client.put("c0", pri=0)  # not watched
    client.watch("a")
    client.watch("b")
    client.ignore("default")
    got = [client.reserve(timeout=0)[1].decode() for _ in range(4)]
    assert got == ["b0", "a1", "b1", "a3"]
    assert client.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"


def test_reserve_sets_state_and_counts(client):
    jid = client.put(b"x")
    assert client.reserve() == (jid, b"x")
    st = client.stats_job(jid)
    assert st["state"] == "reserved"
    assert st["reserves"] == "1"
    s = client.stats()
    assert s["current-jobs-reserved"] == "1"
    assert s["current-workers"] == "1"
    assert s["cmd-reserve"] == "1"


def test_reserve_waits_and_is_woken_by_put(deferd):
    w, p = deferd.connect(), deferd.connect()
    w.send(b"reserve\r\n")
    w.expect_nothing()
    eventually(lambda: p.stats()["current-waiting"] == "1")
    assert p.stats_tube("default")["current-waiting"] == "1"
    jid = p.put(b"wake up")
    assert w.reply() == b"RESERVED %d 7\r\nwake up\r\n" % jid
    assert p.stats()["current-waiting"] == "0"


def test_reserve_not_woken_by_put_to_unwatched_tube(deferd):
    w, p = deferd.connect(), deferd.connect()
    w.send(b"reserve-with-timeout 60\r\n")
    w.expect_nothing()
    p.use("elsewhere")
    p.put(b"no")
    w.expect_nothing()
    p.use("default")
    jid = p.put(b"yes")
    assert w.reply() == b"RESERVED %d 3\r\nyes\r\n" % jid


def test_reserve_woken_by_kick_and_release(deferd):
    w, p = deferd.connect(), deferd.connect()
    jid = p.put(b"k", delay=100)
    w.send(b"reserve\r\n")
    w.expect_nothing()
    assert p.cmd(b"kick 1\r\n") == b"KICKED 1\r\n"
    assert w.reply() == b"RESERVED %d 1\r\nk\r\n" % jid
    p.put(b"r")
    assert p.reserve()[1] == b"r"
    w.send(b"reserve\r\n")
    w.expect_nothing()
    assert p.cmd(b"release 2 0 0\r\n") == b"RELEASED\r\n"
    assert w.reply() == b"RESERVED 2 1\r\nr\r\n"


@pytest.mark.deferd_only
def test_waiters_are_served_oldest_first(deferd):
    """deferd hands jobs to waiting connections oldest first (engine.h).
    beanstalkd 1.12's order is an artifact of its set implementation (with 4
    waiters it serves 1st, 2nd, 4th, 3rd), which no client relies on."""
    ws = [deferd.connect() for _ in range(4)]
    p = deferd.connect()
    for i, w in enumerate(ws):
        w.send(b"reserve\r\n")
        eventually(lambda: p.stats()["current-waiting"] == str(i + 1))
    for i, w in enumerate(ws):
        jid = p.put(b"%d" % i)
        assert w.reply() == b"RESERVED %d 1\r\n%d\r\n" % (jid, i)


def test_waiter_watching_several_tubes(deferd):
    w, p = deferd.connect(), deferd.connect()
    w.watch("x")
    w.watch("y")
    w.send(b"reserve\r\n")
    eventually(lambda: p.stats_tube("y")["current-waiting"] == "1")
    assert p.stats_tube("x")["current-waiting"] == "1"
    assert p.stats_tube("default")["current-waiting"] == "1"
    p.use("y")
    jid = p.put(b"y")
    assert w.reply() == b"RESERVED %d 1\r\ny\r\n" % jid
    assert p.stats_tube("x")["current-waiting"] == "0"


def test_commands_pipelined_behind_a_waiting_reserve(deferd):
    w, p = deferd.connect(), deferd.connect()
    w.send(b"reserve\r\nlist-tube-used\r\n")
    w.expect_nothing()
    p.put(b"x")
    assert w.replies(2) == [b"RESERVED 1 1\r\nx\r\n", b"USING default\r\n"]


def test_reserve_with_timeout_0(client):
    assert client.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"
    jid = client.put(b"x")
    assert client.cmd(b"reserve-with-timeout 0\r\n") == b"RESERVED %d 1\r\nx\r\n" % jid
    assert client.stats()["cmd-reserve-with-timeout"] == "2"


@pytest.mark.parametrize("arg", [b"abc", b"", b"x1", b"0x"])
def test_reserve_with_timeout_loose_parsing_means_0(client, arg):
    assert client.cmd(b"reserve-with-timeout %s\r\n" % arg) == b"TIMED_OUT\r\n"


@pytest.mark.parametrize("arg", [b"-1", b"-100", b"9999999"])
def test_reserve_with_timeout_waits(deferd, arg):
    w, p = deferd.connect(), deferd.connect()
    w.send(b"reserve-with-timeout %s\r\n" % arg)
    w.expect_nothing(0.5)
    jid = p.put(b"x")
    assert w.reply() == b"RESERVED %d 1\r\nx\r\n" % jid


def test_reserve_job_any_state_any_tube(client):
    ready = client.put(b"r")
    client.use("other")
    delayed = client.put(b"d", delay=100)
    buried = client.put(b"b")
    assert client.cmd(b"reserve-job %d\r\n" % buried) == b"RESERVED %d 1\r\nb\r\n" % buried
    assert client.cmd(b"bury %d 0\r\n" % buried) == b"BURIED\r\n"
    for jid, body in [(ready, b"r"), (delayed, b"d"), (buried, b"b")]:
        assert client.cmd(b"reserve-job %d\r\n" % jid) == b"RESERVED %d 1\r\n%s\r\n" % (jid, body)
        assert client.stats_job(jid)["state"] == "reserved"
    assert client.stats()["current-jobs-reserved"] == "3"


def test_reserve_job_not_found(deferd):
    a, b = deferd.connect(), deferd.connect()
    jid = a.put(b"x")
    assert a.cmd(b"reserve-job %d\r\n" % jid).startswith(b"RESERVED")
    assert a.cmd(b"reserve-job %d\r\n" % jid) == NF  # already reserved by me
    assert b.cmd(b"reserve-job %d\r\n" % jid) == NF  # reserved by another
    assert a.cmd(b"reserve-job 999\r\n") == NF
    assert a.cmd(b"reserve-job 0\r\n") == NF


def test_reserve_job_missing_does_not_make_a_worker(client):
    # beanstalkd 1.12 counts a connection as a worker only once reserve-job
    # actually reserves something.
    assert client.cmd(b"reserve-job 5\r\n") == NF
    assert client.stats()["current-workers"] == "0"


# ---- delete ----


def test_delete_in_every_state(client):
    r = client.put(b"r")
    d = client.put(b"d", delay=100)
    b = client.put(b"b")
    client.cmd(b"reserve-job %d\r\n" % b)
    assert client.cmd(b"bury %d 0\r\n" % b) == b"BURIED\r\n"
    v = client.put(b"v")
    client.cmd(b"reserve-job %d\r\n" % v)
    for jid in (r, d, b, v):
        assert client.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
        assert client.cmd(b"delete %d\r\n" % jid) == NF
        assert client.cmd(b"peek %d\r\n" % jid) == NF
    s = client.stats()
    assert [s[k] for k in ("current-jobs-ready", "current-jobs-delayed", "current-jobs-buried",
                           "current-jobs-reserved")] == ["0"] * 4
    assert s["cmd-delete"] == "8"
    assert client.stats_tube("default")["cmd-delete"] == "4"


def test_job_reserved_by_another_connection(deferd):
    a, b = deferd.connect(), deferd.connect()
    jid = a.put(b"x")
    a.reserve()
    for cmd in (b"delete %d", b"release %d 0 0", b"bury %d 0", b"touch %d", b"reserve-job %d", b"kick-job %d"):
        assert b.cmd(cmd % jid + b"\r\n") == NF, cmd
    assert b.cmd(b"peek %d\r\n" % jid) == b"FOUND %d 1\r\nx\r\n" % jid  # peek sees it
    assert a.stats_job(jid)["state"] == "reserved"
    assert a.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"


# ---- release ----


def test_release(client):
    jid = client.put(b"x", pri=5)
    client.reserve()
    assert client.cmd(b"release %d 3 0\r\n" % jid) == b"RELEASED\r\n"
    st = client.stats_job(jid)
    assert (st["state"], st["pri"], st["releases"]) == ("ready", "3", "1")
    client.reserve()
    assert client.cmd(b"release %d 4294967295 100\r\n" % jid) == b"RELEASED\r\n"
    st = client.stats_job(jid)
    assert (st["state"], st["pri"], st["delay"], st["releases"]) == ("delayed", "4294967295", "100", "2")
    assert client.cmd(b"peek-delayed\r\n") == b"FOUND %d 1\r\nx\r\n" % jid
    assert client.stats()["cmd-release"] == "2"


def test_release_not_reserved(client):
    jid = client.put(b"x")
    assert client.cmd(b"release %d 0 0\r\n" % jid) == NF
    assert client.cmd(b"release 999 0 0\r\n") == NF


# ---- bury ----


def test_bury_and_buried_fifo(client):
    a = client.put(b"a")
    b = client.put(b"b")
    c = client.put(b"c")
    for jid, pri in [(b, 9), (a, 1), (c, 0)]:
        client.cmd(b"reserve-job %d\r\n" % jid)
        assert client.cmd(b"bury %d %d\r\n" % (jid, pri)) == b"BURIED\r\n"
    st = client.stats_job(a)
    assert (st["state"], st["pri"], st["buries"]) == ("buried", "1", "1")
    # oldest buried first, whatever the priority
    assert client.cmd(b"peek-buried\r\n") == b"FOUND %d 1\r\nb\r\n" % b
    assert client.cmd(b"kick 1\r\n") == b"KICKED 1\r\n"
    assert client.cmd(b"peek-buried\r\n") == b"FOUND %d 1\r\na\r\n" % a
    assert client.stats_tube("default")["current-jobs-buried"] == "2"
    assert client.stats()["cmd-bury"] == "3"


def test_bury_not_reserved(client):
    jid = client.put(b"x")
    assert client.cmd(b"bury %d 0\r\n" % jid) == NF
    assert client.cmd(b"bury 999 0\r\n") == NF


# ---- touch ----


def test_touch(client):
    jid = client.put(b"x", ttr=100)
    assert client.cmd(b"touch %d\r\n" % jid) == NF
    client.reserve()
    assert client.cmd(b"touch %d\r\n" % jid) == b"TOUCHED\r\n"
    assert client.stats_job(jid)["time-left"] in ("99", "98")
    assert client.cmd(b"touch 999\r\n") == NF
    assert client.stats()["cmd-touch"] == "3"


# ---- watch / ignore ----


def test_watch_and_ignore_counts(client):
    assert client.cmd(b"watch a\r\n") == b"WATCHING 2\r\n"
    assert client.cmd(b"watch a\r\n") == b"WATCHING 2\r\n"
    assert client.cmd(b"watch b\r\n") == b"WATCHING 3\r\n"
    assert client.yaml(b"list-tubes-watched\r\n") == ["default", "a", "b"]
    assert client.cmd(b"ignore nosuch\r\n") == b"WATCHING 3\r\n"
    assert client.cmd(b"ignore default\r\n") == b"WATCHING 2\r\n"
    assert client.cmd(b"ignore a\r\n") == b"WATCHING 1\r\n"
    assert client.cmd(b"ignore b\r\n") == b"NOT_IGNORED\r\n"
    assert client.yaml(b"list-tubes-watched\r\n") == ["b"]
    assert client.cmd(b"ignore a\r\n") == b"WATCHING 1\r\n"


def test_ignore_only_tube(client):
    assert client.cmd(b"ignore default\r\n") == b"NOT_IGNORED\r\n"
    assert client.yaml(b"list-tubes-watched\r\n") == ["default"]


def test_watch_stats(deferd):
    a, b = deferd.connect(), deferd.connect()
    a.watch("q")
    b.watch("q")
    assert a.stats_tube("q")["current-watching"] == "2"
    assert a.stats_tube("default")["current-watching"] == "2"
    b.ignore("q")
    assert a.stats_tube("q")["current-watching"] == "1"
    assert a.stats()["cmd-watch"] == "2"
    assert a.stats()["cmd-ignore"] == "1"


# ---- peek ----


def test_peek_family(client):
    for cmd in (b"peek-ready", b"peek-delayed", b"peek-buried", b"peek 1", b"peek 0"):
        assert client.cmd(cmd + b"\r\n") == NF
    r2 = client.put(b"r2", pri=2)
    r1 = client.put(b"r1", pri=1)
    r1b = client.put(b"r1b", pri=1)
    d50 = client.put(b"d50", delay=50)
    d20 = client.put(b"d20", delay=20)
    assert client.cmd(b"peek-ready\r\n") == b"FOUND %d 2\r\nr1\r\n" % r1
    assert client.cmd(b"peek-delayed\r\n") == b"FOUND %d 3\r\nd20\r\n" % d20
    assert client.cmd(b"peek-buried\r\n") == NF
    client.cmd(b"reserve-job %d\r\n" % r2)
    client.cmd(b"bury %d 0\r\n" % r2)
    assert client.cmd(b"peek-buried\r\n") == b"FOUND %d 2\r\nr2\r\n" % r2
    for jid, body in [(r1, b"r1"), (r1b, b"r1b"), (d50, b"d50"), (r2, b"r2")]:
        assert client.cmd(b"peek %d\r\n" % jid) == b"FOUND %d %d\r\n%s\r\n" % (jid, len(body), body)
    s = client.stats()
    assert (s["cmd-peek"], s["cmd-peek-ready"], s["cmd-peek-delayed"], s["cmd-peek-buried"]) == ("6", "2", "2", "3")


def test_peek_reserved_job(deferd):
    a, b = deferd.connect(), deferd.connect()
    jid = a.put(b"x")
    a.reserve()
    assert b.cmd(b"peek %d\r\n" % jid) == b"FOUND %d 1\r\nx\r\n" % jid
    assert b.cmd(b"peek-ready\r\n") == NF


def test_peek_uses_used_tube_not_watched(client):
    client.use("a")
    jid = client.put(b"x")
    client.use("b")
    client.watch("a")
    assert client.cmd(b"peek-ready\r\n") == NF
    assert client.cmd(b"peek %d\r\n" % jid) == b"FOUND %d 1\r\nx\r\n" % jid  # peek <id>: any tube
    client.use("a")
    assert client.cmd(b"peek-ready\r\n") == b"FOUND %d 1\r\nx\r\n" % jid


# ---- kick ----


def test_kick_buried_before_delayed(client):
    d = client.put(b"d", delay=100)
    b1 = client.put(b"b1")
    b2 = client.put(b"b2")
    for jid in (b1, b2):
        client.cmd(b"reserve-job %d\r\n" % jid)
        client.cmd(b"bury %d 0\r\n" % jid)
    assert client.cmd(b"kick 1\r\n") == b"KICKED 1\r\n"
    assert client.stats_job(b1)["state"] == "ready"
    assert client.stats_job(b1)["kicks"] == "1"
    assert client.cmd(b"kick 10\r\n") == b"KICKED 1\r\n"  # only the buried one left
    assert client.stats_job(d)["state"] == "delayed"
    assert client.cmd(b"kick 10\r\n") == b"KICKED 1\r\n"  # now the delayed one
    assert client.stats_job(d)["state"] == "ready"
    assert client.stats_job(d)["delay"] == "100"  # keeps its delay
    assert client.cmd(b"kick 10\r\n") == b"KICKED 0\r\n"
    assert client.stats()["cmd-kick"] == "4"


def test_kick_0_and_used_tube_only(client):
    client.use("a")
    client.put(b"x", delay=100)
    assert client.cmd(b"kick 0\r\n") == b"KICKED 0\r\n"
    client.use("default")
    assert client.cmd(b"kick 5\r\n") == b"KICKED 0\r\n"
    client.use("a")
    assert client.cmd(b"kick 5\r\n") == b"KICKED 1\r\n"


def test_kick_job(client):
    d = client.put(b"d", delay=100)
    b = client.put(b"b")
    r = client.put(b"r")
    client.cmd(b"reserve-job %d\r\n" % b)
    client.cmd(b"bury %d 0\r\n" % b)
    client.use("elsewhere")  # kick-job works on any tube
    assert client.cmd(b"kick-job %d\r\n" % d) == b"KICKED\r\n"
    assert client.cmd(b"kick-job %d\r\n" % b) == b"KICKED\r\n"
    assert client.cmd(b"kick-job %d\r\n" % d) == NF  # now ready
    assert client.cmd(b"kick-job %d\r\n" % r) == NF  # ready
    client.cmd(b"reserve-job %d\r\n" % r)
    assert client.cmd(b"kick-job %d\r\n" % r) == NF  # reserved
    assert client.cmd(b"kick-job 999\r\n") == NF
    assert client.stats_job(d)["kicks"] == "1"
    assert client.stats_job(b)["state"] == "ready"


# ---- quit / close ----


@pytest.mark.parametrize("line", [b"quit", b"quitfoo", b"quit now"])
def test_quit_closes_without_reply(client, line):
    client.send(line + b"\r\nlist-tube-used\r\n")
    client.expect_eof()


def test_close_releases_reserved_jobs(deferd):
    a, b = deferd.connect(), deferd.connect()
    j1 = a.put(b"x")
    j2 = a.put(b"y")
    a.reserve()
    a.reserve()
    a.close()
    eventually(lambda: b.stats()["current-jobs-reserved"] == "0")
    assert b.stats()["current-jobs-ready"] == "2"
    st = b.stats_job(j1)
    assert (st["state"], st["reserves"], st["timeouts"]) == ("ready", "1", "0")
    assert b.reserve(timeout=0)[0] == j1
    assert b.reserve(timeout=0)[0] == j2


def test_quit_releases_reserved_jobs(deferd):
    a, b = deferd.connect(), deferd.connect()
    jid = a.put(b"x")
    a.reserve()
    a.send(b"quit\r\n")
    a.expect_eof()
    eventually(lambda: b.stats_job(jid)["state"] == "ready")


def test_close_while_waiting_is_cleaned_up(deferd):
    a, b = deferd.connect(), deferd.connect()
    a.send(b"reserve\r\n")
    eventually(lambda: b.stats()["current-waiting"] == "1")
    a.close()
    eventually(lambda: b.stats()["current-waiting"] == "0")
    jid = b.put(b"x")
    assert b.stats_job(jid)["state"] == "ready"  # nobody took it


def test_close_mid_put_drops_job(deferd):
    a, b = deferd.connect(), deferd.connect()
    a.send(b"use partial\r\nput 0 0 10 100\r\nsome of the body")
    assert a.reply() == b"USING partial\r\n"
    a.close()
    eventually(lambda: b.stats()["current-connections"] == "1")
    assert b.list_tubes() == ["default"]
    assert b.stats()["total-jobs"] == "0"


def test_half_close_while_waiting_times_out(deferd):
    a = deferd.connect()
    a.send(b"reserve\r\n")
    a.expect_nothing()
    a.shutdown_write()
    assert a.reply() == b"TIMED_OUT\r\n"
    a.expect_eof()


def test_half_close_pipelined_reserve_times_out(deferd):
    a = deferd.connect()
    a.send(b"list-tube-used\r\nreserve-with-timeout 100\r\n")
    a.shutdown_write()
    assert a.replies(2) == [b"USING default\r\n", b"TIMED_OUT\r\n"]
    a.expect_eof()


def test_half_close_gets_replies_to_everything_sent(deferd):
    a = deferd.connect()
    a.send(b"put 0 0 10 1\r\nx\r\nreserve\r\nlist-tube-used\r\n")
    a.shutdown_write()
    assert a.replies(3) == [b"INSERTED 1\r\n", b"RESERVED 1 1\r\nx\r\n", b"USING default\r\n"]
    a.expect_eof()


def test_reset_connection_is_cleaned_up(deferd):
    a, b = deferd.connect(), deferd.connect()
    a.put(b"x")
    a.reserve()
    a.send(b"reserve\r\n")
    # RST instead of FIN
    a.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    a.close()
    eventually(lambda: b.stats()["current-connections"] == "1")
    assert b.stats()["current-jobs-ready"] == "1"
    assert b.stats()["current-waiting"] == "0"
