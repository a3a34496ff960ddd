"""Every general error reply, and every command's malformed forms. After each
error the connection must stay usable."""

import pytest

BF = b"BAD_FORMAT\r\n"
UC = b"UNKNOWN_COMMAND\r\n"
NF = b"NOT_FOUND\r\n"

# (command line without CRLF, reply) - beanstalkd 1.12's answers.
CASES = [
    (b"foo", UC),
    (b"foo bar", UC),
    (b"delete", UC),
    (b"release", UC),
    (b"bury", UC),
    (b"touch", UC),
    (b"kick", UC),
    (b"kick-job", UC),
    (b"peek", UC),
    (b"use", UC),
    (b"watch", UC),
    (b"ignore", UC),
    (b"reserve-job", BF),  # matches the "reserve" prefix, with garbage after it
    (b"stats-job", BF),  # likewise "stats"
    (b"stats-tube", BF),
    (b"statsx", BF),
    (b"reservefoo", BF),
    (b"list-tubes x", BF),
    (b"list-tubesx", BF),
    (b"list-tube-used x", BF),
    (b"list-tubes-watched x", BF),
    (b"peek-ready x", BF),
    (b"peek-delayed x", BF),
    (b"peek-buried x", BF),
    (b"delete ", BF),
    (b"delete abc", BF),
    (b"delete -1", BF),
    (b"delete 1 2", BF),
    (b"delete 1x", BF),
    (b"release ", BF),
    (b"release 1", BF),
    (b"release 1 2", BF),
    (b"release 1 2 3 4", BF),
    (b"release 1 -1 0", BF),
    (b"release 1 4294967296 0", BF),
    (b"bury 1", BF),
    (b"bury 1 x", BF),
    (b"bury 1 4294967296", BF),
    (b"touch ", BF),
    (b"touch x", BF),
    (b"kick ", BF),
    (b"kick x", BF),
    (b"kick-job ", BF),
    (b"kick-job x", BF),
    (b"peek ", BF),
    (b"peek x", BF),
    (b"stats-job ", BF),
    (b"stats-job x", BF),
    (b"stats-tube ", BF),
    (b"reserve-job ", BF),
    (b"reserve-job x", BF),
    (b"use ", BF),
    (b"use a b", BF),
    (b"use a*b", BF),
    (b"pause-tube", BF),
    (b"pause-tube default", BF),
    (b"pause-tube default x", BF),
    (b"pause-tube default -1", BF),
    (b"pause-tube nosuch x", BF),
    (b"put", UC),
    (b"put ", BF),
    (b"put 0 0 10", BF),
    (b"put x 0 10 1", BF),
    (b"put 4294967296 0 10 1", BF),
    (b"put -1 0 10 1", BF),
    (b"put 0 0 10 1 2", BF),
    (b"peek 0", NF),
    (b"peek 1", NF),
    (b"peek 18446744073709551615", NF),
    (b"delete 1", NF),
    (b"release 1 0 0", NF),
    (b"bury 1 0", NF),
    (b"touch 1", NF),
    (b"kick-job 1", NF),
    (b"stats-job 1", NF),
    (b"reserve-job 1", NF),
    (b"stats-tube nosuch", NF),
    (b"pause-tube nosuch 1", NF),
    (b"peek-ready", NF),
    (b"peek-delayed", NF),
    (b"peek-buried", NF),
    (b"kick 0", b"KICKED 0\r\n"),
    (b"kick 10", b"KICKED 0\r\n"),
    (b"reserve-with-timeout 0", b"TIMED_OUT\r\n"),
    (b"reserve-with-timeout abc", b"TIMED_OUT\r\n"),
    (b"ignore nosuch", b"WATCHING 1\r\n"),
    (b"ignore default", b"NOT_IGNORED\r\n"),
]


@pytest.mark.parametrize("line,want", CASES, ids=[c[0].decode() or "empty" for c in CASES])
def test_error_reply_and_connection_stays_usable(client, line, want):
    assert client.cmd(line + b"\r\n") == want
    assert client.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
    assert client.cmd(b"put 0 0 10 2\r\nok\r\n") == b"INSERTED 1\r\n"


def test_errors_pipelined(client):
    client.send(b"".join(line + b"\r\n" for line, _ in CASES))
    assert client.replies(len(CASES)) == [want for _, want in CASES]


def test_put_after_bad_format_put_body_runs_as_command(client):
    # The body of a put whose line is malformed is read as a command line.
    client.send(b"put 0 0 10 14 x\r\nlist-tube-used\r\n")
    assert client.replies(2) == [BF, b"USING default\r\n"]
