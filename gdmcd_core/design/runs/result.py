"""`DesignResult`: what a design run gives back, whether it ran from the start (run.py) or resumed (runs/resume.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.loop.trajectory import Trajectory


@dataclass(frozen=True)
class DesignResult:
    """The outcome of a run.

    candidates: ranked table, one row per distinct integer formula (see evidence/candidates.py);
    status: "finished", "stopped", or "failed" (a sharded run whose cluster broke: the candidates of the shards
    that returned, `message` says why); x_*: (B, 118) fractions (start, end of stage 2, final); start_labels: where
    each start came from; trajectory: see loop/trajectory.py; elapsed_s: the optimization loop's seconds.
    """

    candidates: pd.DataFrame
    status: str
    steps_done: int
    total_steps: int
    config: DesignConfig
    x_start: np.ndarray
    x_stage2: np.ndarray
    x_final: np.ndarray
    start_labels: list[str]
    trajectory: Trajectory
    run_dir: Path | None
    elapsed_s: float
    device: str
    allowed_ns: tuple[int, ...] = field(default=())
    message: str = ""
