"""What a search returns: the arrays a candidate table and a run folder are built from."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gdmcd_core.design.loop.trajectory import TrajectoryRecorder
from gdmcd_core.design.objective.integer_loss import Integerized


@dataclass(frozen=True)
class OptimizeState:
    """Arrays after `DesignLoop.optimize`. x_*: (B, 118) float64 full compositions.

    x_stage2 is the composition at the end of stage 2 (or where a stop interrupted stage 2).
    integer: the integer formulas to report (see the module docstring); integer_step: (B,) the step
    count at which each was taken. refined_from: (B,) after the integer refinement (refine.py), the candidate
    whose lineage each row's formula comes from (the row itself where its formula is its own); None before.
    """

    x_start: np.ndarray
    x_stage2: np.ndarray
    x_final: np.ndarray
    steps_done: int
    stopped: bool
    recorder: TrajectoryRecorder
    elapsed_s: float
    integer: Integerized
    integer_step: np.ndarray
    refined_from: np.ndarray | None = field(default=None, kw_only=True)
