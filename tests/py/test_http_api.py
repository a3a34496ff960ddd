"""The HTTP/JSON API (docs/http-api.md), endpoint by endpoint, against the
real binary: what each answers on success (status, headers, every field of
the task and queue objects), and every documented error with its status and
code: invalid_json, invalid_field (each field's rule), unknown_field,
missing_field, 404 (task, queue, key, endpoint), 405 with Allow, 409
task_running / finished, 413 for a payload over -z, 503 draining.

HTTP framing (keep-alive, pipelining, limits, half requests, tokens) is in
test_http_conn.py; keys, attempts and history in test_http_tasks.py."""

import base64
import json
import signal
import time

import pytest

from helpers import (
    RFC3339_MS,
    HttpClient,
    bs_worker,
    eventually,
    parse_rfc3339,
    quote_queue,
)

pytestmark = pytest.mark.deferd_only

TASK_FIELDS = {
    "id": int,
    "queue": str,
    "state": str,
    "priority": int,
    "ttr": int,
    "attempts": int,
    "max_attempts": int,
    "key": (str, type(None)),
    "created_at": str,
    "run_at": (str, type(None)),
    "finished_at": (str, type(None)),
    "last_error": (str, type(None)),
}

QUEUE_FIELDS = {
    "name": str,
    "ready": int,
    "delayed": int,
    "reserved": int,
    "buried": int,
    "failed": int,
    "urgent": int,
    "workers_waiting": int,
    "total_enqueued": int,
    "total_done": int,
    "paused": bool,
    "pause_seconds_left": int,
    "enqueued_per_second": (int, float),
    "done_per_second": (int, float),
    "push": (dict, type(None)),  # test_push.py covers its contents
}

STATES = {"ready", "delayed", "reserved", "buried", "failed", "done", "cancelled"}


def check_task(t, extra=()):
    """Every documented field, with its type; times RFC 3339 with ms."""
    for k, typ in TASK_FIELDS.items():
        assert k in t, "task object lacks %r: %r" % (k, t)
        assert isinstance(t[k], typ) and not isinstance(t[k], bool), "%s: %r" % (k, t[k])
    assert t["state"] in STATES, t
    assert t["id"] > 0
    assert RFC3339_MS.match(t["created_at"]), t["created_at"]
    for k in ("run_at", "finished_at"):
        if t[k] is not None:
            assert RFC3339_MS.match(t[k]), (k, t[k])
    allowed = set(TASK_FIELDS) | {"payload", "payload_base64"} | set(extra)
    assert set(t) <= allowed, "unexpected fields: %r" % (set(t) - allowed)
    return t


def check_error(r, status, code, *mentions):
    """An error answer: the status, {"error": {"code", "message"}}, and a
    message that names what was wrong."""
    assert r.status == status, r
    assert r.header("content-type", "").startswith("application/json"), r
    body = r.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    msg = body["error"]["message"]
    assert isinstance(msg, str) and msg, body
    for m in mentions:
        assert m in msg, "message %r does not mention %r" % (msg, m)
    return msg


def enqueue_path(q):
    return "/v1/queues/%s/tasks" % quote_queue(q)


def stats_total(http):
    r = http.get("/v1/stats")
    assert r.status == 200, r
    return r.json()["total_enqueued"]


# ---------------------------------------------------------------------------
# enqueue: success
# ---------------------------------------------------------------------------


def test_enqueue_answers_201_with_the_task_and_a_location(http):
    before = time.time()
    r = http.post("/v1/queues/mail/tasks", json={"payload": {"to": "ana@example.org"}})
    assert r.status == 201, r
    assert r.reason == "Created"
    assert r.header("content-type").startswith("application/json")
    t = check_task(r.json())
    assert t["queue"] == "mail"
    assert t["state"] == "ready"
    assert (t["priority"], t["ttr"], t["attempts"], t["max_attempts"]) == (1024, 60, 0, 0)
    assert t["key"] is None and t["run_at"] is None and t["finished_at"] is None and t["last_error"] is None
    assert t["payload"] == {"to": "ana@example.org"}
    assert "payload_base64" not in t
    assert not {"deduplicated", "replaced", "superseded"} & set(t)
    assert abs(parse_rfc3339(t["created_at"]) - before) < 120  # a real, current clock
    assert r.header("location") == "/v1/tasks/%d" % t["id"]
    # The Location answers the same task.
    g = http.get(r.header("location"))
    assert g.status == 200, g
    assert g.json() == t


def test_enqueue_with_every_field(http):
    t = http.enqueue(
        "mail",
        {"payload": [1, 2], "priority": 7, "ttr": 30, "max_attempts": 3, "key": "k-1", "on_conflict": "keep",
         "delay": 3600},
    )
    check_task(t)
    assert (t["priority"], t["ttr"], t["max_attempts"], t["key"], t["state"]) == (7, 30, 3, "k-1", "delayed")
    delta = parse_rfc3339(t["run_at"]) - parse_rfc3339(t["created_at"])
    assert 3590 < delta < 3610, t
    assert http.task(t["id"]) == t


def test_priority_and_ttr_limits_are_accepted(http):
    t = http.enqueue("q", {"payload": 1, "priority": 0, "ttr": 1})
    assert (t["priority"], t["ttr"]) == (0, 1)
    t = http.enqueue("q", {"payload": 1, "priority": 4294967295, "ttr": 4294967295, "max_attempts": 4294967295})
    assert (t["priority"], t["ttr"], t["max_attempts"]) == (4294967295, 4294967295, 4294967295)


def test_run_at_as_rfc3339_string(http):
    at = time.gmtime(time.time() + 7200)
    s = time.strftime("%Y-%m-%dT%H:%M:%SZ", at)
    t = http.enqueue("q", {"payload": 1, "run_at": s})
    assert t["state"] == "delayed"
    assert t["run_at"] == s[:-1] + ".000Z"
    # Milliseconds and an offset: the same instant in UTC.
    local = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(time.time() + 7200 + 2 * 3600)) + ".250+02:00"
    t = http.enqueue("q", {"payload": 1, "run_at": local})
    assert t["state"] == "delayed"
    assert t["run_at"].endswith(".250Z")
    assert abs(parse_rfc3339(t["run_at"]) - (time.time() + 7200)) < 60


def test_run_at_as_unix_seconds(http):
    at = int(time.time()) + 5000
    t = http.enqueue("q", {"payload": 1, "run_at": at})
    assert t["state"] == "delayed"
    assert t["run_at"] == time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(at))
    t = http.enqueue("q", {"payload": 1, "run_at": at + 0.5})
    assert t["run_at"].endswith(".500Z")


@pytest.mark.parametrize("past", ["2001-01-01T00:00:00Z", 1000000000, 0])
def test_run_at_in_the_past_means_now(http, past):
    t = http.enqueue("q", {"payload": 1, "run_at": past})
    assert t["state"] == "ready" and t["run_at"] is None, t


def test_fractional_delay(http):
    t = http.enqueue("q", {"payload": 1, "delay": 0.25})
    assert t["state"] == "delayed"
    eventually(lambda: http.task(t["id"])["state"] == "ready", timeout=10)
    t = http.enqueue("q", {"payload": 1, "delay": 0})
    assert t["state"] == "ready" and t["run_at"] is None


PAYLOADS = [
    {"room": 301, "action": "restore"},
    [1, "two", 3.5, None, True, False, {"nested": [[]]}],
    "just a string",
    "",
    42,
    -7,
    0,
    True,
    False,
    None,
    {},
    [],
    {"unicode": "日本語 — ünïcödé ✓ 😀", "escapes": "quote \" backslash \\ newline \n tab \t ctrl \u0001"},
    {"deep": [[[[[[[[[[{"x": 1}]]]]]]]]]]},
]


@pytest.mark.parametrize("payload", PAYLOADS, ids=lambda p: json.dumps(p)[:30])
def test_json_payload_round_trips(http_deferd, http, payload):
    t = http.enqueue("rt", {"payload": payload})
    assert t["payload"] == payload and "payload_base64" not in t
    assert http.task(t["id"])["payload"] == payload
    # A beanstalk worker reserves the payload's text as the client sent it
    # (json.dumps, escapes and all), without the spaces between tokens.
    with bs_worker(http_deferd, b"rt") as w:
        jid, body = w.reserve(timeout=2)
        assert jid == t["id"]
        assert json.loads(body.decode("utf-8")) == payload
        assert body == json.dumps(payload, separators=(",", ":")).encode(), body


def test_json_payload_with_floats_keeps_their_values(http):
    payload = {"a": 0.1, "b": 1e100, "c": -2.5e-300, "d": 123456789.125}
    t = http.enqueue("q", {"payload": payload})
    assert t["payload"] == payload
    assert http.task(t["id"])["payload"] == payload


def test_payload_string_with_nul_character_round_trips(http):
    # "\u0000" is valid JSON; the payload is "any JSON".
    r = http.post("/v1/queues/q/tasks", body=b'{"payload": "a\\u0000b"}')
    assert r.status == 201, r
    assert r.json()["payload"] == "a\x00b"


def test_binary_payload_base64_round_trips(http_deferd, http):
    raw = bytes(range(256)) * 3 + b"\r\n\0\xff"
    t = http.enqueue("bin", {"payload_base64": base64.b64encode(raw).decode()})
    assert "payload" not in t
    assert base64.b64decode(t["payload_base64"]) == raw
    assert base64.b64decode(http.task(t["id"])["payload_base64"]) == raw
    with bs_worker(http_deferd, b"bin") as w:
        jid, body = w.reserve(timeout=2)
        assert (jid, body) == (t["id"], raw)


def test_empty_base64_payload(http):
    t = http.enqueue("q", {"payload_base64": ""})
    assert t["payload_base64"] == ""


def test_payload_up_to_max_task_size(make_http_deferd):
    srv = make_http_deferd(["-z", "2000"])

    def too_large(task):
        # The request was read whole, so the connection stays usable.
        with HttpClient(srv.http_port) as h:
            r = h.post("/v1/queues/z/tasks", json=task)
            msg = check_error(r, 413, "too_large")
            assert r.header("connection") is None, r
            assert h.get("/healthz").status == 200
            return msg

    with HttpClient(srv.http_port) as h:
        # Raw bytes: exactly -z is fine, one more is 413.
        t = h.enqueue("z", {"payload_base64": base64.b64encode(b"\xab" * 2000).decode()})
        assert base64.b64decode(h.task(t["id"])["payload_base64"]) == b"\xab" * 2000
        msg = too_large({"payload_base64": base64.b64encode(b"\xab" * 2001).decode()})
        assert "2001" in msg and "2000" in msg, msg
        # JSON: the compact text counts ('"' + 1998 + '"' = 2000 bytes).
        t = h.enqueue("z", {"payload": "x" * 1998})
        assert h.task(t["id"])["payload"] == "x" * 1998
        too_large({"payload": "x" * 1999})
        # Multi-byte characters count as bytes.
        too_large({"payload": "é" * 1000})
        assert h.queue("z")["total_enqueued"] == 2


def test_large_payload_near_a_large_max_task_size(make_http_deferd):
    size = 1 << 20
    srv = make_http_deferd(["-z", str(size)])
    raw = bytes((i * 7) & 0xFF for i in range(size))
    with HttpClient(srv.http_port, timeout=30) as h:
        t = h.enqueue("big", {"payload_base64": base64.b64encode(raw).decode()})
        assert base64.b64decode(h.task(t["id"])["payload_base64"]) == raw
        text = "y" * (size - 2)
        t2 = h.enqueue("big", {"payload": text})
        assert h.task(t2["id"])["payload"] == text
    with HttpClient(srv.http_port, timeout=30) as h:
        r = h.post("/v1/queues/big/tasks", json={"payload_base64": base64.b64encode(raw + b"!").decode()})
        check_error(r, 413, "too_large")
    with bs_worker(srv, b"big") as w:
        w.sock.settimeout(30)
        assert w.reserve(timeout=2) == (t["id"], raw)


def test_unicode_keys(http):
    key = "clé-😀/x y"
    t = http.enqueue("q", {"payload": 1, "key": key})
    assert t["key"] == key
    d = http.enqueue("q", {"payload": 2, "key": key}, expect=200)
    assert d["id"] == t["id"] and d["deduplicated"] is True
    # 200 bytes of UTF-8 is the longest key.
    long_key = "é" * 100
    assert http.enqueue("q", {"payload": 1, "key": long_key})["key"] == long_key
    r = http.delete("/v1/queues/q/keys/%s" % quote_queue(key))
    assert r.status == 200, r
    assert r.json()["id"] == t["id"] and r.json()["state"] == "cancelled"


def test_enqueue_ignores_a_query_string(http):
    r = http.post("/v1/queues/q/tasks?foo=bar&x", json={"payload": 1})
    assert r.status == 201, r
    assert r.json()["queue"] == "q"
    assert http.get("/v1/tasks/%d?whatever=1" % r.json()["id"]).status == 200


# ---------------------------------------------------------------------------
# enqueue: errors
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{", b"", b"nul", b'{"payload": 1,}', b"{'payload': 1}", b'{"payload": 1} trailing', b"\xff\xfe{}",
     b'{"payload": "\xc3\x28"}', b'{"payload": 1, "payload": 2}'],
    ids=["unclosed", "empty", "nul", "trailing-comma", "single-quotes", "trailing-bytes", "bom-garbage",
         "bad-utf8", "duplicate-member"],
)
def test_enqueue_invalid_json(http, body):
    r = http.post("/v1/queues/q/tasks", body=body)
    check_error(r, 400, "invalid_json")
    assert stats_total(http) == 0


@pytest.mark.parametrize("body", [b"[]", b"[{\"payload\": 1}]", b"1", b'"payload"', b"null", b"true"])
def test_enqueue_body_must_be_an_object(http, body):
    r = http.post("/v1/queues/q/tasks", body=body)
    check_error(r, 400, "invalid_json")
    assert stats_total(http) == 0


# (field, bad value) pairs: each must be 400 invalid_field naming the field.
INVALID_FIELDS = [
    ("priority", -1),
    ("priority", 4294967296),
    ("priority", 1.5),
    ("priority", "1"),
    ("priority", True),
    ("priority", None),
    ("priority", [1]),
    ("ttr", 0),
    ("ttr", -5),
    ("ttr", 4294967296),
    ("ttr", "60"),
    ("ttr", 2.5),
    ("max_attempts", -1),
    ("max_attempts", 4294967296),
    ("max_attempts", "3"),
    ("max_attempts", 1.5),
    ("delay", -1),
    ("delay", -0.5),
    ("delay", "10"),
    ("delay", 4294967296),
    ("delay", None),
    ("delay", {}),
    ("run_at", "tomorrow"),
    ("run_at", "2026-13-01T00:00:00Z"),
    ("run_at", "2026-11-22T25:00:00Z"),
    ("run_at", "2026-11-22T14:45:00"),
    ("run_at", "2026-11-22"),
    ("run_at", "2026-02-30T00:00:00Z"),
    ("run_at", ""),
    ("run_at", -5),
    ("run_at", True),
    ("run_at", None),
    ("run_at", 1e13),
    ("key", ""),
    ("key", "k" * 201),
    ("key", 5),
    ("key", None),
    ("key", ["k"]),
    ("payload_base64", "not base64!"),
    ("payload_base64", "abc"),
    ("payload_base64", 5),
    ("payload_base64", None),
]


@pytest.mark.parametrize("field,value", INVALID_FIELDS, ids=lambda v: repr(v)[:20])
def test_enqueue_invalid_field(http, field, value):
    task = {"payload": {"x": 1}}
    if field == "payload_base64":
        task = {}
    task[field] = value
    r = http.post("/v1/queues/q/tasks", json=task)
    check_error(r, 400, "invalid_field", field)
    assert stats_total(http) == 0


@pytest.mark.parametrize("value", ["merge", "KEEP", "", 1, None, True])
def test_enqueue_invalid_on_conflict(http, value):
    r = http.post("/v1/queues/q/tasks", json={"payload": 1, "key": "k", "on_conflict": value})
    check_error(r, 400, "invalid_field", "on_conflict")


def test_on_conflict_needs_a_key(http):
    r = http.post("/v1/queues/q/tasks", json={"payload": 1, "on_conflict": "replace"})
    check_error(r, 400, "invalid_field", "on_conflict", "key")


def test_payload_and_payload_base64_together(http):
    r = http.post("/v1/queues/q/tasks", json={"payload": 1, "payload_base64": "AA=="})
    check_error(r, 400, "invalid_field", "payload")


def test_delay_and_run_at_together(http):
    r = http.post("/v1/queues/q/tasks", json={"payload": 1, "delay": 5, "run_at": "2030-01-01T00:00:00Z"})
    check_error(r, 400, "invalid_field", "delay", "run_at")


@pytest.mark.parametrize("task", [{}, {"priority": 5}, {"key": "k", "delay": 1}])
def test_missing_payload(http, task):
    r = http.post("/v1/queues/q/tasks", json=task)
    check_error(r, 400, "missing_field", "payload")


@pytest.mark.parametrize("name", ["priorty", "Payload", "tube", "id", "deduplicated", ""])
def test_unknown_field(http, name):
    r = http.post("/v1/queues/q/tasks", json={"payload": 1, name: 5})
    check_error(r, 400, "unknown_field", "'%s'" % name)
    assert stats_total(http) == 0


@pytest.mark.parametrize(
    "name",
    ["-starts-with-dash", "has space", "x" * 201, "é", "semi;colon!", "a*b", "tab\t"],
    ids=["dash", "space", "201-bytes", "non-ascii", "bang", "star", "tab"],
)
def test_invalid_queue_name(http, name):
    r = http.post(enqueue_path(name), json={"payload": 1})
    check_error(r, 400, "invalid_field", "queue name")
    assert stats_total(http) == 0


def test_valid_queue_name_characters(http):
    name = "AZaz09-+/;.$_()"
    t = http.enqueue(name, {"payload": 1})
    assert t["queue"] == name
    assert http.queue(name)["name"] == name
    t = http.enqueue("x" * 200, {"payload": 1})
    assert t["queue"] == "x" * 200


# ---------------------------------------------------------------------------
# a task, cancel
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("tid", ["999", "0", "-1", "abc", "1.0", "99999999999999999999999", "%31x"])
def test_get_unknown_task(http, tid):
    http.enqueue("q", {"payload": 1})  # task 1 exists
    r = http.get("/v1/tasks/%s" % tid)
    check_error(r, 404, "not_found")


def test_cancel_a_waiting_task(http):
    ready = http.enqueue("q", {"payload": 1, "key": "r"})
    delayed = http.enqueue("q", {"payload": 2, "delay": 3600})
    for t in (ready, delayed):
        r = http.delete("/v1/tasks/%d" % t["id"])
        assert r.status == 200, r
        c = check_task(r.json())
        assert c["id"] == t["id"] and c["state"] == "cancelled"
        assert RFC3339_MS.match(c["finished_at"])
        assert c["queue"] == "q" and c["created_at"] == t["created_at"]
        # Cancelling again answers the same.
        again = http.delete("/v1/tasks/%d" % t["id"])
        assert again.status == 200 and again.json() == r.json(), again
        assert http.task(t["id"]) == r.json()
    assert http.task(ready["id"])["key"] == "r"
    # A queue exists while it holds tasks.
    assert "q" not in [q["name"] for q in http.get("/v1/queues").json()["queues"]]
    check_error(http.get("/v1/queues/q"), 404, "not_found")


def test_cancel_a_buried_task(http_deferd, http):
    t = http.enqueue("q", {"payload": 1})
    with bs_worker(http_deferd, b"q") as w:
        jid, _ = w.reserve(timeout=2)
        assert w.cmd(b"bury %d 5\r\n" % jid) == b"BURIED\r\n"
    assert http.task(t["id"])["state"] == "buried"
    r = http.delete("/v1/tasks/%d" % t["id"])
    assert r.status == 200 and r.json()["state"] == "cancelled", r


def test_cancel_unknown_task(http):
    check_error(http.delete("/v1/tasks/12345"), 404, "not_found")
    check_error(http.delete("/v1/tasks/nope"), 404, "not_found")


def test_cancel_a_reserved_task_is_409_task_running(http_deferd, http):
    t = http.enqueue("q", {"payload": 1, "key": "held"})
    w = bs_worker(http_deferd, b"q")
    jid, _ = w.reserve(timeout=2)
    assert jid == t["id"]
    assert http.task(t["id"])["state"] == "reserved"
    check_error(http.delete("/v1/tasks/%d" % jid), 409, "task_running", str(jid))
    check_error(http.delete("/v1/queues/q/keys/held"), 409, "task_running")
    assert http.task(jid)["state"] == "reserved"
    # Released by the worker, it can be cancelled.
    assert w.cmd(b"release %d 0 0\r\n" % jid) == b"RELEASED\r\n"
    r = http.delete("/v1/queues/q/keys/held")
    assert r.status == 200 and r.json()["state"] == "cancelled", r
    w.close()


def test_cancel_a_done_task_is_409_finished(http_deferd, http):
    t = http.enqueue("q", {"payload": 1})
    with bs_worker(http_deferd, b"q") as w:
        jid, _ = w.reserve(timeout=2)
        assert w.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
    assert http.task(t["id"])["state"] == "done"
    check_error(http.delete("/v1/tasks/%d" % t["id"]), 409, "finished")
    assert http.task(t["id"])["state"] == "done"


def test_cancel_a_failed_task_is_409_finished(http_deferd, http):
    t = http.enqueue("q", {"payload": 1, "max_attempts": 1})
    with bs_worker(http_deferd, b"q") as w:
        jid, _ = w.reserve(timeout=2)
        assert w.cmd(b"release %d 0 0\r\n" % jid) == b"RELEASED\r\n"
    assert http.task(t["id"])["state"] == "failed"
    check_error(http.delete("/v1/tasks/%d" % t["id"]), 409, "finished")
    assert http.task(t["id"])["state"] == "failed"


def test_cancel_by_key(http):
    a = http.enqueue("net", {"payload": 1, "key": "room-301"})
    other = http.enqueue("other", {"payload": 1, "key": "room-301"})
    r = http.delete("/v1/queues/net/keys/room-301")
    assert r.status == 200, r
    c = check_task(r.json())
    assert (c["id"], c["state"], c["key"]) == (a["id"], "cancelled", "room-301")
    # The key is free again; the other queue's key was never touched.
    check_error(http.delete("/v1/queues/net/keys/room-301"), 404, "not_found", "room-301")
    assert http.task(other["id"])["state"] == "ready"
    b = http.enqueue("net", {"payload": 2, "key": "room-301"})
    assert b["id"] != a["id"]


def test_cancel_by_key_not_found(http):
    http.enqueue("q", {"payload": 1, "key": "a"})
    check_error(http.delete("/v1/queues/q/keys/b"), 404, "not_found")
    check_error(http.delete("/v1/queues/nosuchqueue/keys/a"), 404, "not_found")


def test_cancel_by_key_with_slash_in_key_and_queue(http):
    t = http.enqueue("a/b", {"payload": 1, "key": "x/y"})
    r = http.delete("/v1/queues/a%2Fb/keys/x%2fy")
    assert r.status == 200 and r.json()["id"] == t["id"], r


# ---------------------------------------------------------------------------
# queues
# ---------------------------------------------------------------------------


def check_queue(q):
    for k, typ in QUEUE_FIELDS.items():
        assert k in q, "queue object lacks %r: %r" % (k, q)
        assert isinstance(q[k], typ), (k, q[k])
        if typ is int:
            assert not isinstance(q[k], bool) and q[k] >= 0, (k, q[k])
    assert set(q) == set(QUEUE_FIELDS), set(q) ^ set(QUEUE_FIELDS)
    return q


def test_queues_list_and_counts(http_deferd, http):
    http.enqueue("mail", {"payload": 1, "priority": 0})  # urgent
    http.enqueue("mail", {"payload": 2})
    http.enqueue("mail", {"payload": 3, "delay": 3600})
    held = http.enqueue("mail", {"payload": 4, "priority": 1})
    buried = http.enqueue("mail", {"payload": 5, "priority": 2})
    failed = http.enqueue("mail", {"payload": 6, "priority": 3, "max_attempts": 1})
    done = http.enqueue("mail", {"payload": 7, "priority": 4})
    w = bs_worker(http_deferd, b"mail")
    for _ in range(5):
        w.reserve(timeout=2)
    # Reserved by priority: 1 (pri 0), then held, buried, failed, done.
    assert w.cmd(b"bury %d 2\r\n" % buried["id"]) == b"BURIED\r\n"
    assert w.cmd(b"release %d 3 0\r\n" % failed["id"]) == b"RELEASED\r\n"
    assert w.cmd(b"delete %d\r\n" % done["id"]) == b"DELETED\r\n"
    # the urgent task 1 goes back to ready
    assert w.cmd(b"release 1 0 0\r\n") == b"RELEASED\r\n"
    http.enqueue("other", {"payload": 1})

    r = http.get("/v1/queues")
    assert r.status == 200, r
    qs = {q["name"]: check_queue(q) for q in r.json()["queues"]}
    assert set(r.json()) == {"queues"}
    assert {"mail", "other"} <= set(qs)
    m = qs["mail"]
    assert (m["ready"], m["delayed"], m["reserved"], m["buried"], m["failed"]) == (2, 1, 1, 1, 1), m
    assert m["urgent"] == 1
    assert m["total_enqueued"] == 7 and m["total_done"] == 1
    assert m["paused"] is False and m["pause_seconds_left"] == 0
    assert qs["other"]["ready"] == 1
    one = http.queue("mail")
    assert {k: v for k, v in one.items() if not k.endswith("_per_second")} == {
        k: v for k, v in m.items() if not k.endswith("_per_second")}
    assert http.task(held["id"])["state"] == "reserved"
    w.close()


def test_workers_waiting(http_deferd, http):
    http.enqueue("jobs", {"payload": 1})
    with bs_worker(http_deferd, b"jobs") as w:
        jid, _ = w.reserve(timeout=2)
        w.send(b"reserve\r\n")  # waits
        eventually(lambda: http.queue("jobs")["workers_waiting"] == 1)
    eventually(lambda: http.queue("jobs")["workers_waiting"] == 0)


def test_queue_rates(http_deferd, http):
    time.sleep(1.5)  # past the server's first once-a-second update
    for i in range(30):
        http.enqueue("rated", {"payload": i})
    # One-minute moving averages, updated once a second.
    eventually(lambda: http.queue("rated")["enqueued_per_second"] > 0, timeout=10)
    assert http.queue("rated")["done_per_second"] == 0
    with bs_worker(http_deferd, b"rated") as w:
        for _ in range(10):
            jid, _ = w.reserve(timeout=2)
            assert w.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
    eventually(lambda: http.queue("rated")["done_per_second"] > 0, timeout=10)


def test_queue_rates_count_tasks_of_the_first_second(http):
    # Tasks enqueued right after the start are within the last minute too.
    for i in range(30):
        http.enqueue("rated", {"payload": i})
    eventually(lambda: http.queue("rated")["enqueued_per_second"] > 0, timeout=5)


def test_unknown_queue_is_404(http):
    http.enqueue("exists", {"payload": 1})
    for method, path in [
        ("GET", "/v1/queues/nope"),
        ("GET", "/v1/queues/nope/tasks?state=ready"),
        ("POST", "/v1/queues/nope/pause"),
        ("POST", "/v1/queues/nope/resume"),
        ("POST", "/v1/queues/nope/kick"),
    ]:
        r = http.request(method, path)
        check_error(r, 404, "not_found", "nope")


def test_pause_and_resume(http_deferd, http):
    t = http.enqueue("p", {"payload": 1})
    r = http.post("/v1/queues/p/pause", json={"seconds": 300})
    assert r.status == 200, r
    q = check_queue(r.json())
    assert q["name"] == "p" and q["paused"] is True and 0 < q["pause_seconds_left"] <= 300
    with bs_worker(http_deferd, b"p") as w:
        assert w.cmd(b"reserve-with-timeout 0\r\n") == b"TIMED_OUT\r\n"
        r = http.post("/v1/queues/p/resume")
        assert r.status == 200, r
        q = check_queue(r.json())
        assert q["paused"] is False and q["pause_seconds_left"] == 0
        assert w.reserve(timeout=2)[0] == t["id"]


def test_pause_without_a_body_is_until_resumed(http):
    http.enqueue("p", {"payload": 1})
    r = http.post("/v1/queues/p/pause")
    assert r.status == 200, r
    q = r.json()
    assert q["paused"] is True and q["pause_seconds_left"] is None
    r = http.post("/v1/queues/p/pause", body=b"{}", headers={"Content-Type": "application/json"})
    assert r.status == 200 and r.json()["paused"] is True
    assert http.post("/v1/queues/p/resume").json()["paused"] is False


@pytest.mark.parametrize(
    "body,code,mention",
    [
        ({"seconds": -1}, "invalid_field", "seconds"),
        ({"seconds": "10"}, "invalid_field", "seconds"),
        ({"seconds": 1.5}, "invalid_field", "seconds"),
        ({"seconds": 4294967296}, "invalid_field", "seconds"),
        ({"secs": 10}, "unknown_field", "secs"),
        (b"{", "invalid_json", ""),
        (b"[10]", "invalid_json", ""),
    ],
)
def test_pause_errors(http, body, code, mention):
    http.enqueue("p", {"payload": 1})
    if isinstance(body, bytes):
        r = http.post("/v1/queues/p/pause", body=body)
    else:
        r = http.post("/v1/queues/p/pause", json=body)
    check_error(r, 400, code, mention)
    assert http.queue("p")["paused"] is False


def test_kick_buried_then_delayed(http_deferd, http):
    b1 = http.enqueue("k", {"payload": 1})
    b2 = http.enqueue("k", {"payload": 2})
    b3 = http.enqueue("k", {"payload": 3})
    d1 = http.enqueue("k", {"payload": 4, "delay": 3600})
    with bs_worker(http_deferd, b"k") as w:
        for _ in range(3):
            jid, _ = w.reserve(timeout=2)
            assert w.cmd(b"bury %d 0\r\n" % jid) == b"BURIED\r\n"
    r = http.post("/v1/queues/k/kick", json={"bound": 2})
    assert r.status == 200 and r.json() == {"kicked": 2}, r
    assert http.queue("k")["buried"] == 1
    r = http.post("/v1/queues/k/kick")
    assert r.status == 200 and r.json() == {"kicked": 1}, r
    states = {t["id"]: http.task(t["id"])["state"] for t in (b1, b2, b3, d1)}
    assert states == {b1["id"]: "ready", b2["id"]: "ready", b3["id"]: "ready", d1["id"]: "delayed"}
    # None buried: delayed ones.
    r = http.post("/v1/queues/k/kick", json={})
    assert r.json() == {"kicked": 1}
    assert http.task(d1["id"])["state"] == "ready"
    assert http.post("/v1/queues/k/kick").json() == {"kicked": 0}


@pytest.mark.parametrize(
    "body,code",
    [({"bound": -1}, "invalid_field"), ({"bound": "5"}, "invalid_field"), ({"bound": 4294967296}, "invalid_field"),
     ({"limit": 5}, "unknown_field"), (b"nope", "invalid_json")],
)
def test_kick_errors(http, body, code):
    http.enqueue("k", {"payload": 1})
    if isinstance(body, bytes):
        r = http.post("/v1/queues/k/kick", body=body)
    else:
        r = http.post("/v1/queues/k/kick", json=body)
    check_error(r, 400, code)


# ---------------------------------------------------------------------------
# listing a queue
# ---------------------------------------------------------------------------


def list_ids(http, q, state, **params):
    qs = "&".join(["state=%s" % state] + ["%s=%s" % kv for kv in params.items()])
    r = http.get("/v1/queues/%s/tasks?%s" % (quote_queue(q), qs))
    assert r.status == 200, r
    body = r.json()
    assert set(body) == {"tasks", "next"}, body
    for t in body["tasks"]:
        check_task(t)
        assert t["state"] == state and t["queue"] == q
    return [t["id"] for t in body["tasks"]], body["next"], body["tasks"]


def test_list_each_state_with_paging(http_deferd, http):
    made = {"ready": [], "delayed": [], "reserved": [], "buried": [], "failed": []}
    # Mixed priorities, so that id order differs from priority order.
    for i in range(5):
        made["ready"].append(http.enqueue("L", {"payload": i, "priority": 100 - i})["id"])
        made["delayed"].append(http.enqueue("L", {"payload": i, "delay": 3600 - i})["id"])
    w = bs_worker(http_deferd, b"L")
    for kind in ("reserved", "buried", "failed"):
        for i in range(3):
            t = http.enqueue("L", {"payload": i, "priority": 0, "max_attempts": 1})
            jid, _ = w.reserve(timeout=2)
            assert jid == t["id"]
            if kind == "buried":
                assert w.cmd(b"bury %d %d\r\n" % (jid, 50 - i)) == b"BURIED\r\n"
            elif kind == "failed":
                assert w.cmd(b"release %d 0 0\r\n" % jid) == b"RELEASED\r\n"
            made[kind].append(jid)
    for state, ids in made.items():
        got, nxt, tasks = list_ids(http, "L", state)
        assert got == sorted(ids) and nxt is None, (state, got)
        assert all("payload" not in t for t in tasks)
        # Two at a time.
        pages, after = [], None
        while True:
            params = {"limit": 2}
            if after is not None:
                params["after"] = after
            got, nxt, _ = list_ids(http, "L", state, **params)
            pages.append(got)
            assert len(got) <= 2
            if nxt is None:
                break
            assert nxt == got[-1]
            after = nxt
        assert sum(pages, []) == sorted(ids), (state, pages)
    # payload=1 includes payloads.
    _, _, tasks = list_ids(http, "L", "ready", payload=1)
    assert sorted(t["payload"] for t in tasks) == [0, 1, 2, 3, 4]
    # after past the end: empty.
    assert list_ids(http, "L", "ready", after=10 ** 6)[:2] == ([], None)
    w.close()


def test_list_limit_bounds(http):
    ids = [t["id"] for t in http.post("/v1/queues/L/tasks/batch", json={"tasks": [{"payload": i} for i in range(1005)]}).json()["tasks"]]
    got, nxt, _ = list_ids(http, "L", "ready")
    assert got == ids[:100] and nxt == ids[99]
    got, nxt, _ = list_ids(http, "L", "ready", limit=1000)
    assert got == ids[:1000] and nxt == ids[999]
    got, nxt, _ = list_ids(http, "L", "ready", limit=1000, after=nxt)
    assert got == ids[1000:] and nxt is None
    got, nxt, _ = list_ids(http, "L", "ready", limit=1)
    assert got == ids[:1] and nxt == ids[0]


def test_list_without_a_state_lists_every_state(http_deferd, http):
    ready = http.enqueue("A", {"payload": 1})["id"]
    delayed = http.enqueue("A", {"payload": 2, "delay": 600})["id"]
    held = http.enqueue("A", {"payload": 3})["id"]
    with bs_worker(http_deferd, b"A") as w:
        assert w.cmd(b"reserve-job %d\r\n" % held).startswith(b"RESERVED")
        r = http.get("/v1/queues/A/tasks")
        assert r.status == 200, r
        got = [(t["id"], t["state"]) for t in r.json()["tasks"]]
        assert got == [(ready, "ready"), (delayed, "delayed"), (held, "reserved")]


@pytest.mark.parametrize(
    "query,mention",
    [("state=done", "state"), ("state=READY", "state"), ("state=cancelled", "state"),
     ("state=ready&limit=0", "limit"), ("state=ready&limit=1001", "limit"), ("state=ready&limit=x", "limit"),
     ("state=ready&limit=-1", "limit"), ("state=ready&after=x", "after"), ("state=ready&after=-3", "after")],
)
def test_list_errors(http, query, mention):
    http.enqueue("L", {"payload": 1})
    r = http.get("/v1/queues/L/tasks?" + query)
    check_error(r, 400, "invalid_field", mention)


# ---------------------------------------------------------------------------
# batches
# ---------------------------------------------------------------------------


def test_batch_enqueues_in_order(http):
    tasks = [{"payload": {"to": "a@example.org"}}, {"payload_base64": "AAEC"}, {"payload": 3, "delay": 60, "key": "k"}]
    r = http.post("/v1/queues/mail/tasks/batch", json={"tasks": tasks})
    assert r.status == 200, r
    assert r.header("location") is None
    got = r.json()["tasks"]
    assert set(r.json()) == {"tasks"}
    assert len(got) == 3
    for t in got:
        check_task(t)
    ids = [t["id"] for t in got]
    assert ids == sorted(ids) and len(set(ids)) == 3
    assert got[0]["payload"] == {"to": "a@example.org"}
    assert got[1]["payload_base64"] == "AAEC"
    assert got[2]["state"] == "delayed" and got[2]["key"] == "k"
    for t in got:
        assert http.task(t["id"]) == t


def test_batch_with_keys_dedups_and_replaces(http):
    first = http.enqueue("b", {"payload": "old", "key": "r"})
    r = http.post(
        "/v1/queues/b/tasks/batch",
        json={"tasks": [{"payload": 1, "key": "x"}, {"payload": 2, "key": "x"},
                        {"payload": "new", "key": "r", "on_conflict": "replace"}]},
    )
    assert r.status == 200, r
    a, b, c = r.json()["tasks"]
    assert "deduplicated" not in a
    assert b["deduplicated"] is True and b["id"] == a["id"] and b["payload"] == 1
    assert c["replaced"] is True and c["id"] == first["id"] and c["payload"] == "new"
    assert http.queue("b")["ready"] == 2


@pytest.mark.parametrize(
    "bad,code,mention",
    [
        ({"payload": 1, "priority": -1}, "invalid_field", "priority"),
        ({"payload": 1, "ttr": 0}, "invalid_field", "ttr"),
        ({"payload": 1, "prio": 1}, "unknown_field", "prio"),
        ({"priority": 1}, "missing_field", "payload"),
        ({"payload_base64": "!!"}, "invalid_field", "payload_base64"),
        ("not an object", "invalid_field", ""),
        ({"payload": 1, "key": ""}, "invalid_field", "key"),
        ({"payload": 1, "run_at": "soon"}, "invalid_field", "run_at"),
    ],
)
def test_batch_is_all_or_nothing(http, bad, code, mention):
    tasks = [{"payload": i} for i in range(6)]
    tasks[3] = bad
    r = http.post("/v1/queues/batchq/tasks/batch", json={"tasks": tasks})
    check_error(r, 400, code, "tasks[3]", mention)
    check_error(http.get("/v1/queues/batchq"), 404, "not_found")
    assert stats_total(http) == 0


def test_batch_oversize_payload_names_the_task(make_http_deferd):
    srv = make_http_deferd(["-z", "100"])
    with HttpClient(srv.http_port) as h:
        h.enqueue("bq", {"payload": 0})
        tasks = [{"payload": "x"}] * 5 + [{"payload_base64": base64.b64encode(b"y" * 101).decode()}]
        r = h.post("/v1/queues/bq/tasks/batch", json={"tasks": tasks})
        check_error(r, 413, "too_large", "tasks[5]")
    with HttpClient(srv.http_port) as h:
        assert h.queue("bq")["total_enqueued"] == 1


@pytest.mark.parametrize(
    "body,code",
    [
        ({}, "missing_field"),
        ({"tasks": []}, "invalid_field"),
        ({"tasks": {"payload": 1}}, "invalid_field"),
        ({"tasks": "x"}, "invalid_field"),
        ({"tasks": None}, "invalid_field"),
        ({"tasks": [{"payload": 1}], "extra": 1}, "unknown_field"),
        (b"{\"tasks\": [", "invalid_json"),
        (b"[]", "invalid_json"),
    ],
)
def test_batch_errors(http, body, code):
    if isinstance(body, bytes):
        r = http.post("/v1/queues/bq/tasks/batch", body=body)
    else:
        r = http.post("/v1/queues/bq/tasks/batch", json=body)
    check_error(r, 400, code)
    assert stats_total(http) == 0


def test_batch_of_5000(http_deferd):
    with HttpClient(http_deferd.http_port, timeout=60) as h:
        tasks = [{"payload": {"n": i}, "priority": i % 7} for i in range(5000)]
        r = h.post("/v1/queues/bulk/tasks/batch", json={"tasks": tasks})
        assert r.status == 200, r
        got = r.json()["tasks"]
        assert len(got) == 5000
        assert [t["payload"]["n"] for t in got] == list(range(5000))
        ids = [t["id"] for t in got]
        assert len(set(ids)) == 5000 and ids == sorted(ids)
        q = h.queue("bulk")
        assert q["ready"] == 5000 and q["total_enqueued"] == 5000
        assert h.task(ids[4321])["payload"] == {"n": 4321}


def test_batch_limit_is_10000(http_deferd):
    with HttpClient(http_deferd.http_port, timeout=60) as h:
        r = h.post("/v1/queues/bulk/tasks/batch", json={"tasks": [{"payload": 1}] * 10001})
        check_error(r, 400, "invalid_field", "10000")
        r = h.post("/v1/queues/bulk/tasks/batch", json={"tasks": [{"payload": 1}] * 10000})
        assert r.status == 200, r
        assert len(r.json()["tasks"]) == 10000


# ---------------------------------------------------------------------------
# 404 endpoints, 405 methods
# ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/"),
        ("GET", "/v1"),
        ("GET", "/v1/"),
        ("GET", "/v1/nope"),
        ("GET", "/v2/queues"),
        ("GET", "/v1/queues/q/nope"),
        ("POST", "/v1/queues/q/tasks/x"),
        ("GET", "/v1/tasks/1/extra"),
        ("GET", "/v1/queues/q/keys"),
        ("GET", "/healthz/x"),
        ("GET", "/a/b/c/d/e/f/g/h/i/j"),
        ("GET", "/V1/queues"),
    ],
)
def test_unknown_endpoint_is_404(http, method, path):
    http.enqueue("q", {"payload": 1})
    check_error(http.request(method, path), 404, "not_found")


@pytest.mark.parametrize(
    "method,path,allow",
    [
        ("PUT", "/v1/tasks/1", "GET, DELETE"),
        ("POST", "/v1/tasks/1", "GET, DELETE"),
        ("DELETE", "/v1/queues", "GET"),
        ("POST", "/v1/stats", "GET"),
        ("DELETE", "/v1/events", "GET"),
        ("POST", "/healthz", "GET"),
        ("PUT", "/metrics", "GET"),
        ("DELETE", "/v1/queues/q/tasks", "GET, POST"),
        ("PUT", "/v1/queues/q/tasks", "GET, POST"),
        ("GET", "/v1/queues/q/tasks/batch", "POST"),
        ("GET", "/v1/queues/q/pause", "POST"),
        ("DELETE", "/v1/queues/q/resume", "POST"),
        ("GET", "/v1/queues/q/kick", "POST"),
        ("GET", "/v1/queues/q/keys/k", "DELETE"),
        ("POST", "/v1/queues/q/keys/k", "DELETE"),
        ("PATCH", "/v1/queues/q", "GET, PUT"),
        ("DELETE", "/v1/queues/q", "GET, PUT"),
    ],
)
def test_wrong_method_is_405_with_allow(http, method, path, allow):
    http.enqueue("q", {"payload": 1, "key": "k"})
    r = http.request(method, path)
    check_error(r, 405, "method_not_allowed", method)
    # GET endpoints also take HEAD.
    want = allow + ", HEAD" if "GET" in allow else allow
    assert r.header("allow") == want, r
    # Nothing changed, and the connection goes on.
    assert http.queue("q")["ready"] == 1


# ---------------------------------------------------------------------------
# drain mode, health, stats
# ---------------------------------------------------------------------------


def test_draining_refuses_new_tasks_only(http_deferd, http):
    t = http.enqueue("d", {"payload": 1})
    keep = http.enqueue("d", {"payload": 2})
    r = http.get("/healthz")
    assert r.status == 200 and r.json() == {"status": "ok"}, r
    http_deferd.signal(signal.SIGUSR1)
    eventually(lambda: http.get("/healthz").status == 503)
    r = http.get("/healthz")
    assert r.json() == {"status": "draining"}
    check_error(http.post("/v1/queues/d/tasks", json={"payload": 3}), 503, "draining")
    check_error(http.post("/v1/queues/d/tasks/batch", json={"tasks": [{"payload": 3}]}), 503, "draining")
    # Even a deduplicating enqueue is refused; other requests work.
    assert http.get("/v1/tasks/%d" % t["id"]).status == 200
    r = http.delete("/v1/tasks/%d" % t["id"])
    assert r.status == 200 and r.json()["state"] == "cancelled"
    assert http.get("/v1/stats").json()["draining"] is True
    samples, _ = http.metrics()
    assert samples[("defer_draining", frozenset())] == 1
    assert http.post("/v1/queues/d/pause", json={"seconds": 1}).status == 200
    assert http.queue("d")["ready"] == 1
    assert http.task(keep["id"])["state"] == "ready"
    # Validation still answers 400 first.
    check_error(http.post("/v1/queues/d/tasks", json={}), 400, "missing_field")


def test_healthz(http):
    r = http.get("/healthz")
    assert r.status == 200, r
    assert r.json() == {"status": "ok"}
    assert http.get("/healthz?verbose=1").status == 200


def test_stats(http_deferd, http):
    http.enqueue("s", {"payload": 1})
    http.enqueue("s", {"payload": 2, "delay": 100})
    with http_deferd.connect() as c:
        c.put(b"bs")
        r = http.get("/v1/stats")
        assert r.status == 200, r
        s = r.json()
        assert s["connections"] == {"beanstalk": 1, "http": 1}
    assert isinstance(s["version"], str) and s["version"]
    assert isinstance(s["uptime_seconds"], int)
    assert s["draining"] is False
    assert s["tasks"]["ready"] == 2 and s["tasks"]["delayed"] == 1
    assert set(s["tasks"]) >= {"ready", "delayed", "reserved", "buried", "urgent"}
    assert s["total_enqueued"] == 3
    assert s["queues"] == 2  # default and s
    assert isinstance(s["memory"]["rss_bytes"], int) and s["memory"]["rss_bytes"] > 0
    assert s["log"] is None


def test_stats_with_a_log(make_http_deferd, tmp_path):
    srv = make_http_deferd(["-b", str(tmp_path / "data")])
    with HttpClient(srv.http_port) as h:
        h.enqueue("s", {"payload": 1})
        log = h.get("/v1/stats").json()["log"]
    assert isinstance(log, dict), log
    assert log["bytes"] > 0 and log["records_written"] >= 1
    assert isinstance(log["disk_full"], bool) and log["disk_full"] is False


# ---------------------------------------------------------------------------
# one set of tasks: beanstalk <-> HTTP
# ---------------------------------------------------------------------------


def test_task_put_over_beanstalk_is_visible_over_http(http_deferd, http):
    with http_deferd.connect() as c:
        c.use(b"bsq")
        body = b"\x00raw \xff bytes\r\n"
        jid = c.put(body, pri=17, ttr=33)
        delayed = c.put(b"later", delay=600)
    t = check_task(http.task(jid))
    assert (t["queue"], t["state"], t["priority"], t["ttr"]) == ("bsq", "ready", 17, 33)
    assert (t["attempts"], t["max_attempts"], t["key"], t["last_error"]) == (0, 0, None, None)
    assert "payload" not in t
    assert base64.b64decode(t["payload_base64"]) == body
    d = http.task(delayed)
    assert d["state"] == "delayed" and d["run_at"] is not None
    assert base64.b64decode(d["payload_base64"]) == b"later"
    # And in the listing and the queue.
    assert http.queue("bsq")["ready"] == 1
    got, _, _ = list_ids(http, "bsq", "ready")
    assert got == [jid]


def test_task_enqueued_over_http_is_a_beanstalk_job(http_deferd, http):
    t = http.enqueue("hq", {"payload": {"b": [1, "ü"]}, "priority": 9, "ttr": 45})
    with bs_worker(http_deferd, b"hq") as w:
        st = w.stats_job(t["id"])
        assert (st["tube"], st["state"], st["pri"], st["ttr"]) == ("hq", "ready", "9", "45")
        # The client's own text (json.dumps escapes the ü), compacted.
        assert w.cmd(b"peek %d\r\n" % t["id"]) == b'FOUND %d 18\r\n{"b":[1,"\\u00fc"]}\r\n' % t["id"]
        jid, body = w.reserve(timeout=2)
        assert (jid, body) == (t["id"], b'{"b":[1,"\\u00fc"]}')
        assert http.task(jid)["state"] == "reserved"
        assert http.task(jid)["attempts"] == 1
        assert w.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
    d = http.task(t["id"])
    assert d["state"] == "done" and RFC3339_MS.match(d["finished_at"])
    assert d["attempts"] == 1
