"""A whole design run: start points, the loop, the candidate table, and the run folder written as it goes.

`run_design(engine, run_dir, ...)` is what `DesignEngine.run` does. The engine itself writes no file; this
module turns its progress callbacks into status.json / trajectory.npz / log.txt updates (runs.RunWriter).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import torch

from gdmcd_core.design import initialization as init
from gdmcd_core.design.candidates import CandidateContext, build_candidates
from gdmcd_core.design.config import DesignConfig
from gdmcd_core.design.methods import run_search
from gdmcd_core.design.run_state import StateKeeper
from gdmcd_core.design.runs import STATE_FILE, RunWriter, Trajectory, TrajectoryRecorder
from gdmcd_core.model.trees import second_opinion
from gdmcd_core.util import code_version

# What `run_design(..., phase=)` reports, in order: the names and what each part does.
PHASES = {
    "folder": "writing the run folder",
    "starts": "building the start compositions",
    "first_step": "first optimization step (warm-up)",
    "candidates": "building the ranked candidate table",
}

if TYPE_CHECKING:
    from gdmcd_core.design.engine import DesignEngine, OptimizeState, Progress


@dataclass(frozen=True)
class DesignResult:
    """The outcome of a run.

    candidates: ranked table, one row per distinct integer formula (see candidates.py);
    status: "finished" or "stopped"; x_*: (B, 118) fractions (start, end of stage 2, final);
    start_labels: where each start came from; trajectory: see runs.Trajectory.
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


def run_record(engine: DesignEngine) -> dict[str, Any]:
    """What config.json holds: the DesignConfig plus the model, device, constraints and code version."""
    m, c = engine.source_model, engine.constraints
    return {
        "design": engine.config.to_dict(),
        "seed": engine.config.seed,
        "device": str(engine.device),
        "checkpoint_path": getattr(m, "path", ""),
        "checkpoint_sha256": getattr(m, "sha256", ""),
        "model_members": getattr(m, "n_members", 1),
        "formation_energy_model": type(engine.fe_model).__name__ if engine.fe_model is not None else None,
        "code_version": code_version(),
        "constraints": {
            "pins": [p.to_dict() for p in c.pins],
            "excluded": list(c.excluded),
            "unseen_excluded": list(c.unseen),
            "max_elements": c.max_elements,
        },
        "allowed_ns": list(engine.allowed_ns),
        "torch_version": torch.__version__,
    }


def candidate_context(engine: DesignEngine) -> CandidateContext:
    """What the candidate table needs from an engine: callables and arrays, not the engine."""
    c, cfg = engine.constraints, engine.config
    return CandidateContext(
        predict=engine.predict,
        reference=engine.reference,
        allowed_ns=engine.allowed_ns,
        lower_frac=c.lower_frac if c.atleast_mask.any() else None,
        exact_frac=c.exact_frac if c.exact_mask.any() else None,
        pinned_mask=(c.atleast_mask | c.exact_mask).astype(bool),
        kappa=cfg.kappa if cfg.objective == "lcb" else 0.0,
        formation_energy=engine.predict_formation_energy if engine.fe_model is not None else None,
        credible_first=cfg.valence_weight > 0 or cfg.cu_valence_weight > 0,  # the chemistry terms are on
        second_opinion=getattr(second_opinion(engine.source_model)[0], "predict", None),  # unusable trees: none
    )


class _FolderProgress:
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


def state_keeper(engine: DesignEngine, writer: RunWriter, labels: list[str], **kw: Any) -> StateKeeper:
    """The StateKeeper of a run folder (tracks the best integer formula like the engine, at each save)."""
    cfg = engine.config
    track = cfg.integer_select == "best"
    return StateKeeper(
        writer.path / STATE_FILE,
        labels,
        cfg.total_steps,
        cfg.steps2,
        integerize=engine.integerize if track else None,
        score=getattr(engine, "_integer_scores", None) if track else None,
        **kw,
    )


def _finish_folder(writer: RunWriter, state: OptimizeState, status: str, table: pd.DataFrame, n: int, total: int):
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
    writer.write_status(status, prog)
    writer.log(f"wrote {len(table)} distinct candidates")


def run_design(
    engine: DesignEngine,
    run_dir: str | Path | None = None,
    callback: Callable[[Progress], None] | None = None,
    stop_event: threading.Event | None = None,
    *,
    start: init.StartPoints | None = None,
    phase: Callable[[str], None] | None = None,
) -> DesignResult:
    """Initialize, optimize, integerize, rank. Writes the run folder as it goes if run_dir is given.

    A set stop_event ends the loop between steps; the result (status "stopped") then holds candidates
    built from the compositions reached. Exceptions mark the folder failed and propagate. `phase`, if
    given, hears each part of the run as it begins (one of PHASES) before the loop's progress reports.
    """
    cfg = engine.config
    phase = phase or (lambda name: None)
    writer = RunWriter(run_dir) if run_dir is not None else None
    try:
        phase("folder")
        record = {**run_record(engine), "created": time.time(), "summary": engine.summary()}
        if writer is not None:
            writer.write_config(record)
            writer.write_status("running", None)
            writer.log(f"design run started on {engine.device}: {engine.summary()}")
        if start is None:
            phase("starts")
        sp = start if start is not None else engine.start_points()
        recorder = TrajectoryRecorder(len(sp), stage2_step=cfg.steps2)
        if writer is not None:
            writer.write_config({**record, "n_candidates": len(sp)})
            # state.npz (finalize / resume) for in-process runs; a Ray run gets its trajectory when the shards end
            keeper = state_keeper(engine, writer, list(sp.label)) if cfg.executor == "local" else None
            callback = _FolderProgress(writer, recorder, cfg.steps2, callback, keeper)
        phase("first_step")
        if cfg.method == "gradient" and cfg.executor == "ray":  # shards on a Ray cluster (design/executor.py)
            from gdmcd_core.design.executor import optimize_sharded

            state = optimize_sharded(engine, sp, callback=callback, stop_event=stop_event, recorder=recorder)
            labels = state.labels
        elif cfg.method == "gradient":
            state = engine.optimize(sp, callback=callback, stop_event=stop_event, recorder=recorder)
            labels = list(sp.label)
        else:  # same budget of model evaluations, same table and folder (design/methods.py)
            state = run_search(engine, sp, callback=callback, stop_event=stop_event, recorder=recorder)
            labels = state.labels
        status = "stopped" if state.stopped else "finished"
        if writer is not None:
            writer.log(f"{status} after {state.steps_done}/{cfg.total_steps} steps ({state.elapsed_s:.1f} s)")
            writer.write_trajectory(state.recorder)
        phase("candidates")
        table = build_candidates(
            candidate_context(engine),
            x_start=state.x_start,
            start_labels=labels,
            x_stage2=state.x_stage2,
            x_final=state.x_final,
            integer=state.integer,
            integer_step=state.integer_step,
        )
        if writer is not None:
            _finish_folder(writer, state, status, table, len(sp), cfg.total_steps)
        return DesignResult(
            candidates=table,
            status=status,
            steps_done=state.steps_done,
            total_steps=cfg.total_steps,
            config=cfg,
            x_start=state.x_start,
            x_stage2=state.x_stage2,
            x_final=state.x_final,
            start_labels=labels,
            trajectory=state.recorder.to_trajectory(),
            run_dir=Path(run_dir) if run_dir is not None else None,
            elapsed_s=state.elapsed_s,
            device=str(engine.device),
            allowed_ns=engine.allowed_ns,
        )
    except BaseException as exc:
        fail_folder(writer, exc)
        raise
    finally:
        if writer is not None:
            writer.close()


def fail_folder(writer: RunWriter | None, exc: BaseException) -> None:
    """Mark the folder failed (interrupted for Ctrl-C / exit); it keeps state.npz for `gdmcd runs finalize`."""
    if writer is None:
        return
    status = "interrupted" if isinstance(exc, (KeyboardInterrupt, SystemExit)) else "failed"
    msg = f"{type(exc).__name__}: {exc}"
    try:
        writer.write_status(status, None, message=msg)
        writer.log(f"{status}: {msg}")
    except (OSError, RuntimeError):
        pass
