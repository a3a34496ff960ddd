"""Helpers for the black-box tests: a beanstalk client that reads one reply at
a time, a tiny YAML reader for beanstalkd's flat YAML, and server processes
(start, readiness, stop, sanitizer check). The fixtures are in conftest.py."""


import difflib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time


HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFERD = os.environ.get("DEFERD") or os.path.join(REPO, "build", "asan", "deferd")
BEANSTALKD = os.environ.get("BEANSTALKD") or shutil.which("beanstalkd") or "/usr/bin/beanstalkd"

START_TIMEOUT = 15.0  # seconds for a server to be listening (ASan on a busy box)
STOP_TIMEOUT = 20.0  # seconds for a server to exit after SIGTERM (LSan runs then)
IO_TIMEOUT = 5.0  # seconds for any single reply

SANITIZER_MARKERS = ("AddressSanitizer", "LeakSanitizer", "runtime error:")


# --------------------------------------------------------------------------
# the client
# --------------------------------------------------------------------------


class ProtocolError(AssertionError):
    pass


# A reply line that announces a data block: "OK <bytes>", "FOUND <id> <bytes>",
# "RESERVED <id> <bytes>".
_DATA_REPLY = re.compile(rb"^(OK|FOUND|RESERVED)(?: (\d+))? (\d+)$")


class _Connection:
    """What both kinds of test connection share: a socket with a read buffer
    (self.sock, self.buf, self.timeout), raw sends and end-of-stream checks."""

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(1 << 16)
        if not data:
            raise EOFError("server closed the connection (buffered: %r)" % bytes(self.buf[:200]))
        self.buf += data

    def read_line(self, limit=1 << 16):
        """One line up to and including CRLF."""
        while True:
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self.buf[: i + 2])
                del self.buf[: i + 2]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("no CRLF in %d bytes: %r" % (len(self.buf), bytes(self.buf[:200])))
            self._fill()

    def read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data = bytes(self.buf[:n])
        del self.buf[:n]
        return data

    def expect_eof(self, timeout=IO_TIMEOUT):
        """The server closes the connection without sending anything more."""
        assert not self.buf, "unexpected bytes before EOF: %r" % bytes(self.buf)
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(1 << 16)
        except ConnectionResetError:
            data = b""
        finally:
            self.sock.settimeout(self.timeout)
        assert data == b"", "expected EOF, got %r" % data

    def expect_nothing(self, wait=0.3):
        """Nothing arrives within `wait` seconds (the server is still waiting)."""
        assert not self.buf, "unexpected bytes: %r" % bytes(self.buf)
        self.sock.settimeout(wait)
        try:
            data = self.sock.recv(1 << 16)
        except socket.timeout:
            return
        finally:
            self.sock.settimeout(self.timeout)
        raise AssertionError("expected no reply yet, got %r" % data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class Client(_Connection):
    """A beanstalk connection that reads exactly one reply at a time."""

    def __init__(self, address, family=socket.AF_INET, timeout=IO_TIMEOUT, sock=None):
        if sock is None:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(address)
        sock.settimeout(timeout)
        self.sock = sock
        self.buf = bytearray()
        self.timeout = timeout

    # ---- replies ----

    def reply(self):
        """Exactly one reply: a line, plus its data block for OK/FOUND/RESERVED."""
        line = self.read_line()
        m = _DATA_REPLY.match(line[:-2])
        if m:
            size = int(m.group(3))
            block = self.read_exact(size + 2)
            if block[-2:] != b"\r\n":
                raise ProtocolError("data block of %r not followed by CRLF: %r" % (line, block[-2:]))
            return line + block
        return line

    def replies(self, n):
        return [self.reply() for _ in range(n)]

    def cmd(self, data):
        """Send one command (with its CRLF, and body for put); return its reply."""
        self.send(data)
        return self.reply()

    # ---- conveniences ----

    def put(self, body=b"x", pri=0, delay=0, ttr=10):
        if isinstance(body, str):
            body = body.encode()
        r = self.cmd(b"put %d %d %d %d\r\n%s\r\n" % (pri, delay, ttr, len(body), body))
        m = re.match(rb"^INSERTED (\d+)\r\n$", r)
        assert m, "put failed: %r" % r
        return int(m.group(1))

    def use(self, tube):
        r = self.cmd(b"use %s\r\n" % _b(tube))
        assert r == b"USING %s\r\n" % _b(tube), r
        return r

    def watch(self, tube):
        r = self.cmd(b"watch %s\r\n" % _b(tube))
        assert r.startswith(b"WATCHING "), r
        return int(r.split()[1])

    def ignore(self, tube):
        r = self.cmd(b"ignore %s\r\n" % _b(tube))
        assert r.startswith(b"WATCHING "), r
        return int(r.split()[1])

    def reserve(self, timeout=None):
        """reserve (or reserve-with-timeout); returns (id, body)."""
        if timeout is None:
            r = self.cmd(b"reserve\r\n")
        else:
            r = self.cmd(b"reserve-with-timeout %d\r\n" % timeout)
        return job_of(r, b"RESERVED")

    def yaml(self, command):
        r = self.cmd(command)
        assert r.startswith(b"OK "), "%r -> %r" % (command, r)
        return parse_yaml(body_of(r))

    def stats(self):
        return self.yaml(b"stats\r\n")

    def stats_job(self, jid):
        return self.yaml(b"stats-job %d\r\n" % jid)

    def stats_tube(self, tube):
        return self.yaml(b"stats-tube %s\r\n" % _b(tube))

    def list_tubes(self):
        return self.yaml(b"list-tubes\r\n")


def _b(s):
    return s.encode() if isinstance(s, str) else s


def body_of(reply):
    """The data block of an OK/FOUND/RESERVED reply (without its CRLF)."""
    line, _, rest = reply.partition(b"\r\n")
    m = _DATA_REPLY.match(line)
    assert m, "not a data reply: %r" % reply
    assert len(rest) == int(m.group(3)) + 2 and rest.endswith(b"\r\n"), reply
    return rest[:-2]


def job_of(reply, word):
    """(id, body) of a FOUND/RESERVED reply; fails on anything else."""
    m = re.match(rb"^%s (\d+) (\d+)\r\n" % word, reply)
    assert m, "expected %s, got %r" % (word.decode(), reply)
    return int(m.group(1)), body_of(reply)


class Yaml(dict):
    """A YAML dict reply that remembers its key order; list replies are lists."""

    keys_in_order = ()


def parse_yaml(body):
    """beanstalkd's flat YAML: '---\\n' then '- item\\n' lines or 'key: value\\n' lines."""
    assert body.startswith(b"---\n"), "YAML must start with ---\\n: %r" % body[:40]
    lines = body[4:].split(b"\n")
    assert lines[-1] == b"", "YAML must end with a newline: %r" % body[-40:]
    lines = lines[:-1]
    if lines and all(l.startswith(b"- ") for l in lines):
        return [l[2:].decode() for l in lines]
    d = Yaml()
    order = []
    for l in lines:
        k, sep, v = l.partition(b": ")
        assert sep, "bad YAML line %r" % l
        d[k.decode()] = v.decode()
        order.append(k.decode())
    d.keys_in_order = tuple(order)
    return d


# --------------------------------------------------------------------------
# server processes
# --------------------------------------------------------------------------


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tcp_listening(port):
    """True when some socket LISTENs on `port` (any address), per /proc/net."""
    for path in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    parts = line.split()
                    local, state = parts[1], parts[3]
                    if state == "0A" and int(local.rsplit(":", 1)[1], 16) == port:
                        return True
        except FileNotFoundError:
            pass
    return False


def _unix_listening(path):
    """True when a listening unix socket is bound at `path`, per /proc/net/unix."""
    with open("/proc/net/unix") as f:
        next(f)
        for line in f:
            parts = line.split()
            # Flags 00010000 = __SO_ACCEPTCON (listening).
            if len(parts) >= 8 and parts[7] == path and int(parts[3], 16) & 0x10000:
                return True
    return False


class Server:
    """One server process, its stderr captured to a file."""

    def __init__(self, binary, args, workdir, name, env=None, port=None, unix_path=None, kind="deferd"):
        self.binary = binary
        self.args = list(args)
        self.workdir = workdir
        self.name = name
        self.env = env
        self.port = port
        self.unix_path = unix_path
        self.kind = kind
        self.proc = None
        self.rc = None
        self.stderr_path = os.path.join(workdir, "%s.stderr" % name)
        self.checked = False

    # ---- life cycle ----

    def spawn(self, argv=None, **popen_kw):
        self._errf = open(self.stderr_path, "wb")
        env = dict(os.environ)
        if self.env:
            env.update(self.env)
        self.proc = subprocess.Popen(
            argv or [self.binary] + self.args,
            stdin=subprocess.DEVNULL,
            stdout=self._errf,
            stderr=self._errf,
            env=env,
            **popen_kw,
        )
        return self

    @property
    def pid(self):
        return self.proc.pid

    def listening(self):
        if self.unix_path:
            return _unix_listening(self.unix_path)
        return _tcp_listening(self.port)

    def wait_listening(self, timeout=START_TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    "%s exited with %s before listening; stderr:\n%s" % (self.name, self.proc.returncode, self.stderr())
                )
            if self.listening():
                return self
            time.sleep(0.005)
        raise RuntimeError("%s not listening after %.0f s; stderr:\n%s" % (self.name, timeout, self.stderr()))

    def connect(self, timeout=IO_TIMEOUT):
        if self.unix_path:
            return Client(self.unix_path, socket.AF_UNIX, timeout)
        return Client(("127.0.0.1", self.port), socket.AF_INET, timeout)

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=None, timeout=STOP_TIMEOUT):
        """Signal the server (SIGTERM by default) and wait for it; returns its exit code."""
        sig = sig or signal.SIGTERM
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
                self.rc = "hung (killed after %.0f s)" % timeout
                return self.rc
        self.rc = self.proc.returncode
        self._errf.close()
        return self.rc

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT)
        if self.proc:
            self._errf.close()

    def stderr(self):
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def sanitizer_report(self):
        err = self.stderr()
        for marker in SANITIZER_MARKERS:
            if marker in err:
                return err
        return None

    def stop_and_check(self, expect_rc=0):
        """SIGTERM (unless already stopped), then: exit code, sanitizer reports."""
        self.checked = True
        rc = self.stop()
        report = self.sanitizer_report()
        assert report is None, "%s: sanitizer report on stderr:\n%s" % (self.name, report)
        assert rc == expect_rc, "%s: exit code %r after SIGTERM (want %r); stderr:\n%s" % (
            self.name,
            rc,
            expect_rc,
            self.stderr(),
        )

    # ---- inspection ----

    def rss_kb(self):
        with open("/proc/%d/status" % self.pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")


def sock_path(workdir, name):
    """A unix socket path in workdir, or in a fresh short directory when that
    would exceed sun_path's 108 bytes."""
    path = os.path.join(str(workdir), name)
    if len(path) < 100:
        return path
    return os.path.join(tempfile.mkdtemp(prefix="defer-"), name)


def start_server(binary, workdir, name, args=(), env=None, unix=False, kind="deferd", retries=5):
    """Start a server on a fresh port (or unix socket) and wait until it listens."""
    last = None
    for attempt in range(retries):
        if unix:
            path = sock_path(workdir, "%s-%d.sock" % (name, attempt))
            listen = ["-l", "unix:" + path]
            srv = Server(binary, listen + list(args), workdir, name, env=env, unix_path=path, kind=kind)
        else:
            port = free_port()
            listen = ["-l", "127.0.0.1", "-p", str(port)]
            srv = Server(binary, listen + list(args), workdir, name, env=env, port=port, kind=kind)
        srv.spawn()
        try:
            return srv.wait_listening()
        except RuntimeError as e:  # most likely the port was taken meanwhile
            last = e
            srv.kill()
    raise last




# --------------------------------------------------------------------------
# differential runs: the same bytes to beanstalkd and to deferd
# --------------------------------------------------------------------------

DIFF_TIMEOUT = 3.0  # a reply that does not come within this is recorded as <TIMEOUT>

# A command whose reply cannot come from anything else in a test: sent after
# raw input to know that every reply to that input has arrived.
SENTINEL_TUBE = b"zz-sentinel.end"
SENTINEL = b"use " + SENTINEL_TUBE + b"\r\n"
SENTINEL_REPLY = b"USING " + SENTINEL_TUBE + b"\r\n"

# Keys of `stats` that differ between any two servers (or by design: version).
STATS_VOLATILE = {"pid", "version", "rusage-utime", "rusage-stime", "uptime", "id", "hostname", "os"}
# Whole seconds read off the clock: compared with a tolerance of one second,
# since the two servers run the same steps a few milliseconds apart.
TIMING_KEYS = {"age", "time-left", "pause-time-left"}


class Transcript:
    """Every reply one server gave during a scenario, in order."""

    def __init__(self, server, timeout=DIFF_TIMEOUT):
        self.server = server
        self.timeout = timeout
        self.items = []
        self.conns = []

    def conn(self):
        c = RecordingConn(self, self.server.connect(self.timeout), len(self.conns))
        self.conns.append(c)
        return c

    def close_all(self):
        for c in self.conns:
            c.close()

    def note(self, idx, what):
        self.items.append((idx, what))


class RecordingConn:
    """A connection whose replies go into a Transcript. Never raises on a
    missing reply or EOF: those are recorded, so the two transcripts differ."""

    def __init__(self, transcript, client, idx):
        self.t = transcript
        self.c = client
        self.idx = idx
        self.dead = False

    def send(self, data):
        if self.dead:
            return
        try:
            self.c.send(data)
        except OSError as e:
            self.t.note(self.idx, "<send failed: %s>" % e.__class__.__name__)
            self.dead = True

    def recv(self, n=1):
        out = []
        for _ in range(n):
            if self.dead:
                break
            try:
                r = self.c.reply()
            except (socket.timeout, TimeoutError):
                r = "<TIMEOUT>"
                self.dead = True
            except (EOFError, ConnectionResetError):
                r = "<EOF>"
                self.dead = True
            except ProtocolError as e:
                r = "<bad reply: %s>" % e
                self.dead = True
            self.t.note(self.idx, r)
            out.append(r)
        return out

    def cmd(self, *cmds):
        """Each command sent and answered in turn."""
        out = []
        for c in cmds:
            self.send(c)
            out += self.recv(1)
        return out

    def pipe(self, *cmds):
        """All commands in one write, then one reply each."""
        self.send(b"".join(cmds))
        return self.recv(len(cmds))

    def raw(self, data):
        """Arbitrary bytes, then the sentinel; records every reply up to the
        sentinel's (or EOF, or silence)."""
        self.send(data + SENTINEL)
        while not self.dead:
            (r,) = self.recv(1)
            if r == SENTINEL_REPLY:
                break

    def eof(self, timeout=None):
        """Record whether the server closes the connection now (EOF) or
        sends something / stays silent."""
        if self.dead:
            return
        self.c.sock.settimeout(timeout or self.t.timeout)
        try:
            data = bytes(self.c.buf) or self.c.sock.recv(1 << 16)
            self.t.note(self.idx, "<EOF>" if data == b"" else data)
        except (socket.timeout, TimeoutError):
            self.t.note(self.idx, "<TIMEOUT>")
        except ConnectionResetError:
            self.t.note(self.idx, "<EOF>")
        self.dead = True

    def silent(self, wait=0.3):
        """Record whether anything arrives within `wait` seconds."""
        if self.dead:
            return
        self.c.sock.settimeout(wait)
        try:
            data = bytes(self.c.buf) or self.c.sock.recv(1 << 16)
            self.t.note(self.idx, data if data else "<EOF>")
            self.dead = True
        except (socket.timeout, TimeoutError):
            self.t.note(self.idx, "<silent>")
        finally:
            self.c.sock.settimeout(self.t.timeout)

    def shutdown_write(self):
        self.c.shutdown_write()

    def close(self):
        self.c.close()
        self.dead = True


def _mask_yaml(body, extra_mask):
    """Mask volatile values of a YAML body; returns (masked body, timing values)."""
    lines = body.split(b"\n")
    is_stats = any(l.startswith(b"pid: ") for l in lines)
    timing = []
    out = []
    for l in lines:
        k, sep, v = l.partition(b": ")
        key = k.decode("latin-1")
        if sep and (key in extra_mask or (is_stats and key in STATS_VOLATILE)):
            l = k + b": <masked>"
        elif sep and key in TIMING_KEYS:
            timing.append((key, v))
            l = k + b": <seconds>"
        out.append(l)
    return b"\n".join(out), timing


def normalize(items, extra_mask=()):
    """Transcript items -> (masked items, timing values)."""
    masked, timing = [], []
    for idx, r in items:
        if isinstance(r, bytes) and r.startswith(b"OK "):
            line, _, rest = r.partition(b"\r\n")
            body, t = _mask_yaml(rest[:-2], extra_mask)
            timing += [(idx, k, v) for k, v in t]
            r = b"OK <%d>\r\n" % len(body) + body + b"\r\n" if t or body != rest[:-2] else r
        masked.append((idx, r))
    return masked, timing


def _render(items):
    out = []
    for idx, r in items:
        if isinstance(r, bytes):
            for part in r.split(b"\n"):
                out.append("c%d %r" % (idx, part))
        else:
            out.append("c%d %s" % (idx, r))
    return out


def _diff(bs_items, df_items):
    lines = difflib.unified_diff(_render(bs_items), _render(df_items), "beanstalkd", "deferd", lineterm="", n=4)
    return "\n".join(lines)


def compare_transcripts(bs, df, extra_mask=()):
    """Assert that deferd's transcript equals beanstalkd's, byte for byte,
    except for masked values and one second of clock difference."""
    bs_m, bs_t = normalize(bs.items, extra_mask)
    df_m, df_t = normalize(df.items, extra_mask)
    if df_m != bs_m:
        raise AssertionError("deferd's replies differ from beanstalkd 1.12's:\n" + _diff(bs_m, df_m))
    assert [(i, k) for i, k, _ in df_t] == [(i, k) for i, k, _ in bs_t]
    for (i, k, dv), (_, _, bv) in zip(df_t, bs_t):
        assert abs(int(dv) - int(bv)) <= 1, "%s: deferd %s, beanstalkd %s" % (k, dv, bv)


class Pair:
    """A beanstalkd and a deferd, for differential runs."""

    def __init__(self, bs, df):
        self.bs = bs
        self.df = df


def differential(pair, scenario, extra_mask=(), allow_timeout=False):
    """Run scenario(transcript) against beanstalkd then deferd; compare.
    beanstalkd leaving a reply out (<TIMEOUT>) means the test input itself is
    wrong, unless allow_timeout says that is what the scenario is about."""
    results = []
    for srv in (pair.bs, pair.df):
        t = Transcript(srv)
        try:
            scenario(t)
        finally:
            t.close_all()
        results.append(t)
        if srv is pair.bs and not allow_timeout:
            assert "<TIMEOUT>" not in [r for _, r in t.items], (
                "test bug: beanstalkd itself left a reply out:\n" + "\n".join(_render(t.items))[-3000:]
            )
    compare_transcripts(results[0], results[1], extra_mask)
    return results


def eventually(check, timeout=10.0, interval=0.01, what="condition"):
    """Poll check() until it returns a true value (returned), for at most
    `timeout` seconds: for effects that follow an asynchronous event (a
    closed connection, a signal). The failure names `what` and shows the
    last value."""
    deadline = time.monotonic() + timeout
    while True:
        v = check()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("%s not met within %.0f s; last: %r" % (what, timeout, v))
        time.sleep(interval)


# --------------------------------------------------------------------------
# the HTTP/JSON API (docs/http-api.md): a small client over a raw socket, so
# that tests control the exact bytes (pipelining, half requests, garbage)
# --------------------------------------------------------------------------

import json as _json  # noqa: E402

RFC3339_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


class HttpResponse:
    """One HTTP response: status, headers (names lower-cased, in order), body."""

    def __init__(self, version, status, reason, headers, body):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers
        self.body = body

    def header(self, name, default=None):
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def json(self):
        return _json.loads(self.body.decode("utf-8"))

    @property
    def error_code(self):
        return self.json()["error"]["code"]

    @property
    def error_message(self):
        return self.json()["error"]["message"]

    def __repr__(self):
        return "<HTTP %d %s %r>" % (self.status, self.headers, self.body[:600])


class HttpClient(_Connection):
    """One keep-alive HTTP/1.1 connection to deferd's API."""

    def __init__(self, port, token=None, timeout=IO_TIMEOUT, host="127.0.0.1"):
        self.port = port
        self.token = token
        self.host = host
        self.timeout = timeout
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = bytearray()

    # ---- raw I/O ----

    def _line(self):
        """One line of the head, without its CRLF."""
        return self.read_line()[:-2]

    def read_head(self):
        """Status line and headers: (version, status, reason, headers)."""
        line = self._line()
        m = re.match(rb"^(HTTP/1\.[01]) (\d{3}) ?(.*)$", line)
        if not m:
            raise ProtocolError("bad status line %r" % line)
        headers = []
        while True:
            h = self._line()
            if not h:
                break
            k, sep, v = h.partition(b":")
            if not sep:
                raise ProtocolError("bad header line %r" % h)
            headers.append((k.decode("latin-1").strip().lower(), v.decode("latin-1").strip()))
        return m.group(1).decode(), int(m.group(2)), m.group(3).decode("latin-1"), headers

    def read_chunk(self):
        """One chunk of a chunked body (b"" for the last one)."""
        size_line = self._line()
        size = int(size_line.split(b";")[0], 16)
        data = self.read_exact(size)
        if self.read_exact(2) != b"\r\n":
            raise ProtocolError("chunk of %d bytes not followed by CRLF" % size)
        return data

    def read_response(self):
        version, status, reason, headers = self.read_head()
        hd = dict(headers)
        if hd.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                c = self.read_chunk()
                if not c:
                    break
                body += c
            while self._line():  # trailers
                pass
            body = bytes(body)
        elif "content-length" in hd:
            body = self.read_exact(int(hd["content-length"]))
        else:
            raise ProtocolError("response without a length: %r" % headers)
        return HttpResponse(version, status, reason, headers, body)

    # ---- requests ----

    def encode(self, method, path, body=None, headers=None, json=None, version="HTTP/1.1"):
        """The bytes of one request. json= is encoded as the body; a str body
        is UTF-8; Content-Length is added for a body unless headers give a
        Transfer-Encoding or their own Content-Length."""
        if json is not None:
            body = _json.dumps(json).encode()
        if isinstance(body, str):
            body = body.encode()
        hs = [("Host", "%s:%d" % (self.host, self.port))]
        if self.token is not None:
            hs.append(("Authorization", "Bearer " + self.token))
        hs += list((headers or {}).items())
        names = {k.lower() for k, _ in hs}
        if body is not None and "content-length" not in names and "transfer-encoding" not in names:
            hs.append(("Content-Length", str(len(body))))
        head = "%s %s %s\r\n" % (method, path, version) + "".join("%s: %s\r\n" % kv for kv in hs) + "\r\n"
        return head.encode("latin-1") + (body or b"")

    def request(self, method, path, body=None, headers=None, json=None):
        self.send(self.encode(method, path, body, headers, json))
        return self.read_response()

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, json=None, **kw):
        return self.request("POST", path, json=json, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # ---- conveniences (they assert the expected success) ----

    def enqueue(self, queue, task, expect=201):
        r = self.post("/v1/queues/%s/tasks" % quote_queue(queue), json=task)
        assert r.status == expect, r
        return r.json()

    def task(self, tid, expect=200):
        r = self.get("/v1/tasks/%d" % tid)
        assert r.status == expect, r
        return r.json()

    def queue(self, name):
        r = self.get("/v1/queues/%s" % quote_queue(name))
        assert r.status == 200, r
        return r.json()

    def metrics(self):
        r = self.get("/metrics")
        assert r.status == 200, r
        return parse_metrics(r.body.decode())


def quote_queue(name):
    """A queue name (or key) as a URL path segment: every byte but the
    unreserved ones percent-encoded (so '/' becomes %2F)."""
    if isinstance(name, str):
        name = name.encode()
    return "".join(chr(b) if chr(b).isalnum() or chr(b) in "-._~" else "%%%02X" % b for b in name)


def http_request(port, method, path, json=None, body=None, headers=None, token=None, timeout=IO_TIMEOUT):
    """One request on a connection of its own."""
    with HttpClient(port, token=token, timeout=timeout) as h:
        return h.request(method, path, body=body, headers=headers, json=json)


def parse_metrics(text):
    """Prometheus text format -> (samples, types): samples maps
    (name, frozenset of (label, value)) to a float; types maps a metric
    family to its # TYPE."""
    samples, types = {}, {}
    line_re = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
    label_re = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line:
            continue
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if line.startswith("#"):
            continue
        m = line_re.match(line)
        assert m, "not a Prometheus sample line: %r" % line
        labels = frozenset(label_re.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in samples, "sample repeated: %r" % line
        samples[key] = float(m.group(3))
    return samples, types


def metric(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def start_http_deferd(servers, args=(), env=None, http_addr="127.0.0.1", retries=4):
    """A deferd with --http on a free port of its own (the default 11380 may
    be another server's); .http_port is set on the returned Server. Waits
    until both ports listen."""
    last = None
    for _ in range(retries):
        port = free_port()
        try:
            srv = servers.deferd(list(args) + ["--http", "%s:%d" % (http_addr, port)], env=env)
        except RuntimeError as e:
            last = e
            continue
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline and srv.proc.poll() is None and not _tcp_listening(port):
            time.sleep(0.005)
        if srv.proc.poll() is None and _tcp_listening(port):
            srv.http_port = port
            return srv
        # The HTTP port was taken between free_port() and the bind.
        srv.kill()
        srv.checked = True
        last = RuntimeError("HTTP port %d not listening; stderr:\n%s" % (port, srv.stderr()))
    raise last


def bs_worker(srv, queue):
    """A beanstalk connection watching only `queue` (a worker)."""
    c = srv.connect()
    c.watch(queue)
    if queue not in ("default", b"default"):
        c.ignore(b"default")
    return c


def parse_rfc3339(s):
    """A time as the API writes it ("2026-11-22T14:45:00.000Z") -> Unix
    seconds (float)."""
    import calendar

    assert isinstance(s, str) and RFC3339_MS.match(s), "not an RFC 3339 UTC time with ms: %r" % (s,)
    secs = calendar.timegm(time.strptime(s[:19], "%Y-%m-%dT%H:%M:%S"))
    return secs + int(s[20:23]) / 1000.0
