"""A run folder kept current while the loop runs, and closed when it ends (run.py and runs/resume.py use these).

FolderProgress(writer, recorder, steps2, user, keeper=None, offset=0)   a progress callback that also writes
                                               status.json, trajectory.npz and state.npz as the loop goes
state_keeper(loop, writer, labels, **kw) -> StateKeeper   the folder's state.npz keeper
finish_folder(writer, state, status, table, n, total)     candidates.csv and the final status
fail_folder(writer, exc)                       the status of a run that raised
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pandas as pd

from gdmcd_core.design.loop.results import OptimizeState
from gdmcd_core.design.loop.step_log import Progress
from gdmcd_core.design.loop.trajectory import TrajectoryRecorder
from gdmcd_core.design.runs.folder import STATE_FILE, RunWriter
from gdmcd_core.design.runs.state import StateKeeper

if TYPE_CHECKING:
    from gdmcd_core.design.loop.optimize import DesignLoop


class FolderProgress:
    """Progress callback that also keeps the run folder's status, trajectory and state (state.npz) current.

    offset: steps done before this process took over (a resumed run); the engine counts from 0."""

    def __init__(
        self,
        writer: RunWriter,
        recorder: TrajectoryRecorder,
        steps2: int,
        user: Callable | None,
        keeper: StateKeeper | None = None,
        offset: int = 0,
    ) -> None:
        self.writer, self.recorder, self.steps2, self.user = writer, recorder, steps2, user
        self.keeper, self.offset = keeper, offset

    def __call__(self, p: Progress) -> None:
        if self.offset:
            p = replace(p, step=p.step + self.offset, total_steps=p.total_steps + self.offset)
        if self.user is not None:
            self.user(p)
        if self.keeper is not None:
            self.keeper.update(self.recorder, force=p.done)
        if p.done:
            return
        if p.step == self.steps2 and p.stage == 2 and p.step > 0:
            self.writer.log(f"stage 2 done after {p.step} steps ({p.elapsed_s:.1f} s)")
            self.writer.write_trajectory(self.recorder)
        self.writer.write_status("running", p.to_dict(), force=False)
        self.writer.write_trajectory(self.recorder, force=False)


def state_keeper(engine: DesignLoop, writer: RunWriter, labels: list[str], **kw: Any) -> StateKeeper:
    """The StateKeeper of a run folder (tracks the best integer formula like the engine, at each save)."""
    cfg = engine.config
    track = cfg.integer_select == "best"
    return StateKeeper(
        writer.path / STATE_FILE,
        labels,
        cfg.total_steps,
        cfg.steps2,
        integerize=engine.integerize if track else None,
        score=engine.integer_scores if track else None,
        **kw,
    )


def finish_folder(writer: RunWriter, state: OptimizeState, status: str, table: pd.DataFrame, n: int, total: int):
    """Write the candidate table and the final status (n candidates, total steps) of a run that ended; a state with
    a `failure` (a sharded run whose cluster broke) gives status.json that line as its message, and the log too."""
    failure = str(getattr(state, "failure", "") or "")
    if failure:
        writer.log(f"{status}: {failure}")
    writer.write_candidates(table)
    final = state.recorder.to_trajectory()
    prog = {
        "step": state.steps_done,
        "total_steps": total,
        "elapsed_s": state.elapsed_s,
        "n_candidates": n,
        "tc_best_k": float(final.tc_best_k[-1]) if len(final.tc_best_k) else float("nan"),
        "done": True,
    }
    writer.write_status(status, prog, message=failure)
    writer.log(f"wrote {len(table)} distinct candidates")


def fail_folder(writer: RunWriter | None, exc: BaseException) -> None:
    """Mark the folder failed (interrupted for Ctrl-C / exit) with a one-line reason and the last progress written;
    it keeps state.npz for `gdmcd runs finalize`."""
    if writer is None:
        return
    status = "interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "failed"
    lines = str(exc).strip().splitlines()
    msg = f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
    try:
        writer.write_status(status, writer.last_progress, message=msg)
        writer.log(f"{status}: {msg}")
    except (OSError, RuntimeError):
        pass
