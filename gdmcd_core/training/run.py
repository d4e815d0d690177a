"""A full, resumable training run: K ensemble members -> one checkpoint with its model card.

Work in progress is kept in `<out>.work/` (one resumable state per member, saved after every
epoch), so a stopped or crashed run continues where it left off when started again with the
same arguments. The finished checkpoint records the model, training and data configs, data
checksums, split seed, dataset counts, test metrics, training time, hardware and code version.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from gdmcd_core.data.dataset import DataConfig, Dataset, build_dataset
from gdmcd_core.model.checkpoint import load_checkpoint, save_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.training.calibration import calibrate
from gdmcd_core.training.evaluate import evaluate_checkpoint
from gdmcd_core.training.loop import TrainConfig, resolve_device, train_model
from gdmcd_core.util import atomic_write_text, provenance


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
    ens = load_checkpoint(spec.init_from)
    if ens.config != spec.model:
        raise ValueError(f"--init-from {spec.init_from}: its model config {ens.config} differs from {spec.model}")
    return [m.state_dict() for m in ens.members]


def run_training(
    spec: RunSpec,
    out: str | Path,
    data_dir: str | None = None,
    progress: bool = True,
    log=print,
    executor: str = "local",
    address: str = "",
) -> dict:
    """Train `spec.members` models and save the ensemble checkpoint at `out`. Returns the card.

    executor "ray": the members not yet trained train at once, one Ray task each (members_ray.py), at
    `address` (else $GDMCD_RAY_ADDRESS, else a local Ray); the checkpoint is assembled as below."""
    out = Path(out)
    work = out.with_name(out.name + ".work")
    work.mkdir(parents=True, exist_ok=True)
    identity = spec.to_dict()  # what must match to resume; device and threads may change between attempts
    identity["train"] = {k: v for k, v in identity["train"].items() if k not in ("device", "threads")}
    spec_json = json.dumps(identity, sort_keys=True)
    spec_file = work / "spec.json"
    if spec_file.is_file() and spec_file.read_text() != spec_json:
        raise ValueError(f"{work} holds an unfinished run with different settings; delete it or use the same options")
    atomic_write_text(spec_file, spec_json)
    ds: Dataset = build_dataset(spec.data, data_dir)
    log(f"dataset: {ds.counts()}")
    device = resolve_device(spec.train.device)
    members, histories, seconds = [], [], 0.0
    warm = _warm_start_weights(spec) if spec.init_from else None
    if executor == "ray":
        from gdmcd_core.training.members_ray import train_members_on_ray

        todo = [k for k in range(spec.members) if not (work / f"member{k}.done.pt").is_file()]
        train_members_on_ray(spec, ds, todo, work, warm, address, log)
    elif executor != "local":
        raise ValueError(f"executor must be 'local' or 'ray', got {executor!r}")
    for k in range(spec.members):
        done = work / f"member{k}.done.pt"
        tcfg = replace(spec.train, seed=spec.train.seed + k)
        if done.is_file():
            blob = torch.load(done, map_location="cpu", weights_only=True)
            m = TcResNet(spec.model)
            m.load_state_dict(blob["model"])
            members.append(m.eval())
            histories.append(blob["history"])
            seconds += blob["history"].get("train_seconds", 0.0)
            log(f"member {k + 1}/{spec.members}: already trained (resumed)")
            continue
        state_file = work / f"member{k}.state.pt"
        resume = torch.load(state_file, map_location="cpu", weights_only=True) if state_file.is_file() else None

        def save_state(row: dict, state_file: Path = state_file) -> None:
            tmp = state_file.with_suffix(".tmp")
            torch.save(row["state"], tmp)
            os.replace(tmp, state_file)

        log(f"member {k + 1}/{spec.members}: training (seed {tcfg.seed})" + (" — resuming" if resume else ""))
        init = warm[k % len(warm)] if warm else None
        model, hist = train_model(
            ds, spec.model, tcfg, progress=progress, on_epoch=save_state, resume_state=resume, init_weights=init
        )
        tmp = done.with_suffix(".tmp")
        torch.save({"model": model.cpu().state_dict(), "history": hist}, tmp)
        os.replace(tmp, done)
        state_file.unlink(missing_ok=True)
        members.append(model.cpu().eval())
        histories.append(hist)
        seconds += hist["train_seconds"]
        if k + 1 < spec.members:  # usable interim checkpoint with the members trained so far
            _save(out, members, histories, seconds, spec, ds, device, complete=False)
            log(f"interim checkpoint with {k + 1} member(s) saved to {out}")
    card = _save(out, members, histories, seconds, spec, ds, device, complete=True)
    shutil.rmtree(work, ignore_errors=True)
    return card


def _save(
    out: Path, members: list, histories: list, seconds: float, spec: RunSpec, ds: Dataset, device, complete: bool
) -> dict:
    """Evaluate the members on the test split and save them with the model card."""
    return save_ensemble(
        out,
        members,
        ds,
        {
            "complete": complete,  # False while more ensemble members are still being trained
            "members_planned": spec.members,
            "model_config": spec.model.to_dict(),
            "train_config": spec.train.to_dict(),
            "data_config": spec.data.to_dict(),
            "best_val_mae_supercon_k": [h["best_val_mae_supercon"] for h in histories],
            "epochs_trained": [len(h["epochs"]) for h in histories],
            "train_seconds": seconds,
            "hardware": _hardware(device),
        },
    )


def save_ensemble(out: Path, members: list, ds: Dataset, fields: dict) -> dict:
    """Calibrate σ on the validation split of `ds`, evaluate on its test split and save `members` at `out` with
    a card of `fields` (training record: configs, histories, time, hardware), the data checksums and counts, the
    calibration, the test metrics and the provenance. Returns the card as written."""
    ens = TcEnsemble(members).eval().requires_grad_(False)
    ens.card = {"data_config": fields["data_config"]}
    t_eval = time.time()
    calibration = calibrate(ens, ds)  # (s, b) from the validation split only
    calibration.apply_to(ens)
    metrics = evaluate_checkpoint(ens, ds)
    card = {
        "sigma_scale": ens.sigma_scale,  # kept for readers of older cards; "calibration" is authoritative
        "calibration": calibration.to_dict(),
        "kind": "tc_regressor",
        "data_checksums": ds.checksums,
        "dataset_counts": ds.counts(),
        "metrics_test": metrics,
        **fields,
        "eval_seconds": time.time() - t_eval,
        "peak_rss_mb": _peak_rss_mb(),
        **provenance(),
    }
    save_checkpoint(out, members, card)
    return json.loads(out.with_suffix(".json").read_text())
