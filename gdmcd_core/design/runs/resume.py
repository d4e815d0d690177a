"""Finish what a stopped or killed run left: finalize its candidate table, or resume its loop.

    finalize_run(engine, run_dir) -> DataFrame     candidates.csv from state.npz (status "stopped")
    resume_run(engine, run_dir, callback=None, stop_event=None) -> DesignResult
                                                   the loop continues from the saved x and step
    config_from_run(run_dir) -> DesignConfig       the run's DesignConfig from its config.json

Both take the run's lock first (RunLockedError, one line, while a live process holds it), refuse a
finished run (RunFinishedError, a ValueError: a finished run is immutable, its candidates.csv is never
rewritten; `refuse_finished` checks the same without the lock) and raise StateError (a ValueError)
when state.npz is missing or unusable. `engine` must be built with the
run's config (config_from_run) and model. Resuming restarts Adam's moment estimates at the saved
step (they are not saved); the alpha ramp, the stage boundary and the step numbering continue.
"""

from __future__ import annotations

import copy
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.evidence.candidates import build_candidates, candidate_context
from gdmcd_core.design.loop.step_log import Progress
from gdmcd_core.design.loop.trajectory import Trajectory, TrajectoryRecorder
from gdmcd_core.design.objective.integer_loss import formulas_from_amounts
from gdmcd_core.design.objective.loss import alpha_ramp
from gdmcd_core.design.runs.folder import CANDIDATES_FILE, CONFIG_FILE, STATE_FILE, STATUS_FILE, RunWriter, _read_json
from gdmcd_core.design.runs.progress import FolderProgress, fail_folder, finish_folder, state_keeper
from gdmcd_core.design.runs.result import DesignResult
from gdmcd_core.design.runs.state import BestInteger, RunState, StateError

if TYPE_CHECKING:
    from gdmcd_core.design.loop.optimize import DesignLoop


@dataclass(frozen=True)
class _ResumedConfig(DesignConfig):
    """The remaining steps of a run resumed at a step count: stage 3's alpha ramp continues where it was."""

    stage3_offset: int = 0
    stage3_total: int = 0

    def alpha_at(self, k: int) -> float:
        return alpha_ramp(k + self.stage3_offset, self.stage3_total, self.alpha_max)


# Statuses whose run folder is final: finalize and resume refuse them and leave every file as it is.
FINAL_STATUSES = ("finished",)


class RunFinishedError(ValueError):
    """Finalize or resume asked of a finished run (its candidate table is final)."""


def refuse_finished(run_dir: str | Path) -> None:
    """RunFinishedError (one line naming the run and its status) when status.json says the run finished."""
    run_dir = Path(run_dir)
    status = _read_json(run_dir / STATUS_FILE).get("status")
    if status in FINAL_STATUSES:
        raise RunFinishedError(
            f"run {run_dir.name} is {status}: its {CANDIDATES_FILE} is final and is not rewritten; "
            "finalize and resume only finish stopped, failed or interrupted runs"
        )


def config_from_run(run_dir: str | Path) -> DesignConfig:
    """The DesignConfig recorded in config.json (ValueError, one line, if it is missing or invalid)."""
    design = _read_json(Path(run_dir) / CONFIG_FILE).get("design")
    if not isinstance(design, dict):
        raise ValueError(f"{Path(run_dir) / CONFIG_FILE} holds no design configuration")
    try:
        return DesignConfig.from_dict(design)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{Path(run_dir) / CONFIG_FILE}: {exc}") from None


def _check(state: RunState, engine: DesignLoop, run_dir: Path) -> None:
    if state.total_steps != engine.config.total_steps:
        raise StateError(
            f"{run_dir / STATE_FILE} is for {state.total_steps} steps, the config has {engine.config.total_steps}"
        )


def _named(best: BestInteger) -> tuple:
    integ = replace(best.integer, formulas=formulas_from_amounts(best.integer.amounts))
    return integ, best.step


def _best_with(engine: DesignLoop, best: BestInteger | None, x: np.ndarray, step: int) -> BestInteger:
    integ = engine.integerize(x, with_formulas=False)
    score = np.asarray(engine.integer_scores(integ), np.float64)
    last = BestInteger(integ, score, np.full(len(x), step, np.int64))
    return last if best is None else best.merge(last)


def _clean_temp_files(run_dir: Path) -> None:
    """Temp files a killed writer left behind (never a complete file: those are renamed in place)."""
    for p in run_dir.glob(".*.tmp"):
        p.unlink(missing_ok=True)
    for p in run_dir.glob("run.lock.tmp-*"):
        p.unlink(missing_ok=True)


def _locked_state(engine: DesignLoop, run_dir: Path) -> RunState:
    """The run's saved state, checked against the engine's config; call it holding the run's lock.

    Refuses a finished run (under the lock: no run can finish meanwhile) and removes a killed writer's temp files.
    """
    refuse_finished(run_dir)
    state = RunState.load(run_dir / STATE_FILE)
    _check(state, engine, run_dir)
    _clean_temp_files(run_dir)
    return state


def finalize_run(engine: DesignLoop, run_dir: str | Path) -> pd.DataFrame:
    """Build candidates.csv from state.npz (status "stopped"); returns the table."""
    run_dir = Path(run_dir)
    writer = RunWriter(run_dir)
    try:
        state = _locked_state(engine, run_dir)
        integ, istep = _named(_best_with(engine, state.best, state.x, state.step))
        x2 = state.x_stage2 if state.x_stage2 is not None else state.x
        table = build_candidates(
            candidate_context(engine), state.x_start, state.start_labels, x2, state.x, integ, istep
        )
        writer.write_candidates(table)
        prog = {"step": state.step, "total_steps": state.total_steps, "n_candidates": len(state.x), "done": True}
        msg = f"finalized from the state saved at step {state.step}/{state.total_steps}"
        writer.write_status("stopped", prog, message=msg)
        writer.log(f"{msg}: wrote {len(table)} distinct candidates")
        return table
    finally:
        writer.close()


def _refined(out, istep: np.ndarray, s: int) -> np.ndarray | None:
    """The resumed part's refined_from (loop/refine.py) for the rows whose merged formula is that part's."""
    if out.refined_from is None:
        return None
    return np.where(istep == out.integer_step + s, out.refined_from, np.arange(len(istep)))


def _resumed_config(cfg: DesignConfig, step: int) -> _ResumedConfig:
    done3 = max(0, step - cfg.steps2)
    values = {f.name: getattr(cfg, f.name) for f in fields(DesignConfig)}
    values.update(steps2=max(0, cfg.steps2 - step), steps3=cfg.steps3 - done3)
    return _ResumedConfig(**values, stage3_offset=done3, stage3_total=cfg.steps3)


def resume_run(
    engine: DesignLoop,
    run_dir: str | Path,
    callback: Callable[[Progress], None] | None = None,
    stop_event: threading.Event | None = None,
) -> DesignResult:
    """Continue a run from state.npz to its last step (or to a stop), then write candidates.csv."""
    run_dir, cfg = Path(run_dir), engine.config
    writer = RunWriter(run_dir)
    try:
        state = _locked_state(engine, run_dir)
        s, B = state.step, len(state.x)
        try:
            traj = Trajectory.load(run_dir / "trajectory.npz")
        except Exception:  # missing or truncated: the resumed part is recorded alone
            traj = None
        rec = TrajectoryRecorder.continuing(traj, B, s, stage2_step=cfg.steps2)
        keeper = state_keeper(engine, writer, state.start_labels, resumed=state)
        hook = FolderProgress(writer, rec, cfg.steps2, callback, keeper, offset=s)
        writer.write_status("running", {"step": s, "total_steps": cfg.total_steps, "n_candidates": B})
        writer.log(f"resumed at step {s}/{cfg.total_steps} (Adam restarts its moments)")
        part = copy.copy(engine)
        part.config = _resumed_config(cfg, s)
        t0 = time.perf_counter()
        out = part.optimize(state.x, callback=hook, stop_event=stop_event, recorder=rec)
        steps_done = s + out.steps_done
        status = "stopped" if out.stopped else "finished"
        x_stage2 = state.x_stage2 if state.x_stage2 is not None else out.x_stage2
        if s >= cfg.steps2 and state.x_stage2 is None:
            x_stage2 = state.x
        score = np.asarray(engine.integer_scores(out.integer), np.float64)
        best = BestInteger(out.integer, score, out.integer_step + s)
        best = state.best.merge(best) if state.best is not None else best
        integ, istep = _named(best)
        full = replace(out, x_start=state.x_start, x_stage2=x_stage2, steps_done=steps_done, integer=integ)
        full = replace(
            full, integer_step=istep, elapsed_s=time.perf_counter() - t0, refined_from=_refined(out, istep, s)
        )
        writer.log(f"{status} after {steps_done}/{cfg.total_steps} steps")
        writer.write_trajectory(rec)
        table = build_candidates(
            candidate_context(engine),
            state.x_start,
            state.start_labels,
            x_stage2,
            out.x_final,
            integ,
            istep,
            full.refined_from,
        )
        finish_folder(writer, full, status, table, B, cfg.total_steps)
        return DesignResult(
            candidates=table,
            status=status,
            steps_done=steps_done,
            total_steps=cfg.total_steps,
            config=cfg,
            x_start=state.x_start,
            x_stage2=x_stage2,
            x_final=out.x_final,
            start_labels=list(state.start_labels),
            trajectory=rec.to_trajectory(),
            run_dir=run_dir,
            elapsed_s=full.elapsed_s,
            device=str(engine.device),
            allowed_ns=engine.allowed_ns,
        )
    except BaseException as exc:
        if not isinstance(exc, (StateError, RunFinishedError)):  # a refusal leaves the folder as it was
            fail_folder(writer, exc)
        raise
    finally:
        writer.close()
