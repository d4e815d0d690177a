"""The job registry: worker threads, live progress, stop, failures, limits, isolation, run folders."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
from _app_helpers import SMALL_RUN, tiny_app_env

from gdmcd_app.jobs import JOB_NICE, JobLimitError, JobRegistry
from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.elements import index_of
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.loop.step_log import Progress
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.model.checkpoint import load_checkpoint


def _progress(step: int, total: int, tc: float) -> Progress:
    return Progress(
        step=step,
        total_steps=total,
        stage=2,
        alpha=0.0,
        tc_best_k=tc,
        tc_median_k=tc / 2,
        tc_q10_k=tc / 4,
        tc_q90_k=tc * 0.9,
        int_loss_median=0.1,
        elapsed_s=step * 0.01,
        eta_s=(total - step) * 0.01,
        n_candidates=4,
    )


@dataclass
class FakeResult:
    status: str
    candidates: pd.DataFrame


class FakeEngine:
    """Reports `steps` progress rows with Tc = tc0 + step; waits on `gate` before each step if given."""

    def __init__(
        self,
        tc0: float = 0.0,
        steps: int = 5,
        fail: bool = False,
        gate: threading.Event | None = None,
        bad_start: bool = False,
        delay: float = 0.0,
    ):
        self.tc0, self.steps, self.fail, self.gate, self.bad_start = tc0, steps, fail, gate, bad_start
        self.delay = delay

    def start_points(self):
        if self.bad_start:
            raise ValueError("no training composition has Tc above 999 K")
        return "start"

    def run(self, run_dir=None, callback=None, stop_event=None, *, start=None):
        assert start == "start"
        runs.RunWriter(run_dir).write_config({"design": {"steps2": self.steps, "steps3": 0}})
        done = 0
        for step in range(1, self.steps + 1):
            if self.gate is not None:
                self.gate.wait(5)
            time.sleep(self.delay)
            if stop_event.is_set():
                break
            if self.fail and step == 2:
                raise RuntimeError("boom")
            callback(_progress(step, self.steps, self.tc0 + step))
            done = step
        status = "stopped" if done < self.steps else "finished"
        return FakeResult(status, pd.DataFrame({"integer_formula": ["MgB2"] * 3}))


def _registry(tmp_path: Path, **engine_kw) -> JobRegistry:
    return JobRegistry(tmp_path / "runs", max_active=2, engine_factory=lambda m, c, fe=None: FakeEngine(**engine_kw))


def _wait(cond, timeout: float = 10.0) -> None:
    t0 = time.time()
    while not cond():
        if time.time() - t0 > timeout:
            raise TimeoutError("condition not met")
        time.sleep(0.01)


def test_job_reports_progress_and_finishes(tmp_path: Path) -> None:
    reg = _registry(tmp_path, steps=5)
    job = reg.start(model=None, config=None)
    job.join(10)
    snap = job.snapshot()
    assert snap.status == "finished" and not snap.active
    assert [r["step"] for r in snap.history] == [1, 2, 3, 4, 5]
    assert snap.progress["tc_best_k"] == 5.0 and snap.n_candidates_found == 3
    assert snap.run_dir.parent == (tmp_path / "runs").resolve() and snap.run_dir.name == job.job_id
    assert reg.get(job.job_id) is job


@pytest.mark.skipif(not hasattr(os, "setpriority"), reason="per-thread nice values are a Linux feature")
def test_a_job_runs_below_the_servers_priority(tmp_path: Path) -> None:
    """The worker thread's nice value is raised; the server's own threads keep theirs."""
    base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    job = _registry(tmp_path, steps=2).start(model=None, config=None)
    job.join(10)
    assert job.nice == min(base + JOB_NICE, 19)
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base


def test_stop_keeps_what_was_found(tmp_path: Path) -> None:
    gate = threading.Event()
    reg = _registry(tmp_path, steps=1000, gate=gate, delay=0.01)
    job = reg.start(None, None)
    gate.set()
    _wait(lambda: len(job.snapshot().history) >= 3)
    assert reg.is_active(job.job_id)
    assert reg.stop(job.job_id)
    job.join(10)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.stop_requested
    assert 3 <= len(snap.history) < 1000 and snap.n_candidates_found == 3


def test_failure_is_recorded_not_raised(tmp_path: Path) -> None:
    reg = _registry(tmp_path, fail=True)
    job = reg.start(None, None)
    job.join(10)
    snap = job.snapshot()
    assert snap.status == "failed" and "RuntimeError: boom" in snap.error


def test_bad_start_raises_before_any_folder(tmp_path: Path) -> None:
    reg = _registry(tmp_path, bad_start=True)
    with pytest.raises(ValueError, match="999 K"):
        reg.start(None, None)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_limit_on_running_jobs(tmp_path: Path) -> None:
    gate = threading.Event()
    reg = JobRegistry(
        tmp_path / "runs",
        max_active=1,
        engine_factory=lambda m, c, fe=None: FakeEngine(steps=100, gate=gate, delay=0.01),
    )
    first = reg.start(None, None)
    with pytest.raises(JobLimitError, match="limit 1"):
        reg.start(None, None)
    first.stop()
    gate.set()
    first.join(10)
    second = reg.start(None, None)  # a slot is free again
    second.stop()
    second.join(10)
    assert len(reg.active_jobs()) == 0


def test_two_jobs_never_mix(tmp_path: Path) -> None:
    gate = threading.Event()
    engines = iter([FakeEngine(tc0=100, steps=20, gate=gate), FakeEngine(tc0=500, steps=20, gate=gate)])
    reg = JobRegistry(tmp_path / "runs", max_active=2, engine_factory=lambda m, c, fe=None: next(engines))
    a, b = reg.start(None, "config A"), reg.start(None, "config B")
    gate.set()
    a.join(10)
    b.join(10)
    assert a.job_id != b.job_id and a.run_dir != b.run_dir
    ha, hb = a.snapshot().history, b.snapshot().history
    assert all(100 < r["tc_best_k"] <= 120 for r in ha) and all(500 < r["tc_best_k"] <= 520 for r in hb)
    assert a.config == "config A" and b.config == "config B"


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "..", "x" * 200, "run.id", None])
def test_bad_ids_never_resolve(tmp_path: Path, bad) -> None:
    reg = _registry(tmp_path)
    assert reg.get(bad) is None
    assert reg.stop(bad) is False


def test_history_is_thinned_not_unbounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gdmcd_app import jobs

    monkeypatch.setattr(jobs, "MAX_HISTORY_ROWS", 10)
    reg = _registry(tmp_path, steps=50)
    job = reg.start(None, None)
    job.join(10)
    steps = [r["step"] for r in job.snapshot().history]
    assert len(steps) <= 11 and steps[-1] == 50 and steps == sorted(steps)


# -- with the real design engine and a tiny model ------------------------------------------------


@pytest.fixture(scope="module")
def tiny_env(tmp_path_factory: pytest.TempPathFactory):
    with tiny_app_env(tmp_path_factory.mktemp("jobs")) as env:
        yield env


def test_real_engine_writes_its_run_folder_and_honours_pins(tiny_env: dict[str, str]) -> None:
    model = load_checkpoint(tiny_env["GDMCD_CHECKPOINT"])
    reg = JobRegistry(tiny_env["GDMCD_RUNS_DIR"], max_active=2)
    cfg = DesignConfig(**{**SMALL_RUN, "steps2": 15, "steps3": 15, "record_every": 5})
    job = reg.start(model, cfg)
    job.join(120)
    snap = job.snapshot()
    assert snap.status == "finished", snap.error
    assert snap.history and snap.history[-1]["step"] == 30
    run = runs.load_run(job.job_id, tiny_env["GDMCD_RUNS_DIR"])
    assert run.info.status == "finished" and run.trajectory is not None
    assert len(run.candidates) == snap.n_candidates_found >= 1
    for f in run.candidates["integer_formula"]:
        x = to_vector(f)
        assert x[index_of("H")] >= 0.5 - 1e-6 and x[index_of("O")] == 0
    assert not any(p.requires_grad for p in model.parameters())  # the shared weights stay frozen


def test_real_engine_rejects_impossible_starts_synchronously(tiny_env: dict[str, str]) -> None:
    model = load_checkpoint(tiny_env["GDMCD_CHECKPOINT"])
    reg = JobRegistry(Path(tiny_env["GDMCD_RUNS_DIR"]) / "other", max_active=2)
    cfg = DesignConfig(n_candidates=4, init_mode="dataset", init_min_tc=10_000.0, steps2=5, steps3=0)
    with pytest.raises(ValueError, match="Tc above"):
        reg.start(model, cfg)
    assert runs.list_runs(Path(tiny_env["GDMCD_RUNS_DIR"]) / "other") == []


# -- the worker process (worker.py) ----------------------------------------------------------------------------


def test_a_run_goes_to_a_worker_process_and_reports_back(tiny_env: dict[str, str]) -> None:
    """With worker "process" a run of a checkpoint file goes to a child process: the job hears its phases and
    progress, the folder is the child's, and the pages' interpreter is not the one that runs it."""
    model = load_checkpoint(tiny_env["GDMCD_CHECKPOINT"])
    reg = JobRegistry(Path(tiny_env["GDMCD_RUNS_DIR"]) / "proc", max_active=2, worker="process")
    cfg = DesignConfig(**{**SMALL_RUN, "steps2": 15, "steps3": 15, "record_every": 5})
    job = reg.start(model, cfg)
    phases, deadline = set(), time.monotonic() + 120
    while job.active and time.monotonic() < deadline:
        phases.add(job.snapshot().phase)
        time.sleep(0.05)
    job.join(60)
    snap = job.snapshot()
    assert snap.status == "finished", snap.error
    assert job.process is not None and job.process.pid != os.getpid() and job.process.exitcode == 0
    assert "worker" in phases and snap.history and snap.history[-1]["step"] == 30
    run = runs.load_run(job.job_id, Path(tiny_env["GDMCD_RUNS_DIR"]) / "proc")
    assert run.info.status == "finished" and len(run.candidates) == snap.n_candidates_found >= 1
    assert json.loads((job.run_dir / "status.json").read_text())["pid"] == job.process.pid


def test_a_worker_process_stops_between_steps_and_a_killed_one_fails(tiny_env: dict[str, str]) -> None:
    model = load_checkpoint(tiny_env["GDMCD_CHECKPOINT"])
    root = Path(tiny_env["GDMCD_RUNS_DIR"]) / "proc2"
    reg = JobRegistry(root, max_active=2, worker="process")
    long = DesignConfig(**{**SMALL_RUN, "steps2": 5000, "steps3": 5000, "record_every": 50})
    job = reg.start(model, long)
    _wait_for_a_step(job)
    os.kill(job.process.pid, signal.SIGINT)  # a Ctrl-C of the server's terminal: the run goes on until stopped
    time.sleep(1.0)
    assert job.active and job.process.is_alive()
    job.stop()
    job.join(60)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.stop_requested and snap.n_candidates_found >= 1
    assert runs.load_run(job.job_id, root).info.status == "stopped"
    # a worker killed from outside: the job says so in one line instead of waiting forever
    victim = reg.start(model, long)
    _wait_for_a_step(victim)
    victim.process.kill()
    victim.join(30)
    snap = victim.snapshot()
    assert snap.status == "failed" and "ended (exit code -9) without a result" in snap.error


def _wait_for_a_step(job, timeout_s: float = 120.0) -> None:
    """Until the job's worker has reported a step (a failure or a timeout fails the test instead of hanging)."""
    deadline = time.monotonic() + timeout_s
    while not (job.snapshot().progress or {}).get("step"):
        assert job.active, job.snapshot().error
        assert time.monotonic() < deadline, f"no step reported within {timeout_s:.0f} s"
        time.sleep(0.1)
