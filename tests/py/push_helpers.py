"""Helpers for the push dispatch tests (test_push.py, docs/push.md): the
targets deferd pushes to, as real processes the test controls.

* ``PhpFpm``          - a real php-fpm8.2 with pools of its own, each on a unix
                        socket in a temp dir, running HANDLER_PHP (below),
                        which records every request it runs and counts how
                        many run at once (under flock).
* ``RecordingServer`` - a Python ThreadingHTTPServer that records requests
                        (headers, bodies, times) and counts those in flight;
                        what it answers is up to the test.
* /proc inspection    - children of a process, zombies, whether a pid lives,
                        resident memory.

Everything started here is stopped by its ``stop()``; the fixtures in
test_push.py call it in a ``finally``/after ``yield``.
"""

import base64
import http.server
import json
import os
import signal
import subprocess
import threading
import time

from helpers import _unix_listening, sock_path

PHP_FPM = os.environ.get("PHP_FPM") or "/usr/sbin/php-fpm8.2"


# --------------------------------------------------------------------------
# /proc
# --------------------------------------------------------------------------


def proc_stat(pid):
    """(state, ppid) of a process, or None when it no longer exists."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may hold spaces: split after it.
    rest = data[data.rindex(")") + 2 :].split()
    return rest[0], int(rest[1])


def alive(pid):
    """The process exists and is not a zombie (a zombie has ended: only its
    exit status is left for its parent to collect)."""
    st = proc_stat(pid)
    return st is not None and st[0] not in ("Z", "X")


def children(pid):
    """[(child pid, state)] of every process whose parent is pid."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        st = proc_stat(int(name))
        if st and st[1] == pid:
            out.append((int(name), st[0]))
    return out


def zombies(pid):
    """Children of pid that ended and were not reaped (defunct)."""
    return [c for c, state in children(pid) if state == "Z"]


def descendants(pid):
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        for c, _ in children(p):
            found.append(c)
            todo.append(c)
    return found


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS for %d" % pid)


class RssSampler:
    """Samples a process's VmRSS every few ms in a thread, to catch a peak."""

    def __init__(self, pid, interval=0.005):
        self.pid = pid
        self.interval = interval
        self.peak_kb = 0
        self.samples = 0
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while not self._stop.is_set():
            try:
                kb = rss_kb(self.pid)
            except (FileNotFoundError, ProcessLookupError, RuntimeError):
                return
            self.peak_kb = max(self.peak_kb, kb)
            self.samples += 1
            self._stop.wait(self.interval)

    def __enter__(self):
        self._t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._t.join(5)


# --------------------------------------------------------------------------
# php-fpm
# --------------------------------------------------------------------------

# The script every pool runs. What it does is driven by the payload (a JSON
# object; anything else means "answer 200"):
#   sleep_ms: N       sleep N ms first (only while X-Defer-Attempt <=
#                     sleep_attempts, when that is given)
#   slow_while: PATH  sleep while PATH exists (at most 60 s)
#   fail_attempts: N  answer 503 "not yet" while X-Defer-Attempt <= N
#   fail_while: PATH  answer 500 "SMTP refused" while PATH exists
#   status: N, body   answer status N with that body
#   throw: MSG        throw new RuntimeException(MSG)
#   fatal: true       call an undefined function (a PHP Fatal error)
#   display_errors    ini_set('display_errors', '1') first
#   out_mb: N         write N MiB of output (then answer 200)
# Every run appends {"event": "start", ...} and, unless killed, {"event":
# "end", ...} to records.jsonl, and counts the runs in progress under an
# exclusive lock (the "running" member of a start record counts itself).
HANDLER_PHP = r"""<?php
const STATE = %(state)s;

function counter(int $delta): int {
    $f = fopen(STATE . '/running', 'c+');
    flock($f, LOCK_EX);
    $n = (int)stream_get_contents($f) + $delta;
    ftruncate($f, 0);
    rewind($f);
    fwrite($f, (string)$n);
    fflush($f);
    flock($f, LOCK_UN);
    fclose($f);
    return $n;
}

function record(array $r): void {
    file_put_contents(STATE . '/records.jsonl', json_encode($r) . "\n", FILE_APPEND | LOCK_EX);
}

$body = file_get_contents('php://input');
$p = json_decode($body, true);
if (!is_array($p))
    $p = [];
$attempt = (int)($_SERVER['HTTP_X_DEFER_ATTEMPT'] ?? 0);
$id = $_SERVER['HTTP_X_DEFER_TASK_ID'] ?? null;
$GLOBALS['output_mb'] = 0;
$running = counter(1);
$GLOBALS['counted'] = true;
record([
    'event' => 'start',
    't' => microtime(true),
    'id' => $id,
    'queue' => $_SERVER['HTTP_X_DEFER_QUEUE'] ?? null,
    'attempt' => $attempt,
    'content_type' => $_SERVER['CONTENT_TYPE'] ?? null,
    'content_length' => $_SERVER['CONTENT_LENGTH'] ?? null,
    'method' => $_SERVER['REQUEST_METHOD'] ?? null,
    'script' => $_SERVER['SCRIPT_FILENAME'] ?? null,
    'body_b64' => base64_encode($body),
    'running' => $running,
    'pid' => getmypid(),
]);

function finish(): void {
    global $id, $attempt;
    if ($GLOBALS['counted']) {
        $GLOBALS['counted'] = false;
        counter(-1);
        record(['event' => 'end', 't' => microtime(true), 'id' => $id, 'attempt' => $attempt,
                'output_mb' => $GLOBALS['output_mb'], 'aborted' => connection_aborted()]);
    }
}
// Also after an exception or a fatal error: shutdown functions run before
// php-fpm ends the request.
register_shutdown_function('finish');

if (!empty($p['display_errors']))
    ini_set('display_errors', '1');
if (isset($p['sleep_ms']) && (!isset($p['sleep_attempts']) || $attempt <= (int)$p['sleep_attempts']))
    usleep((int)$p['sleep_ms'] * 1000);
if (isset($p['slow_while'])) {
    $until = microtime(true) + 60;
    while (file_exists($p['slow_while']) && microtime(true) < $until)
        usleep(20000);
}
if (isset($p['fail_attempts']) && $attempt <= (int)$p['fail_attempts']) {
    finish();
    http_response_code(503);
    echo "not yet (attempt $attempt)";
    exit;
}
if (isset($p['fail_while']) && file_exists($p['fail_while'])) {
    finish();
    http_response_code(500);
    echo "SMTP refused";
    exit;
}
if (isset($p['throw']))
    throw new RuntimeException($p['throw']);
if (!empty($p['fatal']))
    no_such_function_here();
if (isset($p['out_mb'])) {
    $mb = str_repeat('x', 1 << 20);
    for ($i = 0; $i < (int)$p['out_mb']; $i++) {
        echo $mb;
        $GLOBALS['output_mb']++;
    }
}
finish();
if (isset($p['status'])) {
    http_response_code((int)$p['status']);
    echo $p['body'] ?? '';
    exit;
}
echo "ok";
"""


class PhpFpm:
    """A php-fpm8.2 master with pools of its own, each listening on a unix
    socket in `workdir`. pools maps a pool name to extra pool lines
    (e.g. "request_terminate_timeout = 1s")."""

    def __init__(self, workdir, pools=None, max_children=6):
        self.dir = os.path.join(str(workdir), "fpm")
        self.state = os.path.join(self.dir, "state")
        os.makedirs(self.state, exist_ok=True)
        self.script = os.path.join(self.dir, "handler.php")
        with open(self.script, "w") as f:
            f.write(HANDLER_PHP % {"state": "'%s'" % self.state})
        self.pools = pools or {"tasks": ""}
        self.max_children = max_children
        self.sockets = {name: sock_path(self.dir, "%s.sock" % name) for name in self.pools}
        self.conf = os.path.join(self.dir, "php-fpm.conf")
        self.log = os.path.join(self.dir, "php-fpm.log")
        self.proc = None
        self._out = None

    def address(self, pool="tasks"):
        return "unix:" + self.sockets[pool]

    def _write_conf(self):
        lines = [
            "[global]",
            "pid = %s" % os.path.join(self.dir, "php-fpm.pid"),
            "error_log = %s" % self.log,
            "daemonize = no",
        ]
        for name, extra in self.pools.items():
            lines += [
                "[%s]" % name,
                "listen = %s" % self.sockets[name],
                "pm = static",
                "pm.max_children = %d" % self.max_children,
                "clear_env = no",
                # Production settings: errors are not shown in the output
                # but logged, and php-fpm sends the log lines to the web
                # server (deferd) as FastCGI stderr.
                "php_flag[display_errors] = off",
                "php_admin_flag[log_errors] = on",
                extra,
            ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines) + "\n")

    def start(self, timeout=15.0):
        assert self.proc is None or self.proc.poll() is not None, "php-fpm already running"
        self._write_conf()
        for s in self.sockets.values():
            if os.path.exists(s):
                os.unlink(s)
        self._out = open(os.path.join(self.dir, "php-fpm.out"), "ab")
        # -n: no php.ini (only the pool's settings); -R: we may be root.
        argv = [PHP_FPM, "-n", "-F", "-y", self.conf]
        if os.geteuid() == 0:
            argv.insert(1, "-R")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self._out, stderr=self._out)
        deadline = time.monotonic() + timeout
        while not all(_unix_listening(s) for s in self.sockets.values()):
            if self.proc.poll() is not None:
                raise RuntimeError("php-fpm exited with %s:\n%s" % (self.proc.returncode, self.output()))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("php-fpm not listening after %.0f s:\n%s" % (timeout, self.output()))
            time.sleep(0.01)
        return self

    def output(self):
        text = ""
        for path in (self.log, os.path.join(self.dir, "php-fpm.out")):
            try:
                with open(path, "rb") as f:
                    text += f.read().decode("utf-8", "replace")
            except FileNotFoundError:
                pass
        return text

    def stop(self):
        """Stop the master and every worker (also those still running a
        request that deferd gave up on)."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            workers = descendants(self.proc.pid)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
            for w in workers:
                try:
                    os.kill(w, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        if self._out:
            self._out.close()
            self._out = None

    # ---- what the script saw ----

    def records(self, event="start"):
        try:
            with open(os.path.join(self.state, "records.jsonl")) as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        out = []
        for line in lines:
            r = json.loads(line)
            if event is None or r["event"] == event:
                if "body_b64" in r:
                    r["body"] = base64.b64decode(r["body_b64"])
                out.append(r)
        return out

    def runs_of(self, tid):
        return [r for r in self.records() if r["id"] == str(tid)]


# --------------------------------------------------------------------------
# an HTTP server
# --------------------------------------------------------------------------


class RecordingServer:
    """A ThreadingHTTPServer on 127.0.0.1 (free port) that records every
    request and answers what `respond(record)` returns: (status, body) or
    (status, body, headers); body may be a function returning an iterable of
    chunks (sent chunked). respond may set record["delay"] (seconds to wait
    before answering) or block itself. It counts requests in flight (the
    count is lowered before the answer is written, so it never over-counts)."""

    def __init__(self, respond=None, port=0):
        self.respond = respond or (lambda rec: (200, b"ok"))
        self.requests = []
        self.lock = threading.Lock()
        self.inflight = 0
        self.max_inflight = 0
        self.stopping = threading.Event()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as libcurl likes it

            def log_message(self, *args):
                pass

            def _body(self):
                if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                    data = b""
                    while True:
                        size = int(self.rfile.readline().split(b";")[0], 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            return data
                        data += self.rfile.read(size)
                        self.rfile.readline()
                return self.rfile.read(int(self.headers.get("Content-Length", "0")))

            def _handle(self):
                t = time.time()
                with outer.lock:
                    outer.inflight += 1
                    outer.max_inflight = max(outer.max_inflight, outer.inflight)
                    running = outer.inflight
                rec = {
                    "t": t,
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "running": running,
                }
                counted = True
                try:
                    rec["body"] = self._body()
                    with outer.lock:
                        outer.requests.append(rec)
                    answer = outer.respond(rec)
                    status, body = answer[0], answer[1]
                    headers = answer[2] if len(answer) > 2 else {}
                    if rec.get("delay"):
                        outer.stopping.wait(rec["delay"])
                    with outer.lock:
                        outer.inflight -= 1
                    counted = False
                    rec["end"] = time.time()
                    if isinstance(body, str):
                        body = body.encode()
                    self.send_response(status)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    if callable(body):  # a generator of chunks, streamed
                        self.send_header("Transfer-Encoding", "chunked")
                        self.end_headers()
                        for chunk in body():
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.write(b"0\r\n\r\n")
                    else:
                        self.send_header("Content-Length", str(len(body)))
                        self.end_headers()
                        self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True
                finally:
                    if counted:
                        with outer.lock:
                            outer.inflight -= 1

            do_POST = do_PUT = do_GET = _handle

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def url(self, path="/hook"):
        return "http://127.0.0.1:%d%s" % (self.port, path)

    def of(self, tid):
        with self.lock:
            return [r for r in self.requests if r["headers"].get("x-defer-task-id") == str(tid)]

    def count(self):
        with self.lock:
            return len(self.requests)

    def stop(self):
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


# --------------------------------------------------------------------------
# deferd
# --------------------------------------------------------------------------


def write_config(path, text):
    with open(path, "w") as f:
        f.write(text)
    return str(path)


def crash(srv):
    """SIGKILL deferd, as a power cut would; still no sanitizer report."""
    srv.kill()
    srv.checked = True
    assert srv.sanitizer_report() is None, srv.stderr()
