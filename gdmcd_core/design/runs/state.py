"""The saved state of a design run (`state.npz` in its run folder): what a stop must not lose.

Written atomically every STATE_FLUSH_S seconds while the run goes (by run.py's progress hook, from
the latest trajectory snapshot) and once more when the loop ends. It holds

    step            steps done at `x` (the snapshot's step; 0 = the start)
    total_steps     of the run
    x               (B, 118) the compositions at `step` (float32 precision, as the loop keeps them)
    x_start         (B, 118) the projected start compositions
    x_stage2        (B, 118) the composition at the end of stage 2, or (0, 118) when not reached
    start_labels    (B,) where each start came from
    best_*          each candidate's best integer formula seen so far in stage 3 (n_atoms, amounts,
                    loss, score, step); absent (has_best = 0) before stage 3

`RunState.load(path)` checks shapes and finiteness and raises StateError (a ValueError, one line).
`gdmcd runs finalize` builds candidates.csv from it; `gdmcd runs resume` continues the loop from it.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gdmcd_core.design.loop.trajectory import TrajectoryRecorder
from gdmcd_core.design.objective.integer_loss import Integerized
from gdmcd_core.util import atomic_write_bytes

STATE_FLUSH_S = 3.0
D = 118
# A saved composition is atomic fractions: entries in [0, 1] and rows summing to 1, within this (the loop
# keeps float32, whose rounding over 118 entries is ~1e-6).
FRACTION_TOL = 1e-3


class StateError(ValueError):
    """state.npz is missing, truncated or does not describe this run."""


@dataclass(frozen=True)
class BestInteger:
    """Each candidate's best integer formula so far: `integer` (formulas may be empty), its score
    (K, higher is better) and the step count at which it was taken."""

    integer: Integerized
    score: np.ndarray
    step: np.ndarray

    def merge(self, other: BestInteger | None) -> BestInteger:
        """Per candidate, the better of the two (ties keep self)."""
        if other is None:
            return self
        b = other.score > self.score
        a, o = self.integer, other.integer
        integ = Integerized(
            n_atoms=np.where(b, o.n_atoms, a.n_atoms),
            amounts=np.where(b[:, None], o.amounts, a.amounts),
            formulas=[],
            loss=np.where(b, o.loss, a.loss),
        )
        return BestInteger(integ, np.where(b, other.score, self.score), np.where(b, other.step, self.step))


@dataclass(frozen=True)
class RunState:
    step: int
    total_steps: int
    x: np.ndarray
    x_start: np.ndarray
    x_stage2: np.ndarray | None
    start_labels: list[str]
    best: BestInteger | None
    saved_at: float

    def to_npz_bytes(self) -> bytes:
        B = len(self.x)
        best = self.best
        arrays = {
            "step": np.int64(self.step),
            "total_steps": np.int64(self.total_steps),
            "x": np.asarray(self.x, np.float64),
            "x_start": np.asarray(self.x_start, np.float64),
            "x_stage2": np.zeros((0, D)) if self.x_stage2 is None else np.asarray(self.x_stage2, np.float64),
            "start_labels": np.asarray([str(s) for s in self.start_labels], dtype=str).reshape(B),
            "has_best": np.int8(best is not None),
            "best_n_atoms": best.integer.n_atoms if best else np.zeros(B, np.int64),
            "best_amounts": best.integer.amounts if best else np.zeros((B, D)),
            "best_loss": best.integer.loss if best else np.zeros(B),
            "best_score": best.score if best else np.zeros(B),
            "best_step": best.step if best else np.zeros(B, np.int64),
            "saved_at": np.float64(self.saved_at),
        }
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        return buf.getvalue()

    def save(self, path: str | Path) -> None:
        atomic_write_bytes(path, self.to_npz_bytes())

    @classmethod
    def load(cls, path: str | Path) -> RunState:
        """Read and check a state file; StateError (one line) for anything unusable."""
        path = Path(path)
        if not path.is_file():
            raise StateError(f"{path} not found: the run saved no state (it ended before its first step)")
        try:
            with np.load(path, allow_pickle=False) as z:
                a = {k: z[k] for k in z.files}
            x, B = np.asarray(a["x"], np.float64), len(a["x"])
            best = None
            if int(a["has_best"]):
                integ = Integerized(a["best_n_atoms"], a["best_amounts"], [], a["best_loss"])
                best = BestInteger(integ, a["best_score"], a["best_step"])
            st = cls(
                step=int(a["step"]),
                total_steps=int(a["total_steps"]),
                x=x,
                x_start=np.asarray(a["x_start"], np.float64),
                x_stage2=np.asarray(a["x_stage2"], np.float64) if len(a["x_stage2"]) else None,
                start_labels=[str(s) for s in a["start_labels"]],
                best=best,
                saved_at=float(a["saved_at"]),
            )
        except Exception as exc:  # truncated zip, missing key, pickled objects, bad shapes
            raise StateError(f"{path} is unreadable ({type(exc).__name__}: {exc})") from None
        shapes = [st.x.shape, st.x_start.shape] + ([st.x_stage2.shape] if st.x_stage2 is not None else [])
        if any(s != (B, D) for s in shapes) or len(st.start_labels) != B or B < 1:
            raise StateError(f"{path}: arrays do not have the shape (B, {D}) of one run")
        if not (np.isfinite(st.x).all() and np.isfinite(st.x_start).all()) or not 0 <= st.step <= st.total_steps:
            raise StateError(f"{path}: compositions not finite or step {st.step} outside 0..{st.total_steps}")
        for name, arr in (("x", st.x), ("x_start", st.x_start), ("x_stage2", st.x_stage2)):
            _check_fractions(path, name, arr)
        return st


def _check_fractions(path: Path, name: str, x: np.ndarray | None) -> None:
    """StateError unless x (B, 118) holds atomic fractions (see FRACTION_TOL); None passes."""
    if x is None:
        return
    with np.errstate(all="ignore"):  # a huge entry overflows the sum to inf: refused below, not raised here
        sums = x.sum(1)
    bad = (x < -FRACTION_TOL).any(1) | (x > 1 + FRACTION_TOL).any(1) | ~(np.abs(sums - 1) <= FRACTION_TOL)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise StateError(
            f"{path}: {name} row {i} is not a composition (entries in 0..1 summing to 1; "
            f"sum {sums[i]:.6g}, largest {x[i].max():.6g})"
        )


class StateKeeper:
    """Saves the run state from a TrajectoryRecorder's latest snapshot (see module docstring).

    integerize(x, with_formulas=False) -> Integerized and score(Integerized) -> (B,) track the best
    integer formula at each save in stage 3 (None: not tracked)."""

    def __init__(
        self,
        path: str | Path,
        start_labels: list[str],
        total_steps: int,
        steps2: int,
        integerize: Callable[..., Integerized] | None = None,
        score: Callable[[Integerized], np.ndarray] | None = None,
        resumed: RunState | None = None,
    ) -> None:
        self.path, self.labels, self.total, self.steps2 = Path(path), list(start_labels), total_steps, steps2
        self.integerize, self.score = integerize, score
        self.x_start = resumed.x_start if resumed else None
        self.x_stage2 = resumed.x_stage2 if resumed else None
        self.best = resumed.best if resumed else None
        self._saved_step, self._saved_at = (resumed.step if resumed else -1), 0.0

    def consider(self, step: int, x: np.ndarray) -> None:
        if self.integerize is None or self.score is None:
            return
        integ = self.integerize(np.asarray(x, np.float64), with_formulas=False)
        new = BestInteger(integ, np.asarray(self.score(integ), np.float64), np.full(len(x), step, np.int64))
        self.best = new if self.best is None else self.best.merge(new)

    def update(self, rec: TrajectoryRecorder, force: bool = False) -> bool:
        """Save if a new snapshot exists and STATE_FLUSH_S passed (or force). Returns whether it saved."""
        if rec.last_x is None or rec.last_x_step == self._saved_step:
            return False
        if not force and time.monotonic() - self._saved_at < STATE_FLUSH_S:
            return False
        step, x = rec.last_x_step, rec.last_x
        if self.x_start is None:
            self.x_start = rec.first_x if rec.first_x is not None else x
        if self.x_stage2 is None and step >= self.steps2 and rec.stage2_x is not None:
            self.x_stage2 = rec.stage2_x
        if step > self.steps2:
            self.consider(step, x)
        RunState(step, self.total, x, self.x_start, self.x_stage2, self.labels, self.best, time.time()).save(self.path)
        self._saved_step, self._saved_at = step, time.monotonic()
        return True
