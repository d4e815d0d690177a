"""`DesignEngine`: the public face of a design run (the web app, the CLI and notebooks use it).

    engine = DesignEngine(model, DesignConfig(target_tc=120.0), fe_model=None, *, reference=None)
    result = engine.run(run_dir=None, callback=None, stop_event=None, *, start=None) -> DesignResult

It is the design loop (loop/optimize.py: `.optimize`, `.integerize`, `.predict`, `.start_points`, ...) plus
`.run`, a whole run: start points, the loop or a search method, the candidate table, and the run folder written as it
goes (run.py). The loop itself imports nothing above it; this class is where the two meet.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from gdmcd_core.design.loop.optimize import DesignLoop
from gdmcd_core.design.loop.starts import StartPoints
from gdmcd_core.design.loop.step_log import Progress
from gdmcd_core.design.run import run_design
from gdmcd_core.design.runs.result import DesignResult


class DesignEngine(DesignLoop):
    """Runs one design search. See loop/optimize.py for the loop's API and run.py for a whole run."""

    def run(
        self,
        run_dir: str | Path | None = None,
        callback: Callable[[Progress], None] | None = None,
        stop_event: threading.Event | None = None,
        *,
        start: StartPoints | None = None,
    ) -> DesignResult:
        """Initialize, optimize, integerize, rank, writing `run_dir` as it goes; see `run.run_design`."""
        return run_design(self, run_dir, callback, stop_event, start=start)


__all__ = ["DesignEngine"]
