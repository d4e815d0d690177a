"""A process-wide registry of design jobs: each runs a design in a worker process (or a worker thread).

The web app keeps one `JobRegistry` per server process (Streamlit's `st.cache_resource`) and
puts a job's id in the page URL. A run of a checkpoint file on this machine goes to a worker process of its own
(worker.py: no shared interpreter lock with the pages, a lower priority, the app's torch threads); a pump thread
feeds its messages into the job. $GDMCD_JOB_WORKER=thread (or a model without a file, a test's fake engine, a
Ray run) keeps the run in a thread of the server, as before. Neither touches Streamlit: the engine's
progress callback writes the latest `Progress` and a row of its numbers into the job (under a
lock); the page polls `Job.snapshot()` about once a second. `Job.stop()` sets a
`threading.Event` the engine checks between steps; a stopped run still builds its candidates
from the compositions reached. With $GDMCD_RAY_ADDRESS set, runs go to that Ray cluster in shards
(design/distributed/executor.py); without it everything stays in this process.

Every job writes its run folder as it goes (runs.RunWriter via DesignEngine.run), and its id is
the run id, so a page whose job is gone from the registry (server restarted) reads the same run
from disk. Jobs are keyed by their random run ids only: two users' jobs never share state.

At interpreter exit (the server stopped) `stop_all_jobs` stops every running job and waits for its
thread (JOIN_AT_EXIT_S in all): a run thread still inside torch while the interpreter tears down
aborts the process ("terminate called without an active exception") and leaves its folder
"interrupted"; stopped, it writes the candidates it reached and its state stays resumable.
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gdmcd_app.data import SERIES_KEYS
from gdmcd_app.worker import JOB_NICE, pump_messages, worker_main
from gdmcd_core.design.config.resources import parse_max_jobs
from gdmcd_core.design.distributed.executor import config_from_env
from gdmcd_core.design.runs import folder as runs

WORKER_ENV = "GDMCD_JOB_WORKER"  # "process" (default) or "thread": where a run of a checkpoint file goes
WORKER_MODES = ("process", "thread")
# Jobs running at once on one server (design runs share the CPU/GPU); override with $GDMCD_MAX_JOBS.
DEFAULT_MAX_ACTIVE = 2
MAX_JOBS_ENV = "GDMCD_MAX_JOBS"
WARM_UP_ENV = "GDMCD_WARM_UP"
# Progress rows kept per job for the live traces; older rows are thinned (every other one) beyond this.
MAX_HISTORY_ROWS = 5_000
# Finished jobs kept in memory (their run folders stay on disk regardless).
MAX_FINISHED_KEPT = 50
# At interpreter exit, running jobs get this long in all to stop between steps and write their candidates.
JOIN_AT_EXIT_S = 30.0
# Live-trace columns: the per-step statistics a Progress report carries, plus the elapsed time.
HISTORY_KEYS = (*SERIES_KEYS, "elapsed_s")
ACTIVE_STATUSES = ("starting", "running")

EngineFactory = Callable[..., Any]


class JobLimitError(RuntimeError):
    """Too many design jobs are running on this server."""


class RunBusyError(RuntimeError):
    """A finalize or resume of this run is already under way on this server."""


@dataclass(frozen=True)
class JobSnapshot:
    """A consistent copy of a job's state for one page redraw.

    status: starting | running | finished | stopped | failed; progress: the latest Progress as a
    dict (None before the first report); history: progress rows (HISTORY_KEYS); error: the
    failure message ("" unless failed); n_candidates_found: rows in the ranked table (finished or
    stopped runs).
    """

    job_id: str
    run_dir: Path
    status: str
    progress: dict[str, Any] | None
    history: list[dict[str, float]]
    error: str
    started: float
    finished: float | None
    stop_requested: bool
    n_candidates_found: int
    phase: str = ""  # the part of the run under way (run.PHASES; "" before the first report)
    phase_started: float | None = None

    @property
    def active(self) -> bool:
        return self.status in ACTIVE_STATUSES


def lower_priority(step: int = JOB_NICE) -> int | None:
    """Raise the calling thread's nice value by `step` (Linux schedules threads one by one, so the server's other
    threads keep theirs; torch runs on the calling thread with the app's one CPU thread). Returns the new value,
    None where the platform cannot."""
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, os.getpriority(os.PRIO_PROCESS, tid) + step)
        return os.getpriority(os.PRIO_PROCESS, tid)
    except (AttributeError, OSError):
        return None


@dataclass
class Job:
    """One design run in a worker process or thread. Create through JobRegistry.start."""

    job_id: str
    run_dir: Path
    config: Any
    started: float = field(default_factory=time.time)
    status: str = "starting"
    progress: dict[str, Any] | None = None
    history: list[dict[str, float]] = field(default_factory=list)
    error: str = ""
    finished: float | None = None
    n_candidates_found: int = 0
    phase: str = ""
    phase_started: float | None = None
    stop_event: Any = field(default_factory=threading.Event)  # threading.Event, or a multiprocessing Event
    thread: threading.Thread | None = None  # the run's thread, or the pump of its worker process
    process: Any = None  # the worker process (multiprocessing.Process), when the run has one
    nice: int | None = None  # the worker thread's nice value once it runs (None: not known on this platform)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # called from the worker thread ----------------------------------------------------------

    def on_progress(self, progress: Any) -> None:
        """The engine's callback: keep the latest report and a row for the live traces."""
        if isinstance(progress, dict):  # from a worker process
            d = progress
        else:
            d = progress.to_dict() if hasattr(progress, "to_dict") else dict(vars(progress))
        row = {k: float(d[k]) for k in HISTORY_KEYS if k in d and d[k] is not None}
        with self._lock:
            self.progress = d
            if self.status == "starting":
                self.status = "running"
            if not self.history or row.get("step") != self.history[-1].get("step"):
                self.history.append(row)
                if len(self.history) > MAX_HISTORY_ROWS:
                    self.history = self.history[:-1:2] + self.history[-1:]

    def on_phase(self, name: str) -> None:
        """The run's phase callback (run.run_design): which part of the run is under way."""
        with self._lock:
            self.phase, self.phase_started = name, time.time()

    def _finish(self, status: str, error: str = "", n_found: int = 0) -> None:
        with self._lock:
            self.status = status
            self.error = error
            self.n_candidates_found = n_found
            self.finished = time.time()

    # called from the pages ------------------------------------------------------------------

    def stop(self) -> None:
        """Ask the engine to stop after the current step (it keeps what it found)."""
        self.stop_event.set()

    def snapshot(self) -> JobSnapshot:
        with self._lock:
            return JobSnapshot(
                job_id=self.job_id,
                run_dir=self.run_dir,
                status=self.status,
                progress=dict(self.progress) if self.progress else None,
                history=list(self.history),
                error=self.error,
                started=self.started,
                finished=self.finished,
                stop_requested=self.stop_event.is_set(),
                n_candidates_found=self.n_candidates_found,
                phase=self.phase,
                phase_started=self.phase_started,
            )

    @property
    def active(self) -> bool:
        with self._lock:
            return self.status in ACTIVE_STATUSES

    def join(self, timeout: float | None = None) -> None:
        if self.thread is not None:
            self.thread.join(timeout)


class JobRegistry:
    """All design jobs of this process, keyed by job id (= run id). Thread-safe.

    runs_root: where run folders go (default runs.runs_root(): $GDMCD_RUNS_DIR or ./runs);
    max_active: jobs running at once (default $GDMCD_MAX_JOBS or 2); worker: "process" or "thread" (default
    $GDMCD_JOB_WORKER or "process"; see the module docstring for the runs that stay in a thread). A run's engine comes from
    `design.session.open_design` with the page's models (the same checks as the CLI's), or from
    engine_factory(model, config, fe_model) -> an object with `start_points()` and `run(run_dir,
    callback, stop_event, start=...)` (tests pass a fake).
    """

    def __init__(
        self,
        runs_root: str | Path | None = None,
        max_active: int | None = None,
        engine_factory: EngineFactory | None = None,
        worker: str | None = None,
    ) -> None:
        self.runs_root = runs.runs_root(runs_root)
        self.worker = worker or os.environ.get(WORKER_ENV, "").strip() or "process"
        if self.worker not in WORKER_MODES:
            raise ValueError(f"${WORKER_ENV} must be one of {WORKER_MODES}, got {self.worker!r}")
        self.max_active = (
            int(max_active)
            if max_active is not None
            else parse_max_jobs(os.environ.get(MAX_JOBS_ENV), DEFAULT_MAX_ACTIVE)
        )
        self._factory = engine_factory
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._reserved = 0  # slots taken by start() calls still validating (counted with the active jobs)
        self._busy: dict[str, str] = {}  # run id -> "finalize" | "resume" while one is being set up or runs
        _REGISTRIES.add(self)  # stopped at interpreter exit (stop_all_jobs)

    def _reserve(self) -> None:
        with self._lock:  # check and take a slot under one lock: concurrent starts cannot overshoot
            n_active = sum(j.active for j in self._jobs.values()) + self._reserved
            if n_active >= self.max_active:
                raise JobLimitError(
                    f"{n_active} design run(s) are already running on this server (limit {self.max_active}); "
                    "wait for one to finish or stop it"
                )
            self._reserved += 1

    def _unreserve(self) -> None:
        with self._lock:
            self._reserved -= 1

    def _launch(self, job: Job, run: Callable[[Job], Any]) -> Job:
        """Start `run(job)` in a worker thread at a lower priority (`lower_priority`); the reserved slot passes to
        the job."""

        def work() -> None:
            job.nice = lower_priority()
            try:
                result = run(job)
            except Exception as exc:  # the run folder is marked failed by the engine; keep the message
                job._finish("failed", f"{type(exc).__name__}: {exc}")
                return
            status = getattr(result, "status", "finished")
            table = getattr(result, "candidates", None)  # a failed result (a broken Ray cluster) says why in message
            job._finish(status, getattr(result, "message", ""), n_found=0 if table is None else len(table))

        return self._register(job, work)

    def _launch_process(self, job: Job, task: dict[str, Any]) -> Job:
        """Run `task` (worker.worker_main) in a worker process started by the job's pump thread, which feeds the
        child's messages into the job; the reserved slot passes to the job."""
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        job.stop_event, queue = ctx.Event(), ctx.Queue()

        def pump() -> None:
            job.on_phase("worker")
            proc = ctx.Process(target=worker_main, args=(task, queue, job.stop_event), daemon=True)
            try:
                proc.start()  # from this thread: the child dies with it (worker._die_with_parent)
            except Exception as exc:
                job._finish("failed", f"could not start the design process: {exc}")
                return
            job.process, job.nice = proc, JOB_NICE
            pump_messages(job, queue, proc, JOIN_AT_EXIT_S)

        return self._register(job, pump)

    def _register(self, job: Job, target: Callable[[], None]) -> Job:
        job.thread = threading.Thread(target=target, name=f"design-{job.job_id}", daemon=True)
        with self._lock:
            self._reserved -= 1  # the slot passes to the job (status "starting" counts as active)
            self._jobs[job.job_id] = job
            self._prune_locked()
        job.thread.start()
        return job

    def _in_process(self, model: Any, config: Any) -> bool:
        """Whether a run of `model` goes to a worker process (module docstring)."""
        path = str(getattr(model, "path", "") or "")
        local = getattr(config, "executor", "local") == "local"
        return self.worker == "process" and self._factory is None and local and bool(path) and Path(path).is_file()

    def _task(self, action: str, model: Any, config: Any, run_dir: Path, start: Any = None) -> dict[str, Any]:
        import torch

        return {
            "action": action,
            "config": config.to_dict(),
            "checkpoint": str(model.path),
            "run_dir": str(run_dir),
            "start": start,
            "threads": torch.get_num_threads(),
            "server_pid": os.getpid(),
        }

    def start(self, model: Any, config: Any, fe_model: Any = None) -> Job:
        """Validate, create the run folder, and start the run in a worker thread.

        Problems the user can fix (constraints that contradict the data, no start compositions,
        a run too big for this machine's memory, too many jobs) raise ValueError / JobLimitError
        here, before any folder is created.
        """
        self._reserve()
        try:
            config = config_from_env(config)  # executor "ray" when $GDMCD_RAY_ADDRESS names a cluster
            engine, start = self._open(model, config, fe_model)
            run_dir = runs.create_run_dir(self.runs_root)
        except BaseException:
            self._unreserve()
            raise
        job = Job(job_id=run_dir.name, run_dir=run_dir, config=config)
        if self._in_process(model, config):
            _first_files(engine, run_dir, start)  # the pages see the run's folder before its process writes it
            return self._launch_process(job, self._task("run", model, config, run_dir, start))
        return self._launch(job, lambda j: _run_engine(engine, j, run_dir, start))

    def _open(self, model: Any, config: Any, fe_model: Any, new_run: bool = True) -> tuple[Any, Any]:
        """(engine, its start points; None unless new_run). ValueError (one line) for what the user can fix: a
        run too big for this machine's memory, constraints that contradict the data, no start compositions."""
        if self._factory is not None:
            engine = self._factory(model, config, fe_model)
            return engine, engine.start_points() if new_run else None
        from gdmcd_core.design.session import open_design

        opened = open_design(config, model=model, fe_model=fe_model, new_run=new_run)
        return opened.engine, opened.start

    def _engine_for_run(self, run_id: str, model: Any, fe_model: Any) -> tuple[Path, Any, Any]:
        from gdmcd_core.design.runs.lock import RunLockedError, is_alive, read_lock
        from gdmcd_core.design.runs.resume import config_from_run, refuse_finished

        run_dir = runs.run_path(run_id, self.runs_root)
        lock = read_lock(run_dir)
        if self.is_active(run_id) or is_alive(lock):
            raise RunLockedError(f"run {run_id} is still running; stop it first")
        refuse_finished(run_dir)  # a finished run is final (RunFinishedError, one line)
        if not (run_dir / runs.STATE_FILE).is_file():
            raise ValueError(f"run {run_id} saved no state ({runs.STATE_FILE}) to continue from")
        config = config_from_run(run_dir)
        return run_dir, config, self._open(model, config, fe_model, new_run=False)[0]

    def resume(self, run_id: str, model: Any, fe_model: Any = None) -> Job:
        """Continue a stopped or interrupted run from its state.npz in a worker process or thread (job id = run
        id)."""
        from gdmcd_core.design.runs.resume import resume_run

        with self._claim(run_id, "resume"):  # until the job is registered (then it is active)
            self._reserve()
            try:
                run_dir, config, engine = self._engine_for_run(run_id, model, fe_model)
            except BaseException:
                self._unreserve()
                raise
            job = Job(job_id=run_id, run_dir=run_dir, config=config)
            if self._in_process(model, config):
                return self._launch_process(job, self._task("resume", model, config, run_dir))
            return self._launch(
                job, lambda j: resume_run(engine, run_dir, callback=j.on_progress, stop_event=j.stop_event)
            )

    def finalize(self, run_id: str, model: Any, fe_model: Any = None) -> int:
        """Write the candidate table of an interrupted run from its state.npz; returns its rows."""
        from gdmcd_core.design.runs.resume import finalize_run

        with self._claim(run_id, "finalize"):
            run_dir, _, engine = self._engine_for_run(run_id, model, fe_model)
            return len(finalize_run(engine, run_dir))

    @contextmanager
    def _claim(self, run_id: str, action: str) -> Iterator[None]:
        """Mark the run busy with `action` for the block: a finalize or resume of it meanwhile raises
        RunBusyError (one line) instead of racing this one over the same run folder."""
        with self._lock:
            if run_id in self._busy:
                raise RunBusyError(f"a {self._busy[run_id]} is running for this run ({run_id}); wait for it to end")
            self._busy[run_id] = action
        try:
            yield
        finally:
            with self._lock:
                self._busy.pop(run_id, None)

    def busy_with(self, run_id: str) -> str | None:
        """The finalize or resume of this run under way on this server (before a resumed job runs), else None."""
        with self._lock:
            return self._busy.get(run_id)

    def get(self, job_id: str | None) -> Job | None:
        """The job with this id, or None (also for malformed ids: they never reach the file system)."""
        if not job_id:
            return None
        try:
            runs.validate_run_id(job_id)
        except ValueError:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def stop(self, job_id: str) -> bool:
        job = self.get(job_id)
        if job is None:
            return False
        job.stop()
        return True

    def is_active(self, job_id: str) -> bool:
        job = self.get(job_id)
        return job is not None and job.active

    def active_jobs(self) -> list[Job]:
        with self._lock:
            return [j for j in self._jobs.values() if j.active]

    def _prune_locked(self) -> None:
        done = sorted((j for j in self._jobs.values() if not j.active), key=lambda j: j.finished or 0.0)
        for j in done[: max(0, len(done) - MAX_FINISHED_KEPT)]:
            self._jobs.pop(j.job_id, None)


_REGISTRIES: weakref.WeakSet[JobRegistry] = weakref.WeakSet()


def stop_all_jobs(timeout_s: float = JOIN_AT_EXIT_S) -> list[str]:
    """Stop every active job of this process and wait for their threads, timeout_s seconds in all; returns the ids
    of jobs whose thread still runs. Registered with atexit (see the module docstring)."""
    jobs = [j for registry in list(_REGISTRIES) for j in registry.active_jobs()]
    if not jobs:
        return []
    print(f"gdmcd app: stopping {len(jobs)} design run(s); the candidates reached are written", file=sys.stderr)
    for job in jobs:
        job.stop()
    deadline = time.monotonic() + timeout_s
    for job in jobs:
        job.join(max(0.0, deadline - time.monotonic()))
    return [j.job_id for j in jobs if j.thread is not None and j.thread.is_alive()]


atexit.register(stop_all_jobs)


def warm_up() -> None:
    """What a server's first run would otherwise wait for, done once in a thread at server start: the
    reference data (SuperCon + COD, repaired: ~10 s on a CPU) and torch.optim's first use (it imports
    torch._dynamo: seconds). Off with $GDMCD_WARM_UP=0 (the tests, whose data folders change)."""
    if os.environ.get(WARM_UP_ENV, "1") == "0":
        return
    try:
        import torch

        torch.optim.Adam([torch.zeros(1, requires_grad=True)])
        from gdmcd_core.data.reference import load_reference

        load_reference()
    except Exception:  # only a head start: the first run loads what it needs itself, and says what is missing
        pass


def _first_files(engine: Any, run_dir: Path, start: Any) -> None:
    """config.json and a "running" status.json of a new run, as run_design writes them first, for the seconds the
    worker process takes to start (it writes them again under the run's lock)."""
    from gdmcd_core.design.run import run_record

    writer = runs.RunWriter(run_dir, lock=False)
    try:
        record = {**run_record(engine), "created": time.time(), "summary": engine.summary()}
        writer.write_config({**record, "n_candidates": len(start)})
        writer.write_status("running", None)
    finally:
        writer.close()


def _run_engine(engine: Any, job: Job, run_dir: Path, start: Any) -> Any:
    """engine.run; a DesignEngine runs through run.run_design here so that the job hears its phases."""
    from gdmcd_core.design.engine import DesignEngine
    from gdmcd_core.design.run import run_design

    if isinstance(engine, DesignEngine):
        return run_design(engine, run_dir, job.on_progress, job.stop_event, start=start, phase=job.on_phase)
    return engine.run(run_dir=run_dir, callback=job.on_progress, stop_event=job.stop_event, start=start)
