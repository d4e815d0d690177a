"""Ensemble members trained as Ray tasks, one member per task (`gdmcd train --executor ray`).

    train_members_on_ray(spec, rows, members, work, warm=None, address="", log=print)

Each task trains one member exactly as the in-process loop of run.py does (seed train.seed + k, the same
warm start), on a GPU of its own where the cluster has GPUs, else on one CPU; the training rows are shipped once
through Ray's object store (the workers read no data files). As each member finishes, the driver writes its
`member{k}.done.pt` into the run's work folder, so run.py assembles, calibrates and saves the checkpoint
exactly as for an in-process run, and a stopped run resumes with the members that finished. A task also
saves its per-epoch state to `member{k}.state.pt` where the work folder is reachable from its node (best
effort), and starts from it when it can read one. A worker that dies is retried by Ray (TASK_RETRIES).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from gdmcd_core.model.resnet import ModelConfig
from gdmcd_core.training.loop import TrainConfig, TrainRows, train_model
from gdmcd_core.util_ray import TASK_RETRIES, connect


def _train_member(rows: TrainRows, model_cfg: ModelConfig, tcfg: TrainConfig, init: dict | None, state_file: str):
    """One Ray task: (the trained member's CPU state dict, its history)."""
    path = Path(state_file)
    try:
        resume = torch.load(path, map_location="cpu", weights_only=True) if path.is_file() else None
    except (OSError, RuntimeError, EOFError):
        resume = None

    def save_state(row: dict) -> None:  # best effort: the work folder may not be reachable from this node
        try:
            tmp = path.with_suffix(".tmp")
            torch.save(row["state"], tmp)
            os.replace(tmp, path)
        except OSError:
            pass

    model, hist = train_model(
        rows, model_cfg, tcfg, progress=False, on_epoch=save_state, resume_state=resume, init_weights=init
    )
    return model.cpu().state_dict(), hist


def train_members_on_ray(
    spec: Any,
    rows: TrainRows,
    members: list[int],
    work: Path,
    warm: list[dict] | None = None,
    address: str = "",
    log: Callable[[str], None] = print,
) -> None:
    """Train the ensemble members `members` of RunSpec `spec` on Ray; writes work/member{k}.done.pt for each."""
    if not members:
        return
    ray = connect(address)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    use_gpu = gpus > 0 and spec.train.device != "cpu"
    task = ray.remote(_train_member).options(num_cpus=1, num_gpus=int(use_gpu), max_retries=TASK_RETRIES)
    rows_ref = ray.put(rows)
    pending = {}
    for k in members:
        tcfg = replace(spec.train, seed=spec.train.seed + k)
        init = warm[k % len(warm)] if warm else None
        pending[task.remote(rows_ref, spec.model, tcfg, init, str(work / f"member{k}.state.pt"))] = k
    log(f"training {len(members)} member(s) as Ray tasks ({'a GPU' if use_gpu else 'a CPU'} each)")
    try:
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            k = pending.pop(ready[0])
            try:
                state, hist = ray.get(ready[0])
            except ray.exceptions.RayTaskError as exc:
                raise exc.as_instanceof_cause() from None
            done = work / f"member{k}.done.pt"
            tmp = done.with_suffix(".tmp")
            torch.save({"model": state, "history": hist}, tmp)
            os.replace(tmp, done)
            (work / f"member{k}.state.pt").unlink(missing_ok=True)
            log(f"member {k + 1}/{spec.members}: trained on Ray ({hist.get('train_seconds', 0.0):.0f} s)")
    except BaseException:
        for ref in pending:
            ray.cancel(ref, force=True)
        raise


__all__ = ["train_members_on_ray"]
