"""Framing: lines, CRLF, the 224-byte limit, pipelining, data blocks, YAML.
Expected bytes are beanstalkd 1.12's (see the protocol checklist)."""

import pytest

from helpers import parse_yaml, body_of

USING_DEFAULT = b"USING default\r\n"


def test_pipelined_commands_in_one_write(client):
    client.send(
        b"put 0 0 10 3\r\nabc\r\nput 0 0 10 3\r\ndef\r\nlist-tube-used\r\nreserve\r\ndelete 1\r\npeek 2\r\n"
        b"use x\r\nlist-tube-used\r\n"
    )
    assert client.replies(8) == [
        b"INSERTED 1\r\n",
        b"INSERTED 2\r\n",
        USING_DEFAULT,
        b"RESERVED 1 3\r\nabc\r\n",
        b"DELETED\r\n",
        b"FOUND 2 3\r\ndef\r\n",
        b"USING x\r\n",
        b"USING x\r\n",
    ]


def test_many_pipelined_commands(client):
    n = 2000
    client.send(b"list-tube-used\r\n" * n)
    assert client.replies(n) == [USING_DEFAULT] * n
    assert client.cmd(b"stats\r\n").count(b"cmd-list-tube-used: %d\n" % n) == 1


def test_pipelined_replies_beyond_1mib(client):
    # 1200 stats replies are ~1.1 MB: every one must come, however much
    # output the server holds back while the client has not read yet.
    n = 1200
    client.send(b"stats\r\n" * n)
    for i in range(n):
        assert client.reply().startswith(b"OK "), i
    assert client.cmd(b"list-tube-used\r\n") == USING_DEFAULT


def test_pipelined_big_job_replies(client):
    body = b"b" * 65535
    client.put(body)
    n = 40  # ~2.6 MB of replies
    client.send(b"peek 1\r\n" * n)
    for i in range(n):
        assert client.reply() == b"FOUND 1 65535\r\n" + body + b"\r\n", i


@pytest.mark.parametrize("cmd", [b"PUT 0 0 10 1", b"Stats", b"LIST-TUBES", b"Use a", b"RESERVE", b"Quit"])
def test_commands_are_case_sensitive(client, cmd):
    assert client.cmd(cmd + b"\r\n") == b"UNKNOWN_COMMAND\r\n"
    assert client.cmd(b"list-tube-used\r\n") == USING_DEFAULT


def test_bare_lf_is_not_a_line_end(client):
    assert client.cmd(b"list-tube-used\nlist-tube-used\r\n") == b"BAD_FORMAT\r\n"
    assert client.cmd(b"list-tube-used\r\n") == USING_DEFAULT


def test_line_split_across_writes(client):
    for chunk in (b"list-", b"tube-us", b"ed\r", b"\n"):
        client.send(chunk)
    assert client.reply() == USING_DEFAULT


def peek_line(n):
    """`peek 1` padded with spaces (allowed before numbers) to n bytes incl. CRLF."""
    return b"peek " + b" " * (n - 8) + b"1\r\n"


@pytest.mark.parametrize("n", [100, 223, 224])
def test_line_up_to_224_bytes_is_accepted(client, n):
    line = peek_line(n)
    assert len(line) == n
    client.put(b"x")
    assert client.cmd(line) == b"FOUND 1 1\r\nx\r\n"


@pytest.mark.parametrize("n", [226, 227, 300, 1000, 100000])
def test_overlong_line_is_bad_format_and_skipped(client, n):
    line = peek_line(n)
    client.send(line + b"list-tube-used\r\n")
    assert client.reply() == b"BAD_FORMAT\r\n"
    assert client.reply() == USING_DEFAULT


def test_overlong_line_in_pieces(client):
    client.send(b"x" * 200)
    client.expect_nothing(0.1)
    client.send(b"y" * 200)
    client.send(b"z" * 200 + b"\r")
    client.expect_nothing(0.1)
    client.send(b"\nlist-tube-used\r\n")
    assert client.replies(2) == [b"BAD_FORMAT\r\n", USING_DEFAULT]


def test_overlong_unknown_line_gets_one_reply(client):
    client.send(b"q" * 224 + b"\r\n" + b"list-tube-used\r\n")
    assert client.replies(2) == [b"BAD_FORMAT\r\n", USING_DEFAULT]


@pytest.mark.parametrize(
    "line", [b"list-tube-used\x00", b"\x00", b"use a\x00b", b"peek 1\x00", b"\x00stats", b"stats\x00"]
)
def test_nul_in_command_line(client, line):
    assert client.cmd(line + b"\r\n") == b"BAD_FORMAT\r\n"
    assert client.cmd(b"list-tube-used\r\n") == USING_DEFAULT


def test_empty_line_is_unknown_command(client):
    assert client.cmd(b"\r\n") == b"UNKNOWN_COMMAND\r\n"
    client.send(b"\r\n\r\n\r\n")
    assert client.replies(3) == [b"UNKNOWN_COMMAND\r\n"] * 3
    assert client.cmd(b"list-tube-used\r\n") == USING_DEFAULT


def test_extra_spaces_before_numbers(client):
    assert client.cmd(b"put 0  0 10 5\r\nhello\r\n") == b"INSERTED 1\r\n"
    assert client.cmd(b"put  0   0  10  5\r\nworld\r\n") == b"INSERTED 2\r\n"
    assert client.cmd(b"peek  1\r\n") == b"FOUND 1 5\r\nhello\r\n"


@pytest.mark.parametrize("line", [b"put 0 0 10 5 ", b"use a ", b"stats ", b"list-tubes ", b"peek 1 ", b"watch a "])
def test_trailing_space_is_bad_format(client, line):
    assert client.cmd(line + b"\r\n") == b"BAD_FORMAT\r\n"
    assert client.cmd(b"list-tube-used\r\n") == USING_DEFAULT


def test_bad_format_put_leaves_body_as_a_command(client):
    client.send(b"put 0 0 10 5 \r\nhello\r\n")
    assert client.replies(2) == [b"BAD_FORMAT\r\n", b"UNKNOWN_COMMAND\r\n"]


@pytest.mark.parametrize(
    "body",
    [b"", b"\x00", b"\r\n", b"\r\n\r\n", b"\n", b"\r", b"put 0 0 10 1\r\nx\r\n", bytes(range(256)), b"\xff" * 1000],
)
def test_bodies_are_binary_safe(client, body):
    jid = client.put(body)
    assert client.cmd(b"peek %d\r\n" % jid) == b"FOUND %d %d\r\n%s\r\n" % (jid, len(body), body)
    assert client.cmd(b"reserve\r\n") == b"RESERVED %d %d\r\n%s\r\n" % (jid, len(body), body)


def test_body_split_across_writes(client):
    client.send(b"put 0 0 10 10\r\n01234")
    client.expect_nothing(0.1)
    client.send(b"56789\r")
    client.expect_nothing(0.1)
    client.send(b"\n")
    assert client.reply() == b"INSERTED 1\r\n"
    assert client.cmd(b"peek 1\r\n") == b"FOUND 1 10\r\n0123456789\r\n"


def test_yaml_list_format_on_fresh_server(client):
    assert client.cmd(b"list-tubes\r\n") == b"OK 14\r\n---\n- default\n\r\n"
    assert client.cmd(b"list-tubes-watched\r\n") == b"OK 14\r\n---\n- default\n\r\n"


def test_yaml_dict_format(client):
    r = client.cmd(b"stats\r\n")
    body = body_of(r)
    assert body.startswith(b"---\n") and body.endswith(b"\n")
    for line in body[4:-1].split(b"\n"):
        key, sep, value = line.partition(b": ")
        assert sep and key and value, line
    assert isinstance(parse_yaml(body), dict)
