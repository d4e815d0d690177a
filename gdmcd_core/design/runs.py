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

Public API (stable; the web app and the CLI use it):

    runs_root(root=None) -> Path                  # $GDMCD_RUNS_DIR or ./runs, resolved
    new_run_id() -> str                           # "20251125-061500-a1b2c3"
    validate_run_id(run_id) -> str                # ValueError unless it matches RUN_ID_RE
    run_path(run_id, root=None) -> Path           # validated; never outside the root
    create_run_dir(root=None, run_id=None) -> Path
    list_runs(root=None) -> list[RunInfo]         # newest first
    load_run(run, root=None) -> LoadedRun         # run: an id under the root, or a folder Path
    delete_run(run_id, root=None) -> None
    RunWriter(path)                               # used by design.DesignEngine
    Trajectory / TrajectoryRecorder               # the trajectory arrays

A run id from outside (URL, form, CLI) must match RUN_ID_RE (letters, digits, '-', '_'; no dots or
slashes) and its resolved folder must lie inside the resolved runs root; anything else raises
ValueError before any file is touched.
"""

from __future__ import annotations

import io
import json
import os
import re
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from gdmcd_core.util import atomic_write_bytes, atomic_write_text

RUNS_ENV = "GDMCD_RUNS_DIR"
DEFAULT_RUNS_DIR = "runs"
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,79}$")
STATUSES = ("running", "finished", "stopped", "failed", "interrupted")
CONFIG_FILE, STATUS_FILE, LOG_FILE = "config.json", "status.json", "log.txt"
TRAJECTORY_FILE, CANDIDATES_FILE = "trajectory.npz", "candidates.csv"
# A "running" status whose heartbeat is older than this is reported as "interrupted" (crash/kill).
HEARTBEAT_STALE_S = 120.0
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


# -- trajectory --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trajectory:
    """What a run recorded. T = steps recorded, S = snapshots, B = candidates.

    Per step (T,): step (1-based), stage (2 or 3), alpha, tc_best_k, tc_median_k, tc_q10_k,
    tc_q90_k (statistics across candidates of the ensemble-mean Tc, K, before that step's update),
    hinge_mean_k, int_loss_median (L_integer over the allowed N; in stage 2, where it is only
    monitored, it is refreshed every record_every steps and repeated in between).
    Snapshots, every k steps and at stage ends: snap_step (S,) the step count done when taken
    (0 = start), snap_tc_k (S, B), snap_int_loss (S, B), snap_x (S, B, 118) float16 fractions.
    """

    step: np.ndarray
    stage: np.ndarray
    alpha: np.ndarray
    tc_best_k: np.ndarray
    tc_median_k: np.ndarray
    tc_q10_k: np.ndarray
    tc_q90_k: np.ndarray
    hinge_mean_k: np.ndarray
    int_loss_median: np.ndarray
    snap_step: np.ndarray
    snap_tc_k: np.ndarray
    snap_int_loss: np.ndarray
    snap_x: np.ndarray

    def to_npz_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(buf, **{f.name: getattr(self, f.name) for f in fields(self)})
        return buf.getvalue()

    @classmethod
    def load(cls, path: str | Path) -> Trajectory:
        with np.load(path, allow_pickle=False) as z:
            return cls(**{f.name: z[f.name] for f in fields(cls)})

    def candidate(self, i: int) -> dict[str, np.ndarray]:
        """One candidate's snapshots: step (S,), tc_k (S,), int_loss (S,), x (S, 118)."""
        return {
            "step": self.snap_step,
            "tc_k": self.snap_tc_k[:, i],
            "int_loss": self.snap_int_loss[:, i],
            "x": self.snap_x[:, i].astype(np.float32),
        }


_STEP_FIELDS = (
    "step",
    "stage",
    "alpha",
    "tc_best_k",
    "tc_median_k",
    "tc_q10_k",
    "tc_q90_k",
    "hinge_mean_k",
    "int_loss_median",
)


@dataclass
class TrajectoryRecorder:
    """Accumulates a Trajectory during a run (the engine owns it; not thread-shared)."""

    n_candidates: int
    rows: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in _STEP_FIELDS})
    snaps: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"step": [], "tc": [], "il": [], "x": []})

    def add_step(self, **values: float) -> None:
        for k in _STEP_FIELDS:
            self.rows[k].append(float(values[k]))

    def add_snapshot(self, step: int, tc_k: np.ndarray, int_loss: np.ndarray, x: np.ndarray) -> None:
        if self.snaps["step"] and self.snaps["step"][-1] == step:
            return
        self.snaps["step"].append(step)
        self.snaps["tc"].append(np.asarray(tc_k, np.float32))
        self.snaps["il"].append(np.asarray(int_loss, np.float32))
        self.snaps["x"].append(np.asarray(x, np.float16))

    def to_trajectory(self) -> Trajectory:
        B = self.n_candidates
        r = self.rows
        s = self.snaps
        return Trajectory(
            step=np.asarray(r["step"], np.int64),
            stage=np.asarray(r["stage"], np.int8),
            alpha=np.asarray(r["alpha"], np.float64),
            tc_best_k=np.asarray(r["tc_best_k"], np.float32),
            tc_median_k=np.asarray(r["tc_median_k"], np.float32),
            tc_q10_k=np.asarray(r["tc_q10_k"], np.float32),
            tc_q90_k=np.asarray(r["tc_q90_k"], np.float32),
            hinge_mean_k=np.asarray(r["hinge_mean_k"], np.float32),
            int_loss_median=np.asarray(r["int_loss_median"], np.float32),
            snap_step=np.asarray(s["step"], np.int64),
            snap_tc_k=np.stack(s["tc"]) if s["tc"] else np.zeros((0, B), np.float32),
            snap_int_loss=np.stack(s["il"]) if s["il"] else np.zeros((0, B), np.float32),
            snap_x=np.stack(s["x"]) if s["x"] else np.zeros((0, B, 118), np.float16),
        )


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


class RunWriter:
    """Writes one run folder. Every file goes through a temp file and an atomic rename."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        self._log: list[str] = []
        self._last_status = 0.0
        self._last_traj = 0.0

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


# -- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunInfo:
    """Summary of a run folder for listings. status: one of STATUSES ('interrupted' = a
    'running' status whose heartbeat stopped). created: unix time. best_integer_tc_k: the top
    row of candidates.csv, NaN if there is none."""

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


@dataclass(frozen=True)
class LoadedRun:
    """Everything in a run folder. candidates / trajectory are None if not written (yet)."""

    info: RunInfo
    config: dict[str, Any]
    status: dict[str, Any]
    candidates: pd.DataFrame | None
    trajectory: Trajectory | None
    log: str


def _read_json(p: Path) -> dict[str, Any]:
    try:
        return json.loads(p.read_text())
    except (OSError, ValueError):
        return {}


def _info(path: Path) -> RunInfo:
    cfg = _read_json(path / CONFIG_FILE)
    st = _read_json(path / STATUS_FILE)
    status = st.get("status", "failed" if not cfg else "running")
    if status == "running" and time.time() - float(st.get("heartbeat", 0)) > HEARTBEAT_STALE_S:
        status = "interrupted"
    prog = st.get("progress") or {}
    best_tc, best_f = float("nan"), ""
    cand = path / CANDIDATES_FILE
    if cand.is_file():
        try:
            top = pd.read_csv(cand, nrows=1)
            if len(top):
                best_tc = float(top["integer_tc_k"].iloc[0])
                best_f = str(top["integer_formula"].iloc[0])
        except (OSError, ValueError, KeyError, pd.errors.EmptyDataError):
            pass
    design = cfg.get("design", {})
    return RunInfo(
        run_id=path.name,
        path=path,
        status=status,
        created=float(cfg.get("created", path.stat().st_mtime if path.exists() else 0.0)),
        n_candidates=int(cfg.get("n_candidates", design.get("n_candidates", 0)) or 0),
        steps_done=int(prog.get("step", 0) or 0),
        total_steps=int(prog.get("total_steps", 0) or 0),
        best_integer_tc_k=best_tc,
        best_integer_formula=best_f,
        summary=str(cfg.get("summary", "")),
    )


def list_runs(root: str | Path | None = None) -> list[RunInfo]:
    """Every run folder under the root (folders holding config.json or status.json), newest first."""
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


def load_run(run: str | Path, root: str | Path | None = None) -> LoadedRun:
    """Load a run by id (validated, under the root) or by folder Path (e.g. a CLI --out DIR).

    Raises ValueError for a bad id and FileNotFoundError if the folder is not a run folder.
    """
    path = run.resolve() if isinstance(run, Path) else run_path(run, root)
    if not ((path / CONFIG_FILE).is_file() or (path / STATUS_FILE).is_file()):
        raise FileNotFoundError(f"{path} is not a run folder (no {CONFIG_FILE})")
    cand = None
    if (path / CANDIDATES_FILE).is_file():
        cand = pd.read_csv(path / CANDIDATES_FILE, keep_default_na=False, na_values=[""])
    traj = None
    if (path / TRAJECTORY_FILE).is_file():
        try:
            traj = Trajectory.load(path / TRAJECTORY_FILE)
        except (OSError, ValueError, KeyError):
            traj = None
    log = (path / LOG_FILE).read_text() if (path / LOG_FILE).is_file() else ""
    return LoadedRun(
        info=_info(path),
        config=_read_json(path / CONFIG_FILE),
        status=_read_json(path / STATUS_FILE),
        candidates=cand,
        trajectory=traj,
        log=log,
    )


def delete_run(run_id: str, root: str | Path | None = None) -> None:
    """Delete a run folder by id. Only folders that look like run folders are removed."""
    path = run_path(run_id, root)
    if not path.is_dir():
        raise FileNotFoundError(f"no run {run_id!r} in {runs_root(root)}")
    if path.is_symlink() or not ((path / CONFIG_FILE).is_file() or (path / STATUS_FILE).is_file()):
        raise ValueError(f"{path} is not a run folder; not deleting it")
    shutil.rmtree(path)
