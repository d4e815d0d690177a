"""A whole design run: start points, the loop, the candidate table, and the run folder written as it goes.

`run_design(engine, run_dir, ...)` is what `DesignEngine.run` does (engine.py). The loop itself writes no file;
its progress callbacks become status.json / trajectory.npz / log.txt updates (runs/progress.py, runs/folder.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from gdmcd_core.design.evidence.candidates import build_candidates, candidate_context
from gdmcd_core.design.loop import starts as init
from gdmcd_core.design.loop.step_log import Progress
from gdmcd_core.design.loop.trajectory import TrajectoryRecorder
from gdmcd_core.design.runs.folder import RunWriter
from gdmcd_core.design.runs.progress import FolderProgress, fail_folder, finish_folder, state_keeper
from gdmcd_core.design.runs.result import DesignResult
from gdmcd_core.design.search.methods import run_search
from gdmcd_core.util import code_version

# What `run_design(..., phase=)` reports, in order: the names and what each part does.
PHASES = {
    "folder": "writing the run folder",
    "starts": "building the start compositions",
    "first_step": "first optimization step (warm-up)",
    "candidates": "building the ranked candidate table",
}

if TYPE_CHECKING:
    from gdmcd_core.design.loop.optimize import DesignLoop


def run_record(engine: DesignLoop) -> dict[str, Any]:
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


def run_design(
    engine: DesignLoop,
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
            callback = FolderProgress(writer, recorder, cfg.steps2, callback, keeper)
        phase("first_step")
        if (
            cfg.method == "gradient" and cfg.executor == "ray"
        ):  # shards on a Ray cluster (design/distributed/executor.py)
            from gdmcd_core.design.distributed.executor import optimize_sharded

            state = optimize_sharded(engine, sp, callback=callback, stop_event=stop_event, recorder=recorder)
            labels = state.labels
        elif cfg.method == "gradient":
            state = engine.optimize(sp, callback=callback, stop_event=stop_event, recorder=recorder)
            labels = list(sp.label)
        else:  # same budget of model evaluations, same table and folder (design/search/methods.py)
            state = run_search(engine, sp, callback=callback, stop_event=stop_event, recorder=recorder)
            labels = state.labels
        failure = getattr(state, "failure", "")  # a Ray cluster that broke: the shards that returned (executor.py)
        status = "failed" if failure else "stopped" if state.stopped else "finished"
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
            refined_from=state.refined_from,
        )
        if writer is not None:
            finish_folder(writer, state, status, table, len(sp), cfg.total_steps)
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
            message=failure,
        )
    except BaseException as exc:
        fail_folder(writer, exc)
        raise
    finally:
        if writer is not None:
            writer.close()
