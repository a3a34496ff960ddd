"""HTTP mechanics of deferd's API (docs/http-api.md, "Conventions"), with
the exact bytes on the wire: keep-alive, pipelining (answers in order),
Connection: close, HTTP/1.0, chunked request bodies, a client that sends
half a request and stops, garbage, percent-encoded queue names, query
strings; the limits (413 for headers over 8 KiB and bodies over
--http-max-body); tokens (401); and the server process: --http on a taken
port, the default port taken by another deferd, --http 0.0.0.0 without a
token file, --http off."""

import json
import socket
import subprocess
import time

import pytest

from helpers import (
    DEFERD,
    SANITIZER_MARKERS,
    HttpClient,
    Server,
    _tcp_listening,
    bs_worker,
    eventually,
    free_port,
    http_request,
    metric,
)

pytestmark = pytest.mark.deferd_only


def http_conns(port):
    """Open HTTP connections as /metrics reports them (this one included)."""
    with HttpClient(port) as h:
        samples, _ = h.metrics()
    return int(metric(samples, "defer_connections", protocol="http"))


def raw(port, data, timeout=5):
    """Send bytes on a fresh connection; return (client, first response)."""
    h = HttpClient(port, timeout=timeout)
    h.send(data)
    return h, h.read_response()


def req(method, path, body=b"", headers=()):
    head = "%s %s HTTP/1.1\r\nHost: x\r\n" % (method, path)
    for k, v in headers:
        head += "%s: %s\r\n" % (k, v)
    if body or method == "POST":
        head += "Content-Length: %d\r\n" % len(body)
    return head.encode() + b"\r\n" + body


def post_task(q, payload, **extra):
    body = dict(extra, payload=payload)
    return req("POST", "/v1/queues/%s/tasks" % q, json.dumps(body).encode())


# ---------------------------------------------------------------------------
# connections
# ---------------------------------------------------------------------------


def test_keep_alive_many_requests_on_one_connection(http):
    ids = []
    for i in range(300):
        r = http.post("/v1/queues/ka/tasks", json={"payload": i})
        assert r.status == 201, r
        assert r.header("connection") is None, r
        assert r.version == "HTTP/1.1"
        assert r.header("date")
        ids.append(r.json()["id"])
        if i % 10 == 0:
            assert http.get("/v1/tasks/%d" % ids[-1]).json()["payload"] == i
    assert ids == sorted(ids) and len(set(ids)) == 300
    assert http.queue("ka")["ready"] == 300


def test_pipelined_requests_are_answered_in_order(http_deferd):
    port = http_deferd.http_port
    batch = b"".join(
        [
            post_task("pipe", "a"),
            req("GET", "/v1/tasks/1"),
            post_task("pipe", "b"),
            req("GET", "/nope"),
            req("PUT", "/v1/tasks/1"),
            req("POST", "/v1/queues/pipe/tasks", b"{bad json"),
            req("GET", "/v1/tasks/2"),
            req("DELETE", "/v1/tasks/1"),
            req("GET", "/healthz"),
            req("GET", "/v1/queues/pipe"),
        ]
    )
    with HttpClient(port) as h:
        h.send(batch)
        rs = [h.read_response() for _ in range(10)]
        assert [r.status for r in rs] == [201, 200, 201, 404, 405, 400, 200, 200, 200, 200], rs
        assert rs[0].json()["id"] == 1 and rs[0].json()["payload"] == "a"
        assert rs[1].json()["payload"] == "a"
        assert rs[2].json()["id"] == 2
        assert rs[5].error_code == "invalid_json"
        assert rs[6].json()["payload"] == "b"
        assert rs[7].json()["state"] == "cancelled"
        assert rs[9].json()["ready"] == 1
        h.expect_nothing(0.2)
        # The connection goes on.
        assert h.get("/healthz").status == 200


def test_many_pipelined_requests_in_one_write(http_deferd):
    n = 500
    data = b"".join(post_task("pipe", i) for i in range(n))
    with HttpClient(http_deferd.http_port, timeout=30) as h:
        h.send(data)
        got = [h.read_response().json()["payload"] for _ in range(n)]
    assert got == list(range(n))


def test_pipelining_with_a_log(make_http_deferd, tmp_path):
    # With -b, answers wait until the log is on disk; they stay in order.
    srv = make_http_deferd(["-b", str(tmp_path / "data")])
    batch = b"".join([post_task("pl", 0), req("GET", "/v1/tasks/1"), req("GET", "/healthz"), post_task("pl", 1),
                      req("DELETE", "/v1/tasks/1"), req("GET", "/v1/queues/pl"), post_task("pl", 2)])
    with HttpClient(srv.http_port) as h:
        for _ in range(20):
            h.send(batch)
            rs = [h.read_response() for _ in range(7)]
            assert [r.status for r in rs] == [201, 200, 200, 201, 200, 200, 201], rs
            assert rs[0].json()["id"] + 1 == rs[3].json()["id"]


def test_client_that_reads_its_answers_late(http_deferd):
    # Thousands of pipelined requests whose answers are not read for a
    # while: the server stops reading rather than dropping anything.
    n = 20000  # some 4 MiB of answers: more than the server buffers per client
    data = b"".join(post_task("late", i) for i in range(n))
    h = HttpClient(http_deferd.http_port, timeout=60)
    h.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    import threading

    sender = threading.Thread(target=h.send, args=(data,))
    sender.start()
    time.sleep(1.0)
    got = [h.read_response() for _ in range(n)]
    sender.join(30)
    assert [r.status for r in got] == [201] * n
    assert [r.json()["payload"] for r in got] == list(range(n))
    h.close()


def test_request_sent_one_byte_at_a_time(http_deferd):
    data = post_task("slow", {"x": "é"}, priority=3) + req("GET", "/v1/tasks/1")
    with HttpClient(http_deferd.http_port) as h:
        for i in range(len(data)):
            h.send(data[i : i + 1])
        r1, r2 = h.read_response(), h.read_response()
    assert r1.status == 201 and r1.json()["payload"] == {"x": "é"} and r1.json()["priority"] == 3
    assert r2.status == 200 and r2.json()["id"] == 1


def test_connection_close(http_deferd):
    data = req("GET", "/healthz", headers=[("Connection", "close")]) + req("GET", "/healthz")
    h, r = raw(http_deferd.http_port, data)
    with h:
        assert r.status == 200 and r.header("connection") == "close", r
        # What was pipelined after it is not answered.
        h.expect_eof()
    # A POST with Connection: close still does its work.
    h, r = raw(http_deferd.http_port, post_task("cc", 1).replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
    with h:
        assert r.status == 201 and r.header("connection") == "close", r
        h.expect_eof()
    assert http_request(http_deferd.http_port, "GET", "/v1/queues/cc").json()["ready"] == 1


def test_http_1_0(http_deferd):
    h, r = raw(http_deferd.http_port, b"GET /healthz HTTP/1.0\r\n\r\n")
    with h:
        assert r.status == 200 and r.json() == {"status": "ok"}
        assert r.header("connection") == "close"
        h.expect_eof()
    body = b'{"payload": "old client"}'
    h, r = raw(http_deferd.http_port,
               b"POST /v1/queues/old/tasks HTTP/1.0\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
    with h:
        assert r.status == 201 and r.json()["payload"] == "old client", r
        h.expect_eof()


def test_chunked_request_body(http_deferd):
    body = json.dumps({"payload": {"text": "chunked ✓", "n": list(range(50))}, "priority": 5}).encode()
    parts = [body[:1], body[1:7], body[7:40], body[40:]]
    chunked = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"
    head = b"POST /v1/queues/ch/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with HttpClient(http_deferd.http_port) as h:
        # In pieces, with a pipelined request after it.
        h.send(head + chunked[:10])
        h.expect_nothing(0.2)
        h.send(chunked[10:] + req("GET", "/v1/queues/ch"))
        r = h.read_response()
        assert r.status == 201, r
        assert r.json()["payload"] == {"text": "chunked ✓", "n": list(range(50))}
        assert r.json()["priority"] == 5
        assert h.read_response().json()["ready"] == 1
        # Chunk extensions and trailers are allowed by HTTP/1.1.
        h.send(head + b"%x;ext=1\r\n%s\r\n0\r\nX-Trailer: yes\r\n\r\n" % (len(body), body))
        assert h.read_response().status == 201


def test_half_request_does_not_block_others_and_is_freed_on_close(http_deferd):
    port = http_deferd.http_port
    assert http_conns(port) == 1
    halves = []
    for part in (b"POST /v1/queues/h/tas", b"POST /v1/queues/h/tasks HTTP/1.1\r\nHost: x\r\nContent-Le",
                 b"POST /v1/queues/h/tasks HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"payload\":"):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(part)
        halves.append(s)
    # Others are served meanwhile, on other connections.
    for i in range(20):
        r = http_request(port, "POST", "/v1/queues/other/tasks", json={"payload": i})
        assert r.status == 201, r
    assert eventually(lambda: http_conns(port) == 4)
    # The server answers nothing to the halves.
    for s in halves:
        s.settimeout(0.2)
        with pytest.raises(socket.timeout):
            s.recv(100)
    for s in halves:
        s.close()
    eventually(lambda: http_conns(port) == 1)
    assert http_request(port, "GET", "/v1/queues/other").json()["ready"] == 20
    # Nothing was enqueued by the halves.
    assert http_request(port, "GET", "/v1/queues/h").status == 404


def test_half_request_completed_later(http_deferd):
    body = json.dumps({"payload": "late"}).encode()
    head = b"POST /v1/queues/late/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body)
    with HttpClient(http_deferd.http_port) as h:
        h.send(head + body[:5])
        h.expect_nothing(0.3)
        r = http_request(http_deferd.http_port, "GET", "/healthz")
        assert r.status == 200
        h.send(body[5:])
        r = h.read_response()
        assert r.status == 201 and r.json()["payload"] == "late", r


def test_half_closed_client_still_reads_its_answers(http_deferd):
    port = http_deferd.http_port
    with HttpClient(port) as h:
        h.send(post_task("hc", 1) + req("GET", "/v1/queues/hc"))
        h.sock.shutdown(socket.SHUT_WR)
        assert h.read_response().status == 201
        assert h.read_response().json()["ready"] == 1
        h.expect_eof()
    # Half a request, then the write side closed: the connection goes.
    with HttpClient(port) as h:
        h.send(b"GET /v1/stats HTTP/1.1\r\nHo")
        h.sock.shutdown(socket.SHUT_WR)
        h.expect_eof()
    eventually(lambda: http_conns(port) == 1)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02\x03garbage\r\n\r\n",
        b"HELLO WORLD\r\n\r\n",
        b"put 0 0 10 5\r\nhello\r\n",
        b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /v1/queues/q/tasks HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/queues/q/tasks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        b"GET /healthz HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
        b"GET /health z HTTP/1.1\r\n\r\n",
        b"\r\n\r\n\r\n\xff\xfe",
    ],
    ids=["binary", "words", "beanstalk-put", "bad-header", "bad-length", "bad-chunk", "two-lengths", "space-url", "crlf-then-binary"],
)
def test_garbage_is_400_and_close(http_deferd, data):
    port = http_deferd.http_port
    with HttpClient(port) as h:
        h.send(data)
        r = h.read_response()
        assert r.status == 400, r
        assert r.error_code == "bad_request"
        h.expect_eof()
    assert http_request(port, "GET", "/healthz").status == 200
    eventually(lambda: http_conns(port) == 1)


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01\x02\x03garbage\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n",
        b"POST /v1/queues/q/tasks HTTP/1.1\r\nContent-Length: abc\r\n\r\n",
        b"POST /v1/queues/q/tasks HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
    ids=["binary", "bad-header", "bad-length", "bad-chunk"],
)
def test_a_400_that_closes_the_connection_says_so(http_deferd, data):
    # The server closes after a malformed request; an HTTP/1.1 client is
    # told with "Connection: close" (RFC 9112 9.6), as the 413s do, so that
    # it does not pipeline more requests into a closing connection.
    with HttpClient(http_deferd.http_port) as h:
        h.send(data)
        r = h.read_response()
        assert r.status == 400, r
        assert r.header("connection") == "close", r
        h.expect_eof()


def test_garbage_after_a_good_request(http_deferd):
    with HttpClient(http_deferd.http_port) as h:
        h.send(req("GET", "/healthz") + b"\x16\x03\x01 not http\r\n\r\n")
        assert h.read_response().status == 200
        r = h.read_response()
        assert r.status == 400 and r.error_code == "bad_request", r
        h.expect_eof()


# HTTP/1.1 rules the API's clients (curl, http.client, proxies) rely on,
# beyond what docs/http-api.md spells out.


def test_head_answer_has_no_body(http_deferd):
    # RFC 9110 9.3.2: no content in a response to HEAD, whatever its status;
    # otherwise the next answer on the connection is misread.
    with HttpClient(http_deferd.http_port) as h:
        h.send(req("HEAD", "/healthz") + req("GET", "/v1/stats"))
        version, status, reason, headers = h.read_head()
        assert status in (200, 405), status
        # The next bytes are the next answer's status line.
        line = h._line()
        assert line.startswith(b"HTTP/1.1 200"), line


def test_expect_100_continue(http_deferd):
    # RFC 9110 10.1.1: a client that sends "Expect: 100-continue" waits for
    # 100 (Continue) or a final status before sending the body (curl does,
    # for large bodies such as batches).
    body = json.dumps({"payload": "after continue"}).encode()
    with HttpClient(http_deferd.http_port, timeout=3) as h:
        h.send(b"POST /v1/queues/ex/tasks HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n"
               b"Content-Length: %d\r\n\r\n" % len(body))
        version, status, reason, headers = h.read_head()
        assert status == 100, status
        h.send(body)
        r = h.read_response()
        assert r.status == 201 and r.json()["payload"] == "after continue", r


# ---------------------------------------------------------------------------
# paths and query strings
# ---------------------------------------------------------------------------


def test_percent_encoded_queue_names(http_deferd, http):
    t = http.enqueue("mail/eu", {"payload": 1})  # sent as mail%2Feu
    assert t["queue"] == "mail/eu"
    assert http.post("/v1/queues/mail%2feu/tasks", json={"payload": 2}).json()["queue"] == "mail/eu"
    # Any byte may be encoded.
    assert http.post("/v1/queues/%6Dail%2F%65u/tasks", json={"payload": 3}).json()["queue"] == "mail/eu"
    q = http.get("/v1/queues/mail%2Feu").json()
    assert q["name"] == "mail/eu" and q["ready"] == 3
    names = [q["name"] for q in http.get("/v1/queues").json()["queues"]]
    assert "mail/eu" in names and "mail" not in names
    r = http.get("/v1/queues/mail%2Feu/tasks?state=ready")
    assert [x["id"] for x in r.json()["tasks"]] == [t["id"], t["id"] + 1, t["id"] + 2]
    # A beanstalk worker sees the same tube.
    with bs_worker(http_deferd, b"mail/eu") as w:
        assert w.reserve(timeout=2)[0] == t["id"]
    # Unencoded, the slash separates path segments: no such endpoint.
    r = http.post("/v1/queues/mail/eu/tasks", json={"payload": 1})
    assert r.status == 404, r
    # The other characters of the tube rules, encoded or not.
    name = "a+b;c.$_(d)"
    assert http.post("/v1/queues/%s/tasks" % name, json={"payload": 1}).json()["queue"] == name


def test_query_strings(http):
    ids = [http.enqueue("qs", {"payload": i})["id"] for i in range(5)]
    r = http.get("/v1/queues/qs/tasks?limit=2&payload=1&state=ready&unknown=x")
    assert r.status == 200, r
    body = r.json()
    assert [t["id"] for t in body["tasks"]] == ids[:2] and body["next"] == ids[1]
    assert [t["payload"] for t in body["tasks"]] == [0, 1]
    r = http.get("/v1/queues/qs/tasks?after=%d&state=ready&payload=0" % ids[1])
    assert [t["id"] for t in r.json()["tasks"]] == ids[2:]
    assert all("payload" not in t for t in r.json()["tasks"])
    assert http.get("/v1/queues?x=1").status == 200
    assert http.get("/metrics?name[]=defer_tasks").status == 200
    assert http.get("/v1/stats?").status == 200


# ---------------------------------------------------------------------------
# limits
# ---------------------------------------------------------------------------


def test_headers_up_to_8k_are_fine(http):
    r = http.get("/healthz", headers={"X-Pad": "p" * 7000})
    assert r.status == 200, r


@pytest.mark.parametrize("where", ["one-header", "many-headers", "url"])
def test_headers_over_8k_are_413_and_close(http_deferd, where):
    if where == "one-header":
        data = b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"p" * 9000 + b"\r\n\r\n"
    elif where == "many-headers":
        data = b"GET /healthz HTTP/1.1\r\n" + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 90) for i in range(100)) + b"\r\n"
    else:
        data = b"GET /v1/tasks/" + b"1" * 9000 + b" HTTP/1.1\r\n\r\n"
    with HttpClient(http_deferd.http_port) as h:
        h.send(data)
        r = h.read_response()
        assert r.status == 413, r
        assert r.error_code == "too_large"
        assert "8192" in r.error_message or "header" in r.error_message
        assert r.header("connection") == "close"
        h.expect_eof()


def test_body_over_max_body_is_413_before_it_is_sent(make_http_deferd):
    srv = make_http_deferd(["--http-max-body", "4096"])
    port = srv.http_port
    with HttpClient(port) as h:
        # Only the headers: the answer comes without waiting for the body.
        h.send(b"POST /v1/queues/mb/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 4097\r\n\r\n")
        r = h.read_response()
        assert r.status == 413 and r.error_code == "too_large", r
        assert "4096" in r.error_message
        assert r.header("connection") == "close"
        h.expect_eof()
    with HttpClient(port) as h:
        h.send(b"POST /v1/queues/mb/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n")
        assert h.read_response().status == 413
        h.expect_eof()
    # Exactly the limit is fine.
    body = json.dumps({"payload": "x"}).encode()
    body = body[:-1] + b" " * (4096 - len(body)) + b"}"
    assert len(body) == 4096
    with HttpClient(port) as h:
        r = h.post("/v1/queues/mb/tasks", body=body)
        assert r.status == 201, r


def test_chunked_body_over_max_body_is_413(make_http_deferd):
    srv = make_http_deferd(["--http-max-body", "4096"])
    chunk = b"x" * 1000
    data = b"POST /v1/queues/mb/tasks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    data += b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(5)) + b"0\r\n\r\n"
    with HttpClient(srv.http_port) as h:
        h.send(data)
        r = h.read_response()
        assert r.status == 413 and r.error_code == "too_large", r
        h.expect_eof()
    assert http_request(srv.http_port, "GET", "/healthz").status == 200
    eventually(lambda: http_conns(srv.http_port) == 1)


def test_default_max_body_takes_a_large_batch(make_http_deferd):
    # 16 MiB by default: a 2 MiB batch is fine.
    srv = make_http_deferd()
    tasks = [{"payload": "p" * 200}] * 10000
    with HttpClient(srv.http_port, timeout=60) as h:
        r = h.post("/v1/queues/big/tasks/batch", json={"tasks": tasks})
        assert r.status == 200, r
        assert len(r.json()["tasks"]) == 10000


# ---------------------------------------------------------------------------
# tokens
# ---------------------------------------------------------------------------

TOKEN = "s3cret-token-0123456789abcdef"


@pytest.fixture
def token_file(tmp_path):
    p = tmp_path / "token"
    p.write_text(TOKEN + "\nsecond line is ignored\n")
    return str(p)


def test_token_required(make_http_deferd, token_file):
    srv = make_http_deferd(["--http-token-file", token_file])
    assert "token required" in srv.stderr()
    port = srv.http_port
    bad = [None, "Bearer wrong-token-0123456789abcde", "Bearer " + TOKEN[:-1], "Bearer " + TOKEN + "x",
           "Basic " + TOKEN, TOKEN, "Bearer", "Bearer  " + TOKEN, ""]
    for auth in bad:
        headers = {} if auth is None else {"Authorization": auth}
        for method, path in [("GET", "/v1/queues"), ("POST", "/v1/queues/t/tasks"), ("GET", "/metrics"),
                             ("GET", "/v1/tasks/1"), ("DELETE", "/v1/tasks/1"), ("GET", "/nope"),
                             ("GET", "/v1/events")]:
            body = b'{"payload": 1}' if method == "POST" else None
            r = http_request(port, method, path, body=body, headers=headers)
            assert r.status == 401, (auth, path, r)
            assert r.error_code == "unauthorized"
            assert "Authorization: Bearer" in r.error_message
    with HttpClient(port) as h:
        # healthz never needs it.
        r = h.get("/healthz")
        assert r.status == 200 and r.json() == {"status": "ok"}
        assert h.post("/v1/queues/t/tasks", json={"payload": 1}).status == 401
        # A 401 does not end the connection; with the token it works.
        h.token = TOKEN
        r = h.post("/v1/queues/t/tasks", json={"payload": 1})
        assert r.status == 201, r
        assert h.get("/v1/tasks/%d" % r.json()["id"]).status == 200
        assert h.get("/metrics").status == 200
    # Nothing was enqueued without the token.
    assert http_request(port, "GET", "/v1/queues/t", token=TOKEN).json()["total_enqueued"] == 1


def test_token_on_all_interfaces(make_http_deferd, tmp_path):
    p = tmp_path / "crlf-token"
    p.write_bytes(TOKEN.encode() + b"\r\n")
    srv = make_http_deferd(["--http-token-file", str(p)], http_addr="0.0.0.0")
    assert _tcp_listening(srv.http_port)
    r = http_request(srv.http_port, "GET", "/v1/stats")
    assert r.status == 401
    r = http_request(srv.http_port, "GET", "/v1/stats", token=TOKEN)
    assert r.status == 200
    # The scheme is case-insensitive (RFC 9110 11.1).
    r = http_request(srv.http_port, "GET", "/v1/stats", headers={"Authorization": "bearer " + TOKEN})
    assert r.status == 200


def run_failing(args, tmp_path, name):
    """Start deferd expecting it to refuse; returns its output."""
    srv = Server(DEFERD, args, str(tmp_path), name)
    srv.spawn()
    try:
        rc = srv.proc.wait(20)
    except subprocess.TimeoutExpired:
        srv.kill()
        pytest.fail("deferd %s started; expected it to refuse:\n%s" % (args, srv.stderr()))
    srv._errf.close()
    err = srv.stderr()
    for marker in SANITIZER_MARKERS:
        assert marker not in err, err
    assert rc != 0, err
    return rc, err


def test_all_interfaces_without_a_token_is_refused(tmp_path):
    port = free_port()
    rc, err = run_failing(["-l", "127.0.0.1", "-p", str(free_port()), "--http", "0.0.0.0:%d" % port],
                          tmp_path, "open")
    assert "--http-token-file" in err and "0.0.0.0" in err, err
    assert len(err.strip().splitlines()) <= 3, err


@pytest.mark.parametrize("content", ["short\n", "", None], ids=["short", "empty", "missing"])
def test_unusable_token_file_is_refused(tmp_path, content):
    p = tmp_path / "token"
    if content is not None:
        p.write_text(content)
    rc, err = run_failing(["-l", "127.0.0.1", "-p", str(free_port()), "--http", "127.0.0.1:%d" % free_port(),
                           "--http-token-file", str(p)], tmp_path, "tok")
    assert "--http-token-file" in err and str(p) in err, err


# ---------------------------------------------------------------------------
# the port
# ---------------------------------------------------------------------------


def test_explicit_http_port_taken_is_an_error(tmp_path, http_deferd):
    taken = http_deferd.http_port
    rc, err = run_failing(["-l", "127.0.0.1", "-p", str(free_port()), "--http", "127.0.0.1:%d" % taken],
                          tmp_path, "taken")
    assert str(taken) in err, err
    assert "in use" in err.lower() or "eaddrinuse" in err.lower(), err
    # The first server is unharmed.
    assert http_request(taken, "GET", "/healthz").status == 200


def test_default_http_port_taken_by_another_deferd(servers):
    default = 11380
    first = servers.deferd()
    eventually(lambda: "HTTP API" in first.stderr())
    # The first one got the default port, unless something else already had it.
    assert _tcp_listening(default)
    second = servers.deferd()
    eventually(lambda: "HTTP API" in second.stderr())
    time.sleep(0.1)
    lines = [l for l in second.stderr().splitlines() if "HTTP" in l]
    assert len(lines) == 1, second.stderr()
    assert "not started" in lines[0] and "11380" in lines[0] and "in use" in lines[0], lines
    # It serves the beanstalk protocol.
    with second.connect() as c:
        jid = c.put(b"still works")
        assert c.cmd(b"reserve-with-timeout 0\r\n") == b"RESERVED %d 11\r\nstill works\r\n" % jid


def test_http_off(servers):
    srv = servers.deferd(["--http", "off"])
    time.sleep(0.2)
    assert "HTTP API" not in srv.stderr(), srv.stderr()
    with srv.connect() as c:
        assert c.put(b"x") == 1


def test_http_flag_values_are_checked(tmp_path):
    for value in ["nonsense", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:x"]:
        r = subprocess.run([DEFERD, "--http", value], capture_output=True, timeout=20)
        assert r.returncode != 0, value
        assert b"--http" in r.stderr, r.stderr


def test_clean_shutdown_with_open_http_connections(http_deferd):
    # SIGTERM while an event stream, a half request and an idle keep-alive
    # connection are open: exit 0, nothing leaked (checked at teardown).
    port = http_deferd.http_port
    stream = HttpClient(port)
    stream.send(stream.encode("GET", "/v1/events"))
    assert stream.read_head()[1] == 200
    half = HttpClient(port)
    half.send(b"POST /v1/queues/q/tasks HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"pay")
    idle = HttpClient(port)
    assert idle.post("/v1/queues/q/tasks", json={"payload": 1}).status == 201
    assert stream.read_chunk()
    http_deferd.stop_and_check()
    for c in (stream, half, idle):
        c.close()
