"""A run's integrity, each with the test that would have caught its fault: a finished run is immutable
(finalize / resume refuse it and leave every file as it was); every lock path answers within seconds (a folder,
symlink or FIFO as run.lock); the ETA weighs each stage by its own measured rate; the CLI's summary gives the
whole command's wall time; a Ray run whose cluster breaks ends failed, says why and shuts down a cluster it
started; the app's run threads are stopped at interpreter exit.

In-process, on tiny untrained checkpoints and a tiny data folder; no Ray cluster is started (the Ray API the
executor uses is faked).
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
from cli_helpers import one_line_exit_2
from conftest import write_tiny_data

from gdmcd_core.cli.main import main
from gdmcd_core.data.reference import load_reference
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs.lock import LOCK_NAME, RunLock, RunLockedError
from gdmcd_core.design.runs.resume import RunFinishedError, finalize_run, resume_run

# The answer to any lock path must come within this (the fault: a folder as run.lock spun forever).
LOCK_ANSWER_S = 10.0
RUN_ID = "20250101-000000-abc123"
TINY_RUN = ("--n-candidates", "3", "--steps2", "3", "--steps3", "3", "--top", "0", "--no-progress")


def tiny_run(tmp_path: Path, ckpt: Path, capsys, *extra: str) -> Path:
    """A finished run folder (with state.npz) at tmp_path/runs/RUN_ID."""
    out = tmp_path / "runs" / RUN_ID
    assert main(["design", "--out", str(out), "--checkpoint", str(ckpt), *TINY_RUN, *extra]) == 0
    capsys.readouterr()
    return out


def folder_bytes(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file()}


def set_status(run_dir: Path, status: str) -> None:
    st = json.loads((run_dir / runs.STATUS_FILE).read_text())
    (run_dir / runs.STATUS_FILE).write_text(json.dumps({**st, "status": status}))


def engine_for(run_dir: Path, ckpt: Path):
    from gdmcd_core.design.engine import DesignEngine
    from gdmcd_core.design.runs.resume import config_from_run
    from gdmcd_core.model.checkpoint import load_checkpoint

    return DesignEngine(load_checkpoint(ckpt), config_from_run(run_dir), reference=load_reference())


def within(seconds: float, fn, *args):
    """fn(*args) in a thread; fails unless it returns (or raises) within `seconds`. Returns (result, exception)."""
    box: dict[str, object] = {}

    def target() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:  # noqa: BLE001  (handed back to the test)
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t0 = time.monotonic()
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"no answer within {seconds:.0f} s"
    assert time.monotonic() - t0 < seconds
    return box.get("result"), box.get("error")


# -- 1. a finished run is immutable ------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["finalize", "resume"])
def test_cli_refuses_a_finished_run_and_leaves_its_files(tmp_path, ckpt, capsys, command: str) -> None:
    out = tiny_run(tmp_path, ckpt, capsys)
    status = json.loads((out / runs.STATUS_FILE).read_text())["status"]
    assert (out / runs.STATE_FILE).is_file() and status == "finished"
    before = folder_bytes(out)
    one_line_exit_2(capsys, ["runs", command, str(out), "--no-progress"], RUN_ID, "is finished")
    assert folder_bytes(out) == before  # candidates.csv byte-identical, status still "finished", no lock left


def test_library_refuses_a_finished_run_and_leaves_its_files(tmp_path, ckpt, capsys) -> None:
    out = tiny_run(tmp_path, ckpt, capsys)
    before = folder_bytes(out)
    engine = engine_for(out, ckpt)
    for fn in (finalize_run, resume_run):
        with pytest.raises(RunFinishedError, match=f"run {RUN_ID} is finished"):
            fn(engine, out)
        assert folder_bytes(out) == before
    assert runs.load_run(out).info.status == "finished"


def test_app_registry_refuses_a_finished_run(tmp_path, ckpt, capsys) -> None:
    from gdmcd_app.jobs import JobRegistry
    from gdmcd_core.model.checkpoint import load_checkpoint

    out = tiny_run(tmp_path, ckpt, capsys)
    before = folder_bytes(out)
    registry = JobRegistry(runs_root=out.parent)
    model = load_checkpoint(ckpt)
    with pytest.raises(RunFinishedError, match="is finished"):
        registry.finalize(RUN_ID, model)
    with pytest.raises(RunFinishedError, match="is finished"):
        registry.resume(RUN_ID, model)
    assert folder_bytes(out) == before and not registry.is_active(RUN_ID)


def test_a_stopped_run_is_still_finalized(tmp_path, ckpt, capsys) -> None:
    """The refusal is for finished runs only: a stopped run's table is still written from its state."""
    out = tiny_run(tmp_path, ckpt, capsys)
    set_status(out, "stopped")
    assert main(["runs", "finalize", str(out), "--no-progress"]) == 0
    assert "distinct candidates" in capsys.readouterr().err
    assert runs.load_run(out).info.status == "stopped"


def test_runs_page_offers_no_finalize_or_resume_for_a_finished_run(tmp_path, ckpt, capsys, monkeypatch) -> None:
    from _app_helpers import app_test

    out = tiny_run(tmp_path, ckpt, capsys)
    monkeypatch.setenv("GDMCD_RUNS_DIR", str(out.parent))
    monkeypatch.setenv("GDMCD_CHECKPOINT", str(ckpt))
    monkeypatch.setenv("GDMCD_WARM_UP", "0")
    at = app_test("runs").run()
    assert not at.exception, [e.value for e in at.exception]
    keys = {b.key for b in at.button}
    assert "runs_finalize" not in keys and "runs_resume" not in keys, keys
    set_status(out, "stopped")  # the same folder, stopped: both are offered
    at = app_test("runs").run()
    keys = {b.key for b in at.button}
    assert {"runs_finalize"} <= keys, keys


# -- 2. every lock path answers within seconds -------------------------------------------------------------------


def _odd_lock(run_dir: Path, kind: str) -> None:
    lock = run_dir / LOCK_NAME
    if kind == "folder":
        lock.mkdir()
    elif kind == "dangling symlink":
        lock.symlink_to(run_dir / "nowhere")
    elif kind == "symlink to a folder":
        (run_dir / "elsewhere").mkdir()
        lock.symlink_to(run_dir / "elsewhere")
    elif kind == "fifo":
        os.mkfifo(lock)


ODD_LOCKS = ["folder", "dangling symlink", "symlink to a folder", "fifo"]


@pytest.mark.parametrize("kind", ODD_LOCKS)
def test_a_lock_path_that_is_not_a_file_is_refused_at_once(tmp_path, kind: str) -> None:
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    _odd_lock(run_dir, kind)
    _, err = within(LOCK_ANSWER_S, RunLock, run_dir)
    assert isinstance(err, RunLockedError), err
    assert "not a lock file" in str(err) and len(str(err).splitlines()) == 1
    assert os.path.lexists(run_dir / LOCK_NAME)  # never removed on the run's behalf
    assert runs.read_lock(run_dir) is None  # and never opened (a FIFO would block)


@pytest.mark.parametrize("kind", ["folder", "fifo"])
def test_finalize_and_design_force_answer_within_seconds(tmp_path, ckpt, capsys, kind: str) -> None:
    out = tiny_run(tmp_path, ckpt, capsys)
    set_status(out, "stopped")  # finalizable but for its lock
    _odd_lock(out, kind)
    before = (out / runs.CANDIDATES_FILE).read_bytes()
    argv_sets = [
        ["runs", "finalize", str(out), "--no-progress"],
        ["runs", "resume", str(out), "--no-progress"],
        ["design", "--out", str(out), "--force", "--checkpoint", str(ckpt), *TINY_RUN],
    ]
    for argv in argv_sets:
        code, err = within(LOCK_ANSWER_S, main, argv)
        assert err is None and code == 2, err
        line = capsys.readouterr().err.strip()
        assert len(line.splitlines()) == 1 and "not a lock file" in line, line
    assert (out / runs.CANDIDATES_FILE).read_bytes() == before


def test_a_stale_lock_that_never_goes_away_is_refused_in_bounded_time(tmp_path, monkeypatch) -> None:
    """A stale lock that stays whatever is done to it (here: its rename aside does nothing) ends in one
    RunLockedError after ACQUIRE_LIMIT_S, not a spin."""
    from gdmcd_core.design.runs import lock as run_lock

    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    (run_dir / LOCK_NAME).write_text("not json")
    os.utime(run_dir / LOCK_NAME, (0, 0))  # old: not mid-write
    monkeypatch.setattr(run_lock.os, "rename", lambda *a, **k: None)
    _, err = within(LOCK_ANSWER_S, RunLock, run_dir)
    assert isinstance(err, RunLockedError) and "cannot take over the stale lock" in str(err), err


# -- 3. the ETA weighs each stage by its own measured rate ------------------------------------------------------


def _synthetic_reports(steps2: int, steps3: int, s2: float, s3: float, warm_up: float = 0.0):
    """(step, elapsed) after each step of a run whose stage-2 steps take s2 s and stage-3 steps s3 s."""
    t, out = warm_up, []
    for k in range(1, steps2 + steps3 + 1):
        t += s2 if k <= steps2 else s3
        out.append((k, t))
    return out


def _old_eta(step: int, elapsed: float, total: int) -> float:
    """What the progress ETA was: the mean time per step so far times the steps left."""
    return elapsed / step * (total - step)


def test_eta_is_nan_until_steps_after_the_warm_up_were_measured() -> None:
    from gdmcd_core.design.loop.eta import MIN_STEPS, EtaClock

    clock = EtaClock(50, 100, after_steps=0)
    clock.add(1, 7.0)  # the first report comes after the slow warm-up step: never counted
    for k in range(2, 2 + MIN_STEPS - 1):
        clock.add(k, 7.0 + 0.5 * (k - 1))
        assert clock.eta_s() != clock.eta_s()  # NaN: still estimating
    clock.add(1 + MIN_STEPS, 7.0 + 0.5 * MIN_STEPS)
    assert clock.eta_s() == pytest.approx((100 - 1 - MIN_STEPS) * 0.5)
    clock.add(1 + MIN_STEPS, 99.0)  # a repeated step and a non-finite time change nothing
    clock.add(10, float("nan"))
    assert clock.eta_s() == pytest.approx((100 - 1 - MIN_STEPS) * 0.5)


@pytest.mark.parametrize(("steps2", "steps3"), [(1000, 1000), (200, 200), (300, 900), (1000, 800)])
def test_eta_at_half_way_with_stage_3_twice_as_slow(steps2: int, steps3: int) -> None:
    """Stage-3 steps cost 2x stage-2 steps; the run also spends the loop's tail (AFTER_LOOP_STEPS stage-3 steps'
    worth) after its last step. Half-way through the run's time (in stage 3 for these splits), the ETA is within
    25 % of the time left; the old mean-step ETA is not (it is what the fault showed)."""
    from gdmcd_core.design.loop.eta import AFTER_LOOP_STEPS, EtaClock

    s2, s3 = 0.05, 0.10
    reports = _synthetic_reports(steps2, steps3, s2, s3, warm_up=3.0)
    end = reports[-1][1] + AFTER_LOOP_STEPS * s3
    clock = EtaClock(steps2, steps2 + steps3)
    half = None
    for step, t in reports:
        clock.add(step, t)
        if half is None and t >= end / 2:
            half = (step, t, clock.eta_s())
    step, t, eta = half
    assert eta == pytest.approx(end - t, rel=0.25), (step, eta, end - t)
    if step > steps2:  # half-way inside stage 3: the old ETA, with stage 2's cheap steps in its mean, falls short
        assert _old_eta(step, t, steps2 + steps3) < 0.85 * (end - t)


def test_eta_follows_a_slower_stage_3_once_its_steps_are_measured() -> None:
    """Before stage 3 starts its cost is the measured-here STAGE3_STEP_COST x stage 2's; a stage 3 twice as slow
    as that is in the ETA within 25 % once MIN_STEPS of its steps were measured."""
    from gdmcd_core.design.loop.eta import AFTER_LOOP_STEPS, MIN_STEPS, EtaClock

    steps2, steps3, s2, s3 = 900, 300, 0.05, 0.10
    reports = _synthetic_reports(steps2, steps3, s2, s3)
    end = reports[-1][1] + AFTER_LOOP_STEPS * s3
    clock = EtaClock(steps2, steps2 + steps3)
    for step, t in reports[: steps2 + MIN_STEPS]:
        clock.add(step, t)
    assert clock.eta_s() == pytest.approx(end - reports[steps2 + MIN_STEPS - 1][1], rel=0.25)


def test_eta_before_stage_3_is_measured_uses_stage_2s_rate() -> None:
    """At the stage boundary (no stage-3 step measured yet) the equal-cost runs measured here get it right."""
    from gdmcd_core.design.loop.eta import AFTER_LOOP_STEPS, STAGE3_STEP_COST, EtaClock

    clock = EtaClock(100, 300)
    for step, t in _synthetic_reports(100, 0, 0.2, 0.2):
        clock.add(step, t)
    assert clock.rate(3) is None
    assert clock.eta_s() == pytest.approx((200 + AFTER_LOOP_STEPS) * 0.2 * STAGE3_STEP_COST)


def test_engine_reports_the_eta_from_each_stages_rate(monkeypatch) -> None:
    """A real (tiny) loop on a synthetic clock: a stage-2 step takes 1 s, a stage-3 step 2 s, the refinement 80 s.
    Half-way through the run's time, Progress.eta_s is within 25 % of the time left to the last report."""
    from types import SimpleNamespace

    from design_helpers import tiny_ensemble, tiny_reference

    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.engine import DesignEngine
    from gdmcd_core.design.loop import optimize

    clock = SimpleNamespace(t=0.0)
    step_fn, refine_fn = optimize._Optimization.step, optimize.DesignLoop.refine

    def timed_step(self, step: int) -> None:
        step_fn(self, step)
        clock.t += 1.0 if step < self.cfg.steps2 else 2.0

    def timed_refine(self, state, score=None):
        clock.t += 80.0
        return refine_fn(self, state, score)

    monkeypatch.setattr(optimize, "time", SimpleNamespace(perf_counter=lambda: clock.t))
    monkeypatch.setattr(optimize._Optimization, "step", timed_step)
    monkeypatch.setattr(optimize.DesignLoop, "refine", timed_refine)
    cfg = DesignConfig(steps2=200, steps3=200, n_candidates=3, record_every=50, hull_columns=False, seed=1)
    engine = DesignEngine(tiny_ensemble(), cfg, reference=tiny_reference())
    reports = []
    engine.optimize(engine.start_points(), callback=reports.append)
    end = reports[-1].elapsed_s
    assert reports[-1].done and end == pytest.approx(200 + 400 + 80)
    half = next(p for p in reports if p.elapsed_s >= end / 2)
    assert half.stage == 3 and half.eta_s == pytest.approx(end - half.elapsed_s, rel=0.25), half
    assert _old_eta(half.step, half.elapsed_s, 400) < 0.85 * (end - half.elapsed_s)
    assert all(p.eta_s == p.eta_s for p in reports[MIN_REPORTS:]) and reports[-1].eta_s == 0.0


MIN_REPORTS = 4  # from the 4th report on (3 steps measured after the first) the ETA is a number


# -- 4. the CLI's summary gives the command's wall time ---------------------------------------------------------


def test_cli_summary_time_is_the_commands_wall_time(tmp_path, ckpt) -> None:
    """`gdmcd design` in a process of its own: the summary's seconds equal the time from the process's start to the
    summary line (read as it is printed), within a second; the loop's own seconds are given apart. (It used to give
    the loop's time alone: 242 s for a run its log timestamps at 311 s.)"""
    import subprocess
    import sys

    out = tmp_path / RUN_ID
    argv = ["design", "--out", str(out), "--checkpoint", str(ckpt), *TINY_RUN]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "gdmcd_core.cli.main", *argv], env=env, stderr=subprocess.PIPE, text=True
    )
    seen = None
    for line in proc.stderr:
        if " steps in " in line:
            seen, summary = time.perf_counter() - t0, line
    assert proc.wait(120) == 0 and seen is not None
    m = re.search(r"steps in ([\d.]+) s \(the optimization loop ([\d.]+) s\)", summary)
    assert m, summary
    wall, loop = float(m.group(1)), float(m.group(2))
    assert abs(wall - seen) < 1.0, (wall, seen)
    assert loop < wall


# -- 5. a Ray run whose cluster breaks: failed, with the reason, and no Ray process left behind ------------------


class _RayError(Exception):
    pass


class _RayTaskError(_RayError):
    def as_instanceof_cause(self):
        return self


class _Proc:
    """What Ray's node keeps of a process it started (its .process is a Popen)."""

    def __init__(self, process) -> None:
        self.process = process


class FakeNode:
    """The node a driver started (head=True) or joined; its system processes are real `sleep`s (one with a child,
    like the raylet's agents), so the executor's cleanup is checked on real processes."""

    def __init__(self, head: bool = True) -> None:
        import subprocess
        import sys

        self.head = head
        sleeper = [sys.executable, "-c", "import time; time.sleep(120)"]
        parent = [
            sys.executable,
            "-c",
            "import subprocess, sys, time; subprocess.Popen(sys.argv[1:]); time.sleep(120)",
            *sleeper,
        ]
        self.all_processes = {"gcs_server": [_Proc(subprocess.Popen(sleeper))]}
        self.all_processes["raylet"] = [_Proc(subprocess.Popen(parent))]

    def dead_processes(self):  # as Ray's Node.dead_processes
        return [
            (k, p.process) for k, infos in self.all_processes.items() for p in infos if p.process.poll() is not None
        ]

    def kill(self, kind: str) -> None:
        proc = self.all_processes[kind][0].process
        proc.kill()
        proc.wait()

    def pids(self) -> list[int]:
        import psutil

        out = []
        for infos in self.all_processes.values():
            for info in infos:
                out.append(info.process.pid)
                try:
                    out += [c.pid for c in psutil.Process(info.process.pid).children(recursive=True)]
                except psutil.Error:
                    pass
        return out

    def alive(self) -> list[int]:
        import psutil

        def running(pid: int) -> bool:
            try:
                return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
            except psutil.Error:
                return False

        return [pid for pid in self.pids_at_start if running(pid)]

    def reap(self) -> None:
        for infos in self.all_processes.values():
            for info in infos:
                info.process.kill()
                info.process.wait()


class _Ref:
    def __init__(self, i: int, payload, x) -> None:
        self.i, self.payload, self.x = i, payload, x


class FakeRay:
    """The part of the Ray API executor.py uses. `returns[i]`: the poll at which shard i returns (never if absent);
    `break_at`: (poll, process kind) when a system process of the node dies; `lost`: shards whose result Ray lost."""

    def __init__(self, node: FakeNode, returns: dict[int, int], break_at=None, lost=()) -> None:
        from types import SimpleNamespace

        self.node, self.returns, self.break_at, self.lost = node, returns, break_at, set(lost)
        self.polls, self.calls = 0, []
        self._private = SimpleNamespace(worker=SimpleNamespace(_global_node=node))
        self.exceptions = SimpleNamespace(RayError=_RayError, RayTaskError=_RayTaskError)

    def cluster_resources(self):
        return {"CPU": 2}

    def remote(self, *args, **kw):
        if args and getattr(args[0], "__name__", "") == "_run_shard":
            return _Task()
        ray = self

        class _Actor:
            def __init__(self, cls) -> None:
                self.cls = cls

            def remote(self, n):
                board = self.cls(n)
                from types import SimpleNamespace

                def call(name):
                    return SimpleNamespace(remote=lambda *a: ("value", getattr(board, name)(*a)))

                ray.calls.append("board")
                return SimpleNamespace(**{n: call(n) for n in ("started", "report", "request_stop", "state")})

        return _Actor

    def put(self, payload):
        return payload

    def wait(self, refs, num_returns, timeout):
        self.polls += 1
        if self.break_at and self.polls == self.break_at[0]:
            self.node.kill(self.break_at[1])
        ready = [r for r in refs if self.returns.get(r.i, 10**9) <= self.polls]
        return ready, [r for r in refs if r not in ready]

    def get(self, ref):
        if isinstance(ref, tuple) and ref[0] == "value":
            return ref[1]
        if ref.i in self.lost:
            raise _RayError("WorkerCrashedError: the worker died unexpectedly\nmore lines of Ray's")
        engine_cls, model, config, fe, reference = ref.payload
        from gdmcd_core.design.loop.trajectory import TrajectoryRecorder

        engine = engine_cls(model, config, fe, reference=reference)
        return engine.optimize(ref.x, recorder=TrajectoryRecorder(len(ref.x), stage2_step=config.steps2))

    def cancel(self, ref, force=False):
        self.calls.append(f"cancel {ref.i}")

    def kill(self, handle):
        self.calls.append("kill board")

    def shutdown(self):
        self.calls.append("shutdown")


class _Task:
    def options(self, **kw):
        return self

    def remote(self, payload, i, x, board):
        return _Ref(i, payload, x)


@pytest.fixture()
def fake_ray(monkeypatch):
    """A FakeRay factory wired into executor.py (its `connect`); the node's processes are ended afterwards."""
    from gdmcd_core.design.distributed import executor

    made = []

    def make(head: bool = True, **kw) -> FakeRay:
        node = FakeNode(head)
        time.sleep(0.3)  # the raylet's child has started
        node.pids_at_start = node.pids()
        ray = FakeRay(node, **kw)
        monkeypatch.setattr(executor, "connect", lambda address="": ray)
        monkeypatch.setattr(executor, "POLL_S", 0.01)
        made.append(node)
        return ray

    yield make
    for node in made:
        node.reap()
        import psutil

        for pid in node.pids_at_start:
            try:
                psutil.Process(pid).kill()
            except psutil.Error:
                pass


RAY_ANSWER_S = 30.0  # a broken cluster is noticed at the next poll; its cleanup takes seconds


def _ray_engine(n: int = 6, shards: int = 2):
    from design_helpers import tiny_ensemble, tiny_reference

    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.engine import DesignEngine

    cfg = DesignConfig(
        n_candidates=n, init_mode="dataset", init_min_tc=0.0, steps2=6, steps3=6, executor="ray", shards=shards
    )
    return DesignEngine(tiny_ensemble(), cfg.replace(hull_columns=False, record_every=3), reference=tiny_reference())


def test_a_lost_system_process_fails_the_run_with_its_reason_and_ends_the_local_cluster(tmp_path, fake_ray) -> None:
    from gdmcd_core.design.distributed.executor import ClusterFailedError

    ray = fake_ray(returns={}, break_at=(3, "gcs_server"))
    engine = _ray_engine()
    run_dir = tmp_path / RUN_ID
    _, err = within(RAY_ANSWER_S, engine.run, run_dir)  # before: polled a dead cluster until Ray killed the process
    assert isinstance(err, ClusterFailedError), err
    assert re.fullmatch(r"the local Ray cluster lost its gcs_server process \(pid \d+, exit status -?\d+\)", str(err))
    status = json.loads((run_dir / runs.STATUS_FILE).read_text())
    assert status["status"] == "failed" and "lost its gcs_server process" in status["message"]
    assert len(status["message"].splitlines()) == 1
    assert runs.load_run(run_dir).info.status == "failed"
    assert not ray.node.alive(), "Ray processes left behind"  # the raylet's child too
    assert {"cancel 0", "cancel 1", "shutdown"} <= set(ray.calls)


def test_a_broken_cluster_keeps_the_shards_that_returned(tmp_path, fake_ray) -> None:
    ray = fake_ray(returns={0: 1}, break_at=(3, "raylet"))
    result, err = within(RAY_ANSWER_S, _ray_engine().run, tmp_path / RUN_ID)
    assert err is None and result.status == "failed" and "lost its raylet process" in result.message
    cand = runs.load_run(tmp_path / RUN_ID).candidates
    assert cand is not None and 1 <= len(cand) <= 3  # shard 0's three candidates (distinct formulas)
    status = json.loads((tmp_path / RUN_ID / runs.STATUS_FILE).read_text())
    assert status["status"] == "failed" and "raylet" in status["message"]
    assert "failed: the local Ray cluster lost its raylet" in (tmp_path / RUN_ID / runs.LOG_FILE).read_text()
    assert not ray.node.alive()


def test_a_shard_ray_lost_is_a_cluster_failure_in_one_line(tmp_path, fake_ray) -> None:
    from gdmcd_core.design.distributed.executor import ClusterFailedError

    ray = fake_ray(head=False, returns={1: 1}, lost=[1])  # a cluster started elsewhere: not ours to end
    with pytest.raises(ClusterFailedError, match="lost shard 1: _RayError: WorkerCrashedError") as info:
        _ray_engine().run(tmp_path / RUN_ID)
    assert "\n" not in str(info.value)
    assert "shutdown" not in ray.calls and len(ray.node.alive()) == len(ray.node.pids_at_start)


def test_a_healthy_fake_cluster_runs_to_the_end(tmp_path, fake_ray) -> None:
    """The fake is faithful enough: with no failure the sharded run finishes like an in-process one."""
    ray = fake_ray(returns={0: 1, 1: 2})
    result = _ray_engine().run(tmp_path / RUN_ID)
    assert result.status == "finished" and not result.message
    assert "kill board" in ray.calls and "shutdown" not in ray.calls


def test_cli_says_the_cluster_broke_in_one_line_exit_1(tmp_path, ckpt, capsys, fake_ray, monkeypatch) -> None:
    from gdmcd_core.cli import design as cli_design

    fake_ray(returns={}, break_at=(2, "gcs_server"))
    monkeypatch.setattr(cli_design, "ray_target", lambda address="", shards=0: "a fake local Ray")
    out = tmp_path / RUN_ID
    argv = ["design", "--out", str(out), "--checkpoint", str(ckpt), *TINY_RUN, "--executor", "ray", "--shards", "2"]
    assert main(argv) == 1
    err = [ln for ln in capsys.readouterr().err.strip().splitlines() if "error" in ln]
    assert len(err) == 1 and "lost its gcs_server process" in err[0] and "marked failed" in err[0], err
    assert runs.load_run(out).info.status == "failed"


# -- 6. the app's run threads are stopped at interpreter exit ----------------------------------------------------


class _LoopingEngine:
    """A fake engine for JobRegistry: its run loops until its stop event is set (or forever with obey=False)."""

    def __init__(self, obey: bool = True) -> None:
        self.obey = obey

    def start_points(self):
        return None

    def run(self, run_dir, callback, stop_event, start):
        from types import SimpleNamespace

        release = time.monotonic() + 60
        while time.monotonic() < release and not (self.obey and stop_event.is_set()):
            time.sleep(0.01)
        return SimpleNamespace(status="stopped" if stop_event.is_set() else "finished", candidates=[])


def test_stop_all_jobs_stops_and_joins_every_running_job(tmp_path) -> None:
    from gdmcd_app import jobs

    registry = jobs.JobRegistry(tmp_path / "runs", max_active=3, engine_factory=lambda *a: _LoopingEngine())
    started = [registry.start(None, object()) for _ in range(2)]
    assert all(j.active for j in started)
    t0 = time.monotonic()
    assert jobs.stop_all_jobs(timeout_s=10) == []
    assert time.monotonic() - t0 < 5
    assert [j.snapshot().status for j in started] == ["stopped", "stopped"]
    assert jobs.stop_all_jobs(timeout_s=10) == []  # nothing running: nothing to do


def test_stop_all_jobs_gives_up_after_its_timeout(tmp_path) -> None:
    from gdmcd_app import jobs

    registry = jobs.JobRegistry(tmp_path / "runs", engine_factory=lambda *a: _LoopingEngine(obey=False))
    job = registry.start(None, object())
    t0 = time.monotonic()
    assert jobs.stop_all_jobs(timeout_s=0.3) == [job.job_id]
    assert time.monotonic() - t0 < 3 and job.stop_event.is_set()


EXIT_MID_RUN = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[2])
from _app_helpers import make_tiny_checkpoint
from gdmcd_app import jobs
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.model.checkpoint import load_checkpoint

work = Path(sys.argv[1])
registry = jobs.JobRegistry(runs_root=work / "runs")
model = load_checkpoint(make_tiny_checkpoint(work / "tiny.pt"))
job = registry.start(model, DesignConfig(n_candidates=32, steps2=100000, steps3=10, seed=1))
t = time.time()
while (job.snapshot().progress or {}).get("step", 0) < 5 and time.time() - t < 120:
    time.sleep(0.05)
print(job.run_dir, flush=True)
"""  # the interpreter exits here, mid-run, as a stopped server's does


def test_the_interpreter_exits_cleanly_mid_run(tmp_path) -> None:
    """A process that exits while a job's thread runs the loop (a server stopped mid-run): it used to abort
    ("terminate called without an active exception", SIGABRT) and leave the run "running"; now the atexit hook
    stops the run, which writes the candidates it reached."""
    import subprocess
    import sys

    tests = Path(__file__).resolve().parent
    env = {**os.environ, "GDMCD_DATA_DIR": str(write_tiny_data(tmp_path / "data")), "GDMCD_WARM_UP": "0"}
    env["PYTHONPATH"] = str(tests.parent)
    proc = subprocess.run(
        [sys.executable, "-c", EXIT_MID_RUN, str(tmp_path), str(tests)],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0 and "terminate called" not in proc.stderr, (proc.returncode, proc.stderr[-2000:])
    run_dir = Path(proc.stdout.strip().splitlines()[-1])
    run = runs.load_run(run_dir)
    assert run.info.status == "stopped" and run.candidates is not None and len(run.candidates)
    assert "stopping 1 design run" in proc.stderr
