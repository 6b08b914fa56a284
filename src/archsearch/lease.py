"""A lease that lets one process at a time run a study stored in an SQLite record.

Two ``archsearch run`` processes on the same record would each run the whole study and
overwrite each other's trials.  The lease is a row of the ``leases`` table in the same
SQLite file: taking it is a single ``BEGIN IMMEDIATE`` transaction, so of two racing
processes exactly one wins, and a daemon thread refreshes its ``heartbeat`` while it is
held.  A second live process is refused with a one-line ``StudyLocked``.

A holder whose process is gone must not block the next run for long: on the same host a
dead (or zombie) pid is taken over at once; from another host, a heartbeat older than
``stale_seconds`` is.  A lease held by this very process (a notebook re-creating the
study) is taken over too.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
import time
import uuid
import weakref
from pathlib import Path
from types import TracebackType

from archsearch.errors import ConfigError, StorageError, StudyLocked

__all__ = ["StudyLease"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS leases (
    study TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    acquired_at REAL NOT NULL,
    heartbeat REAL NOT NULL
)
"""

_TIMEOUT = 30.0


def _connect(path: Path) -> sqlite3.Connection:
    """A connection of our own; autocommit, so transactions are the explicit ones."""
    return sqlite3.connect(str(path), timeout=_TIMEOUT, isolation_level=None)


def _use_wal(db: sqlite3.Connection) -> None:
    """Put the file in WAL mode, the record's own, in case the lease creates it.

    Changing the journal mode does not wait on SQLite's busy handler: two processes
    opening a new file at once get "database is locked" at once, so retry here."""
    deadline = time.monotonic() + _TIMEOUT
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as err:
            if "locked" not in str(err) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _pid_alive(pid: int) -> bool:
    """Whether a process of this machine is running; a zombie (killed, not yet reaped
    by its parent) counts as dead although it still answers ``kill(pid, 0)``."""
    if pid <= 0:
        return False
    if os.name == "nt":
        # os.kill on Windows terminates the process: rely on the heartbeat alone there.
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process, but running
    except OSError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        # No /proc at all (macOS): trust kill(); else the process ended meanwhile.
        return not Path("/proc/self").exists()
    except OSError:
        return True
    # "pid (comm) state ...": comm may hold spaces or parentheses, so split after the last ")".
    fields = stat[stat.rfind(")") + 1:].split()
    return not (fields and fields[0] in ("Z", "X"))


class _Hold:
    """One acquisition: what the heartbeat thread and the finalizer share.

    Kept apart from ``StudyLease`` so that neither holds a reference to the lease, which
    can then be garbage-collected (and so released)."""

    def __init__(self) -> None:
        self.stop = threading.Event()
        self.lost = False
        self.pid = os.getpid()
        self.thread: threading.Thread | None = None


def _beat(path: Path, study: str, owner: str, interval: float, hold: _Hold) -> None:
    """Refresh the heartbeat every ``interval`` seconds until stopped, or until the row
    is found to belong to someone else (taken over as stale), which marks it lost."""
    try:
        db = _connect(path)
    except sqlite3.Error:
        return  # the row goes stale and is taken over; nothing better to do in a thread
    try:
        while not hold.stop.wait(interval):
            try:
                cur = db.execute(
                    "UPDATE leases SET heartbeat = ? WHERE study = ? AND owner = ?",
                    (time.time(), study, owner),
                )
            except sqlite3.Error:
                continue  # a busy or briefly unreadable file: try again next beat
            if cur.rowcount == 0:
                hold.lost = True
                return
    finally:
        db.close()


def _release(path: Path, study: str, owner: str, hold: _Hold) -> None:
    """Stop the heartbeat and delete the row if it is still ours (the finalizer: runs on
    ``release``, at interpreter exit, or when the lease is garbage-collected)."""
    if os.getpid() != hold.pid:
        return  # a forked child exiting (a data-loader worker) must not free its parent's lease
    hold.stop.set()
    thread = hold.thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout=5.0)
    try:
        db = _connect(path)
        try:
            db.execute("DELETE FROM leases WHERE study = ? AND owner = ?", (study, owner))
        finally:
            db.close()
    except sqlite3.Error:
        # A row left behind is taken over by the next run (dead pid, or stale heartbeat).
        pass


class StudyLease:
    """The right to run ``study`` of the SQLite record at ``path``, for one process.

    ``acquire`` raises ``StudyLocked`` while another live process holds it; ``release``
    (or leaving the ``with`` block, a normal interpreter exit, or dropping the last
    reference to the lease) gives it back.  ``held`` turns False if the lease was taken
    over because this process stopped beating for ``stale_seconds`` (a suspended
    machine): a runner should check it before writing.
    """

    def __init__(self, path: str | Path, study: str, *, heartbeat_seconds: float = 5.0,
                 stale_seconds: float = 30.0) -> None:
        if heartbeat_seconds <= 0:
            raise ConfigError(f"heartbeat_seconds must be positive, got {heartbeat_seconds}")
        if stale_seconds <= heartbeat_seconds:
            raise ConfigError(f"stale_seconds ({stale_seconds}) must exceed heartbeat_seconds "
                             f"({heartbeat_seconds}), or a live holder would look stale")
        self.path = Path(path)
        self.study = study
        self.heartbeat_seconds = heartbeat_seconds
        self.stale_seconds = stale_seconds
        self.owner = uuid.uuid4().hex
        self._hold: _Hold | None = None
        self._finalizer: weakref.finalize | None = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lease now."""
        return self._hold is not None and not self._hold.lost

    def acquire(self) -> None:
        """Take the lease, or raise ``StudyLocked`` naming the live holder.

        A no-op if already held; a lease lost to a takeover is taken afresh."""
        if self.held:
            return
        self.release()
        if self.path.parent and not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, exist_ok=True)
        host, pid = socket.gethostname(), os.getpid()
        try:
            db = _connect(self.path)
        except sqlite3.Error as err:
            raise StorageError(f"cannot open {self.path}: {err}") from None
        try:
            _use_wal(db)
            db.execute(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            try:
                row = db.execute(
                    "SELECT owner, host, pid, heartbeat FROM leases WHERE study = ?",
                    (self.study,),
                ).fetchone()
                now = time.time()
                if row is not None and self._is_live(row[0], row[1], row[2], now - row[3], host, pid):
                    age = max(0.0, now - row[3])
                    raise StudyLocked(
                        f"study {self.study!r} in {self.path} is being run by process {row[2]} "
                        f"on host {row[1]} (last heartbeat {age:.0f} s ago); "
                        "wait for it to finish or stop it"
                    )
                db.execute(
                    "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?, ?)",
                    (self.study, self.owner, host, pid, now, now),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        except sqlite3.DatabaseError as err:
            raise StorageError(f"cannot take the lease of study {self.study!r} in {self.path}: "
                               f"{err}") from None
        finally:
            db.close()
        hold = _Hold()
        hold.thread = threading.Thread(
            target=_beat,
            args=(self.path, self.study, self.owner, self.heartbeat_seconds, hold),
            name=f"archsearch-lease-{self.study}",
            daemon=True,
        )
        self._hold = hold
        # finalize keeps only a weak reference to self, and runs at exit (atexit=True).
        self._finalizer = weakref.finalize(self, _release, self.path, self.study, self.owner, hold)
        hold.thread.start()

    def _is_live(self, owner: str, host: str, pid: int, age: float, my_host: str,
                 my_pid: int) -> bool:
        """Whether the stored holder still counts: a fresh heartbeat and, on this host,
        a running pid other than ours."""
        if owner == self.owner or age >= self.stale_seconds:
            return False
        if host == my_host:
            return pid != my_pid and _pid_alive(pid)
        return True

    def release(self) -> None:
        """Give the lease back (idempotent): stop the heartbeat, delete the row if ours."""
        finalizer, self._finalizer, self._hold = self._finalizer, None, None
        if finalizer is not None:
            finalizer()

    def __enter__(self) -> StudyLease:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"StudyLease({str(self.path)!r}, {self.study!r}, held={self.held})"
