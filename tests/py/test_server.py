"""The server process: listening (TCP, unix socket, systemd socket
activation), connection limits, many connections, back-pressure, signals,
command-line flags."""

import os
import resource
import signal
import socket
import subprocess
import time

import pytest

from helpers import (
    DEFERD,
    START_TIMEOUT,
    Client,
    Server,
    _tcp_listening,
    eventually,
    free_port,
    sock_path,
    start_server,
)

pytestmark = pytest.mark.deferd_only


def run_deferd(*args, timeout=20):
    return subprocess.run([DEFERD, *args], capture_output=True, timeout=timeout)


# ---- listening ----


def test_unix_socket(servers):
    srv = servers.deferd(unix=True)
    with srv.connect() as c:
        assert c.put(b"over unix") == 1
        assert c.cmd(b"reserve\r\n") == b"RESERVED 1 9\r\nover unix\r\n"
    with srv.connect() as c:
        assert c.stats()["current-connections"] == "1"


def test_unix_socket_stale_file_replaced(servers, tmp_path):
    path = sock_path(tmp_path, "stale.sock")
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)  # leaves a socket file that nobody listens on
    s.close()
    srv = Server(DEFERD, ["-l", "unix:" + path], str(tmp_path), "stale", unix_path=path)
    servers.track(srv.spawn()).wait_listening()
    with srv.connect() as c:
        assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


def test_unix_socket_path_not_a_socket(tmp_path):
    path = tmp_path / "regular-file"
    path.write_text("keep me")
    r = run_deferd("-l", "unix:%s" % path)
    assert r.returncode != 0
    assert path.read_text() == "keep me"


def test_listening_soon_after_start(servers, tmp_path):
    # Client libraries' test harnesses start the server, wait 0.1 s, then
    # connect once. The retry below only absorbs scheduling noise.
    port = free_port()
    srv = Server(DEFERD, ["-l", "127.0.0.1", "-p", str(port)], str(tmp_path), "soon", port=port)
    servers.track(srv.spawn())
    time.sleep(0.1)
    deadline = time.monotonic() + 1.0
    while True:
        try:
            c = srv.connect()
            break
        except ConnectionRefusedError:
            assert time.monotonic() < deadline, "not listening 1.1 s after start"
            time.sleep(0.01)
    with c:
        assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


def test_port_in_use_fails(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        r = run_deferd("-l", "127.0.0.1", "-p", str(port))
    assert r.returncode != 0
    assert r.stderr  # says why


def _activated(servers, tmp_path, sock, env_pid="$$", nfds="1", extra=()):
    """Start deferd under sh with `sock` as fd 3 and LISTEN_PID/LISTEN_FDS set,
    as systemd does; -p points to a port that must stay unused."""
    spare = free_port()
    fd = sock.fileno()

    def as_fd3():
        if fd == 3:
            os.set_inheritable(3, True)
        else:
            os.dup2(fd, 3)

    script = 'LISTEN_PID=%s LISTEN_FDS=%s exec "$0" "$@"' % (env_pid, nfds)
    argv = ["/bin/sh", "-c", script, DEFERD, "-l", "127.0.0.1", "-p", str(spare), *extra]
    srv = Server(DEFERD, [], str(tmp_path), "activated", port=spare)
    servers.track(srv.spawn(argv, preexec_fn=as_fd3, close_fds=False))
    return srv, spare


def test_socket_activation_tcp(servers, tmp_path):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    srv, spare = _activated(servers, tmp_path, lsock)
    lsock.close()  # only deferd holds it now
    c = Client(("127.0.0.1", port), timeout=START_TIMEOUT)
    assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
    assert c.put(b"activated") == 1
    assert c.stats()["pid"] == str(srv.pid)
    assert not _tcp_listening(spare), "-p must be ignored with inherited sockets"
    c.close()


def test_socket_activation_unix(servers, tmp_path):
    path = sock_path(tmp_path, "activated.sock")
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(16)
    srv, _ = _activated(servers, tmp_path, lsock)
    lsock.close()
    c = Client(path, socket.AF_UNIX, timeout=START_TIMEOUT)
    assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
    c.close()


def test_socket_activation_other_pid_ignored(servers, tmp_path):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    srv, spare = _activated(servers, tmp_path, lsock, env_pid="1")
    srv.wait_listening()  # on -p, as LISTEN_PID is not its own
    with srv.connect() as c:
        assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
    lsock.close()


# ---- connection limits ----


def test_max_connections_refusal(make_deferd):
    srv = make_deferd(["--max-connections", "3"])
    cs = [srv.connect() for _ in range(3)]
    for c in cs:
        assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
    extra = srv.connect()
    assert extra.read_line() == b"OUT_OF_MEMORY\r\n"
    extra.expect_eof()
    extra.close()
    s = cs[0].stats()
    assert s["current-connections"] == "3"
    assert cs[1].put(b"still fine") == 1
    # Room again once one goes away.
    cs[2].close()
    eventually(lambda: cs[0].stats()["current-connections"] == "2")
    with srv.connect() as again:
        assert again.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


def test_max_connections_bad_values(tmp_path):
    for v in ("0", "-1", "x", ""):
        r = run_deferd("--max-connections", v)
        assert r.returncode != 0, v


def raise_nofile(n):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 200
    if soft < want:
        if hard != resource.RLIM_INFINITY and hard < want:
            pytest.skip("open-files limit %d too low for %d connections" % (hard, n))
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def test_thousands_of_connections(deferd):
    n = 4000
    raise_nofile(n)
    conns = []
    try:
        batch = []
        for i in range(n):
            c = deferd.connect(timeout=30)
            c.send(b"list-tube-used\r\n")
            batch.append(c)
            conns.append(c)
            if len(batch) == 200:
                for b in batch:
                    assert b.reply() == b"USING default\r\n"
                batch = []
        for b in batch:
            assert b.reply() == b"USING default\r\n"
        probe = deferd.connect()
        assert probe.stats()["current-connections"] == str(n + 1)
        # every connection served again, all at once
        for i, c in enumerate(conns):
            c.send(b"put 0 0 10 %d\r\n%d\r\n" % (len(str(i)), i))
        ids = sorted(int(c.reply().split()[1]) for c in conns)
        assert ids == list(range(1, n + 1))
        assert probe.stats()["total-jobs"] == str(n)
    finally:
        for c in conns:
            c.close()
    eventually(lambda: probe.stats()["current-connections"] == "1", timeout=30)
    probe.close()


def test_back_pressure_bounds_memory(deferd):
    """A client pipelining `peek` of a 64 KiB job without reading: replies
    would need ~200 MB; the server must stop reading from it instead."""
    c, other = deferd.connect(), deferd.connect()
    body = bytes(i % 251 for i in range(65535))
    c.put(body)
    n = 3000
    base = deferd.rss_kb()
    c.send(b"peek 1\r\n" * n)
    # Sample until the RSS settles (no growth for 1 s), 10 s at most.
    peak, last_growth = base, time.monotonic()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and time.monotonic() - last_growth < 1.0:
        rss = deferd.rss_kb()
        if rss > peak + 1024:
            last_growth = time.monotonic()
        peak = max(peak, rss)
        time.sleep(0.05)
    grown_mb = (peak - base) / 1024
    assert grown_mb < 100, "RSS grew by %.0f MB for one slow reader" % grown_mb
    # Other clients are still served meanwhile.
    assert other.stats()["current-connections"] == "2"
    # And the slow reader gets every reply, in order, once it reads.
    want = b"FOUND 1 65535\r\n" + body + b"\r\n"
    for i in range(n):
        assert c.reply() == want, i
    assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


# ---- signals ----


def test_sigterm_with_clients_connected(deferd):
    waiting, holder, putter, idle = (deferd.connect() for _ in range(4))
    holder.put(b"x")
    holder.reserve()
    waiting.send(b"reserve\r\n")
    putter.send(b"put 0 0 10 100\r\nhalf a bo")
    idle.cmd(b"use other\r\n")
    eventually(lambda: idle.stats()["current-waiting"] == "1")
    deferd.stop_and_check()  # SIGTERM: exit 0, no sanitizer report
    for c in (waiting, holder, putter, idle):
        c.close()


def test_sigint_exits_cleanly(deferd):
    c = deferd.connect()
    c.put(b"x")
    deferd.stop(signal.SIGINT)
    deferd.stop_and_check()


def test_sigterm_idle(deferd):
    deferd.stop_and_check()


def test_sigusr1_does_not_stop(deferd):
    deferd.signal(signal.SIGUSR1)
    c = deferd.connect()
    eventually(lambda: c.stats()["draining"] == "true")
    assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


# ---- flags ----


def test_version_flag():
    r = run_deferd("-v")
    assert r.returncode == 0
    assert r.stdout.startswith(b"deferd ")


def test_help_flag():
    r = run_deferd("-h")
    assert r.returncode == 0
    for flag in (b"-l", b"-p", b"-z", b"-b", b"--max-connections", b"-V", b"-v", b"-h"):
        assert flag in r.stdout


@pytest.mark.parametrize("args", [["-Q"], ["-p"], ["-z", "x"], ["extra-argument"], ["--no-such-flag"]])
def test_bad_flags(args):
    r = run_deferd(*args)
    assert r.returncode != 0
    assert r.stderr


def test_verbose_flag(make_deferd):
    srv = make_deferd(["-V"])
    with srv.connect() as c:
        assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


def test_data_dir_flag(make_deferd, tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    srv = make_deferd(["-b", str(d)])
    with srv.connect() as c:
        assert c.put(b"x") == 1
        assert c.cmd(b"peek 1\r\n") == b"FOUND 1 1\r\nx\r\n"


def test_ignored_flags_accepted(make_deferd):
    srv = make_deferd(["-c", "-n"])
    with srv.connect() as c:
        assert c.cmd(b"list-tube-used\r\n") == b"USING default\r\n"


def test_max_job_size_above_limit_is_capped(make_deferd):
    srv = make_deferd(["-z", "5000000000"])
    with srv.connect() as c:
        assert c.stats()["max-job-size"] == "1073741824"


def test_start_server_helper_fails_on_bad_binary(tmp_path):
    with pytest.raises(RuntimeError):
        start_server("/bin/false", str(tmp_path), "false", retries=1)


@pytest.mark.skipif(not os.environ.get("DEFERD_RELEASE"),
                    reason="needs the release build in $DEFERD_RELEASE (ASan's allocator keeps freed memory)")
def test_memory_is_handed_back_after_a_burst(servers):
    # 200,000 jobs put and drained quickly, between two of the server's
    # once-a-second looks at its memory: the memory still goes back.
    srv = start_server(os.environ["DEFERD_RELEASE"], servers.workdir, "release")
    servers.track(srv)
    start = srv.rss_kb()
    body = b"m" * 100
    ids = []
    with srv.connect() as c:
        for _ in range(20):
            c.send((b"put 0 0 60 100\r\n" + body + b"\r\n") * 10000)
            ids += [int(c.read_line().split()[1]) for _ in range(10000)]
        peak = srv.rss_kb()
        for k in range(0, len(ids), 10000):
            c.send(b"".join(b"delete %d\r\n" % i for i in ids[k : k + 10000]))
            for _ in range(10000):
                assert c.read_line() == b"DELETED\r\n"
    assert peak - start > 20000, "the burst did not use memory: %d -> %d kB" % (start, peak)
    eventually(lambda: srv.rss_kb() < start + 8000, timeout=10)
