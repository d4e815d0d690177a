"""A resumable training run: K ensemble members of one task (training/tasks.py) -> one checkpoint.

Work in progress is kept in `<out>.work/` (one resumable state per member, saved after every
epoch), so a stopped or crashed run continues where it left off when started again with the
same arguments. What the finished checkpoint's card records is the task's (`Task.save`); the Tc
card (`save_ensemble`) records the model, training and data configs, data checksums, split seed,
dataset counts, test metrics, training time, hardware and code version.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from gdmcd_core.data.dataset import DataConfig, Dataset
from gdmcd_core.model.checkpoint import load_checkpoint, save_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.kinds import TC_KIND
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.training.calibration import calibrate
from gdmcd_core.training.evaluate import evaluate_checkpoint
from gdmcd_core.training.loop import TrainConfig, TrainRows, train_model
from gdmcd_core.util import atomic_write_text, provenance, resolve_device


@dataclass(frozen=True)
class RunSpec:
    model: ModelConfig = ModelConfig()
    train: TrainConfig = TrainConfig()
    data: DataConfig = DataConfig()
    members: int = 1  # ensemble size K; member k trains with seed train.seed + k
    init_from: str = ""  # warm start: member k starts from member k (mod K') of this checkpoint

    def to_dict(self) -> dict:
        return {
            "model": self.model.to_dict(),
            "train": self.train.to_dict(),
            "data": self.data.to_dict(),
            "members": self.members,
            "init_from": self.init_from,
        }


@dataclass(frozen=True)
class TrainedRun:
    """The training record a task's card is written from."""

    spec: RunSpec
    histories: list[dict]  # one per member trained so far (train_model's history)
    seconds: float  # training time of those members
    hardware: str  # where they trained
    started: float  # time.time() when the run (this attempt) started
    complete: bool  # False for an interim checkpoint: more members are still to train


SaveFn = Callable[[list[TcResNet], TrainedRun], dict]  # (members, record) -> the card as written


def _hardware(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}), {torch.get_num_threads()} torch threads, {os.cpu_count()} cores"


def _peak_rss_mb() -> float:
    try:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    except (ImportError, OSError):
        return float("nan")


def _warm_start_weights(spec: RunSpec) -> list[dict]:
    """Members' weights of the checkpoint `spec.init_from` (hash-checked, weights only); configs must match."""
    ens = load_checkpoint(spec.init_from, kind=None)
    if ens.config != spec.model:
        raise ValueError(f"--init-from {spec.init_from}: its model config {ens.config} differs from {spec.model}")
    return [m.state_dict() for m in ens.members]


def work_folder(out: Path, identity: dict) -> Path:
    """`<out>.work/`, created; refuses one that holds an unfinished run of another identity (what must match
    to resume: the spec without device and threads, which may change between attempts, and the task)."""
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    spec_json = json.dumps(identity, sort_keys=True)
    spec_file = work / "spec.json"
    if spec_file.is_file() and spec_file.read_text() != spec_json:
        raise ValueError(f"{work} holds an unfinished run with different settings; delete it or use the same options")
    atomic_write_text(spec_file, spec_json)
    return work


def run_identity(spec: RunSpec, task: dict) -> dict:
    """What a run in a work folder must share with the one resuming it: `task` (name and settings) and the spec
    without device and threads."""
    identity = {**spec.to_dict(), "task": task}
    identity["train"] = {k: v for k, v in identity["train"].items() if k not in ("device", "threads")}
    return identity


def _atomic_torch_save(obj: dict, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _train_member(
    k: int, spec: RunSpec, rows: TrainRows, work: Path, warm: list[dict] | None, progress: bool, log
) -> tuple[TcResNet, dict]:
    """Member k: loaded from `member{k}.done.pt` when it finished earlier, else trained (resuming from
    `member{k}.state.pt` when there is one) and written there."""
    done = work / f"member{k}.done.pt"
    if done.is_file():
        blob = torch.load(done, map_location="cpu", weights_only=True)
        m = TcResNet(spec.model)
        m.load_state_dict(blob["model"])
        log(f"member {k + 1}/{spec.members}: already trained (resumed)")
        return m.eval(), blob["history"]
    tcfg = replace(spec.train, seed=spec.train.seed + k)
    state_file = work / f"member{k}.state.pt"
    resume = torch.load(state_file, map_location="cpu", weights_only=True) if state_file.is_file() else None
    log(f"member {k + 1}/{spec.members}: training (seed {tcfg.seed})" + (" — resuming" if resume else ""))
    init = warm[k % len(warm)] if warm else None
    model, hist = train_model(
        rows,
        spec.model,
        tcfg,
        progress=progress,
        on_epoch=lambda row: _atomic_torch_save(row["state"], state_file),
        resume_state=resume,
        init_weights=init,
    )
    _atomic_torch_save({"model": model.cpu().state_dict(), "history": hist}, done)
    state_file.unlink(missing_ok=True)
    return model.cpu().eval(), hist


def train_members(
    spec: RunSpec,
    rows: TrainRows,
    out: Path,
    save: SaveFn,
    identity: dict,
    progress: bool = True,
    log=print,
    executor: str = "local",
    address: str = "",
    started: float | None = None,
) -> dict:
    """Train `spec.members` models on `rows`, resumably in `<out>.work/`, and hand them to `save`. Returns the card.

    `save(members, record)` writes the checkpoint at `out`: after every member but the last (an interim checkpoint
    with the members trained so far, record.complete False) and once at the end. executor "ray": the members not
    yet trained train at once, one Ray task each (members_ray.py), at `address` (else $GDMCD_RAY_ADDRESS, else a
    local Ray); the checkpoint is assembled as below. started: time.time() when the run began (default: now)."""
    if spec.members < 1:
        raise ValueError(f"an ensemble needs at least one member, got {spec.members}")
    started = time.time() if started is None else started
    work = work_folder(out, identity)
    device = resolve_device(spec.train.device)
    warm = _warm_start_weights(spec) if spec.init_from else None
    if executor == "ray":
        from gdmcd_core.training.members_ray import train_members_on_ray

        todo = [k for k in range(spec.members) if not (work / f"member{k}.done.pt").is_file()]
        train_members_on_ray(spec, rows, todo, work, warm, address, log)
    elif executor != "local":
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    members: list[TcResNet] = []
    histories: list[dict] = []
    for k in range(spec.members):
        model, hist = _train_member(k, spec, rows, work, warm, progress, log)
        members.append(model)
        histories.append(hist)
        record = TrainedRun(
            spec,
            list(histories),
            sum(h.get("train_seconds", 0.0) for h in histories),
            _hardware(device),
            started,
            complete=k + 1 == spec.members,
        )
        if not record.complete:  # usable interim checkpoint with the members trained so far
            save(members, record)
            log(f"interim checkpoint with {k + 1} member(s) saved to {out}")
    card = save(members, record)
    shutil.rmtree(work, ignore_errors=True)
    return card


def tc_card_fields(record: TrainedRun, data_config: DataConfig | None = None) -> dict:
    """The training record of a Tc checkpoint's card (`save_ensemble`'s `fields`); data_config: the one the
    dataset was built with when it differs from the spec's (the hydride set records its replicas)."""
    spec = record.spec
    return {
        "complete": record.complete,  # False while more ensemble members are still being trained
        "members_planned": spec.members,
        "model_config": spec.model.to_dict(),
        "train_config": spec.train.to_dict(),
        "data_config": (data_config or spec.data).to_dict(),
        "best_val_mae_supercon_k": [h["best_val_mae"] for h in record.histories],
        "epochs_trained": [len(h["epochs"]) for h in record.histories],
        "train_seconds": record.seconds,
        "hardware": record.hardware,
    }


def save_ensemble(
    out: Path, members: list, ds: Dataset, fields: dict, extra_metrics: dict | None = None, weights: str = "float16"
) -> dict:
    """Calibrate σ on the validation split of `ds`, evaluate on its test split and save `members` at `out` with
    a card of `fields` (training record: configs, histories, time, hardware), the data checksums and counts, the
    calibration, the test metrics (plus `extra_metrics`) and the provenance. Returns the card as written."""
    ens = TcEnsemble(members).eval().requires_grad_(False)
    ens.card = {"data_config": fields["data_config"]}
    t_eval = time.time()
    calibration = calibrate(ens, ds)  # (s, b) from the validation split only
    calibration.apply_to(ens)
    metrics = evaluate_checkpoint(ens, ds)
    card = {
        "sigma_scale": ens.sigma_scale,  # kept for readers of older cards; "calibration" is authoritative
        "calibration": calibration.to_dict(),
        "kind": TC_KIND,
        "data_checksums": ds.checksums,
        "dataset_counts": ds.counts(),
        "metrics_test": {**metrics, **(extra_metrics or {})},
        **fields,
        "eval_seconds": time.time() - t_eval,
        "peak_rss_mb": _peak_rss_mb(),
        **provenance(),
    }
    save_checkpoint(out, members, card, weights=weights)
    return json.loads(out.with_suffix(".json").read_text())
