"""Run-folder locks: acquire/release, live holders refuse, dead or stale holders are taken over."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gdmcd_core.design.runs import lock as run_lock
from gdmcd_core.design.runs.lock import (
    LOCK_NAME,
    LOCK_STALE_S,
    LockInfo,
    RunLock,
    RunLockedError,
    is_alive,
    lock_file,
    read_lock,
)


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    d = tmp_path / "runs" / "20250101-000000-abcdef"
    d.mkdir(parents=True)
    return d


def _dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _write_lock(run_dir: Path, **fields: object) -> None:
    now = time.time()
    d = {"pid": os.getpid(), "host": socket.gethostname(), "started": now, "heartbeat": now, **fields}
    (run_dir / LOCK_NAME).write_text(json.dumps(d))


# -- acquire / release ---------------------------------------------------------------------------


def test_acquire_writes_the_lock_and_release_removes_it(run_dir: Path) -> None:
    lock = RunLock(run_dir)
    info = read_lock(run_dir)
    assert lock.held and info is not None
    assert info.pid == os.getpid() and info.host == socket.gethostname()
    assert info.started == info.heartbeat == pytest.approx(time.time(), abs=5)
    lock.release()
    assert not (run_dir / LOCK_NAME).exists() and not lock.held
    lock.release()  # twice is fine


def test_context_manager_releases_on_error(run_dir: Path) -> None:
    with pytest.raises(KeyError), RunLock(run_dir, acquire=False) as lock:
        assert lock.held and (run_dir / LOCK_NAME).is_file()
        raise KeyError("boom")
    assert not (run_dir / LOCK_NAME).exists()


def test_lock_file_accepts_folder_or_file(run_dir: Path) -> None:
    assert lock_file(run_dir) == run_dir / LOCK_NAME
    assert lock_file(run_dir / LOCK_NAME) == run_dir / LOCK_NAME
    assert read_lock(run_dir) is None  # no lock yet


# -- live holders ----------------------------------------------------------------------------------


def test_second_acquire_fails_while_the_holder_lives(run_dir: Path) -> None:
    with RunLock(run_dir):
        with pytest.raises(RunLockedError, match=f"run {run_dir.name} is in use by process {os.getpid()}") as e:
            RunLock(run_dir)
        assert "\n" not in str(e.value)
        assert read_lock(run_dir).pid == os.getpid()  # type: ignore[union-attr]
    RunLock(run_dir).release()  # free again after release


def test_live_process_of_another_user_or_this_one_counts_as_alive(run_dir: Path) -> None:
    _write_lock(run_dir, pid=1)  # init: exists (PermissionError for non-root, or success as root)
    assert is_alive(read_lock(run_dir))
    with pytest.raises(RunLockedError, match="process 1 on"):
        RunLock(run_dir)


def test_concurrent_acquires_admit_exactly_one(run_dir: Path) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            RunLock(run_dir)
            results.append("ok")
        except RunLockedError:
            results.append("locked")

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert sorted(results) == ["locked"] * 7 + ["ok"]


# -- dead, stale and malformed locks ---------------------------------------------------------------


def test_lock_of_a_dead_pid_is_taken_over(run_dir: Path) -> None:
    dead = _dead_pid()
    _write_lock(run_dir, pid=dead)  # fresh heartbeat, but the process is gone
    assert not is_alive(read_lock(run_dir))
    lock = RunLock(run_dir)
    assert read_lock(run_dir).pid == os.getpid()  # type: ignore[union-attr]
    assert not list(run_dir.glob(f"{LOCK_NAME}.*"))  # no leftovers from the takeover
    lock.release()


def test_other_host_lock_is_alive_until_its_heartbeat_is_stale(run_dir: Path) -> None:
    now = time.time()
    fresh = LockInfo(pid=123, host="elsewhere.invalid", started=now - 10, heartbeat=now - 10)
    stale = LockInfo(pid=123, host="elsewhere.invalid", started=now, heartbeat=now - LOCK_STALE_S - 1)
    future = LockInfo(pid=123, host="elsewhere.invalid", started=now, heartbeat=now + 60)
    assert is_alive(fresh) and not is_alive(stale) and is_alive(future)
    assert not is_alive(None)
    _write_lock(run_dir, **fresh.to_dict())
    with pytest.raises(RunLockedError, match="process 123 on elsewhere.invalid"):
        RunLock(run_dir)
    _write_lock(run_dir, **stale.to_dict())
    with RunLock(run_dir):
        assert read_lock(run_dir).host == socket.gethostname()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"pid": 5}',
        b'{"pid": "5", "host": "h", "started": 1, "heartbeat": 1}',
        b'{"pid": -3, "host": "h", "started": 1, "heartbeat": 1}',
        b'{"pid": 5, "host": "h", "started": "x", "heartbeat": 1}',
        b'{"pid": 5, "host": "h", "started": 1, "heartbeat": NaN}',
    ],
)
def test_malformed_lock_is_stale_never_a_traceback(run_dir: Path, content: bytes) -> None:
    path = run_dir / LOCK_NAME
    path.write_bytes(content)
    old = time.time() - 60
    os.utime(path, (old, old))  # not mid-write
    assert read_lock(run_dir) is None
    with RunLock(run_dir):
        assert read_lock(run_dir).pid == os.getpid()  # type: ignore[union-attr]


def test_fresh_malformed_lock_is_taken_over_after_the_grace(run_dir: Path) -> None:
    (run_dir / LOCK_NAME).write_bytes(b"")
    t0 = time.monotonic()
    with RunLock(run_dir):
        pass
    assert time.monotonic() - t0 >= run_lock.MALFORMED_GRACE_S * 0.9


# -- heartbeat ---------------------------------------------------------------------------------------


def test_heartbeat_updates_the_time_only(run_dir: Path) -> None:
    with RunLock(run_dir) as lock:
        before = read_lock(run_dir)
        time.sleep(0.02)
        lock.heartbeat()
        after = read_lock(run_dir)
        assert before is not None and after is not None
        assert after.heartbeat > before.heartbeat
        assert (after.pid, after.host, after.started) == (before.pid, before.host, before.started)
        assert not list(run_dir.glob(f"{LOCK_NAME}.tmp-*"))


def test_heartbeat_after_a_takeover_reports_the_loss(run_dir: Path) -> None:
    lock = RunLock(run_dir)
    _write_lock(run_dir, pid=4242, host="elsewhere.invalid")  # someone took it over
    with pytest.raises(RunLockedError, match="lost its lock; now held by process 4242"):
        lock.heartbeat()
    assert not lock.held
    lock.release()  # does not remove the other holder's lock
    assert read_lock(run_dir).pid == 4242  # type: ignore[union-attr]
