"""The durable log (-b DIR), black box: what was acknowledged survives a crash.

* crash tests: many connections put, bury, release and delete while the
  server is killed with SIGKILL at a random moment, over and over; after
  each restart every acknowledged change is there and nothing else;
* torn and damaged logs: the log cut at every offset of its last batches
  (checked with --check-log), bytes flipped, --repair-log;
* compaction: a million put/delete cycles leave a small directory, and
  long-delayed or buried tasks do not pin old files;
* a full disk (a small tmpfs): new tasks are refused, deletes still work,
  nothing acknowledged is lost, and the server recovers when space returns.
"""

import os
import random
import shutil
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

from helpers import DEFERD, ProtocolError, eventually

pytestmark = pytest.mark.deferd_only


def crash(srv):
    """SIGKILL, as a power cut would stop the process (the page cache stays)."""
    srv.kill()
    srv.checked = True
    assert srv.sanitizer_report() is None, srv.stderr()


def check_log(data_dir):
    r = subprocess.run([DEFERD, "-b", str(data_dir), "--check-log"], capture_output=True, timeout=60)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def dir_bytes(path):
    """Bytes the directory uses on disk (allocated blocks, as du counts)."""
    total = 0
    for name in os.listdir(path):
        total += os.stat(os.path.join(path, name)).st_blocks * 512
    return total


def segments(data_dir):
    return sorted(n for n in os.listdir(data_dir) if n.startswith("seg-"))


def batch_starts(path):
    """Offsets where the batches of a segment file begin, and its end."""
    with open(path, "rb") as f:
        data = f.read()
    (seg_len,) = struct.unpack_from("<I", data, 0)
    starts, off = [], seg_len
    while off + 36 <= len(data):
        length, _crc, typ = struct.unpack_from("<IIB", data, off)
        if length == 0:
            break
        assert typ == 2 and length == 36, "expected a BATCH record at %d" % off
        (nbytes,) = struct.unpack_from("<I", data, off + 28)
        starts.append(off)
        off += length + nbytes
    return starts, off


# ---------------------------------------------------------------------------
# crash tests
# ---------------------------------------------------------------------------


class Ledger:
    """What clients were told. A job's fate is `known` when no request about
    it was in flight at the crash; only known facts are checked."""

    def __init__(self):
        self.lock = threading.Lock()
        self.body = {}  # id -> body, for every acknowledged put
        self.state = {}  # id -> "ready" | "buried" | "deleted" (last acknowledged)
        self.uncertain = set()  # ids with a request in flight when the server died
        self.max_id = 0


def worker(port, ledger, tid, stop):
    rnd = random.Random(tid)
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        f = s.makefile("rb")
    except OSError:
        return
    mine = []
    n = 0
    pending = None
    try:
        while not stop.is_set():
            op = rnd.random()
            if op < 0.55 or not mine:
                n += 1
                body = b"t%d-%d-" % (tid, n) + b"x" * rnd.randrange(0, 300)
                s.sendall(b"put %d 0 60 %d\r\n%s\r\n" % (rnd.randrange(0, 2000), len(body), body))
                line = f.readline()
                if not line:
                    return
                assert line.startswith(b"INSERTED "), line
                jid = int(line.split()[1])
                with ledger.lock:
                    ledger.body[jid] = body
                    ledger.state[jid] = "ready"
                    ledger.max_id = max(ledger.max_id, jid)
                mine.append(jid)
            elif op < 0.8:
                jid = mine.pop(rnd.randrange(len(mine)))
                pending = jid
                s.sendall(b"delete %d\r\n" % jid)
                line = f.readline()
                if not line:
                    return
                assert line == b"DELETED\r\n", line
                with ledger.lock:
                    ledger.state[jid] = "deleted"
                pending = None
            else:
                # reserve-job takes exactly the job we mean; bury or release it.
                jid = rnd.choice(mine)
                pending = jid
                s.sendall(b"reserve-job %d\r\n" % jid)
                line = f.readline()
                if not line:
                    return
                assert line.startswith(b"RESERVED %d " % jid), line
                f.read(int(line.split()[2]) + 2)
                if rnd.random() < 0.5:
                    s.sendall(b"bury %d 7\r\n" % jid)
                    want, state = b"BURIED\r\n", "buried"
                else:
                    s.sendall(b"release %d 3 0\r\n" % jid)
                    want, state = b"RELEASED\r\n", "ready"
                line = f.readline()
                if not line:
                    return
                assert line == want, line
                with ledger.lock:
                    ledger.state[jid] = state
                pending = None
    except (OSError, ValueError):
        return
    finally:
        with ledger.lock:
            if pending is not None:
                ledger.uncertain.add(pending)
        s.close()


def verify(srv, ledger):
    with srv.connect() as c:
        for jid, state in sorted(ledger.state.items()):
            if jid in ledger.uncertain:
                continue
            reply = c.cmd(b"peek %d\r\n" % jid)
            if state == "deleted":
                assert reply == b"NOT_FOUND\r\n", "job %d: delete was acknowledged, but %r" % (jid, reply)
                continue
            body = ledger.body[jid]
            assert reply == b"FOUND %d %d\r\n%s\r\n" % (jid, len(body), body), "job %d lost: %r" % (jid, reply)
            st = c.stats_job(jid)
            want = "buried" if state == "buried" else "ready"
            assert st["state"] == want, "job %d: want %s, got %s" % (jid, want, st["state"])
        # Ids never repeat across restarts.
        assert c.put(b"after") > ledger.max_id


def test_crash_at_random_moments_loses_nothing_acknowledged(make_deferd, tmp_path):
    data = tmp_path / "data"
    rnd = random.Random(1234)
    ledger = Ledger()
    rounds = int(os.environ.get("DEFER_CRASH_ROUNDS", "8"))
    for r in range(rounds):
        srv = make_deferd(["-b", str(data)])
        if r:
            verify(srv, ledger)
        stop = threading.Event()
        threads = [threading.Thread(target=worker, args=(srv.port, ledger, r * 100 + i, stop)) for i in range(8)]
        for t in threads:
            t.start()
        time.sleep(rnd.uniform(0.05, 0.6))
        crash(srv)
        stop.set()
        for t in threads:
            t.join(30)
            assert not t.is_alive()
    srv = make_deferd(["-b", str(data)])
    verify(srv, ledger)
    assert len(ledger.state) > 100, "the crash test did too little work to mean anything"


def test_reserved_job_is_ready_after_restart(make_deferd, tmp_path):
    data = tmp_path / "data"
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        jid = c.put(b"job", ttr=100)
        assert c.cmd(b"reserve\r\n").startswith(b"RESERVED %d" % jid)
    crash(srv)
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        st = c.stats_job(jid)
        assert st["state"] == "ready"
        assert c.cmd(b"reserve-with-timeout 0\r\n") == b"RESERVED %d 3\r\njob\r\n" % jid


def test_states_and_settings_survive_restart(make_deferd, tmp_path):
    data = tmp_path / "data"
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        c.use(b"mail")
        ready = c.put(b"r", pri=5, ttr=30)
        delayed = c.put(b"d", delay=3600)
        buried = c.put(b"b")
        assert c.cmd(b"reserve-job %d\r\n" % buried).startswith(b"RESERVED")
        assert c.cmd(b"bury %d 9\r\n" % buried) == b"BURIED\r\n"
        kicked = c.put(b"k", delay=3600)
        assert c.cmd(b"kick-job %d\r\n" % kicked) == b"KICKED\r\n"
        assert c.cmd(b"pause-tube mail 600\r\n") == b"PAUSED\r\n"
    crash(srv)
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        st = c.stats_job(ready)
        assert (st["tube"], st["state"], st["pri"], st["ttr"]) == ("mail", "ready", "5", "30")
        st = c.stats_job(delayed)
        assert st["state"] == "delayed" and 3500 < int(st["time-left"]) <= 3600
        st = c.stats_job(buried)
        assert (st["state"], st["pri"], st["buries"], st["reserves"]) == ("buried", "9", "1", "1")
        st = c.stats_job(kicked)
        assert (st["state"], st["kicks"]) == ("ready", "1")
        assert 500 < int(c.stats_tube(b"mail")["pause-time-left"]) <= 600


def test_ids_never_repeat_after_everything_is_deleted(make_deferd, tmp_path):
    data = tmp_path / "data"
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        ids = [c.put(b"x") for _ in range(5)]
        for jid in ids:
            assert c.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
    srv.stop_and_check()
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        assert c.put(b"y") == 6


@pytest.mark.parametrize("policy", [["--fsync", "interval=50"], ["-f", "20"], ["--fsync", "never"], ["-F"]])
def test_other_fsync_policies_survive_a_process_crash(make_deferd, tmp_path, policy):
    # These policies reply once the write reached the kernel: a process
    # crash (not a power cut) loses nothing.
    data = tmp_path / "data"
    srv = make_deferd(["-b", str(data)] + policy)
    with srv.connect() as c:
        ids = [c.put(b"p%d" % i) for i in range(50)]
    crash(srv)
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        for i, jid in enumerate(ids):
            body = b"p%d" % i
            assert c.cmd(b"peek %d\r\n" % jid) == b"FOUND %d %d\r\n%s\r\n" % (jid, len(body), body)


def test_second_server_on_the_same_directory_is_refused(make_deferd, tmp_path):
    data = tmp_path / "data"
    make_deferd(["-b", str(data)])
    r = subprocess.run([DEFERD, "-p", "1", "-b", str(data)], capture_output=True, timeout=30)
    assert r.returncode != 0
    assert b"in use by another deferd" in r.stderr


# ---------------------------------------------------------------------------
# torn and damaged logs
# ---------------------------------------------------------------------------


def write_batches(make_deferd, data, nbatches):
    """A segment of nbatches batches, one put each (a round trip apiece)."""
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        ids = [c.put(b"job-%d" % i) for i in range(nbatches)]
    srv.stop_and_check()
    return ids


def test_torn_tail_at_every_offset(make_deferd, tmp_path):
    data = tmp_path / "data"
    write_batches(make_deferd, data, 6)
    seg = segments(data)[0]
    starts, end = batch_starts(data / seg)
    assert len(starts) == 6
    work = tmp_path / "work"
    for cut in range(starts[4], end):
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(data, work)
        os.truncate(work / seg, cut)
        rc, out = check_log(work)
        whole = 5 if cut >= starts[5] else 4
        assert rc == 0, "cut at %d: %s" % (cut, out)
        assert "intact: %d tasks" % whole in out, "cut at %d: %s" % (cut, out)
        if cut not in starts:
            assert "unfinished write at offset %d" % starts[whole] in out, out
    # And a real start on a torn log: the notice, the whole batches, no more.
    os.truncate(data / seg, starts[5] + 10)
    srv = make_deferd(["-b", str(data)])
    assert "dropped an unfinished write at offset %d" % starts[5] in srv.stderr()
    with srv.connect() as c:
        assert c.stats()["current-jobs-ready"] == "5"


def test_damage_before_the_tail_stops_startup_until_repaired(make_deferd, tmp_path):
    data = tmp_path / "data"
    ids = write_batches(make_deferd, data, 6)
    seg = segments(data)[0]
    starts, _ = batch_starts(data / seg)
    with open(data / seg, "r+b") as f:
        f.seek(starts[2] + 60)  # inside the third batch's record
        b = f.read(1)
        f.seek(starts[2] + 60)
        f.write(bytes([b[0] ^ 0xFF]))

    rc, out = check_log(data)
    assert rc == 1 and "damaged at offset %d" % starts[2] in out, out
    r = subprocess.run([DEFERD, "-p", "1", "-b", str(data)], capture_output=True, timeout=30)
    err = r.stderr.decode()
    assert r.returncode != 0
    assert seg in err and "offset %d" % starts[2] in err and "--repair-log" in err, err

    srv = make_deferd(["-b", str(data), "--repair-log"])
    assert "--repair-log: dropped" in srv.stderr()
    with srv.connect() as c:
        for i, jid in enumerate(ids):
            want = b"NOT_FOUND\r\n" if i == 2 else b"FOUND %d 5\r\njob-%d\r\n" % (jid, i)
            assert c.cmd(b"peek %d\r\n" % jid) == want
        # A snapshot retires the damaged file; then a plain start works.
        eventually(lambda: seg not in os.listdir(data))
    srv.stop_and_check()
    rc, out = check_log(data)
    assert rc == 0 and "intact: 5 tasks" in out, out


def test_missing_segment_is_reported(make_deferd, tmp_path):
    data = tmp_path / "data"
    for _ in range(3):  # each start begins a segment
        write_batches(make_deferd, data, 1)
    segs = segments(data)
    assert len(segs) >= 3
    os.unlink(data / segs[1])
    rc, out = check_log(data)
    assert rc == 1 and "missing" in out and "gap" in out, out


# ---------------------------------------------------------------------------
# compaction
# ---------------------------------------------------------------------------


def churn(port, cycles, batch=1000):
    """cycles put/delete pairs, pipelined `batch` at a time."""
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    put = b"put 0 0 60 100\r\n" + b"c" * 100 + b"\r\n"
    done = 0
    while done < cycles:
        n = min(batch, cycles - done)
        s.sendall(put * n)
        ids = []
        for _ in range(n):
            line = f.readline()
            if not line.startswith(b"INSERTED "):
                raise ProtocolError(line)
            ids.append(int(line.split()[1]))
        s.sendall(b"".join(b"delete %d\r\n" % i for i in ids))
        for _ in range(n):
            line = f.readline()
            if line != b"DELETED\r\n":
                raise ProtocolError(line)
        done += n
    s.close()


def test_churn_keeps_the_directory_small(make_deferd, tmp_path):
    data = tmp_path / "data"
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        live = [c.put(b"live-%d" % i) for i in range(100)]
    churn(srv.port, int(os.environ.get("DEFER_CHURN_CYCLES", "1000000")))
    with srv.connect() as c:
        st = c.stats()
        assert int(st["binlog-records-written"]) > 200000
        assert int(st["binlog-oldest-index"]) > 1, "compaction never ran"
    size = dir_bytes(data)
    assert size < 8 * 1024 * 1024, "data directory holds %d bytes after the churn" % size
    srv.stop_and_check()
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        assert c.stats()["current-jobs-ready"] == "100"
        for i, jid in enumerate(live):
            assert c.cmd(b"peek %d\r\n" % jid) == b"FOUND %d %d\r\nlive-%d\r\n" % (jid, len(b"live-%d" % i), i)


def test_missing_snapshot_is_reported(make_deferd, tmp_path):
    # Regression: a backup copied while a compaction replaced the snapshot
    # lacked both the old snapshot and the new one; the segments left began
    # after seg-1, were taken for a whole log, and the tasks only the
    # snapshot held were silently gone.
    data = tmp_path / "data"
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        c.put(b"only-in-the-snapshot")
    churn(srv.port, 40000)
    eventually(lambda: any(n.startswith("snap-") for n in os.listdir(data)), what="a snapshot")
    srv.stop_and_check()
    assert "seg-0000000001.log" not in os.listdir(data)
    rc, out = check_log(data)
    assert rc == 0 and "intact: 1 tasks" in out, out
    for name in os.listdir(data):
        if name.startswith("snap-"):
            os.unlink(data / name)
    rc, out = check_log(data)
    assert rc == 1 and "the snapshot is missing" in out, out
    r = subprocess.run([DEFERD, "-p", "1", "-b", str(data)], capture_output=True, timeout=30)
    assert r.returncode != 0 and "the snapshot is missing" in r.stderr.decode(), r.stderr


def test_check_of_a_directory_without_log_files_fails(tmp_path):
    rc, out = check_log(tmp_path)
    assert rc == 1 and "no log files" in out, out


def test_delayed_and_buried_jobs_do_not_pin_old_files(make_deferd, tmp_path):
    data = tmp_path / "data"
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        delayed = c.put(b"later", delay=86400)
        buried = c.put(b"kept")
        c.cmd(b"reserve-job %d\r\n" % buried)
        assert c.cmd(b"bury %d 0\r\n" % buried) == b"BURIED\r\n"
    first = segments(data)[0]
    churn(srv.port, 40000)
    eventually(lambda: first not in os.listdir(data))
    crash(srv)
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        assert c.stats_job(delayed)["state"] == "delayed"
        assert int(c.stats_job(delayed)["time-left"]) > 86000
        assert c.stats_job(buried)["state"] == "buried"
        assert c.cmd(b"peek-buried\r\n") == b"FOUND %d 4\r\nkept\r\n" % buried


# ---------------------------------------------------------------------------
# a full disk
# ---------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path):
    """A 4 MiB tmpfs: a real file system that really fills up."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True)
    if r.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): %s" % r.stderr.decode().strip())
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def test_full_disk_refuses_new_tasks_keeps_deletes_and_recovers(make_deferd, small_disk):
    data = small_disk / "data"
    filler = small_disk / "filler"
    with open(filler, "wb") as f:
        f.write(b"\0" * (1536 * 1024))
    srv = make_deferd(["-b", str(data)])
    body = b"f" * 2000
    acked = []
    with srv.connect() as c:
        for _ in range(5000):
            reply = c.cmd(b"put 0 0 60 %d\r\n%s\r\n" % (len(body), body))
            if reply == b"OUT_OF_MEMORY\r\n":
                break
            assert reply.startswith(b"INSERTED "), reply
            acked.append(int(reply.split()[1]))
        else:
            pytest.fail("the disk never filled up")
        assert len(acked) > 100
        assert "disk is full" in srv.stderr()
        # Deletes still work, and other commands too.
        for jid in acked[:50]:
            assert c.cmd(b"delete %d\r\n" % jid) == b"DELETED\r\n"
        assert c.stats()["current-jobs-ready"] == str(len(acked) - 50)
    crash(srv)
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        assert c.stats()["current-jobs-ready"] == str(len(acked) - 50)
        assert c.cmd(b"peek %d\r\n" % acked[-1]).startswith(b"FOUND")
        assert c.cmd(b"peek %d\r\n" % acked[0]) == b"NOT_FOUND\r\n"
        # Space returns: the server notices by itself.
        os.unlink(filler)

        def accepted():
            reply = c.cmd(b"put 0 0 60 2\r\nok\r\n")
            return reply.startswith(b"INSERTED")

        eventually(accepted, timeout=15)


def test_copy_of_a_live_directory_is_consistent(make_deferd, tmp_path):
    # docs/operations.md's backup: copy the *.log files while the server
    # works and compacts, check the copy, start from it.
    data = tmp_path / "data"
    srv = make_deferd(["-b", str(data)])
    with srv.connect() as c:
        live = [c.put(b"keep-%d" % i) for i in range(100)]
    stop = threading.Event()

    def busy():
        while not stop.is_set():
            churn(srv.port, 2000, batch=200)

    def compactions():
        with srv.connect() as c:
            return int(c.stats()["binlog-oldest-index"])

    t = threading.Thread(target=busy)
    t.start()
    copies = []
    try:
        eventually(lambda: compactions() > 1, timeout=30)
        # Copy again and again until compaction ran twice during the copies.
        first = compactions()
        deadline = time.monotonic() + 60
        attempt = 0
        while len(copies) < 3 or compactions() < first + 2:
            assert time.monotonic() < deadline, "no compaction while copying"
            attempt += 1
            backup = tmp_path / ("backup%d" % attempt)
            backup.mkdir()
            for name in sorted(os.listdir(data)):
                if name.endswith(".log"):
                    try:
                        shutil.copyfile(data / name, backup / name)
                    except FileNotFoundError:
                        pass  # compacted away meanwhile: --check-log will say
            rc, out = check_log(backup)
            if rc == 0:
                copies.append(backup)
            else:
                assert "missing" in out, out
                shutil.rmtree(backup)
            copies = copies[-3:]
    finally:
        stop.set()
        t.join(60)
    assert len(copies) == 3, "too few consistent copies"
    for backup in copies:
        copy = make_deferd(["-b", str(backup)])
        with copy.connect() as c:
            for i, jid in enumerate(live):
                body = b"keep-%d" % i
                assert c.cmd(b"peek %d\r\n" % jid) == b"FOUND %d %d\r\n%s\r\n" % (jid, len(body), body)
        copy.stop_and_check()
