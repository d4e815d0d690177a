"""What a model can be trained to predict, and the one way to train it: `train(task, spec, out)`.

A `Task` names a target (what the model predicts and in which unit), where its rows come from, its default
configs and how its checkpoint's card is written. Every task trains the same `TcResNet` with the same loop
(training/loop.py) and the same resumable, optionally Ray-distributed run of K members (training/run.py):

    tc                Tc in K, SuperCon + COD (+ physical negatives); the Tc card (calibrated σ, test metrics)
    hydride           Tc in K on the hydride-balanced set (paper S5, training/hydrides.py); the Tc card plus the
                      hydride fields; default configs from checkpoints/tc_default.json
    tc + distillation `distill_task`: tc with compositions labelled by trees added to the training rows
                      (training/distill.py); the Tc card plus `distill`
    formation_energy  E_f in eV/atom on JARVIS-DFT 3D (training/formation_energy.py); a signed output

`gdmcd train --task NAME` trains one (cli/train.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from gdmcd_core.data.dataset import VAL, DataConfig, Dataset, build_dataset
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.kinds import HYDRIDE_KIND
from gdmcd_core.model.resnet import TcResNet
from gdmcd_core.training import formation_energy, hydrides
from gdmcd_core.training.distill import DistillConfig, distill_rows
from gdmcd_core.training.loop import TrainRows
from gdmcd_core.training.run import RunSpec, TrainedRun, run_identity, save_ensemble, tc_card_fields, train_members


@dataclass(frozen=True)
class Task:
    """One training target. The loss scale is the default `train.huber_delta` of `defaults()`, in `unit`."""

    name: str  # as `gdmcd train --task` takes it
    target: str  # what the model predicts, e.g. "Tc"
    unit: str  # of the target, its loss scale and its errors, e.g. "K"
    defaults: Callable[[], RunSpec]  # the default model, training and data configs (one member)
    dataset: Callable[[DataConfig, str | None], Any]  # (data config, data folder) -> the rows with their split
    rows: Callable[[Any], TrainRows]  # that dataset -> what the training loop sees
    save: Callable[[Path, list[TcResNet], Any, TrainedRun], dict]  # evaluate, write the card, save; the card
    metrics_key: str = "metrics_test"  # the card entry with the test metrics
    settings: Mapping[str, Any] = field(default_factory=dict)  # task options (JSON-ready), part of a run's identity


def tc_rows(ds: Dataset) -> TrainRows:
    """Training rows with their replicas; early stopping on the validation superconductors."""
    val = ds.indices(VAL)
    return TrainRows(ds.x, ds.tc_k, ds.train_indices(), val[ds.is_supercon[val]])


def _save_tc(out: Path, members: list[TcResNet], ds: Dataset, record: TrainedRun) -> dict:
    return save_ensemble(out, members, ds, tc_card_fields(record))


def _save_hydride(
    out: Path, members: list[TcResNet], ds: Dataset, record: TrainedRun, config: hydrides.HydrideConfig
) -> dict:
    """The Tc card (calibration, test metrics on the set's own split) plus the hydride fields, where the configs
    came from, and the Tc MAE on the non-hydride SuperCon test rows (paper Table 8)."""
    mae, n_test = hydrides.non_hydride_test_mae(TcEnsemble(members).eval(), ds)
    default_model, _, _, source = hydrides.default_configs()
    fields = {
        **tc_card_fields(record, ds.config),  # ds.config: with the hydride_replicas the set was built with
        **hydrides.hydride_card_fields(ds, config),
        "kind": HYDRIDE_KIND,
        "configs_from": source if record.spec.model == default_model else f"command line over {source}",
        "init_from": record.spec.init_from,
        "total_seconds": time.time() - record.started,
    }
    extra = {"supercon_nonhydride_test_mae_k": mae, "n_test_supercon_nonhydride": n_test}
    return save_ensemble(out, members, ds, fields, extra)


def _hydride_defaults() -> RunSpec:
    model, train, data, _ = hydrides.default_configs()
    return RunSpec(model=model, train=train, data=data)


def hydride_task(config: hydrides.HydrideConfig = hydrides.HydrideConfig()) -> Task:
    """The hydride task for one way of building the training set (D_random, D_HSC1 or D_HSC200)."""
    return Task(
        name="hydride",
        target="Tc",
        unit="K",
        defaults=_hydride_defaults,
        dataset=lambda data, data_dir: hydrides.build_hydride_dataset(data, config, data_dir),
        rows=tc_rows,
        save=lambda out, members, ds, record: _save_hydride(out, members, ds, record, config),
        settings={"hydride_config": asdict(config)},
    )


TC = Task(
    name="tc",
    target="Tc",
    unit="K",
    defaults=RunSpec,
    dataset=build_dataset,
    rows=tc_rows,
    save=_save_tc,
)
FORMATION_ENERGY = Task(
    name="formation_energy",
    target="formation energy",
    unit=formation_energy.UNIT,
    defaults=lambda: RunSpec(
        model=formation_energy.MODEL_CONFIG, train=formation_energy.TRAIN_CONFIG, data=formation_energy.DATA_CONFIG
    ),
    dataset=formation_energy.build_formation_dataset,
    rows=lambda data: data.rows(),
    save=formation_energy.save_formation_energy_model,
    metrics_key="metrics",
)
TASKS: dict[str, Task] = {t.name: t for t in (TC, hydride_task(), FORMATION_ENERGY)}


def distill_task(config: DistillConfig) -> Task:
    """The tc task with the teacher trees' substituted compositions added once each to the training rows
    (training/distill.py); early stopping, σ and the test figures use the data's own rows only."""
    made: dict[str, Any] = {}

    def rows(ds: Dataset) -> TrainRows:
        base = tc_rows(ds)
        x, y, made["distill"] = distill_rows(ds, config)
        extra = len(base.x) + np.arange(len(x))
        return TrainRows(
            np.concatenate([base.x, x]), np.concatenate([base.y, y]), np.concatenate([base.train, extra]), base.val
        )

    def save(out: Path, members: list[TcResNet], ds: Dataset, record: TrainedRun) -> dict:
        return save_ensemble(out, members, ds, {**tc_card_fields(record), "distill": made["distill"]})

    return replace(TC, rows=rows, save=save, settings={"distill": config.to_dict()})


def train(
    task: Task,
    spec: RunSpec,
    out: str | Path,
    data_dir: str | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    executor: str = "local",
    address: str = "",
) -> dict:
    """Train `spec.members` models of `task` and save the checkpoint at `out` with the task's card; returns the card.

    A run stopped part way resumes when started again with the same task and spec (training/run.py);
    executor "ray" trains the members as Ray tasks at `address`.
    """
    started = time.time()
    out = Path(out)
    ds = task.dataset(spec.data, data_dir)
    log(f"task {task.name}: {task.target} in {task.unit}, {spec.members} member(s)")
    log(f"dataset: {ds.counts()}")
    identity = run_identity(spec, {"name": task.name, **task.settings})
    rows = task.rows(ds)
    if (added := len(rows.x) - len(ds.x)) > 0:  # e.g. distillation's substituted compositions
        log(f"training rows per epoch: {len(rows.train)}, {added} of them added by the task")
    return train_members(
        spec,
        rows,
        out,
        lambda members, record: task.save(out, members, ds, record),
        identity,
        progress=progress,
        log=log,
        executor=executor,
        address=address,
        started=started,
    )


__all__ = ["FORMATION_ENERGY", "TASKS", "TC", "Task", "distill_task", "hydride_task", "tc_rows", "train"]
