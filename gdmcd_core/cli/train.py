"""`gdmcd train --task {tc,hydride,formation_energy}` and `gdmcd evaluate`.

One trainer for every task (training/tasks.py): an option left out takes the task's default (tc: the
ModelConfig / TrainConfig / DataConfig defaults; hydride: the configs in checkpoints/tc_default.json;
formation_energy: the compact signed-output model of training/formation_energy.py). Bad input gets one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_USAGE = 0, 2
DESCRIPTION = (
    "Train a model (an ensemble of K) for one task and save it as a checkpoint with its card. Options left out "
    "take the task's defaults: tc, the ModelConfig / TrainConfig / DataConfig defaults; hydride, the configs of "
    "checkpoints/tc_default.json; formation_energy, the compact signed-output model of training/formation_energy.py."
)
# option -> config field, for the options whose default is the task's
MODEL_OPTIONS = {
    "width": "width",
    "layers": "layers",
    "stem": "stem",
    "features": "features",
    "branch_embedding": "branch_embedding",
}
TRAIN_OPTIONS = {
    "epochs": "epochs",
    "batch_size": "batch_size",
    "lr": "lr",
    "lr_min": "lr_min",
    "huber_delta": "huber_delta",
    "negative_margin": "negative_margin_k",
    "patience": "patience",
    "seed": "seed",
    "device": "device",
    "threads": "threads",
}
DATA_OPTIONS = {
    "split": "split",
    "split_seed": "split_seed",
    "supercon_replicas": "supercon_replicas",
    "hydride_replicas": "hydride_replicas",
    "time_split_year": "time_split_year",
}
DISTILL_OPTIONS = {
    "distill_rows": "rows",
    "distill_neighbours": "neighbours",
    "distill_min_count": "min_count",
    "distill_classifier": "classifier",
}
DATA_FLAGS = {"no_cod": "include_cod", "no_repair": "repair", "no_physical_negatives": "physical_negatives"}


def _fail(msg: str) -> int:
    from gdmcd_core.util import printable  # messages may quote files' contents

    print(f"gdmcd: error: {printable(msg)}", file=sys.stderr)
    return EXIT_USAGE


def _layers(text: str) -> tuple[int, ...]:
    try:
        layers = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"layers must be comma-separated integers such as 1,1,1,1, got {text!r}"
        ) from None
    if not layers or min(layers) < 1:
        raise argparse.ArgumentTypeError(f"every stage needs at least one block, got {text!r}")
    return layers


def _add_model_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=int, default=None)
    p.add_argument("--layers", type=_layers, default=None, help="blocks per stage, e.g. 2,2,2,2 (ResNet18)")
    p.add_argument("--stem", choices=("keep", "stock"), default=None)
    p.add_argument("--features", type=int, default=None, help="hidden width of the element-statistics branch (0: off)")
    p.add_argument(
        "--branch-embedding",
        default=None,
        help="element vectors of that branch: the 7 properties (default) or an embedding (mat2vec, magpie, ...)",
    )


def _add_train_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--patience", type=int, default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch default)")
    p.add_argument("--init-from", default="", metavar="PT", help="warm start: members start from this checkpoint's")
    p.add_argument("--lr-min", type=float, default=None)
    p.add_argument(
        "--huber-delta",
        type=float,
        default=None,
        help="Huber transition (the loss scale) in the target's unit: K, eV/atom for formation_energy",
    )
    p.add_argument(
        "--negative-margin",
        type=float,
        default=None,
        help="K below 0 that non-superconductors (Tc = 0) are pushed to (tc default 0)",
    )


def _add_data_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--supercon-replicas", type=int, default=None)
    p.add_argument("--no-repair", action="store_true", help="train on the data as shipped (no repair rules)")
    p.add_argument("--no-physical-negatives", action="store_true", help="no oxygen-stripped / insulating negatives")
    p.add_argument(
        "--split",
        choices=("random", "time", "jarvis"),
        default=None,
        help="random (paper), time (test: first reported >= 2010) or jarvis (JARVIS-Leaderboard supercon_chem "
        "train/test rows; validation carved from its train rows with --split-seed)",
    )
    p.add_argument("--split-seed", type=int, default=None)
    p.add_argument(
        "--time-split-year",
        type=int,
        default=None,
        help="--split time: rows first reported in this year or later are the test set (default 2010; 2005 trains "
        "the inner model that calibrates the time-split σ)",
    )


def add_train_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `train` sub-command's options to its parser p; returns p."""
    from gdmcd_core.training.hydrides import HYDRIDE_MODES
    from gdmcd_core.training.tasks import TASKS

    p.description = DESCRIPTION
    p.add_argument(
        "--task", choices=tuple(TASKS), default="tc", help="what to predict: Tc, Tc for hydrides, formation energy"
    )
    p.add_argument("--out", required=True, help="checkpoint path, e.g. checkpoints/my_model.pt")
    p.add_argument("--members", type=int, default=1, help="ensemble size K (default 1)")
    _add_model_options(p)
    _add_train_options(p)
    _add_data_options(p)
    p.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="ray: one member per Ray task (default local)"
    )
    p.add_argument("--address", default="", help="Ray cluster host:port (default: $GDMCD_RAY_ADDRESS, else local Ray)")
    p.add_argument("--no-cod", action="store_true", help="train on SuperCon only (paper S3 comparison)")
    p.add_argument("--hydride-replicas", type=int, default=None, help="hydride-balanced training set (paper S5)")
    p.add_argument(
        "--hydride-mode",
        choices=HYDRIDE_MODES,
        default=None,
        help="--task hydride: D_random, D_HSC1 or D_HSC200 (default hsc200; paper S5, Table 8)",
    )
    p.add_argument(
        "--distill-trees",
        default="",
        metavar="TREES",
        help="--task tc: add compositions one element substitution away from the training superconductors, labelled "
        "by these trees (a .trees.pt fitted on the same split), to the training rows (training/distill.py)",
    )
    p.add_argument(
        "--distill-classifier",
        default=None,
        metavar="SC",
        help="label them P(SC) x Tc_trees with this classifier (a .sc.pt fitted on the same split) instead of Tc_trees",
    )
    p.add_argument("--distill-rows", type=int, default=None, help="how many (default 30000)")
    p.add_argument("--distill-neighbours", type=int, default=None, help="substitutes per element (default 4)")
    p.add_argument(
        "--distill-min-count",
        type=int,
        default=None,
        help="a substitute is an element of at least this many training superconductors (default 20)",
    )
    p.add_argument(
        "--data-dir", default=None, help="folder with the data files (default: $GDMCD_DATA_DIR, ../shared/data, cache)"
    )
    p.set_defaults(handler=handle_train)
    return p


def _given(a: argparse.Namespace, options: dict[str, str]) -> dict[str, Any]:
    return {name: getattr(a, opt) for opt, name in options.items() if getattr(a, opt) is not None}


def task_from_args(a: argparse.Namespace):
    """The task named by --task (with --hydride-mode for the hydride task). Raises ValueError."""
    from gdmcd_core.training.hydrides import HydrideConfig
    from gdmcd_core.training.tasks import TASKS, hydride_task

    if a.distill_trees or any(v is not None for v in _given(a, DISTILL_OPTIONS).values()):
        return _distill_task(a)
    if a.task == "hydride" and a.hydride_replicas is not None:
        raise ValueError("--hydride-replicas does not apply to --task hydride: --hydride-mode sets the replicas")
    if a.hydride_mode is None:
        return TASKS[a.task]
    if a.task != "hydride":
        raise ValueError(f"--hydride-mode is for --task hydride, not --task {a.task}")
    return hydride_task(HydrideConfig(mode=a.hydride_mode))


def _distill_task(a: argparse.Namespace):
    from gdmcd_core.training.distill import DistillConfig
    from gdmcd_core.training.tasks import distill_task

    if a.task != "tc":
        raise ValueError(f"--distill-trees is for --task tc, not --task {a.task}")
    if not a.distill_trees:
        raise ValueError(
            "--distill-rows, --distill-neighbours, --distill-min-count and --distill-classifier need --distill-trees"
        )
    for flag, path in (("--distill-trees", a.distill_trees), ("--distill-classifier", a.distill_classifier)):
        if path and not Path(path).is_file():  # before the data is read
            raise ValueError(f"{flag}: no file {path}")
    return distill_task(DistillConfig(trees=a.distill_trees, **_given(a, DISTILL_OPTIONS)))


def spec_from_args(a: argparse.Namespace, task):
    """The task's default RunSpec with the options given. Raises ValueError for a bad value."""
    from gdmcd_core.training.run import RunSpec

    d = task.defaults()
    flags = {name: False for opt, name in DATA_FLAGS.items() if getattr(a, opt)}
    spec = RunSpec(
        model=replace(d.model, **_given(a, MODEL_OPTIONS)),
        train=replace(d.train, **_given(a, TRAIN_OPTIONS)),
        data=replace(d.data, **_given(a, DATA_OPTIONS), **flags),
        members=a.members,
        init_from=a.init_from,
    )
    if spec.members < 1 or spec.train.epochs < 1 or spec.train.batch_size < 2:
        raise ValueError("--members and --epochs must be >= 1 and --batch-size >= 2")
    return spec


def handle_train(a: argparse.Namespace) -> int:
    from gdmcd_core.model.checkpoint import CheckpointError
    from gdmcd_core.training.tasks import train
    from gdmcd_core.util_ray import RayUnavailableError

    try:
        task = task_from_args(a)
        spec = spec_from_args(a, task)
        card = train(
            task,
            spec,
            a.out,
            data_dir=a.data_dir,
            log=lambda s: print(s, file=sys.stderr),
            executor=a.executor,
            address=a.address,
        )
    except (ValueError, FileNotFoundError, ConnectionError, RayUnavailableError, CheckpointError) as exc:
        return _fail(str(exc))
    print(json.dumps(card[task.metrics_key], indent=2))
    return EXIT_OK


def add_evaluate_parser(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the `evaluate` sub-command's options to its parser p; returns p."""
    p.add_argument("--checkpoint", default=None, help="checkpoint (default: the committed checkpoints/tc_default.pt)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--data-dir", default=None, help="folder with the data files (default: as train)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--write-calibration",
        action="store_true",
        help="refit the sigma calibration (spread, distance and neighbour terms) and write it, with the test "
        "metrics it changes, into the card (the .pt file is not touched)",
    )
    p.add_argument(
        "--calibrate-on",
        choices=("val", "test"),
        default="val",
        help="rows --write-calibration fits on: val (default), or test for a time-split checkpoint (its post-2010 "
        "rows; every figure on them is then cross-fitted)",
    )
    p.add_argument(
        "--calibrate-from",
        default="",
        metavar="PT",
        help="with --write-calibration on a time-split checkpoint: fit on this inner time-split checkpoint's errors "
        "on the years between the two split years, and carry the fit over (training/time_calibration.py)",
    )
    p.add_argument(
        "--write-metrics",
        action="store_true",
        help="fill the card's missing test metrics (metrics_test: keys it lacks) and dataset_counts from this "
        "evaluation; recorded metrics are kept, the .pt file is not touched",
    )
    p.add_argument(
        "--strict-data",
        action="store_true",
        help="refuse (exit 2) when a data file's SHA-256 differs from the one the checkpoint card records "
        "(default: one warning line)",
    )
    p.set_defaults(handler=handle_evaluate)
    return p


def _checked_dataset(ens, a: argparse.Namespace):
    """The checkpoint's own dataset and split; ValueError for data that --strict-data refuses or a
    --calibrate-on the split does not allow (a mismatch without --strict-data is one warning line)."""
    from gdmcd_core.data.dataset import data_mismatch
    from gdmcd_core.training.evaluate import dataset_for

    ds = dataset_for(ens, a.data_dir)
    mismatch = data_mismatch(ens.card, getattr(ds, "checksums", {}) or {})
    if mismatch and a.strict_data:
        raise ValueError(mismatch)
    if mismatch:
        print(f"gdmcd: warning: {mismatch}", file=sys.stderr)
    if a.calibrate_on == "test" and ds.config.split != "time":
        raise ValueError(f"--calibrate-on test: only for a time-split checkpoint (this one is split {ds.config.split})")
    return ds


def _calibration(ens, ds, a: argparse.Namespace):
    """The calibration --write-calibration asks for: on the checkpoint's own val or test rows, or carried over from
    the inner time-split checkpoint --calibrate-from."""
    from gdmcd_core.data.dataset import TEST, VAL
    from gdmcd_core.model.checkpoint import load_checkpoint
    from gdmcd_core.training.calibration import calibrate
    from gdmcd_core.training.evaluate import dataset_for
    from gdmcd_core.training.time_calibration import calibrate_inner_time

    if not a.calibrate_from:
        return calibrate(ens, ds, TEST if a.calibrate_on == "test" else VAL)
    if ds.config.split != "time":
        raise ValueError(f"--calibrate-from: only for a time-split checkpoint (this one is split {ds.config.split})")
    inner = load_checkpoint(Path(a.calibrate_from), ens.device)
    return calibrate_inner_time(inner, dataset_for(inner, a.data_dir), ds.config.time_split_year)


def _evaluate(a: argparse.Namespace):
    """(the checkpoint, its test metrics), writing into its card what the options ask for."""
    from gdmcd_core.cli.cards import card_fields_problem, write_calibrated_card, write_missing_metrics
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
    from gdmcd_core.training.evaluate import evaluate_checkpoint
    from gdmcd_core.util import resolve_device

    ens = load_checkpoint(Path(a.checkpoint) if a.checkpoint else DEFAULT_CHECKPOINT, resolve_device(a.device))
    if a.write_metrics and (problem := card_fields_problem(ens.card, ens.path)):  # refused before evaluating
        raise ValueError(problem)
    ds = _checked_dataset(ens, a)
    if a.write_calibration:
        _calibration(ens, ds, a).apply_to(ens)
    metrics = evaluate_checkpoint(ens, ds)
    if a.write_calibration:
        write_calibrated_card(ens, metrics)
    if a.write_metrics:
        write_missing_metrics(ens, ds, metrics)
    return ens, metrics


def handle_evaluate(a: argparse.Namespace) -> int:
    from gdmcd_core.model.checkpoint import CheckpointError

    try:
        ens, metrics = _evaluate(a)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    metrics["checkpoint_sha256"] = ens.sha256
    if a.json:
        print(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            print(f"{k:36s} {v}")
    return EXIT_OK


__all__ = ["add_evaluate_parser", "add_train_parser", "handle_evaluate", "handle_train"]
