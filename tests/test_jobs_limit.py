"""The job limit is atomic: concurrent start() calls never admit more than max_active jobs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from gdmcd_app.jobs import JobLimitError, JobRegistry
from gdmcd_core.design.runs import folder as runs

N_CALLERS = 10
LIMIT = 2


class SlowStartEngine:
    """Slow start_points (widens the check-then-start window); run() waits on `release`."""

    def __init__(self, release: threading.Event, fail_start: bool = False) -> None:
        self.release, self.fail_start = release, fail_start

    def start_points(self) -> str:
        time.sleep(0.05)
        if self.fail_start:
            raise ValueError("no start compositions")
        return "start"

    def run(
        self,
        run_dir: Path | None = None,
        callback: object = None,
        stop_event: threading.Event | None = None,
        *,
        start: object = None,
    ) -> None:
        runs.RunWriter(run_dir).write_config({"design": {}})
        self.release.wait(10)


def _start_many(reg: JobRegistry, n: int) -> tuple[list[object], list[BaseException]]:
    barrier = threading.Barrier(n)
    admitted: list[object] = []
    refused: list[BaseException] = []

    def call() -> None:
        barrier.wait()
        try:
            admitted.append(reg.start(model=None, config=None))
        except JobLimitError as exc:
            refused.append(exc)

    threads = [threading.Thread(target=call) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(20)
    return admitted, refused


def test_concurrent_starts_admit_exactly_the_limit(tmp_path: Path) -> None:
    release = threading.Event()
    reg = JobRegistry(
        tmp_path / "runs", max_active=LIMIT, engine_factory=lambda m, c, fe=None: SlowStartEngine(release)
    )
    try:
        admitted, refused = _start_many(reg, N_CALLERS)
        assert len(admitted) == LIMIT and len(refused) == N_CALLERS - LIMIT
        assert len(reg.active_jobs()) == LIMIT
        assert len(list((tmp_path / "runs").iterdir())) == LIMIT  # refused calls create no folder
        assert all(f"limit {LIMIT}" in str(e) for e in refused)
    finally:
        release.set()
    for job in admitted:
        job.join(10)  # type: ignore[attr-defined]
    assert reg.active_jobs() == []
    assert reg.start(model=None, config=None).join(10) is None  # slots are free again


def test_a_failed_start_gives_its_slot_back(tmp_path: Path) -> None:
    release = threading.Event()
    fail = {"on": True}
    reg = JobRegistry(
        tmp_path / "runs", max_active=1, engine_factory=lambda m, c, fe=None: SlowStartEngine(release, fail["on"])
    )
    for _ in range(3):  # each failure returns the slot; the limit of 1 is never hit
        with pytest.raises(ValueError, match="no start compositions"):
            reg.start(model=None, config=None)
    fail["on"] = False
    job = reg.start(model=None, config=None)
    with pytest.raises(JobLimitError):
        reg.start(model=None, config=None)
    release.set()
    job.join(10)


@pytest.mark.parametrize("bad", ["two", "0", "-1", "1.5"])
def test_a_bad_max_jobs_setting_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad: str) -> None:
    monkeypatch.setenv("GDMCD_MAX_JOBS", bad)
    with pytest.raises(ValueError, match=f"GDMCD_MAX_JOBS must be a whole number >= 1, got '{bad}'"):
        JobRegistry(tmp_path / "runs")


def test_max_jobs_setting_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GDMCD_MAX_JOBS", " 5 ")
    assert JobRegistry(tmp_path / "runs").max_active == 5
    monkeypatch.delenv("GDMCD_MAX_JOBS")
    assert JobRegistry(tmp_path / "runs").max_active == 2
