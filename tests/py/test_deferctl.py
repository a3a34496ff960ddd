"""Black-box tests of deferctl, the command-line client ($DEFERCTL, the ASan
build under `make pytest`), against a real deferd with its HTTP API on.

Every command is run in both output modes (--json is parsed and checked
value by value), every exit code is provoked for real (0 to 5), and every
run of deferctl must leave its stderr free of sanitizer reports. Where the
real server cannot produce an answer (a 500, a body that is not JSON), a
small fake HTTP server stands in for it.

Beanstalk connections play the worker (reserve, bury, release, delete), so
tasks reach every state the way they do in production."""

import base64
import http.server
import json
import os
import queue
import re
import signal
import socket
import subprocess
import threading

import pytest

from helpers import SANITIZER_MARKERS, _tcp_listening, eventually, free_port


DEFERCTL = os.environ.get("DEFERCTL")
RUN_TIMEOUT = 60.0  # seconds any one deferctl run may take (ASan, a busy box)
LINE_TIMEOUT = 20.0  # seconds to wait for a line from `deferctl tail`

pytestmark = [
    pytest.mark.deferd_only,
    pytest.mark.skipif(not DEFERCTL, reason="$DEFERCTL is not set: run `make pytest` (it passes the ASan build)"),
]

TIME_RE = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"

# What deferctl may inherit from the environment and must not, here.
_SCRUB = ("DEFER_URL", "DEFER_TOKEN", "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
          "all_proxy", "ALL_PROXY")


# --------------------------------------------------------------------------
# running deferctl
# --------------------------------------------------------------------------


def _env(extra=None):
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(extra or {})
    return env


def check_sanitizers(stderr, what):
    for marker in SANITIZER_MARKERS:
        assert marker not in stderr, "deferctl %s: sanitizer report:\n%s" % (what, stderr)


class Result:
    def __init__(self, args, proc):
        self.args = args
        self.rc = proc.returncode
        self.out = proc.stdout.decode("utf-8", "replace")
        self.err = proc.stderr.decode("utf-8", "replace")

    def json(self):
        return json.loads(self.out)

    def __repr__(self):
        return "deferctl %s -> %s\nstdout:\n%s\nstderr:\n%s" % (" ".join(self.args), self.rc, self.out, self.err)


def ctl(*args, url=None, stdin=b"", env=None, expect=None):
    """Run deferctl once; check its stderr for sanitizer reports and, when
    expect is given, its exit code."""
    argv = [DEFERCTL] + (["--url", url] if url else []) + [str(a) for a in args]
    if isinstance(stdin, str):
        stdin = stdin.encode()
    proc = subprocess.run(argv, input=stdin, capture_output=True, env=_env(env), timeout=RUN_TIMEOUT)
    r = Result([str(a) for a in args], proc)
    check_sanitizers(r.err, " ".join(r.args))
    if expect is not None:
        assert r.rc == expect, r
    return r


class Api:
    """A deferd with HTTP on, and deferctl pointed at it."""

    def __init__(self, srv, http_port):
        self.srv = srv
        self.http_port = http_port
        self.url = "http://127.0.0.1:%d" % http_port

    def ctl(self, *args, **kw):
        kw.setdefault("url", self.url)
        return ctl(*args, **kw)

    def ok(self, *args, **kw):
        return self.ctl(*args, expect=0, **kw)

    def put(self, q, payload="{}", *opts):
        """A task enqueued through deferctl; returns its task object."""
        return self.ok("--json", "put", q, payload, *opts).json()

    def worker(self, q):
        c = self.srv.connect()
        c.watch(q)
        if q != "default":
            c.ignore("default")
        return c


def start_api(make_deferd, extra=()):
    """A deferd with --http on a free port (another port if that one was
    taken in the meantime)."""
    last = None
    for _ in range(5):
        port = free_port()
        try:
            srv = make_deferd(["--http", "127.0.0.1:%d" % port] + list(extra))
        except RuntimeError as e:
            last = e
            continue
        eventually(lambda: _tcp_listening(port))
        return Api(srv, port)
    raise last


@pytest.fixture
def api(make_deferd):
    return start_api(make_deferd)


@pytest.fixture
def dead_url():
    """A URL nothing listens on."""
    return "http://127.0.0.1:%d" % free_port()


# --------------------------------------------------------------------------
# help, version, usage errors (exit 2)
# --------------------------------------------------------------------------

COMMANDS = ("put", "get", "cancel", "list", "queues", "stats", "kick", "pause", "resume", "tail")


def test_help_lists_every_command_and_the_exit_codes():
    for args in (["--help"], ["help"], ["-h"]):
        r = ctl(*args, expect=0)
        assert r.out.startswith("usage: deferctl")
        for cmd in COMMANDS:
            assert re.search(r"^  %s " % cmd, r.out, re.M), (cmd, r.out)
        assert "Exit codes" in r.out
        assert r.err == ""


def test_command_help():
    for cmd in COMMANDS:
        a = ctl("help", cmd, expect=0)
        b = ctl(cmd, "--help", expect=0)
        assert a.out == b.out
        assert a.out.startswith("usage: deferctl %s" % cmd)
    assert "--max-attempts" in ctl("help", "put", expect=0).out


def test_version():
    r = ctl("--version", expect=0)
    assert re.fullmatch(r"deferctl \d+\.\d+\.\d+\n", r.out), r


def test_no_command_is_a_usage_error():
    r = ctl(expect=2)
    assert r.err.startswith("deferctl: ") and "usage: deferctl" in r.err
    assert r.out == ""


# Each of these must be refused before anything is sent: they are run
# against a URL where nothing listens, so trying to send would be exit 3.
USAGE_ERRORS = [
    ["frobnicate"],
    ["help", "frobnicate"],
    ["--bogus", "queues"],
    ["--json"],
    ["--timeout", "0", "queues"],
    ["--timeout", "soon", "queues"],
    ["--timeout", "1e3", "queues"],
    ["queues", "--timeout"],
    ["queues", "extra"],
    ["stats", "extra"],
    ["put"],
    ["put", "bad name", "1"],
    ["put", "-leading-dash", "1"],
    ["put", "--", "-leading-dash", "1"],
    ["put", "x" * 201, "1"],
    ["put", "q", "{not json"],
    ["put", "q", '{"a": 1, "a": 2}'],
    ["put", "q", "1", "2"],
    ["put", "q", "1", "--priority", "4294967296"],
    ["put", "q", "1", "--priority", "-1"],
    ["put", "q", "1", "--priority", "high"],
    ["put", "q", "1", "--priority"],
    ["put", "q", "1", "--ttr", "0"],
    ["put", "q", "1", "--ttr", "4294967296"],
    ["put", "q", "1", "--max-attempts", "1.5"],
    ["put", "q", "1", "--delay", "soon"],
    ["put", "q", "1", "--delay", "-1"],
    ["put", "q", "1", "--delay", "4294967296"],
    ["put", "q", "1", "--delay", "1", "--run-at", "2030-01-01T00:00:00Z"],
    ["put", "q", "1", "--run-at", "tomorrow"],
    ["put", "q", "1", "--run-at", "2030-13-01T00:00:00Z"],
    ["put", "q", "1", "--run-at", "1000000000000"],
    ["put", "q", "1", "--replace"],
    ["put", "q", "1", "--key", ""],
    ["put", "q", "1", "--key", "k" * 201],
    ["put", "q", "1", "--frobnicate"],
    ["get"],
    ["get", "0"],
    ["get", "abc"],
    ["get", "-5"],
    ["get", "1", "2"],
    ["get", "18446744073709551616"],
    ["cancel"],
    ["cancel", "x"],
    ["cancel", "1", "2"],
    ["cancel", "--key", "q"],
    ["cancel", "--key", "bad name", "k"],
    ["cancel", "--key", "q", "k" * 201],
    ["list"],
    ["list", "q", "r"],
    ["list", "q", "--state", "done"],
    ["list", "q", "--limit", "0"],
    ["list", "q", "--limit", "1001"],
    ["list", "q", "--after", "x"],
    ["list", "(bad name)"],
    ["kick"],
    ["kick", "q", "0"],
    ["kick", "q", "many"],
    ["kick", "q", "4294967296"],
    ["kick", "q", "1", "2"],
    ["pause"],
    ["pause", "q", "0"],
    ["pause", "q", "1.5"],
    ["pause", "q", "-5"],
    ["resume"],
    ["resume", "q", "r"],
    ["resume", "bad name"],
    ["tail", "a", "b"],
    ["tail", "bad name"],
    ["--url", "ftp://127.0.0.1:1", "queues"],
    ["--url", "127.0.0.1:11380", "queues"],
    ["--url", "http://", "queues"],
    ["--token-file", "/nonexistent/deferctl-token", "queues"],
]


@pytest.mark.parametrize("args", USAGE_ERRORS, ids=lambda a: " ".join(a)[:60])
def test_usage_errors_exit_2_before_sending(args, dead_url):
    r = ctl(*args, url=dead_url if "--url" not in args else None, expect=2)
    assert r.out == "", r
    assert r.err.startswith("deferctl: "), r
    assert "cannot reach deferd" not in r.err, r


def test_empty_token_file_is_a_usage_error(tmp_path, dead_url):
    f = tmp_path / "token"
    f.write_text("\nsecond line is not the token\n")
    r = ctl("--token-file", str(f), "queues", url=dead_url, expect=2)
    assert "empty" in r.err


# --------------------------------------------------------------------------
# put and get
# --------------------------------------------------------------------------


def test_put_json_and_get_json(api):
    t = api.put("mail", '{"to": "ana@example.org", "n": [1, 2.5, null]}', "--priority", "7", "--ttr", "30",
                "--max-attempts", "3", "--key", "ana", "--delay", "600")
    assert t["queue"] == "mail"
    assert t["state"] == "delayed"
    assert t["priority"] == 7 and t["ttr"] == 30 and t["max_attempts"] == 3 and t["attempts"] == 0
    assert t["key"] == "ana"
    assert t["payload"] == {"to": "ana@example.org", "n": [1, 2.5, None]}
    assert re.fullmatch(TIME_RE, t["created_at"]) and re.fullmatch(TIME_RE, t["run_at"])
    assert t["finished_at"] is None and t["last_error"] is None

    g = api.ok("--json", "get", t["id"]).json()
    for k in ("id", "queue", "state", "priority", "ttr", "max_attempts", "key", "run_at", "payload"):
        assert g[k] == t[k], k


def test_put_defaults(api):
    t = api.put("q", "1")
    assert (t["state"], t["priority"], t["ttr"], t["max_attempts"], t["key"], t["run_at"]) == (
        "ready", 1024, 60, 0, None, None)


def test_put_human_and_get_human(api):
    r = api.ok("put", "mail", '{"room": 301, "action": "restore"}')
    m = re.fullmatch(r"created task (\d+) in mail: ready\n", r.out)
    assert m, r
    tid = m.group(1)
    out = api.ok("get", tid).out
    lines = out.splitlines()
    # "field: value" lines, the values aligned.
    field_lines = [m for m in (re.match(r"^([a-z_]+):( +)(.*)$", l) for l in lines) if m]
    assert len({m.start(3) for m in field_lines}) == 1, out
    fields = {m.group(1): m.group(3) for m in field_lines}
    assert fields["id"] == tid
    assert fields["queue"] == "mail"
    assert fields["state"] == "ready"
    assert fields["priority"] == "1024"
    assert fields["key"] == "-"
    assert re.match(TIME_RE, fields["created_at"])
    assert fields["run_at"] == "-"
    # The payload pretty-printed, continuing under itself.
    i = next(n for n, l in enumerate(lines) if l.startswith("payload:"))
    assert lines[i].endswith("{")
    assert '"room": 301,' in lines[i + 1] and '"action": "restore"' in lines[i + 2]
    assert lines[i + 3].strip() == "}"


def test_put_delayed_human_says_when(api):
    r = api.ok("put", "q", "1", "--delay", "3600")
    assert re.fullmatch(r"created task \d+ in q: delayed, runs at %s \(in .+\)\n" % TIME_RE, r.out), r


def test_payload_reaches_a_beanstalk_worker_as_given(api):
    api.put("work", '{"room": 301, "tags": ["a", "b"]}')
    c = api.worker("work")
    _, body = c.reserve(timeout=0)
    assert body == b'{"room":301,"tags":["a","b"]}'


def test_put_reads_stdin(api):
    a = api.ok("--json", "put", "q", stdin='{"from": "stdin"}\n').json()
    b = api.ok("--json", "put", "q", "-", stdin="[1, 2, 3]").json()
    assert a["payload"] == {"from": "stdin"}
    assert b["payload"] == [1, 2, 3]


def test_put_empty_stdin_is_a_usage_error(api):
    r = api.ctl("put", "q", stdin=b"", expect=2)
    assert r.err.startswith("deferctl: the payload is empty"), r
    r = api.ctl("put", "q", "-", stdin=b"  \n", expect=2)
    assert "not valid JSON" in r.err, r
    # --raw: an empty payload is a payload of no bytes.
    t = api.ok("--json", "put", "q", "--raw", stdin=b"").json()
    assert t["payload_base64"] == ""


def test_put_negative_number_after_double_dash(api):
    t = api.ok("--json", "put", "q", "--", "-5").json()
    assert t["payload"] == -5


def test_put_raw_bytes(api):
    data = b"\x00\x01\xff binary \r\n"
    t = api.ok("--json", "put", "bytes", "--raw", stdin=data).json()
    assert base64.b64decode(t["payload_base64"]) == data
    assert "payload" not in t
    _, body = api.worker("bytes").reserve(timeout=0)
    assert body == data
    out = api.ok("get", t["id"]).out
    assert re.search(r"^payload_base64: +%s +\(%d bytes\)$" % (re.escape(t["payload_base64"]), len(data)), out, re.M), out


def test_put_raw_text_argument(api):
    t = api.ok("--json", "put", "q", "hello world", "--raw").json()
    assert base64.b64decode(t["payload_base64"]) == b"hello world"
    out = api.ok("get", t["id"]).out
    assert re.search(r'^payload: +"hello world"  \(11 bytes, not JSON\)$', out, re.M), out


def test_put_run_at(api):
    future = "2099-01-02T03:04:05.000Z"
    t = api.put("q", "1", "--run-at", future)
    assert t["state"] == "delayed" and t["run_at"] == future
    t = api.put("q", "1", "--run-at", "4070908800")  # 2099-01-01T00:00:00Z in Unix seconds
    assert t["state"] == "delayed" and t["run_at"] == "2099-01-01T00:00:00.000Z"
    t = api.put("q", "1", "--run-at", "2099-01-01T01:00:00+01:00")
    assert t["run_at"] == "2099-01-01T00:00:00.000Z"
    t = api.put("q", "1", "--run-at", "2001-01-01T00:00:00Z")  # the past: now
    assert t["state"] == "ready"


def test_put_fractional_delay(api):
    t = api.put("q", "1", "--delay", "2.5")
    assert t["state"] == "delayed"


def test_put_key_keep_and_replace(api):
    first = api.put("net", '{"v": 1}', "--key", "room-301")
    r = api.ok("put", "net", '{"v": 2}', "--key", "room-301")
    assert r.out == "task %d in net already holds key 'room-301', nothing created: ready\n" % first["id"]
    dup = api.put("net", '{"v": 2}', "--key", "room-301")
    assert dup["id"] == first["id"] and dup["deduplicated"] is True and dup["payload"] == {"v": 1}

    rep = api.put("net", '{"v": 3}', "--key", "room-301", "--replace", "--delay", "900")
    assert rep["id"] == first["id"] and rep["replaced"] is True
    assert rep["payload"] == {"v": 3} and rep["state"] == "delayed"
    r = api.ok("put", "net", '{"v": 4}', "--key", "room-301", "--replace")
    assert r.out == "replaced task %d in net: ready\n" % first["id"]


def test_put_replace_while_a_worker_runs_it_supersedes(api):
    old = api.put("net", '{"v": 1}', "--key", "k")
    c = api.worker("net")
    jid, _ = c.reserve(timeout=0)
    assert jid == old["id"]
    new = api.put("net", '{"v": 2}', "--key", "k", "--replace")
    assert new["superseded"] == old["id"] and new["id"] != old["id"]
    r = api.ok("put", "net", '{"v": 3}', "--key", "k2")  # an unrelated key: plain create
    assert r.out.startswith("created task")
    c.cmd(b"delete %d\r\n" % jid)


def test_put_superseded_human(api):
    old = api.put("net", "1", "--key", "k")
    c = api.worker("net")
    c.reserve(timeout=0)
    r = api.ok("put", "net", "2", "--key", "k", "--replace")
    assert re.fullmatch(r"created task \d+ in net: ready; it took key 'k' from task %d, which a worker is running\n"
                        % old["id"], r.out), r


def test_get_not_found_exits_1(api):
    r = api.ctl("get", "999999", expect=1)
    assert r.err.startswith("deferctl: no task 999999")
    assert r.out == ""
    r = api.ctl("--json", "get", "999999", expect=1)
    assert r.out == ""


def test_get_finished_task(api):
    t = api.put("q", "1")
    api.ok("cancel", t["id"])
    g = api.ok("--json", "get", t["id"]).json()
    assert g["state"] == "cancelled" and re.fullmatch(TIME_RE, g["finished_at"])
    out = api.ok("get", t["id"]).out
    assert re.search(r"^state: +cancelled$", out, re.M)
    assert re.search(r"^finished_at: +%s \(" % TIME_RE, out, re.M)


def test_control_characters_are_not_printed(api):
    t = api.put("q", "1", "--key", "evil\x1b[31m\x07")
    out = api.ok("get", t["id"]).out
    assert "\x1b" not in out and "\x07" not in out
    assert re.search(r"^key: +evil\?\[31m\?$", out, re.M), out
    out = api.ok("list", "q").out
    assert "\x1b" not in out


# --------------------------------------------------------------------------
# cancel
# --------------------------------------------------------------------------


def test_cancel_by_id(api):
    t = api.put("q", "1")
    r = api.ok("cancel", t["id"])
    assert r.out == "cancelled task %d in q\n" % t["id"]
    again = api.ok("--json", "cancel", t["id"]).json()  # cancelling again answers the same
    assert again["id"] == t["id"] and again["state"] == "cancelled"
    r = api.ctl("cancel", "999999", expect=1)
    assert r.err == "deferctl: no task 999999\n"


def test_cancel_a_running_task_is_refused_exit_4(api):
    t = api.put("q", "1")
    c = api.worker("q")
    c.reserve(timeout=0)
    r = api.ctl("cancel", t["id"], expect=4)
    assert r.err.startswith("deferctl: task %d is reserved by a worker" % t["id"])
    assert r.out == ""


def test_cancel_a_done_task_is_refused_exit_4(api):
    t = api.put("q", "1")
    c = api.worker("q")
    jid, _ = c.reserve(timeout=0)
    assert c.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
    r = api.ctl("cancel", t["id"], expect=4)
    assert "already finished" in r.err
    assert api.ok("--json", "get", t["id"]).json()["state"] == "done"


def test_cancel_by_key(api):
    t = api.put("net", "1", "--key", "room/301 b")  # a key that must be escaped in the URL
    r = api.ok("cancel", "--key", "net", "room/301 b")
    assert r.out == "cancelled task %d in net\n" % t["id"]
    r = api.ctl("cancel", "--key", "net", "room/301 b", expect=1)
    assert "no unfinished task holds key 'room/301 b'" in r.err
    t = api.put("net", "1", "--key", "k")
    j = api.ok("cancel", "--json", "--key", "net", "k").json()
    assert j["id"] == t["id"] and j["state"] == "cancelled"
    api.ctl("cancel", "--key", "nosuchqueue", "k", expect=1)


# --------------------------------------------------------------------------
# list
# --------------------------------------------------------------------------


def _states_fixture(api):
    """One task in each state, in queue 'jobs'; returns {state: id}."""
    ids = {}
    ids["ready"] = api.put("jobs", '{"s": "ready"}')["id"]
    ids["delayed"] = api.put("jobs", '{"s": "delayed"}', "--delay", "3600")["id"]
    c = api.worker("jobs")
    # Reserved: the ready one is handed out first; put another for it.
    b = api.put("jobs", '{"s": "buried"}', "--priority", "0")["id"]
    jid, _ = c.reserve(timeout=0)
    assert jid == b
    assert c.cmd(b"bury %d 0\r\n" % jid) == b"BURIED\r\n"
    ids["buried"] = b
    f = api.put("jobs", '{"s": "failed"}', "--priority", "0", "--max-attempts", "1")["id"]
    jid, _ = c.reserve(timeout=0)
    assert jid == f
    assert c.cmd(b"release %d 0 0\r\n" % jid) == b"RELEASED\r\n"
    ids["failed"] = f
    r = api.put("jobs", '{"s": "reserved"}', "--priority", "0")["id"]
    jid, _ = c.reserve(timeout=0)
    assert jid == r
    ids["reserved"] = r
    return ids, c


def test_list_each_state_json(api):
    ids, _ = _states_fixture(api)
    for state, tid in ids.items():
        doc = api.ok("list", "jobs", "--state", state, "--json").json()
        assert [t["id"] for t in doc["tasks"]] == [tid], (state, doc)
        assert doc["tasks"][0]["state"] == state
        assert doc["next"] is None


def test_list_every_state_json(api):
    ids, _ = _states_fixture(api)
    doc = api.ok("--json", "list", "jobs").json()
    assert set(doc) == {"ready", "delayed", "reserved", "buried", "failed"}
    for state, tid in ids.items():
        assert [t["id"] for t in doc[state]["tasks"]] == [tid]


def test_list_human_table(api):
    ids, _ = _states_fixture(api)
    lines = api.ok("list", "jobs").out.splitlines()
    assert lines[0].split() == ["ID", "STATE", "PRI", "TTR", "ATTEMPTS", "KEY", "CREATED", "RUN_AT", "LAST_ERROR"]
    rows = {int(l.split()[0]): l.split()[1] for l in lines[1:]}
    assert rows == {tid: state for state, tid in ids.items()}
    # Aligned: every row's STATE starts where the header's does.
    col = lines[0].index("STATE")
    assert all(l[col - 1] == " " and l[col] != " " for l in lines[1:]), lines
    failed = next(l for l in lines if l.split()[0] == str(ids["failed"]))
    assert "released by a worker" in failed


def test_list_paging(api):
    ids = [api.put("page", str(i))["id"] for i in range(3)]
    doc = api.ok("--json", "list", "page", "--state", "ready", "--limit", "2").json()
    assert [t["id"] for t in doc["tasks"]] == ids[:2] and doc["next"] == ids[1]
    doc = api.ok("--json", "list", "page", "--state", "ready", "--after", doc["next"]).json()
    assert [t["id"] for t in doc["tasks"]] == ids[2:] and doc["next"] is None
    out = api.ok("list", "page", "--state", "ready", "--limit", "2").out
    assert "more ready tasks: deferctl list page --state ready --limit 2 --after %d" % ids[1] in out


def test_list_empty_and_unknown(api):
    api.put("q", "1")
    r = api.ok("list", "q", "--state", "buried")
    assert r.out == "no buried tasks in q\n"
    r = api.ctl("list", "nosuchqueue", expect=1)
    assert r.err.startswith("deferctl: no queue named 'nosuchqueue'")


# --------------------------------------------------------------------------
# queues, stats
# --------------------------------------------------------------------------


def test_queues_json(api):
    api.put("mail", "1")
    api.put("mail", "2", "--delay", "3600")
    doc = api.ok("--json", "queues").json()
    mail = next(q for q in doc["queues"] if q["name"] == "mail")
    assert (mail["ready"], mail["delayed"], mail["total_enqueued"], mail["paused"]) == (1, 1, 2, False)


def test_queues_table(api):
    api.put("mail", "1")
    api.put("mail", "2")
    api.put("a-much-longer-queue-name", "1", "--delay", "3600")
    lines = api.ok("queues").out.splitlines()
    assert lines[0].split() == ["QUEUE", "READY", "DELAYED", "RESERVED", "BURIED", "FAILED", "WAITING", "ENQ/S",
                                "DONE/S", "PAUSED"]
    rows = {l.split()[0]: l.split()[1:] for l in lines[1:]}
    assert rows["mail"][:6] == ["2", "0", "0", "0", "0", "0"]
    assert rows["mail"][8] == "no"
    assert rows["a-much-longer-queue-name"][:2] == ["0", "1"]
    # Numbers are right-aligned under their header.
    end = lines[0].index("READY") + len("READY")
    assert all(l[end - 1].isdigit() for l in lines[1:]), lines


def test_stats(api):
    api.put("q", "1")
    doc = api.ok("--json", "stats").json()
    assert doc["tasks"]["ready"] == 1 and doc["total_enqueued"] == 1
    out = api.ok("stats").out
    assert re.search(r"^tasks\.ready: +1$", out, re.M), out
    assert re.search(r"^version: +\d+\.\d+\.\d+$", out, re.M), out


# --------------------------------------------------------------------------
# kick, pause, resume
# --------------------------------------------------------------------------


def _bury(api, q, n):
    c = api.worker(q)
    ids = [api.put(q, str(i))["id"] for i in range(n)]
    for _ in ids:
        jid, _ = c.reserve(timeout=0)
        assert c.cmd(b"bury %d 0\r\n" % jid) == b"BURIED\r\n"
    return ids, c


def test_kick(api):
    _bury(api, "k", 3)
    r = api.ok("kick", "k", "1")
    assert r.out == "kicked 1 task in k\n"
    assert api.ok("--json", "kick", "k").json() == {"kicked": 2}
    assert api.ok("kick", "k").out == "kicked 0 tasks in k\n"
    doc = api.ok("--json", "queues").json()
    k = next(q for q in doc["queues"] if q["name"] == "k")
    assert (k["ready"], k["buried"]) == (3, 0)
    r = api.ctl("kick", "nosuchqueue", expect=1)
    assert "no queue named 'nosuchqueue'" in r.err


def test_kick_delayed_when_none_is_buried(api):
    api.put("k", "1", "--delay", "3600")
    assert api.ok("--json", "kick", "k").json() == {"kicked": 1}


def test_pause_and_resume(api):
    api.put("mail", "1")
    r = api.ok("pause", "mail", "300")
    assert r.out.startswith("paused mail for "), r
    q = api.ok("--json", "pause", "mail", "300").json()
    assert q["paused"] is True and 0 < q["pause_seconds_left"] <= 300
    # A paused queue hands out nothing.
    c = api.worker("mail")
    assert c.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"

    r = api.ok("pause", "mail")
    assert r.out == "paused mail until resumed (deferctl resume mail)\n"
    row = next(l for l in api.ok("queues").out.splitlines() if l.startswith("mail "))
    assert row.endswith("until resumed"), row

    assert api.ok("resume", "mail").out == "resumed mail\n"
    q = api.ok("--json", "resume", "mail").json()
    assert q["paused"] is False and q["name"] == "mail"
    jid, _ = c.reserve(timeout=0)

    api.ctl("pause", "nosuchqueue", "10", expect=1)
    api.ctl("resume", "nosuchqueue", expect=1)


def test_queue_names_are_escaped_in_urls(api):
    name = "a/b;c$(d)+e.f_g"
    t = api.put(name, "1")
    assert t["queue"] == name
    assert [x["id"] for x in api.ok("--json", "list", name, "--state", "ready").json()["tasks"]] == [t["id"]]
    api.ok("pause", name, "10")
    api.ok("resume", name)
    assert api.ok("--json", "kick", name).json() == {"kicked": 0}
    t2 = api.put(name, "2", "--key", "k")
    assert api.ok("--json", "cancel", "--key", name, "k").json()["id"] == t2["id"]


# --------------------------------------------------------------------------
# the server refusing: 401, 409 (above), 413, 503
# --------------------------------------------------------------------------

TOKEN = "s3cret-token-0123456789"


@pytest.fixture
def token_api(make_deferd, tmp_path):
    f = tmp_path / "server-token"
    f.write_text(TOKEN + "\n")
    return start_api(make_deferd, ["--http-token-file", str(f)])


def test_token_required(token_api, tmp_path):
    r = token_api.ctl("queues", expect=4)
    assert r.err.startswith("deferctl: this server requires a token")
    r = token_api.ctl("--json", "put", "q", "1", expect=4)
    assert r.out == ""

    good = tmp_path / "good"
    good.write_text(TOKEN + "\r\nignored second line\n")
    token_api.ok("--token-file", str(good), "queues")
    t = token_api.ok("put", "q", "1", "--json", "--token-file", str(good)).json()  # after the command too
    token_api.ok("--token-file", str(good), "get", t["id"])

    token_api.ok("queues", env={"DEFER_TOKEN": TOKEN})
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-token-at-all\n")
    token_api.ctl("--token-file", str(wrong), "queues", expect=4)
    # --token-file wins over $DEFER_TOKEN.
    token_api.ctl("--token-file", str(wrong), "queues", env={"DEFER_TOKEN": TOKEN}, expect=4)


def test_tail_without_the_token_exits_4(token_api):
    r = token_api.ctl("tail", expect=4)
    assert "requires a token" in r.err


def test_payload_too_large_exits_4(make_deferd):
    api = start_api(make_deferd, ["-z", "64"])
    r = api.ctl("put", "q", '"%s"' % ("x" * 100), expect=4)
    assert re.match(r"deferctl: the payload is \d+ bytes; the largest task is 64 bytes", r.err), r
    api.ok("put", "q", '"small"')


def test_draining_server_exits_5(api):
    api.srv.signal(signal.SIGUSR1)
    r = eventually(lambda: (lambda x: x if x.rc == 5 else None)(api.ctl("put", "q", "1")))
    assert r.err.startswith("deferctl: the server is draining"), r
    api.ok("queues")  # other requests still work


# --------------------------------------------------------------------------
# cannot reach the server (exit 3), answers that are not the API (exit 5)
# --------------------------------------------------------------------------


def test_unreachable_exits_3(dead_url):
    for args in (["queues"], ["get", "1"], ["put", "q", "1"], ["tail"], ["--json", "stats"]):
        r = ctl(*args, url=dead_url, expect=3)
        assert r.err.startswith("deferctl: cannot reach deferd at %s" % dead_url), r
        assert r.out == ""


def test_defer_url_environment(api, dead_url):
    api.ok("queues", url=None, env={"DEFER_URL": api.url})
    api.ok("queues", url=None, env={"DEFER_URL": api.url + "/"})
    ctl("queues", env={"DEFER_URL": dead_url}, expect=3)
    # --url wins over $DEFER_URL.
    ctl("--url", api.url, "queues", env={"DEFER_URL": dead_url}, expect=0)


def test_timeout_exits_3(dead_url):
    # A socket that accepts connections (the kernel does) and never answers.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        url = "http://127.0.0.1:%d" % s.getsockname()[1]
        r = ctl("--timeout", "0.5", "queues", url=url, expect=3)
        assert "timed out" in r.err.lower(), r


def test_beanstalk_port_is_not_http_exits_5(api):
    r = ctl("queues", url="http://127.0.0.1:%d" % api.srv.port, expect=5)
    assert "did not answer in HTTP" in r.err, r


class _FakeHandler(http.server.BaseHTTPRequestHandler):
    answer = (200, b"{}")

    def _reply(self):
        status, body = self.server.answer
        self.server.seen.append((self.command, self.path, self.headers.get("Authorization")))
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        if self.server.stream is None:
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:  # HTTP/1.0 without a length: the body ends when the connection does
            self.end_headers()
            for line in self.server.stream:
                self.wfile.write(line + b"\n")
                self.wfile.flush()

    do_GET = do_POST = do_DELETE = _reply

    def log_message(self, *args):
        pass


@pytest.fixture
def fake():
    """An HTTP server answering every request with fake.answer."""
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _FakeHandler)
    srv.answer = (200, b"{}")
    srv.stream = None
    srv.seen = []
    srv.url = "http://127.0.0.1:%d" % srv.server_address[1]
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    t.join(10)


def _err(code, msg):
    return json.dumps({"error": {"code": code, "message": msg}}).encode()


@pytest.mark.parametrize("status,body,rc,message", [
    (400, _err("invalid_field", "priority must be an integer"), 4, "deferctl: priority must be an integer\n"),
    (405, _err("method_not_allowed", "PUT is not allowed here"), 4, "deferctl: PUT is not allowed here\n"),
    (404, b"", 1, "deferctl: the server answered 404 without an error message\n"),
    (500, _err("internal", "out of memory"), 5, "deferctl: out of memory\n"),
    (502, b"<html>bad gateway</html>", 5, "deferctl: the server answered 502 without an error message\n"),
    (507, _err("storage_full", "the disk holding the log is full"), 5,
     "deferctl: the disk holding the log is full\n"),
    (200, b"not json", 5, None),
    (200, b"[1, 2]", 5, None),
    (200, b"", 5, None),
])
def test_answers_by_status(fake, status, body, rc, message):
    fake.answer = (status, body)
    r = ctl("get", "7", url=fake.url, expect=rc)
    assert r.out == ""
    if message:
        assert r.err == message
    else:
        assert r.err.startswith("deferctl: the server answered 200 but not with a JSON object"), r
    assert fake.seen[-1][:2] == ("GET", "/v1/tasks/7")


def test_json_output_is_the_servers_text(fake):
    body = b'{"queues": [],   "extra": "kept as it is"}'
    fake.answer = (200, body)
    r = ctl("--json", "queues", url=fake.url, expect=0)
    assert r.out == body.decode() + "\n"


def test_requests_on_the_wire(fake, tmp_path):
    """Method, path and token of each command, as the server sees them."""
    tok = tmp_path / "t"
    tok.write_text("abcdefghijklmnopq\n")
    fake.answer = (200, b'{"id": 1, "state": "cancelled", "kicked": 0, "tasks": [], "next": null}')
    cases = [
        (["get", "5"], ("GET", "/v1/tasks/5")),
        (["cancel", "5"], ("DELETE", "/v1/tasks/5")),
        (["cancel", "--key", "a/b", "k y"], ("DELETE", "/v1/queues/a%2Fb/keys/k%20y")),
        (["list", "q", "--state", "failed", "--limit", "5", "--after", "9"],
         ("GET", "/v1/queues/q/tasks?state=failed&limit=5&after=9")),
        (["kick", "q", "4"], ("POST", "/v1/queues/q/kick")),
        (["pause", "q", "30"], ("POST", "/v1/queues/q/pause")),
        (["resume", "q"], ("POST", "/v1/queues/q/resume")),
        (["stats"], ("GET", "/v1/stats")),
        (["queues"], ("GET", "/v1/queues")),
    ]
    for args, want in cases:
        ctl("--json", "--token-file", str(tok), *args, url=fake.url + "/", expect=0)
        assert fake.seen[-1] == want + ("Bearer abcdefghijklmnopq",), args


# --------------------------------------------------------------------------
# tail
# --------------------------------------------------------------------------

_EV = b'{"time":"2026-11-22T14:00:00.001Z","event":"enqueued","task":813,"queue":"mail"}'
_BEAT = b'{"event":"heartbeat"}'


def test_tail_stream_that_ends_exits_3(fake):
    fake.stream = [_EV, _BEAT, b'{"time":"2026-11-22T14:00:01.000Z","event":"done","task":813,"queue":"mail"}']
    r = ctl("tail", "mail", url=fake.url, expect=3)
    # Heartbeats are not shown to people.
    assert r.out == "2026-11-22T14:00:00.001Z  enqueued  mail  #813\n2026-11-22T14:00:01.000Z  done  mail  #813\n"
    assert r.err == "deferctl: the server ended the event stream\n"
    assert fake.seen[-1][:2] == ("GET", "/v1/events?queue=mail")
    r = ctl("tail", "--json", url=fake.url, expect=3)
    assert r.out.splitlines() == [l.decode() for l in fake.stream]
    assert fake.seen[-1][:2] == ("GET", "/v1/events")


def test_tail_overflow_exits_3(fake):
    fake.stream = [_EV, b'{"event":"overflow"}']
    r = ctl("tail", url=fake.url, expect=3)
    assert r.out == "2026-11-22T14:00:00.001Z  enqueued  mail  #813\n"
    assert "cut the event stream off" in r.err


def test_tail_garbage_exits_5(fake):
    fake.stream = [_EV, b"<html>"]
    r = ctl("tail", "--json", url=fake.url, expect=5)
    assert r.out == _EV.decode() + "\n"
    assert "not a JSON object" in r.err



class Tail:
    """`deferctl tail` running in the background; lines read by a thread."""

    def __init__(self, api, *args):
        self.proc = subprocess.Popen([DEFERCTL, "--url", api.url, "tail"] + list(args), stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=_env())
        self.lines = queue.Queue()
        self.err = b""
        self.t_out = threading.Thread(target=self._read_out, daemon=True)
        self.t_err = threading.Thread(target=self._read_err, daemon=True)
        self.t_out.start()
        self.t_err.start()

    def _read_out(self):
        for line in self.proc.stdout:
            self.lines.put(line.decode("utf-8", "replace").rstrip("\n"))

    def _read_err(self):
        self.err = self.proc.stderr.read()

    def line(self):
        try:
            return self.lines.get(timeout=LINE_TIMEOUT)
        except queue.Empty:
            raise AssertionError("no line from deferctl tail within %.0f s; stderr: %r" % (LINE_TIMEOUT, self.err))

    def stop(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        return self.finish()

    def finish(self):
        rc = self.proc.wait(RUN_TIMEOUT)
        self.t_out.join(10)
        self.t_err.join(10)
        check_sanitizers(self.err.decode("utf-8", "replace"), "tail")
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(RUN_TIMEOUT)


def _about(line, task):
    """Is this tail line (human or --json) about that task?"""
    if line.startswith("{"):
        return json.loads(line).get("task") == task
    return line.endswith("  #%d" % task)


def start_tail(api, *args, probe_queue="probe"):
    """Start tail and return once it is following: probe tasks are put in
    probe_queue (which the tail must show) until one shows up, then a
    marker task, and every line up to the marker's is read, so the next
    line is the first event the test causes."""
    t = Tail(api, *args)
    try:
        c = api.srv.connect()
        c.use(probe_queue)

        def probe():
            assert t.proc.poll() is None, "tail exited early: %r" % t.err
            c.put(b"probe")
            try:
                return t.lines.get(timeout=0.2)
            except queue.Empty:
                return None

        eventually(probe, timeout=RUN_TIMEOUT)
        marker = c.put(b"marker")
        while not _about(t.line(), marker):
            pass
        c.close()
    except BaseException:
        t.kill()
        raise
    return t


@pytest.fixture
def tails():
    started = []
    yield started
    for t in started:
        t.kill()


def test_tail_human_lines_and_sigint_exits_0(api, tails):
    t = start_tail(api)
    tails.append(t)
    # Events from a beanstalk producer and worker, and from deferctl.
    c = api.srv.connect()
    c.use("mail")
    jid = c.put(b"hello")
    c.watch("mail")
    rid, _ = c.reserve(timeout=0)
    assert rid == jid
    assert c.cmd(b"bury %d 0\r\n" % jid) == b"BURIED\r\n"
    api.ok("kick", "mail")
    api.ok("cancel", jid)
    seen = [t.line() for _ in range(5)]
    for line, event in zip(seen, ["enqueued", "reserved", "buried", "kicked", "cancelled"]):
        assert re.fullmatch(r"%s  %s  mail  #%d" % (TIME_RE, event, jid), line), seen
    assert t.stop(signal.SIGINT) == 0


def test_tail_json_one_queue_and_sigterm_exits_0(api, tails):
    t = start_tail(api, "--json", "mail", probe_queue="mail")
    tails.append(t)
    c = api.srv.connect()
    c.use("other")
    c.put(b"not followed")
    c.use("mail")
    jid = c.put(b"followed")
    api.ok("cancel", jid)
    first = json.loads(t.line())
    assert first["event"] == "enqueued" and first["task"] == jid and first["queue"] == "mail"
    assert re.fullmatch(TIME_RE, first["time"])
    second = json.loads(t.line())
    assert (second["event"], second["task"]) == ("cancelled", jid)
    assert t.stop(signal.SIGTERM) == 0


def test_tail_queue_name_is_escaped(api, tails):
    name = "a/b;c$(d)"
    t = start_tail(api, "--json", name, probe_queue=name)
    tails.append(t)
    # Tasks are put over beanstalk: see test_put_while_tail_follows.
    c = api.srv.connect()
    c.use("other")
    api.ok("cancel", c.put(b"not followed"))
    c.use(name)
    tid = c.put(b"followed")
    api.ok("cancel", tid)
    ev = [json.loads(t.line()) for _ in range(2)]
    assert [(e["event"], e["task"], e["queue"]) for e in ev] == [("enqueued", tid, name), ("cancelled", tid, name)]
    assert t.stop() == 0


def test_tail_exits_3_when_the_server_goes_away(api, tails):
    t = start_tail(api)
    tails.append(t)
    api.srv.stop_and_check()
    assert t.finish() == 3
    assert t.err.decode().startswith("deferctl: "), t.err


def test_put_while_tail_follows(api, tails):
    t = start_tail(api)
    tails.append(t)
    r = api.ctl("--json", "put", "mail", "1")
    assert r.rc == 0, r
    assert r.json()["payload"] == 1
    assert re.fullmatch(r"%s  enqueued  mail  #%d" % (TIME_RE, r.json()["id"]), t.line())
