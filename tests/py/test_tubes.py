"""Tube names, and tubes coming and going."""

import pytest

from helpers import eventually

NAME_CHARS = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-+/;.$_()"
COMMANDS = [b"use %s", b"watch %s", b"ignore %s", b"stats-tube %s", b"pause-tube %s 0"]


def test_every_allowed_character(client):
    name = b"a" + NAME_CHARS
    assert client.cmd(b"use %s\r\n" % name) == b"USING %s\r\n" % name
    assert client.cmd(b"watch %s\r\n" % name) == b"WATCHING 2\r\n"
    assert client.stats_tube(name)["name"] == name.decode()


@pytest.mark.parametrize("name", [b"_", b"$", b"(", b")", b";", b".", b"/", b"+", b"0", b"a-"])
def test_one_char_names(client, name):
    assert client.cmd(b"use %s\r\n" % name) == b"USING %s\r\n" % name


@pytest.mark.parametrize("template", COMMANDS)
def test_200_byte_name_accepted(client, template):
    name = b"n" * 200
    client.use(name)  # make it exist for stats-tube / pause-tube
    r = client.cmd(template % name + b"\r\n")
    assert r != b"BAD_FORMAT\r\n"
    assert r in (b"USING %s\r\n" % name, b"WATCHING 2\r\n", b"WATCHING 1\r\n", b"PAUSED\r\n") or r.startswith(b"OK ")


@pytest.mark.parametrize("template", COMMANDS)
@pytest.mark.parametrize(
    "name",
    [b"n" * 201, b"a*b", b"a b", b"-a", b"-", b"", "caf\u00e9".encode(), b"a,b", b"a:b", b"a@b", b"a\\b", b"a\tb",
     b"a#b", b"a!b", b"a'b", b'a"b', b"a\x01b", b"a\x7fb"],
    ids=lambda n: repr(n)[:20],
)
def test_bad_names(client, template, name):
    client.use(b"a")  # so that "a" exists
    assert client.cmd(template % name + b"\r\n") == b"BAD_FORMAT\r\n"
    assert client.cmd(b"list-tube-used\r\n") == b"USING a\r\n"
    assert client.cmd(b"list-tubes-watched\r\n") == b"OK 14\r\n---\n- default\n\r\n"


def test_new_connection_uses_and_watches_default(deferd):
    with deferd.connect() as a:
        a.use("other")
        a.watch("other")
    with deferd.connect() as b:
        assert b.cmd(b"list-tube-used\r\n") == b"USING default\r\n"
        assert b.yaml(b"list-tubes-watched\r\n") == ["default"]


def test_default_always_exists(client):
    client.use("x")
    client.watch("x")
    client.ignore("default")
    assert "default" in client.list_tubes()
    assert client.stats_tube("default")["name"] == "default"


def test_tube_created_by_use_and_gone_when_unused(client):
    client.use("g")
    assert client.list_tubes() == ["default", "g"]
    client.use("default")
    assert client.list_tubes() == ["default"]
    assert client.cmd(b"stats-tube g\r\n") == b"NOT_FOUND\r\n"


def test_tube_created_by_watch_and_gone_when_ignored(client):
    assert client.watch("w") == 2
    assert client.list_tubes() == ["default", "w"]
    assert client.ignore("w") == 1
    assert client.list_tubes() == ["default"]


def test_tube_kept_while_it_has_jobs(client):
    client.use("j")
    jid = client.put(b"x")
    client.use("default")
    assert "j" in client.list_tubes()
    assert client.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
    assert client.list_tubes() == ["default"]


def test_tube_kept_while_another_connection_watches(deferd):
    a, b = deferd.connect(), deferd.connect()
    a.watch("shared")
    b.watch("shared")
    a.ignore("shared")
    assert "shared" in b.list_tubes()
    b.close()
    # b's watch goes away when its connection closes.
    eventually(lambda: a.list_tubes() == ["default"])


def test_stats_tube_of_unknown_tube(client):
    assert client.cmd(b"stats-tube nosuch\r\n") == b"NOT_FOUND\r\n"
    assert client.list_tubes() == ["default"]  # not created by asking


def test_pause_tube_does_not_create(client):
    assert client.cmd(b"pause-tube nosuch 1\r\n") == b"NOT_FOUND\r\n"
    assert client.list_tubes() == ["default"]


def test_many_tubes(client):
    names = ["t%d" % i for i in range(300)]
    for n in names:
        client.watch(n)
    assert sorted(client.list_tubes()) == sorted(names + ["default"])
    assert client.yaml(b"list-tubes-watched\r\n") == ["default"] + names
    for n in names:
        client.ignore(n)
    assert client.list_tubes() == ["default"]
