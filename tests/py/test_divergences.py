"""deferd's deliberate, documented departures from beanstalkd 1.12. These test
deferd's behaviour (not differentially); each says what beanstalkd does.

1. A command line whose CRLF straddles the 224-byte limit (225 bytes with the
   CRLF, the CR being byte 224): beanstalkd fills its 224-byte buffer without
   seeing a line end, skips input up to the next CRLF after that point - the
   one ending the *following* command - and answers a single BAD_FORMAT
   there, so the following command is lost. deferd answers BAD_FORMAT at the
   straddling CRLF and runs the next command.
2. A bare CR not followed by LF, with a real CRLF later on the line
   (`foo\\rbar\\r\\n`): beanstalkd only looks at the first CR of its buffer,
   never finds the line end, and answers nothing until 224 bytes have
   arrived; then it skips to the next CRLF and answers one BAD_FORMAT, so
   every command within those bytes is lost (`foo\\rbar\\r\\n` followed by 20
   `list-tube-used\\r\\n`: BAD_FORMAT and 6 USING). deferd treats it as one
   line: UNKNOWN_COMMAND, and runs the 20 commands.
3. The default listen address is 127.0.0.1 (beanstalkd: 0.0.0.0).
4. `version` in stats is deferd's own version.
5. Beyond --max-connections, a connection gets `OUT_OF_MEMORY\\r\\n` and EOF
   (beanstalkd has no limit) - see test_server.py.
"""

import re
import subprocess

import pytest

from helpers import DEFERD, Server, free_port

pytestmark = pytest.mark.deferd_only

USING_DEFAULT = b"USING default\r\n"


def line_225():
    ln = b"peek " + b" " * 217 + b"1\r\n"
    assert len(ln) == 225 and ln[223:225] == b"\r\n"
    return ln


def test_crlf_straddling_the_limit(client):
    client.put(b"x")
    client.send(line_225() + b"list-tube-used\r\nlist-tube-used\r\n")
    assert client.replies(3) == [b"BAD_FORMAT\r\n", USING_DEFAULT, USING_DEFAULT]


def test_crlf_straddling_the_limit_in_two_writes(client):
    ln = line_225()
    client.send(ln[:224])
    client.expect_nothing(0.1)
    client.send(ln[224:] + b"list-tube-used\r\n")
    assert client.replies(2) == [b"BAD_FORMAT\r\n", USING_DEFAULT]


@pytest.mark.parametrize(
    "line,want",
    [
        (b"foo\rbar", b"UNKNOWN_COMMAND\r\n"),
        (b"\r", b"UNKNOWN_COMMAND\r\n"),
        (b"\r\r", b"UNKNOWN_COMMAND\r\n"),
        (b"list-tube-used\rx", b"BAD_FORMAT\r\n"),  # a known command with garbage after it
    ],
)
def test_bare_cr_then_crlf_is_one_line(client, line, want):
    client.send(line + b"\r\nlist-tube-used\r\n")
    assert client.replies(2) == [want, USING_DEFAULT]


def test_bare_cr_line_does_not_swallow_what_follows(client):
    client.send(b"foo\rbar\r\n" + b"list-tube-used\r\n" * 20)
    assert client.replies(21) == [b"UNKNOWN_COMMAND\r\n"] + [USING_DEFAULT] * 20


def test_bare_cr_in_arguments(client):
    assert client.cmd(b"use a\rb\r\n") == b"BAD_FORMAT\r\n"
    assert client.cmd(b"list-tube-used\r\n") == USING_DEFAULT


def test_default_listen_address_is_loopback(servers, tmp_path):
    port = free_port()
    srv = Server(DEFERD, ["-p", str(port)], str(tmp_path), "default-addr", port=port)
    servers.track(srv.spawn()).wait_listening()
    with open("/proc/net/tcp") as f:
        rows = [l.split() for l in f.readlines()[1:]]
    local = [r[1] for r in rows if r[3] == "0A" and int(r[1].split(":")[1], 16) == port]
    assert local == ["0100007F:%04X" % port], local  # 127.0.0.1 only, not 0.0.0.0
    with srv.connect() as c:
        assert c.cmd(b"list-tube-used\r\n") == USING_DEFAULT


def test_version_is_deferds_own(client):
    v = client.stats()["version"]
    out = subprocess.run([DEFERD, "-v"], capture_output=True, timeout=20).stdout.decode()
    # "deferd X.Y.Z (...)" on -v; "X.Y.Z" quoted in stats.
    m = re.match(r'^"([^"]+)"$', v)
    assert m, v
    assert m.group(1) in out, (v, out)


def test_connection_limit_refusal(make_deferd):
    srv = make_deferd(["--max-connections", "1"])
    a = srv.connect()
    assert a.cmd(b"list-tube-used\r\n") == USING_DEFAULT
    b = srv.connect()
    assert b.read_line() == b"OUT_OF_MEMORY\r\n"
    b.expect_eof()
    assert a.stats()["current-connections"] == "1"
