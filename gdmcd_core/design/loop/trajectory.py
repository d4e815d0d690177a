"""The trajectory of a design run: per-step summaries and per-candidate snapshots (runs/folder.py stores it).

`TrajectoryRecorder` accumulates it while the engine runs; it also keeps the latest snapshot's
compositions in full precision (`last_x`, `last_x_step`) and the last one taken at or before the end
of stage 2 (`stage2_x`), which the run state (runs/state.py) saves so a stopped run can be finalized
or resumed. `step_offset` shifts the step counts of a resumed run (the engine counts from 0).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np


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


STEP_FIELDS = (  # the one list of per-step statistics (trajectory.npz, live traces)
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
    """Accumulates a Trajectory during a run (the engine owns it; not thread-shared).

    stage2_step: the step count at which stage 2 ends (keeps `stage2_x`); step_offset: added to
    every step count recorded (a resumed run continues the numbering of the one it resumes)."""

    n_candidates: int
    rows: dict[str, list[float]] = field(default_factory=lambda: {k: [] for k in STEP_FIELDS})
    snaps: dict[str, list[np.ndarray]] = field(default_factory=lambda: {"step": [], "tc": [], "il": [], "x": []})
    stage2_step: int | None = None
    step_offset: int = 0
    first_x: np.ndarray | None = None
    last_x: np.ndarray | None = None
    last_x_step: int = -1
    stage2_x: np.ndarray | None = None

    def add_step(self, **values: float) -> None:
        for k in STEP_FIELDS:
            self.rows[k].append(float(values[k]) + (self.step_offset if k == "step" else 0))

    def add_snapshot(self, step: int, tc_k: np.ndarray, int_loss: np.ndarray, x: np.ndarray) -> None:
        step = int(step) + self.step_offset
        self.last_x, self.last_x_step = np.array(x, np.float32), step
        if self.first_x is None:
            self.first_x = self.last_x
        if self.stage2_step is not None and step <= self.stage2_step:
            self.stage2_x = self.last_x
        if self.snaps["step"] and self.snaps["step"][-1] == step:
            return
        self.snaps["step"].append(step)
        self.snaps["tc"].append(np.asarray(tc_k, np.float32))
        self.snaps["il"].append(np.asarray(int_loss, np.float32))
        self.snaps["x"].append(np.asarray(x, np.float16))

    @classmethod
    def continuing(cls, traj: Trajectory | None, n_candidates: int, step: int, **kw: int | None) -> TrajectoryRecorder:
        """A recorder that continues `traj` (rows and snapshots after `step` dropped) from `step`."""
        rec = cls(n_candidates, step_offset=step, **kw)
        if traj is None or traj.snap_x.ndim != 3 or traj.snap_x.shape[1] != n_candidates:
            return rec
        keep = traj.step <= step
        for k in STEP_FIELDS:
            rec.rows[k] = [float(v) for v in getattr(traj, k)[keep]]
        for i in np.flatnonzero(traj.snap_step < step):
            rec.snaps["step"].append(int(traj.snap_step[i]))
            rec.snaps["tc"].append(traj.snap_tc_k[i])
            rec.snaps["il"].append(traj.snap_int_loss[i])
            rec.snaps["x"].append(traj.snap_x[i])
        return rec

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
