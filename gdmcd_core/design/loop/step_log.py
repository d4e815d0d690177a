"""The design loop's per-step statistics: the progress report handed to callbacks, and the trajectory's
per-step rows, kept on the device and written in batches.

Every step hands over its (B,) Tc, score and integer loss tensors (kept by reference: the loop makes
new ones each step, so nothing is copied); `flush` stacks the buffered steps and turns them into
trajectory.STEP_FIELDS rows (best, q10 / q50 / q90 of Tc, mean hinge, median integer loss) with one
quantile call and one host copy, instead of a quantile and a host round trip at every step. The engine flushes before each progress report, at stage ends and when the
loop ends, so the recorder is complete whenever it is read.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from gdmcd_core.design.loop.trajectory import STEP_FIELDS, TrajectoryRecorder

QUANTILES = (0.1, 0.5, 0.9)
PROGRESS_EVERY_S = 0.5  # progress callbacks come at least this often (and at stage ends)
CAPACITY = 256  # steps buffered before a flush is forced
MAX_ENTRIES = 4_000_000  # and at most this many buffered values per tensor kind (large B: ~16 MB each in float32)


def quantiles(tc: torch.Tensor) -> list[float]:
    """[q10, q50, q90] of (B,) Tc (zeros for no candidates)."""
    if not tc.numel():
        return [0.0] * len(QUANTILES)
    t = tc.detach().float()
    return torch.quantile(t, torch.tensor(QUANTILES, device=t.device)).tolist()


@dataclass(frozen=True)
class Progress:
    """A progress report (the callback's argument). Tc statistics are across the B candidates of
    the ensemble-mean Tc in K at the step's composition; int_loss_median is L_integer,{N}."""

    step: int  # steps done, 0..total_steps
    total_steps: int
    stage: int  # 2 or 3
    alpha: float
    tc_best_k: float
    tc_median_k: float
    tc_q10_k: float
    tc_q90_k: float
    int_loss_median: float
    elapsed_s: float
    eta_s: float  # seconds left (eta.py: each stage at its own measured rate); NaN until measured, 0 when done
    n_candidates: int
    done: bool = False  # True on the last report of the run

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class StepLog:
    """Buffers (step, stage, alpha) and the (B,) Tc, score and integer loss of each step for `rec`; the hinge is
    max(0, target_tc - score)."""

    def __init__(self, rec: TrajectoryRecorder, target_tc: float, capacity: int = CAPACITY):
        self.rec, self.target_tc = rec, target_tc
        self.capacity = max(1, min(capacity, MAX_ENTRIES // max(rec.n_candidates, 1)))
        self.meta: list[tuple[int, int, float]] = []
        self.rows: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def add(self, step: int, stage: int, alpha: float, tc: torch.Tensor, score: torch.Tensor, il: torch.Tensor) -> None:
        """Keep this step's detached tensors (the caller must not modify them in place afterwards)."""
        if len(self.meta) == self.capacity:
            self.flush()
        self.rows.append((tc, score, il))
        self.meta.append((step, stage, alpha))

    def flush(self) -> None:
        """Write the buffered steps to the recorder."""
        if not self.meta:
            return
        tc, score, il = (torch.stack(c).float() for c in zip(*self.rows, strict=True))  # (n, B) each
        if tc.shape[1]:
            q = torch.quantile(tc, torch.tensor(QUANTILES, device=tc.device), dim=1)  # (3, n)
            hinge = torch.relu(self.target_tc - score).mean(1)
            # in STEP_FIELDS order after (step, stage, alpha): best, q50, q10, q90, hinge, integer loss
            stats = torch.stack([tc.amax(1), q[1], q[0], q[2], hinge, il.median(1).values], 1).tolist()
        else:
            stats = [[0.0] * 6] * len(self.meta)
        for meta, row in zip(self.meta, stats, strict=True):
            self.rec.add_step(**dict(zip(STEP_FIELDS, (*meta, *row), strict=True)))
        self.meta.clear()
        self.rows.clear()


__all__ = ["PROGRESS_EVERY_S", "QUANTILES", "Progress", "StepLog", "quantiles"]
