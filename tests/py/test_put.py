"""put, use, and drain mode."""

import signal
import time

import pytest

BIG = 65535


def test_ids_start_at_1_and_increase(client):
    assert [client.put(b"j%d" % i) for i in range(5)] == [1, 2, 3, 4, 5]


def test_put_goes_to_used_tube(client):
    assert client.cmd(b"use t\r\n") == b"USING t\r\n"
    jid = client.put(b"x")
    assert client.stats_job(jid)["tube"] == "t"
    assert client.cmd(b"peek-ready\r\n") == b"FOUND 1 1\r\nx\r\n"
    client.use("default")
    assert client.cmd(b"peek-ready\r\n") == b"NOT_FOUND\r\n"


def test_put_ready_and_delayed_state(client):
    a = client.put(b"a")
    b = client.put(b"b", delay=100)
    assert client.stats_job(a)["state"] == "ready"
    assert client.stats_job(b)["state"] == "delayed"
    assert client.stats_job(b)["delay"] == "100"


@pytest.mark.parametrize("pri", [0, 1, 1023, 1024, 2**31, 4294967295])
def test_priority_range(client, pri):
    jid = client.put(b"x", pri=pri)
    assert client.stats_job(jid)["pri"] == str(pri)


@pytest.mark.parametrize("bad", [b"4294967296", b"-1", b"99999999999999999999", b"1.5", b"0x10", b""])
def test_priority_out_of_range(client, bad):
    client.send(b"put %s 0 10 1\r\nx\r\n" % bad)
    assert client.reply() == b"BAD_FORMAT\r\n"
    assert client.reply() == b"UNKNOWN_COMMAND\r\n"  # the body line "x"


def test_ttr_0_becomes_1(client):
    jid = client.put(b"x", ttr=0)
    assert client.stats_job(jid)["ttr"] == "1"


def test_zero_byte_body(client):
    assert client.cmd(b"put 0 0 10 0\r\n\r\n") == b"INSERTED 1\r\n"
    assert client.cmd(b"peek 1\r\n") == b"FOUND 1 0\r\n\r\n"
    assert client.cmd(b"reserve\r\n") == b"RESERVED 1 0\r\n\r\n"


def test_max_size_body_accepted(client):
    body = bytes(i % 251 for i in range(BIG))
    assert client.put(body) == 1
    assert client.cmd(b"peek 1\r\n") == b"FOUND 1 %d\r\n%s\r\n" % (BIG, body)


def test_job_too_big_discards_body_and_stays_in_sync(client):
    # The body looks like commands: none of them may run.
    body = (b"put 0 0 10 1\r\nx\r\n" * 5000)[: BIG + 1]
    client.send(b"put 0 0 10 %d\r\n%s\r\n" % (BIG + 1, body))
    assert client.reply() == b"JOB_TOO_BIG\r\n"
    assert client.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
    st = client.stats()
    assert st["total-jobs"] == "0"
    assert st["cmd-put"] == "1"
    assert client.put(b"ok") == 1  # no id used up by the rejected job


def test_job_too_big_replied_after_body(client):
    client.send(b"put 0 0 10 70000\r\n" + b"a" * 50000)
    client.expect_nothing(0.2)
    client.send(b"a" * 20000 + b"\r\n")
    assert client.reply() == b"JOB_TOO_BIG\r\n"


def test_job_too_big_before_trailing_garbage(client):
    client.send(b"put 0 0 10 %d x\r\n%s\r\n" % (BIG + 1, b"z" * (BIG + 1)))
    assert client.reply() == b"JOB_TOO_BIG\r\n"
    assert client.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


@pytest.mark.parametrize("z,ok,too_big", [("0", 0, 1), ("10", 10, 11), ("100000", 100000, 100001)])
def test_max_job_size_flag(make_deferd, z, ok, too_big):
    c = make_deferd(["-z", z]).connect()
    assert c.put(b"q" * ok) == 1
    c.send(b"put 0 0 10 %d\r\n%s\r\n" % (too_big, b"q" * too_big))
    assert c.reply() == b"JOB_TOO_BIG\r\n"
    assert c.stats()["max-job-size"] == z
    assert c.cmd(b"peek 1\r\n") == b"FOUND 1 %d\r\n%s\r\n" % (ok, b"q" * ok)


def test_bad_format_put_does_not_consume_body(client):
    client.send(b"put 0 0 10\r\nlist-tube-used\r\n")
    assert client.replies(2) == [b"BAD_FORMAT\r\n", b"USING default\r\n"]
    client.send(b"put 0 0 10 3 extra\r\nabc\r\n")
    assert client.replies(2) == [b"BAD_FORMAT\r\n", b"UNKNOWN_COMMAND\r\n"]
    assert client.stats()["total-jobs"] == "0"


def test_expected_crlf_uses_up_id(client):
    client.send(b"put 0 0 10 3\r\nabcXY")
    assert client.reply() == b"EXPECTED_CRLF\r\n"
    assert client.cmd(b"peek 1\r\n") == b"NOT_FOUND\r\n"
    assert client.put(b"next") == 2
    st = client.stats()
    assert st["total-jobs"] == "1"
    assert st["current-jobs-ready"] == "1"


def test_expected_crlf_connection_continues(client):
    client.send(b"put 0 0 10 3\r\nabcdlist-tube-used\r\n")
    # trailer is "dl": then "ist-tube-used" is the next command line.
    assert client.replies(2) == [b"EXPECTED_CRLF\r\n", b"UNKNOWN_COMMAND\r\n"]
    assert client.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


@pytest.mark.deferd_only
def test_draining_after_sigusr1(deferd):
    c = deferd.connect()
    assert c.put(b"before") == 1
    assert c.stats()["draining"] == "false"
    deferd.signal(signal.SIGUSR1)
    deadline = time.monotonic() + 10
    while c.stats()["draining"] != "true":
        assert time.monotonic() < deadline, "SIGUSR1 did not start drain mode"
        time.sleep(0.01)
    assert c.cmd(b"put 0 0 10 5\r\nafter\r\n") == b"DRAINING\r\n"
    # Everything else still works.
    assert c.cmd(b"reserve\r\n") == b"RESERVED 1 6\r\nbefore\r\n"
    assert c.cmd(b"delete 1\r\n") == b"DELETED\r\n"
    assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
    # A second SIGUSR1 changes nothing.
    deferd.signal(signal.SIGUSR1)
    assert c.cmd(b"put 0 0 10 1\r\nx\r\n") == b"DRAINING\r\n"
    assert c.stats()["draining"] == "true"
    assert c.stats()["total-jobs"] == "1"


def test_use_reply(client):
    assert client.cmd(b"use abc\r\n") == b"USING abc\r\n"
    assert client.cmd(b"list-tube-used\r\n") == b"USING abc\r\n"
    assert client.cmd(b"use default\r\n") == b"USING default\r\n"


def test_producer_counted_once(client):
    client.put(b"a")
    client.put(b"b")
    assert client.stats()["current-producers"] == "1"
