"""Fixtures for the black-box tests of deferd (the client, YAML reader and
server-process helpers are in helpers.py).

Every test talks to a real server process over a socket:

* ``deferd``      - a fresh deferd ($DEFERD, default build/asan/deferd) on a free
                    127.0.0.1 port; stopped with SIGTERM after the test, which
                    must exit 0 with no sanitizer report on its stderr.
* ``make_deferd`` - a factory for deferds with extra flags / environments; each
                    one is stopped and checked the same way.
* ``beanstalkd``  - a fresh real beanstalkd 1.12 ($BEANSTALKD, default
                    /usr/bin/beanstalkd), for differential tests.
* ``pair``        - a fresh beanstalkd and a fresh deferd side by side.

Readiness is detected from /proc/net/tcp (a LISTEN socket on the port), not by
connecting, so the first connection a test opens is the server's first one
(``total-connections: 1``), on both servers alike.

With DEFER_TEST_REFERENCE=1 in the environment, the ``deferd`` fixtures start
beanstalkd instead, and tests marked ``deferd_only`` are skipped: that runs the
suite's expectations against the reference server, to check the tests
themselves.

Everything is bounded: sockets have timeouts, processes are waited for with
timeouts, and a server that does not start within START_TIMEOUT fails the test.
"""

import os

import pytest

from helpers import BEANSTALKD, DEFERD, Pair, start_server


REFERENCE_MODE = os.environ.get("DEFER_TEST_REFERENCE") == "1"


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "deferd_only: tests deferd's own behaviour (flags, signals, divergences); "
        "skipped when DEFER_TEST_REFERENCE=1 runs the suite against beanstalkd"
    )


def pytest_collection_modifyitems(config, items):
    if not REFERENCE_MODE:
        return
    skip = pytest.mark.skip(reason="deferd-only test (DEFER_TEST_REFERENCE=1)")
    for item in items:
        if "deferd_only" in item.keywords or "pair" in getattr(item, "fixturenames", ()):
            item.add_marker(skip)


def _deferd_binary():
    if not os.path.exists(DEFERD):
        pytest.fail("deferd binary not found at %s (set $DEFERD or run make)" % DEFERD)
    return DEFERD


def _beanstalkd_binary():
    if not os.path.exists(BEANSTALKD):
        pytest.skip("beanstalkd not installed (%s): differential test skipped" % BEANSTALKD)
    return BEANSTALKD


class _Servers:
    """Tracks the servers a test started, to stop and check them afterwards."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.deferds = []
        self.others = []
        self.n = 0

    def deferd(self, args=(), env=None, unix=False):
        if REFERENCE_MODE:
            return self.beanstalkd(args, unix=unix)
        self.n += 1
        srv = start_server(_deferd_binary(), self.workdir, "deferd%d" % self.n, args, env, unix)
        self.deferds.append(srv)
        return srv

    def beanstalkd(self, args=(), unix=False):
        self.n += 1
        srv = start_server(_beanstalkd_binary(), self.workdir, "beanstalkd%d" % self.n, args, unix=unix,
                           kind="beanstalkd")
        self.others.append(srv)
        return srv

    def track(self, srv):
        """Stop and check a deferd the test started itself, like the others."""
        self.deferds.append(srv)
        return srv

    def finish(self):
        for srv in self.others:
            srv.kill()
        errors = []
        for srv in self.deferds:
            if srv.checked:
                continue
            try:
                srv.stop_and_check()
            except AssertionError as e:
                errors.append(str(e))
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def servers(tmp_path):
    s = _Servers(str(tmp_path))
    yield s
    s.finish()


@pytest.fixture
def make_deferd(servers):
    return servers.deferd


@pytest.fixture
def deferd(servers):
    return servers.deferd()


@pytest.fixture
def beanstalkd(servers):
    return servers.beanstalkd()


@pytest.fixture
def pair(servers):
    bs = servers.beanstalkd()
    df = servers.deferd()
    return Pair(bs, df)


@pytest.fixture
def client(deferd):
    c = deferd.connect()
    yield c
    c.close()


# ---- the HTTP API (tests/py/test_http_*.py) ----


@pytest.fixture
def make_http_deferd(servers):
    """A factory for deferds with the HTTP API on a free port of their own
    (srv.http_port); stopped and checked like the others."""
    from helpers import start_http_deferd

    def start(args=(), env=None, http_addr="127.0.0.1"):
        return start_http_deferd(servers, args, env, http_addr)

    return start


@pytest.fixture
def http_deferd(make_http_deferd):
    return make_http_deferd()


@pytest.fixture
def http(http_deferd):
    from helpers import HttpClient

    c = HttpClient(http_deferd.http_port)
    yield c
    c.close()
