"""The study lease: one live runner per study, and a killed runner's lease taken over at once.

Real processes and real SQLite files throughout; rows from another host are written
directly, as that host would.
"""

from __future__ import annotations

import gc
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from archsearch.errors import StudyLocked
from archsearch.lease import StudyLease

# The child holds the lease until its stdin closes (or it is killed).
HOLDER = """
import sys
from archsearch.lease import StudyLease
lease = StudyLease(sys.argv[1], sys.argv[2], heartbeat_seconds=0.2)
lease.acquire()
print("ready", flush=True)
sys.stdin.read()
"""

# Each racer waits for the go file, tries once, reports, and (if it won) holds on.
RACER = """
import os, sys, time
from archsearch.errors import StudyLocked
from archsearch.lease import StudyLease
lease = StudyLease(sys.argv[1], "race")
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.001)
try:
    lease.acquire()
except StudyLocked:
    print("locked", flush=True)
else:
    print("won", flush=True)
    sys.stdin.read()
"""


def _spawn(code: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", code, *args], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)


def _row(path: Path, study: str) -> tuple[str, str, int, float, float] | None:
    db = sqlite3.connect(str(path))
    try:
        return db.execute("SELECT owner, host, pid, acquired_at, heartbeat FROM leases WHERE study = ?",
                          (study,)).fetchone()
    finally:
        db.close()


def _write_row(path: Path, study: str, host: str, pid: int, heartbeat: float) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    try:
        db.execute("CREATE TABLE IF NOT EXISTS leases (study TEXT PRIMARY KEY, owner TEXT NOT NULL, "
                   "host TEXT NOT NULL, pid INTEGER NOT NULL, acquired_at REAL NOT NULL, "
                   "heartbeat REAL NOT NULL)")
        db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
                   (study, "someone-else", host, pid, heartbeat, heartbeat))
    finally:
        db.close()


def _proc_state(pid: int) -> str:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat[stat.rfind(")") + 1:].split()[0]


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "runs" / "study.db"


@pytest.fixture
def holder(db: Path) -> Iterator[subprocess.Popen[str]]:
    """A child process holding the lease of study 'digits'."""
    child = _spawn(HOLDER, str(db), "digits")
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        yield child
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)


def test_acquire_release_same_process(db: Path) -> None:
    first = StudyLease(db, "digits")
    first.acquire()
    assert first.held and _row(db, "digits") is not None
    first.acquire()  # idempotent while held
    # A second lease in the same process (a notebook re-creating the study) takes over.
    second = StudyLease(db, "digits")
    second.acquire()
    assert second.held
    row = _row(db, "digits")
    assert row is not None and row[0] == second.owner and row[2] == os.getpid()
    # Another study does not conflict.
    with StudyLease(db, "mnist") as other:
        assert other.held
    assert _row(db, "mnist") is None
    # The displaced lease's release must not delete the new holder's row.
    first.release()
    first.release()
    assert _row(db, "digits") is not None and second.held
    second.release()
    assert _row(db, "digits") is None and not second.held


def test_live_child_blocks(db: Path, holder: subprocess.Popen[str]) -> None:
    with pytest.raises(StudyLocked) as info:
        StudyLease(db, "digits").acquire()
    message = str(info.value)
    assert "\n" not in message
    assert f"process {holder.pid} " in message and "'digits'" in message
    assert str(db) in message and socket.gethostname() in message
    # Another study of the same record is free.
    with StudyLease(db, "other"):
        pass


def test_killed_and_reaped_child_taken_over_at_once(db: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=10)
    start = time.monotonic()
    lease = StudyLease(db, "digits")  # stale_seconds=30: only the dead pid lets us in
    lease.acquire()
    assert lease.held and time.monotonic() - start < 1.0
    lease.release()


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombie detection needs /proc")
def test_killed_zombie_child_taken_over_at_once(db: Path, holder: subprocess.Popen[str]) -> None:
    holder.send_signal(signal.SIGKILL)
    deadline = time.monotonic() + 5
    while _proc_state(holder.pid) != "Z":  # killed, not reaped: kill(pid, 0) still succeeds
        assert time.monotonic() < deadline
        time.sleep(0.005)
    os.kill(holder.pid, 0)
    start = time.monotonic()
    lease = StudyLease(db, "digits")
    lease.acquire()
    assert lease.held and time.monotonic() - start < 1.0
    lease.release()


def test_normal_exit_releases(db: Path, holder: subprocess.Popen[str]) -> None:
    assert holder.stdin is not None
    holder.stdin.close()  # the child returns without calling release(): atexit does it
    assert holder.wait(timeout=10) == 0
    assert _row(db, "digits") is None


def test_garbage_collected_lease_releases(db: Path) -> None:
    lease = StudyLease(db, "digits", heartbeat_seconds=0.05, stale_seconds=1.0)
    lease.acquire()
    del lease
    gc.collect()
    assert _row(db, "digits") is None


def test_other_host_fresh_blocks_stale_taken_over(db: Path) -> None:
    db.parent.mkdir(parents=True)
    _write_row(db, "digits", "elsewhere", 1, time.time() - 1)
    with pytest.raises(StudyLocked, match="process 1 on host elsewhere"):
        StudyLease(db, "digits", stale_seconds=30).acquire()
    _write_row(db, "digits", "elsewhere", 1, time.time() - 31)
    lease = StudyLease(db, "digits", stale_seconds=30)
    lease.acquire()
    row = _row(db, "digits")
    assert row is not None and row[1] == socket.gethostname() and row[2] == os.getpid()
    lease.release()


def test_same_host_dead_pid_taken_over_despite_fresh_heartbeat(db: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    db.parent.mkdir(parents=True)
    _write_row(db, "digits", socket.gethostname(), child.pid, time.time())
    with StudyLease(db, "digits") as lease:
        assert lease.held


def test_heartbeat_advances_and_release_deletes(db: Path) -> None:
    lease = StudyLease(db, "digits", heartbeat_seconds=0.1, stale_seconds=1.0)
    lease.acquire()
    before = _row(db, "digits")
    time.sleep(0.35)
    after = _row(db, "digits")
    assert before is not None and after is not None
    assert after[4] > before[4] and after[3] == before[3]
    lease.release()
    assert _row(db, "digits") is None and not lease.held


def test_heartbeat_notices_takeover(db: Path) -> None:
    lease = StudyLease(db, "digits", heartbeat_seconds=0.05, stale_seconds=1.0)
    lease.acquire()
    _write_row(db, "digits", "elsewhere", 1, time.time())  # another host took it over
    deadline = time.monotonic() + 5
    while lease.held:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    lease.release()
    assert _row(db, "digits") is not None  # release leaves the new holder's row alone


def test_racing_processes_one_wins(db: Path) -> None:
    db.parent.mkdir(parents=True)
    for round_ in range(2):
        go = db.parent / f"go-{round_}"
        racers = [_spawn(RACER, str(db), str(go)) for _ in range(4)]
        try:
            for racer in racers:
                assert racer.stdout is not None and racer.stdout.readline().strip() == "ready"
            go.touch()
            outcomes = sorted(racer.stdout.readline().strip() for racer in racers if racer.stdout)
            assert outcomes == ["locked"] * 3 + ["won"]
        finally:
            for racer in racers:
                if racer.stdin is not None:
                    racer.stdin.close()
            for racer in racers:
                assert racer.wait(timeout=10) == 0
        assert _row(db, "race") is None  # the winner freed it on exit
