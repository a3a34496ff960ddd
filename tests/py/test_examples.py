"""The runnable examples (examples/), end to end: `run.sh --check` of each
starts deferd ($DEFERD, the ASan build under `make pytest`), php-fpm with a
pool of its own and PHP's built-in web server, drives the example's page with
curl, checks the outcome against the page and deferd's API, and exits 0 only
if every step worked and deferd then stopped with status 0 (a sanitizer
report makes it exit otherwise).

bulk-mail: one request queues 5,000 mails; a rate-limited fastcgi queue
writes them into an outbox; an undeliverable one fails with its exception.
classroom-network: close, close again (the keyed restore moves), open now
(cancelled), and a short lesson whose restore php-fpm carries out."""

import os
import shutil
import signal
import socket
import subprocess

import pytest

from helpers import DEFERD, REPO, SANITIZER_MARKERS, free_port


RUN_TIMEOUT = 300.0  # seconds one run.sh --check may take in all (ASan, a busy box)
STOP_TIMEOUT = 30.0  # seconds run.sh gets to stop what it started after SIGTERM

pytestmark = pytest.mark.deferd_only


def _missing_tools():
    needed = {
        "php": shutil.which("php"),
        "curl": shutil.which("curl"),
        "php-fpm": os.environ.get("PHP_FPM") or shutil.which("php-fpm8.2", path="/usr/sbin:" + os.environ["PATH"]),
    }
    return [name for name, path in needed.items() if not path]


def _run_check(example):
    """Runs examples/<example>/run.sh --check on free ports; returns its exit status and output."""
    if not os.path.exists(DEFERD):
        pytest.fail("deferd binary not found at %s (set $DEFERD or run make)" % DEFERD)
    missing = _missing_tools()
    if missing:
        pytest.skip("the examples need %s" % ", ".join(missing))
    env = dict(os.environ, DEFERD=DEFERD, PAGE_PORT=str(free_port()), API_PORT=str(free_port()))
    proc = subprocess.Popen(
        [os.path.join(REPO, "examples", example, "run.sh"), "--check"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        output, _ = proc.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        # SIGTERM lets run.sh stop deferd, php-fpm and the page before it exits.
        proc.send_signal(signal.SIGTERM)
        try:
            output, _ = proc.communicate(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        pytest.fail("%s/run.sh --check did not finish within %.0f s; its output:\n%s" % (example, RUN_TIMEOUT, output))
    return proc.returncode, output


@pytest.mark.parametrize("example", ["bulk-mail", "classroom-network"])
def test_the_example_works_end_to_end(example):
    status, output = _run_check(example)

    assert status == 0, "%s/run.sh --check exited with status %d:\n%s" % (example, status, output)
    assert output.rstrip().endswith("check: all good"), output
    for marker in SANITIZER_MARKERS:
        assert marker not in output, output


def test_a_failing_check_says_so():
    """The check can fail: with a page port that is taken, run.sh stops at
    once, says why, and exits 1 - not 0, and not after a long wait."""
    missing = _missing_tools()
    if missing:
        pytest.skip("the examples need %s" % ", ".join(missing))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = dict(os.environ, DEFERD=DEFERD, PAGE_PORT=str(taken.getsockname()[1]), API_PORT=str(free_port()))
        run = subprocess.run(
            [os.path.join(REPO, "examples", "classroom-network", "run.sh"), "--check"],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    assert run.returncode == 1, run
    assert "classroom-network: page exited; its log:" in run.stderr, run.stderr
    assert "check: all good" not in run.stdout
