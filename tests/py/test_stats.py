"""stats, stats-job, stats-tube and the list commands: fields, their order,
and their values."""

import os
import re

import pytest

from helpers import eventually

STATS_KEYS = (
    "current-jobs-urgent current-jobs-ready current-jobs-reserved current-jobs-delayed current-jobs-buried "
    "cmd-put cmd-peek cmd-peek-ready cmd-peek-delayed cmd-peek-buried cmd-reserve cmd-reserve-with-timeout "
    "cmd-delete cmd-release cmd-use cmd-watch cmd-ignore cmd-bury cmd-kick cmd-touch cmd-stats cmd-stats-job "
    "cmd-stats-tube cmd-list-tubes cmd-list-tube-used cmd-list-tubes-watched cmd-pause-tube job-timeouts "
    "total-jobs max-job-size current-tubes current-connections current-producers current-workers "
    "current-waiting total-connections pid version rusage-utime rusage-stime uptime binlog-oldest-index "
    "binlog-current-index binlog-records-migrated binlog-records-written binlog-max-size draining id "
    "hostname os platform"
).split()

STATS_JOB_KEYS = (
    "id tube state pri age delay ttr time-left file reserves timeouts releases buries kicks".split()
)

STATS_TUBE_KEYS = (
    "name current-jobs-urgent current-jobs-ready current-jobs-reserved current-jobs-delayed "
    "current-jobs-buried total-jobs current-using current-watching current-waiting cmd-delete "
    "cmd-pause-tube pause pause-time-left"
).split()


def test_stats_keys_in_order(client):
    assert client.stats().keys_in_order == tuple(STATS_KEYS)


def test_stats_fresh_server_values(client):
    s = client.stats()
    for k in STATS_KEYS:
        if k.startswith("cmd-"):
            assert s[k] == ("1" if k == "cmd-stats" else "0"), k
    expected = {
        "current-jobs-urgent": "0", "current-jobs-ready": "0", "current-jobs-reserved": "0",
        "current-jobs-delayed": "0", "current-jobs-buried": "0", "job-timeouts": "0", "total-jobs": "0",
        "max-job-size": "65535", "current-tubes": "1", "current-connections": "1", "current-producers": "0",
        "current-workers": "0", "current-waiting": "0", "total-connections": "1", "uptime": "0",
        "binlog-oldest-index": "0", "binlog-current-index": "0", "binlog-records-migrated": "0",
        "binlog-records-written": "0", "draining": "false",
    }
    assert {k: s[k] for k in expected} == expected
    assert s["platform"] == os.uname().machine
    assert s["hostname"] == os.uname().nodename


def test_stats_binlog_max_size_default(client):
    # beanstalkd 1.12 reports its binlog file size (-s, default 10485760)
    # even when it runs without a binlog.
    assert client.stats()["binlog-max-size"] == "10485760"


def test_stats_value_formats(deferd):
    c = deferd.connect()
    s = c.stats()
    assert re.fullmatch(r'"[^"\n]+"', s["version"]), s["version"]
    assert re.fullmatch(r"\d+\.\d{6}", s["rusage-utime"]), s["rusage-utime"]
    assert re.fullmatch(r"\d+\.\d{6}", s["rusage-stime"]), s["rusage-stime"]
    assert s["pid"] == str(deferd.pid)
    assert re.fullmatch(r"[0-9a-f]+", s["id"]), s["id"]
    assert c.stats()["id"] == s["id"]  # stable for the life of the process


def test_stats_counts(deferd):
    c, w = deferd.connect(), deferd.connect()
    c.put(b"a", pri=1023)
    c.put(b"b", pri=1024)
    c.put(b"c", delay=100)
    c.use("t")
    c.put(b"d")
    c.reserve()  # "a", from default
    w.watch("t")
    w.ignore("default")
    w.send(b"reserve\r\n")
    assert w.reply().startswith(b"RESERVED 4 ")
    w.send(b"reserve\r\n")  # now waits
    eventually(lambda: c.stats()["current-waiting"] == "1")
    s = c.stats()
    assert {k: s[k] for k in ("current-jobs-urgent", "current-jobs-ready", "current-jobs-reserved",
                              "current-jobs-delayed", "total-jobs", "current-tubes", "current-connections",
                              "current-producers", "current-workers", "current-waiting", "cmd-put",
                              "cmd-reserve", "cmd-use", "cmd-watch", "cmd-ignore")} == {
        "current-jobs-urgent": "0", "current-jobs-ready": "1", "current-jobs-reserved": "2",
        "current-jobs-delayed": "1", "total-jobs": "4", "current-tubes": "2", "current-connections": "2",
        "current-producers": "1", "current-workers": "2", "current-waiting": "1", "cmd-put": "4",
        "cmd-reserve": "3", "cmd-use": "1", "cmd-watch": "1", "cmd-ignore": "1",
    }


def test_stats_urgent_threshold(client):
    client.put(b"x", pri=1023)
    client.put(b"y", pri=1024)
    client.put(b"z", pri=0)
    assert client.stats()["current-jobs-urgent"] == "2"
    assert client.stats_tube("default")["current-jobs-urgent"] == "2"


def test_stats_put_counting(client):
    # Not parsed: not a cmd-put. JOB_TOO_BIG and trailing garbage: counted.
    client.send(b"put x 0 10 1\r\n")
    assert client.reply() == b"BAD_FORMAT\r\n"
    client.send(b"put 0 0 10 1 x\r\n")
    assert client.reply() == b"BAD_FORMAT\r\n"
    client.send(b"put 0 0 10 65536\r\n" + b"z" * 65538)
    assert client.reply() == b"JOB_TOO_BIG\r\n"
    s = client.stats()
    assert (s["cmd-put"], s["total-jobs"], s["current-producers"]) == ("2", "0", "0")


def test_stats_connections(deferd):
    cs = [deferd.connect() for _ in range(3)]
    eventually(lambda: cs[0].stats()["current-connections"] == "3")
    cs[1].close()
    cs[2].close()
    eventually(lambda: cs[0].stats()["current-connections"] == "1")
    assert cs[0].stats()["total-connections"] == "3"


def test_stats_job_keys_and_values(client):
    jid = client.put(b"hello", pri=7, ttr=20)
    r = client.cmd(b"stats-job %d\r\n" % jid)
    s = client.stats_job(jid)
    assert s.keys_in_order == tuple(STATS_JOB_KEYS)
    assert {k: s[k] for k in STATS_JOB_KEYS if k != "age"} == {
        "id": str(jid), "tube": "default", "state": "ready", "pri": "7", "delay": "0", "ttr": "20",
        "time-left": "0", "file": "0", "reserves": "0", "timeouts": "0", "releases": "0", "buries": "0",
        "kicks": "0",
    }
    assert s["age"] in ("0", "1")
    assert r.startswith(b"OK ")


def test_stats_job_time_left(client):
    jid = client.put(b"x", ttr=100)
    client.reserve()
    s = client.stats_job(jid)
    assert s["state"] == "reserved"
    assert s["time-left"] in ("99", "98")
    d = client.put(b"x", delay=50)
    s = client.stats_job(d)
    assert s["state"] == "delayed"
    assert s["time-left"] in ("49", "48")


def test_stats_job_states_and_counters(client):
    jid = client.put(b"x")
    client.reserve()
    client.cmd(b"release %d 5 0\r\n" % jid)
    client.reserve()
    client.cmd(b"bury %d 6\r\n" % jid)
    client.cmd(b"kick 1\r\n")
    s = client.stats_job(jid)
    assert (s["state"], s["pri"], s["reserves"], s["releases"], s["buries"], s["kicks"]) == (
        "ready", "6", "2", "1", "1", "1")


def test_stats_job_delay_kept_after_kick(client):
    jid = client.put(b"x", delay=30)
    assert client.cmd(b"kick 1\r\n") == b"KICKED 1\r\n"
    s = client.stats_job(jid)
    assert (s["state"], s["delay"], s["time-left"]) == ("ready", "30", "0")


def test_stats_tube_keys_and_values(deferd):
    c, w = deferd.connect(), deferd.connect()
    c.use("t")
    c.put(b"a", pri=5)
    c.put(b"b", pri=2000)
    c.put(b"c", delay=100)
    c.put(b"d")
    c.watch("t")
    c.cmd(b"reserve-job 4\r\n")
    c.cmd(b"bury 4 0\r\n")
    c.reserve()
    c.cmd(b"delete 2\r\n")
    w.watch("t")
    s = c.stats_tube("t")
    assert s.keys_in_order == tuple(STATS_TUBE_KEYS)
    assert dict(s) == {
        "name": "t", "current-jobs-urgent": "0", "current-jobs-ready": "0", "current-jobs-reserved": "1",
        "current-jobs-delayed": "1", "current-jobs-buried": "1", "total-jobs": "4", "current-using": "1",
        "current-watching": "2", "current-waiting": "0", "cmd-delete": "1", "cmd-pause-tube": "0",
        "pause": "0", "pause-time-left": "0",
    }


def test_stats_tube_pause_fields(client):
    assert client.cmd(b"pause-tube default 100\r\n") == b"PAUSED\r\n"
    s = client.stats_tube("default")
    assert (s["pause"], s["cmd-pause-tube"]) == ("100", "1")
    assert s["pause-time-left"] in ("99", "100")
    assert client.stats()["cmd-pause-tube"] == "1"


def test_stats_commands_counted(client):
    client.cmd(b"stats-job 1\r\n")
    client.cmd(b"stats-tube default\r\n")
    client.cmd(b"list-tubes\r\n")
    client.cmd(b"list-tube-used\r\n")
    client.cmd(b"list-tubes-watched\r\n")
    s = client.stats()
    assert [s["cmd-" + k] for k in ("stats-job", "stats-tube", "list-tubes", "list-tube-used",
                                    "list-tubes-watched", "stats")] == ["1"] * 5 + ["1"]


def test_list_commands(client):
    assert client.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
    client.use("a")
    client.watch("b")
    client.watch("c")
    client.ignore("default")
    assert client.cmd(b"list-tube-used\r\n") == b"USING a\r\n"
    # ignore swap-removes from the watch list, as beanstalkd does
    assert client.cmd(b"list-tubes-watched\r\n") == b"OK 12\r\n---\n- c\n- b\n\r\n"
    assert client.cmd(b"list-tubes\r\n") == b"OK 26\r\n---\n- default\n- a\n- b\n- c\n\r\n"


@pytest.mark.parametrize("z", ["0", "1", "1048576"])
def test_max_job_size_in_stats(make_deferd, z):
    assert make_deferd(["-z", z]).connect().stats()["max-job-size"] == z
