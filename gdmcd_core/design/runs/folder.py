"""Run folders: the persistent record of a design run, written as the run goes.

Layout of a run folder (every file written atomically: temp file + rename):

    config.json      the full DesignConfig, seed, device, checkpoint path and SHA-256, code
                     version, constraints as resolved, allowed N, start time
    status.json      {"status": running|finished|stopped|failed, "progress": latest Progress,
                     "heartbeat": unix time, "message": ...}; refreshed about once a second
    log.txt          human-readable log lines
    trajectory.npz   per-step summaries (Tc best/median/q10/q90, hinge, integer loss, alpha) and,
                     every k steps, per-candidate Tc, integer loss and compositions; rewritten at
                     least every TRAJECTORY_FLUSH_S seconds and at stage ends
    candidates.csv   the ranked candidate table (written at the end, also for a stopped run)
    state.npz        the loop's state every few seconds (state.py): finalize or resume from it
    run.lock         which process writes the folder (lock.py); a "running" status whose lock
                     holder is dead reads as "interrupted" at once

Public API (stable; the web app and the CLI use it):

    runs_root(root=None) -> Path                  # $GDMCD_RUNS_DIR or ./runs, resolved
    new_run_id() -> str                           # "20251125-061500-a1b2c3"
    validate_run_id(run_id) -> str                # ValueError unless it matches RUN_ID_RE
    run_path(run_id, root=None) -> Path           # validated; never outside the root
    create_run_dir(root=None, run_id=None) -> Path
    list_runs(root=None) -> list[RunInfo]         # newest first
    run_info(run_id, root=None) -> RunInfo        # one run's row of the listing
    load_run(run, root=None) -> LoadedRun         # run: an id under the root, or a folder Path
    delete_run(run_id, root=None) -> None         # refused while a live process holds the run's lock
    RunWriter(path)                               # takes the run's lock; used by design.DesignEngine
    Trajectory / TrajectoryRecorder               # the trajectory arrays

A run id from outside (URL, form, CLI) must match RUN_ID_RE (letters, digits, '-', '_'; no dots or
slashes) and its resolved folder must lie inside the resolved runs root; anything else raises
ValueError before any file is touched.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gdmcd_core.design.loop.trajectory import Trajectory, TrajectoryRecorder  # noqa: F401  (re-exported)
from gdmcd_core.design.runs.lock import RunLock, RunLockedError, is_alive, read_lock  # noqa: F401  (re-exported)
from gdmcd_core.design.runs.meta import read_meta
from gdmcd_core.util import atomic_write_bytes, atomic_write_text
from gdmcd_core.util_io import UnsafePathError, safe_child  # noqa: F401  (re-exported)

RUNS_ENV = "GDMCD_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
UNREADABLE = "unreadable"  # listed for a folder whose files cannot be read (RunInfo.problem says why)
CONFIG_FILE, STATUS_FILE, LOG_FILE = "config.json", "status.json", "log.txt"
TRAJECTORY_FILE, CANDIDATES_FILE, STATE_FILE = "trajectory.npz", "candidates.csv", "state.npz"
# A "running" status.json in a folder without a run.lock (every writer holds one: the folder was written
# without a lock, or its lock file was removed) is reported as "interrupted" once its heartbeat is older than
# this. A locked folder's status follows its lock instead (lock.is_alive, lock.LOCK_STALE_S).
STATUS_STALE_S = 120.0
# How often (at most) the engine rewrites status.json and trajectory.npz while running.
STATUS_FLUSH_S = 1.0
TRAJECTORY_FLUSH_S = 20.0


# -- ids and paths -----------------------------------------------------------------------------


def runs_root(root: str | Path | None = None) -> Path:
    """The runs root: `root`, else $GDMCD_RUNS_DIR, else ./runs; resolved (not created)."""
    return Path(root or os.environ.get(RUNS_ENV) or DEFAULT_RUNS_DIR).expanduser().resolve()


def new_run_id() -> str:
    """A fresh id: local time plus 6 random hex digits, e.g. '20251125-061500-a1b2c3'."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise ValueError(f"invalid run id {run_id!r}: use letters, digits, '-' and '_' only (max 80)")
    return run_id


def run_path(run_id: str, root: str | Path | None = None) -> Path:
    """Folder of `run_id` under the runs root. Raises ValueError for an id that is malformed or
    that would resolve outside the root (e.g. through a symlink)."""
    base = runs_root(root)
    p = (base / validate_run_id(run_id)).resolve()
    if p.parent != base or not p.is_relative_to(base):
        raise ValueError(f"run id {run_id!r} resolves outside the runs folder {base}")
    return p


def create_run_dir(root: str | Path | None = None, run_id: str | None = None) -> Path:
    """Create and return a new, empty run folder (a fresh id unless one is given)."""
    p = run_path(run_id or new_run_id(), root)
    p.mkdir(parents=True, exist_ok=False)
    return p


# -- writing -----------------------------------------------------------------------------------


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "__dataclass_fields__"):
        return asdict(o)
    raise TypeError(f"not JSON-serializable: {type(o).__name__}")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, default=_json_default, allow_nan=True)


class RunFolderError(PermissionError):
    """The run folder cannot be created there (a PermissionError: callers report it as an unwritable place)."""


class RunWriter:
    """Writes one run folder while holding its lock (RunLockedError if a live process holds it).

    Every file goes through a temp file and an atomic rename; every status write refreshes the
    lock's heartbeat. `close()` releases the lock (also on garbage collection of a dead writer:
    the lock's pid check makes a lock left by a killed process stale at once)."""

    def __init__(self, path: str | Path, lock: bool = True) -> None:
        self.path = Path(path)
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. under /proc, or a file in the way: one line for every caller
            raise RunFolderError(f"cannot create the run folder {self.path}: {exc.strerror or exc}") from None
        self.lock = RunLock(self.path) if lock else None
        self._log: list[str] = []
        if (self.path / LOG_FILE).is_file():  # a resumed or finalized run keeps its log
            try:
                self._log = (self.path / LOG_FILE).read_text(errors="replace").splitlines()
            except OSError:
                self._log = []
        self._last_status = 0.0
        self._last_traj = 0.0
        self.last_progress: Any = None  # the progress of the latest status.json written (a failed run keeps it)

    def write_config(self, config: dict[str, Any]) -> None:
        atomic_write_text(self.path / CONFIG_FILE, dumps(config))

    def write_status(self, status: str, progress: Any = None, message: str = "", force: bool = True) -> None:
        """status.json; with force=False skipped if the last write was < STATUS_FLUSH_S ago."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {status!r}")
        now = time.time()
        if not force and now - self._last_status < STATUS_FLUSH_S:
            return
        self._last_status = now
        if progress is not None:
            self.last_progress = progress
        if self.lock is not None and self.lock.held:
            self.lock.heartbeat()
        body = {"status": status, "heartbeat": now, "pid": os.getpid(), "message": message, "progress": progress}
        atomic_write_text(self.path / STATUS_FILE, dumps(body))

    def log(self, message: str) -> None:
        self._log.append(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {message}")
        atomic_write_text(self.path / LOG_FILE, "\n".join(self._log) + "\n")

    def write_trajectory(self, recorder: TrajectoryRecorder, force: bool = True) -> None:
        now = time.time()
        if not force and now - self._last_traj < TRAJECTORY_FLUSH_S:
            return
        self._last_traj = now
        atomic_write_bytes(self.path / TRAJECTORY_FILE, recorder.to_trajectory().to_npz_bytes())

    def write_candidates(self, table: pd.DataFrame) -> None:
        atomic_write_text(self.path / CANDIDATES_FILE, table.to_csv(index=False))

    def close(self) -> None:
        """Release the run's lock (safe to call twice)."""
        if self.lock is not None:
            self.lock.release()


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """Summary of a run folder for listings. status: one of STATUSES ('interrupted' = a
    'running' status whose writer is gone: its lock holder is dead or its heartbeat stopped) or
    UNREADABLE (then `problem` says why). created: unix time. best_integer_tc_k: the top row of
    candidates.csv, NaN if there is none."""

    run_id: str
    path: Path
    status: str
    created: float
    n_candidates: int
    steps_done: int
    total_steps: int
    best_integer_tc_k: float
    best_integer_formula: str
    summary: str
    problem: str = ""
    has_state: bool = False
    name: str = ""  # meta.json (meta.py): the user's name and tags for the run
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class LoadedRun:
    """Everything in a run folder. candidates / trajectory are None if not written (yet) or
    unreadable; `problems` lists what could not be read (one line each)."""

    info: RunInfo
    config: dict[str, Any]
    status: dict[str, Any]
    candidates: pd.DataFrame | None
    trajectory: Trajectory | None
    log: str
    problems: tuple[str, ...] = field(default=())


def _file(path: Path, name: str) -> Path:
    """`name` inside the run folder; UnsafePathError if it is a symlink leading out of it."""
    return safe_child(path, name)


def _read_json(p: Path, problems: list[str] | None = None) -> dict[str, Any]:
    """The JSON object in `p`, {} if missing; a file that is not a JSON object is noted in `problems`."""
    try:
        if not p.is_file():
            return {}
        d = json.loads(_file(p.parent, p.name).read_text())
    except (OSError, ValueError) as exc:
        d = exc
    if isinstance(d, dict):
        return d
    if problems is not None:
        why = f"{type(d).__name__}" if isinstance(d, Exception) else f"a JSON {type(d).__name__}, not an object"
        problems.append(f"{p.name} is unreadable ({why})")
    return {}


def _num(d: dict[str, Any], key: str, default: float = 0.0) -> float:
    try:
        v = float(d.get(key, default) or default)
    except (TypeError, ValueError):
        raise ValueError(f"{key} is not a number: {d.get(key)!r}") from None
    if v != v:
        raise ValueError(f"{key} is not a number: {d.get(key)!r}")
    return v


def run_status(path: Path, st: dict[str, Any], cfg: dict[str, Any]) -> str:
    """The status to show: status.json's, with 'running' read as 'interrupted' when its writer is
    gone: the run's lock is not alive (lock.is_alive), or there is no lock and no status heartbeat for STATUS_STALE_S."""
    status = st.get("status", "failed" if not cfg else "running")
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    if status == "running":
        lock = read_lock(path)
        if lock is not None:
            return "running" if is_alive(lock) else "interrupted"
        if time.time() - _num(st, "heartbeat") > STATUS_STALE_S:  # a folder written without a lock
            return "interrupted"
    return status


def _top_candidate(path: Path) -> tuple[float, str]:
    cand = _file(path, CANDIDATES_FILE)
    if not cand.is_file():
        return float("nan"), ""
    top = pd.read_csv(cand, nrows=1)
    if not len(top):
        return float("nan"), ""
    return float(top["integer_tc_k"].iloc[0]), str(top["integer_formula"].iloc[0])


def _info(path: Path, problems: list[str] | None = None) -> RunInfo:
    problems = [] if problems is None else problems
    cfg = _read_json(path / CONFIG_FILE, problems)
    st = _read_json(path / STATUS_FILE, problems)
    try:
        created = path.stat().st_mtime if path.exists() else 0.0
        status, created = run_status(path, st, cfg), _num(cfg, "created", created)
        prog = st.get("progress") or {}
        design = cfg.get("design") or {}
        if not isinstance(prog, dict) or not isinstance(design, dict):
            raise ValueError("progress/design is not a JSON object")
        n_cand = int(_num(cfg, "n_candidates", _num(design, "n_candidates")))
        steps, total = int(_num(prog, "step")), int(_num(prog, "total_steps"))
    except (ValueError, TypeError, OSError) as exc:
        problems.append(f"status.json/config.json: {exc}")
        status, n_cand, steps, total = UNREADABLE, 0, 0, 0
    try:
        best_tc, best_f = _top_candidate(path)
    except (OSError, ValueError, KeyError, IndexError) as exc:
        problems.append(f"{CANDIDATES_FILE}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
        best_tc, best_f = float("nan"), ""
    if problems and status != UNREADABLE and not cfg:
        status = UNREADABLE
    return RunInfo(
        run_id=path.name,
        path=path,
        status=status,
        created=created if status != UNREADABLE or created else 0.0,
        n_candidates=n_cand,
        steps_done=steps,
        total_steps=total,
        best_integer_tc_k=best_tc,
        best_integer_formula=best_f,
        summary=str(cfg.get("summary", "")),
        problem="; ".join(problems),
        has_state=(path / STATE_FILE).is_file(),
        **vars(read_meta(path)),
    )


def run_info(run_id: str, root: str | Path | None = None) -> RunInfo:
    """One run's RunInfo (the listing's row) without reading the other folders; FileNotFoundError if none."""
    path = run_path(run_id, root)
    if not ((path / CONFIG_FILE).is_file() or (path / STATUS_FILE).is_file()):
        raise FileNotFoundError(f"no run {run_id!r} in {runs_root(root)}")
    return _info(path)


def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Every run folder under the root (folders holding config.json or status.json), newest first.
    A folder whose files cannot be read is listed with status UNREADABLE, never an exception."""
    base = runs_root(root)
    if not base.is_dir():
        return []
    out = []
    for p in base.iterdir():
        if (
            p.is_dir()
            and not p.is_symlink()
            and RUN_ID_RE.match(p.name)
            and ((p / CONFIG_FILE).is_file() or (p / STATUS_FILE).is_file())
        ):
            out.append(_info(p))
    return sorted(out, key=lambda r: (r.created, r.run_id), reverse=True)


def _load_candidates(path: Path) -> pd.DataFrame | None:
    f = _file(path, CANDIDATES_FILE)
    return pd.read_csv(f, keep_default_na=False, na_values=[""]) if f.is_file() else None


def load_run(run: str | Path, root: str | Path | None = None) -> LoadedRun:
    """Load a run by id (validated, under the root) or by folder Path (e.g. a CLI --out DIR).

    Raises ValueError for a bad id and FileNotFoundError if the folder is not a run folder. A file
    that cannot be read (truncated, not JSON, a symlink leading out of the folder) is left out
    (None / {}) and named in `problems`; it never raises.
    """
    path = run.resolve() if isinstance(run, Path) else run_path(run, root)
    if not ((path / CONFIG_FILE).is_file() or (path / STATUS_FILE).is_file()):
        raise FileNotFoundError(f"{path} is not a run folder (no {CONFIG_FILE})")
    problems: list[str] = []
    cand = traj = None
    try:
        cand = _load_candidates(path)
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{CANDIDATES_FILE} is unreadable: {str(exc).splitlines()[0] if str(exc) else exc!r}")
    try:
        if _file(path, TRAJECTORY_FILE).is_file():
            traj = Trajectory.load(_file(path, TRAJECTORY_FILE))
    except Exception as exc:  # truncated or foreign npz: zipfile, pickle and shape errors alike
        problems.append(f"{TRAJECTORY_FILE} is unreadable ({type(exc).__name__})")
    try:
        log = _file(path, LOG_FILE).read_text(errors="replace") if (path / LOG_FILE).is_file() else ""
    except (OSError, ValueError) as exc:
        log, _ = "", problems.append(f"{LOG_FILE}: {exc}")
    info = _info(path, problems)
    return LoadedRun(
        info=info,
        config=_read_json(path / CONFIG_FILE),
        status=_read_json(path / STATUS_FILE),
        candidates=cand,
        trajectory=traj,
        log=log,
        problems=tuple(dict.fromkeys(problems)),
    )


def delete_run(run_id: str, root: str | Path | None = None) -> None:
    """Delete a run folder by id. Only folders that look like run folders are removed, and only
    while no live process holds the run's lock (RunLockedError, one line, otherwise): the lock is
    taken for the deletion, so no writer can start in between."""
    path = run_path(run_id, root)
    if not path.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} in {runs_root(root)}")
    if path.is_symlink() or not ((path / CONFIG_FILE).is_file() or (path / STATUS_FILE).is_file()):
        raise ValueError(f"{path} is not a run folder; not deleting it")
    with RunLock(path):  # RunLockedError while a live process works on it; its file goes with the folder
        shutil.rmtree(path)
