"""One lock per run folder: a JSON file `run.lock` saying which process works on the run.

    with RunLock(run_dir) as lock:      # RunLockedError if a live process holds it
        ...
        lock.heartbeat()                # every HEARTBEAT_EVERY_S or so, from the working process

The lock file holds {"pid", "host", "started", "heartbeat"} (times: Unix seconds). It is created
with os.open(O_CREAT | O_EXCL), so of two processes starting at once exactly one wins. A lock is
*alive* when its holder can still be working on the run:

* same host: the pid exists (os.kill(pid, 0)) and that process started before the lock was taken
  (Linux: /proc; a pid reused by a later process, e.g. a restarted server in a container that gets
  the same pid, is not the holder); a dead process is noticed at once, whatever its heartbeat says.
  PermissionError means the pid exists under another user: alive.
* another host (a shared runs folder): its heartbeat is younger than LOCK_STALE_S.

A lock that is not alive (dead pid, stale heartbeat, or a file that is not a lock: empty, not
JSON, missing fields) is taken over: it is renamed aside (one rename wins), checked to be the
same bytes that were judged stale, and replaced by a fresh O_EXCL create. Nothing here raises a
traceback for a damaged lock file; `read_lock` returns None for it. A lock path that is not a
regular file (a folder, a symlink, a FIFO, a socket) is never read, opened or removed: acquiring
refuses it at once (RunLockedError naming it), and every acquire gives up within
ACQUIRE_LIMIT_S, so no caller waits on a lock path forever.
"""

from __future__ import annotations

import json
import math
import os
import secrets
import socket
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

LOCK_NAME = "run.lock"
# The working process should refresh its heartbeat about this often.
HEARTBEAT_EVERY_S = 30.0
# A lock from another host with no heartbeat for this long is abandoned (taken over on request): several
# missed heartbeats, so a busy or briefly suspended holder is not robbed of its run.
LOCK_STALE_S = 300.0
# A process that started this long after the lock was taken cannot be its holder (a reused pid);
# the margin covers /proc's one-second boot time and small clock steps.
PID_REUSE_MARGIN_S = 10.0
# A lock file that does not parse yet is this young may be mid-write by its creator (create and
# write are two calls): wait this long before treating it as stale.
MALFORMED_GRACE_S = 1.0
_POLL_S = 0.05
# The longest `RunLock.acquire` tries before it refuses (a lock file it cannot take over, e.g. in a read-only
# folder): the grace for a young malformed file plus a few seconds of retries.
ACQUIRE_LIMIT_S = MALFORMED_GRACE_S + 6.0


class RunLockedError(RuntimeError):
    """The run folder is locked by a live process."""


@dataclass(frozen=True)
class LockInfo:
    """The content of a lock file. Times are Unix seconds."""

    pid: int
    host: str
    started: float
    heartbeat: float

    def to_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "host": self.host, "started": self.started, "heartbeat": self.heartbeat}

    def same_holder(self, other: LockInfo | None) -> bool:
        """Same process and acquisition (the heartbeat may differ)."""
        return other is not None and (self.pid, self.host, self.started) == (other.pid, other.host, other.started)


def lock_file(path: str | Path) -> Path:
    """The lock file of a run folder (a path already ending in LOCK_NAME is returned as is)."""
    p = Path(path)
    return p if p.name == LOCK_NAME else p / LOCK_NAME


def _parse(raw: bytes) -> LockInfo | None:
    try:
        d = json.loads(raw.decode("utf-8"))
        pid, host, started, beat = d["pid"], d["host"], d["started"], d["heartbeat"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    if type(pid) is not int or pid <= 0 or not isinstance(host, str):
        return None
    if not all(isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in (started, beat)):
        return None
    return LockInfo(pid=pid, host=host, started=float(started), heartbeat=float(beat))


def odd_lock_path(path: str | Path) -> str | None:
    """What a run folder's lock path (or a lock file path) is when it exists but is not a regular file ("a folder",
    "a symlink", ...); None when it is a file or absent."""
    try:
        mode = lock_file(path).lstat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"unreadable ({exc.strerror or type(exc).__name__})"
    if stat.S_ISREG(mode):
        return None
    kinds = {stat.S_ISDIR: "a folder", stat.S_ISLNK: "a symlink", stat.S_ISFIFO: "a FIFO", stat.S_ISSOCK: "a socket"}
    return next((name for test, name in kinds.items() if test(mode)), "not a regular file")


def _read_raw(path: Path) -> bytes | None:
    """The lock file's bytes; None when there is none or it is not a regular file (never opened: a FIFO would
    block, a symlink may lead anywhere)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
    except OSError:  # missing, a symlink (ELOOP), a folder on some systems, no permission
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        return b"".join(chunks)
    except OSError:
        return None
    finally:
        os.close(fd)


def read_lock(path: str | Path) -> LockInfo | None:
    """The lock of a run folder (or lock file), or None when there is none or it is malformed."""
    raw = _read_raw(lock_file(path))
    return None if raw is None else _parse(raw)


def is_alive(info: LockInfo | None, now: float | None = None) -> bool:
    """Whether the lock's holder may still be working (see the module docstring). None: False."""
    if info is None:
        return False
    if info.host == socket.gethostname():
        if not _pid_exists(info.pid):
            return False
        started = _process_start(info.pid)
        return started is None or started <= info.started + PID_REUSE_MARGIN_S
    age = (time.time() if now is None else now) - info.heartbeat
    return age < LOCK_STALE_S  # a heartbeat in the future (clock skew) counts as alive


def _process_start(pid: int) -> float | None:
    """When process `pid` started (Unix seconds, from /proc on Linux), or None where unknown."""
    try:
        ticks = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19])
        boot = next(int(ln.split()[1]) for ln in Path("/proc/stat").read_text().splitlines() if ln.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


def _pid_exists(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    except OSError:  # e.g. pid out of range
        return False
    return True


def _describe(run: Path, info: LockInfo) -> str:
    started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started))
    age = max(0.0, time.time() - info.heartbeat)
    return (
        f"run {run.name} is in use by process {info.pid} on {info.host} (started {started}, "
        f"last heartbeat {age:.0f} s ago); wait for it to finish or stop that process"
    )


class RunLock:
    """The lock of one run folder, held by this process. `RunLock(run_dir)` acquires it.

    Raises RunLockedError (one line naming the run and the holder's pid) when a live process
    holds it; takes over a dead or stale lock. Use as a context manager to release on exit.
    """

    def __init__(self, path: str | Path, acquire: bool = True) -> None:
        self.path = lock_file(path)
        self.run_dir = self.path.parent
        self.info: LockInfo | None = None
        if acquire:
            self.acquire()

    @property
    def held(self) -> bool:
        return self.info is not None

    def acquire(self) -> RunLock:
        """Take the lock (no-op if this object holds it). Returns self."""
        if self.info is not None:
            return self
        start = time.monotonic()
        grace_until, give_up = start + MALFORMED_GRACE_S + 1.0, start + ACQUIRE_LIMIT_S
        while True:
            now = time.time()
            info = LockInfo(pid=os.getpid(), host=socket.gethostname(), started=now, heartbeat=now)
            if self._create(info):
                self.info = info
                return self
            self._refuse_odd_path()
            raw = _read_raw(self.path)
            held = None if raw is None else _parse(raw)
            if held is not None and is_alive(held):
                raise RunLockedError(_describe(self.run_dir, held))
            if time.monotonic() > give_up:  # never spin forever on a lock we cannot take over
                raise RunLockedError(f"run {self.run_dir.name}: cannot take over the stale lock {self.path}")
            if raw is None:  # released between our create and read: try again
                time.sleep(_POLL_S)
            elif held is None and self._young(raw) and time.monotonic() < grace_until:
                time.sleep(_POLL_S)  # possibly mid-write by a process that just created it
            else:
                self._remove_if_unchanged(raw)

    def _refuse_odd_path(self) -> None:
        """RunLockedError (one line) when the lock path exists but is not a regular file: a lock is never a
        folder, symlink or FIFO, and such a thing is not removed on the run's behalf."""
        odd = odd_lock_path(self.path)
        if odd:
            raise RunLockedError(
                f"run {self.run_dir.name}: its lock path {self.path} is {odd}, not a lock file; remove it to use the run"
            )

    def _create(self, info: LockInfo) -> bool:
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        try:
            os.write(fd, json.dumps(info.to_dict()).encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def _young(self, raw: bytes) -> bool:
        try:
            return time.time() - self.path.stat().st_mtime < MALFORMED_GRACE_S
        except FileNotFoundError:
            return False

    def _remove_if_unchanged(self, stale: bytes) -> None:
        """Move the stale lock aside (one rename wins) and delete it if it is what we judged;
        if another process replaced it meanwhile, put theirs back."""
        aside = self.path.with_name(f"{LOCK_NAME}.stale-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # someone else removed it first
        moved = _read_raw(aside)
        if moved == stale:
            aside.unlink(missing_ok=True)
            return
        try:  # a fresh lock slipped in: restore it unless yet another one exists
            os.link(aside, self.path)
        except FileExistsError:
            pass
        except OSError:  # no hard links on this file system
            if not self.path.exists():
                os.rename(aside, self.path)
                return
        aside.unlink(missing_ok=True)

    def heartbeat(self) -> None:
        """Refresh the heartbeat time atomically (temp file + os.replace).

        Raises RunLockedError if the lock is no longer ours (taken over as stale)."""
        if self.info is None:
            raise RunLockedError(f"run {self.run_dir.name}: heartbeat on a lock that is not held")
        current = read_lock(self.path)
        if not self.info.same_holder(current):
            lost = f"; now held by process {current.pid} on {current.host}" if current else ""
            self.info = None
            raise RunLockedError(f"run {self.run_dir.name}: this process lost its lock{lost}")
        info = LockInfo(self.info.pid, self.info.host, self.info.started, max(time.time(), self.info.heartbeat))
        tmp = self.path.with_name(f"{LOCK_NAME}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            tmp.write_text(json.dumps(info.to_dict()))
            os.replace(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)
        self.info = info

    def release(self) -> None:
        """Remove the lock file if it is still ours. Safe to call twice."""
        if self.info is None:
            return
        if self.info.same_holder(read_lock(self.path)):
            self.path.unlink(missing_ok=True)
        self.info = None

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"RunLock({str(self.run_dir)!r}, held={self.held})"
