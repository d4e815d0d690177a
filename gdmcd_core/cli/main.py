"""The `gdmcd` command: train, evaluate, predict, design, runs, ledger, merge.

Bad input gets one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from gdmcd_core.cli.design import add_design_parser
from gdmcd_core.cli.merge import add_merge_parser
from gdmcd_core.cli.runs import add_runs_parser
from gdmcd_core.cli.trees import add_trees_parser

EXIT_USAGE = 2


def _fail(msg: str) -> int:
    print(f"gdmcd: error: {msg}", file=sys.stderr)
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


def _add_train(sub) -> None:
    from gdmcd_core.data.dataset import DataConfig
    from gdmcd_core.model.resnet import ModelConfig
    from gdmcd_core.training.loop import TrainConfig

    m, t, d = ModelConfig(), TrainConfig(), DataConfig()
    p = sub.add_parser("train", help="train a Tc model (ensemble) on SuperCon + COD and save a checkpoint")
    p.add_argument("--out", required=True, help="checkpoint path, e.g. checkpoints/my_model.pt")
    p.add_argument("--members", type=int, default=1, help="ensemble size K (default 1)")
    p.add_argument("--width", type=int, default=m.width)
    p.add_argument("--layers", type=_layers, default=m.layers, help="blocks per stage, e.g. 2,2,2,2 (ResNet18)")
    p.add_argument("--stem", choices=("keep", "stock"), default="stock")
    p.add_argument(
        "--features", type=int, default=m.features, help="hidden width of the element-statistics branch (0: off)"
    )
    p.add_argument("--epochs", type=int, default=t.epochs)
    p.add_argument("--batch-size", type=int, default=t.batch_size)
    p.add_argument("--lr", type=float, default=t.lr)
    p.add_argument("--patience", type=int, default=t.patience)
    p.add_argument("--seed", type=int, default=t.seed)
    p.add_argument("--device", default=t.device, help="auto (CUDA when present), cpu or cuda")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch default)")
    p.add_argument("--init-from", default="", metavar="PT", help="warm start: members start from this checkpoint's")
    p.add_argument("--lr-min", type=float, default=t.lr_min)
    p.add_argument("--huber-delta", type=float, default=t.huber_delta_k, help="Huber transition in K")
    p.add_argument(
        "--negative-margin",
        type=float,
        default=t.negative_margin_k,
        help="K below 0 that non-superconductors (Tc = 0) are pushed to (default %(default)s)",
    )
    p.add_argument("--supercon-replicas", type=int, default=d.supercon_replicas)
    p.add_argument("--no-repair", action="store_true", help="train on the data as shipped (no repair rules)")
    p.add_argument("--no-physical-negatives", action="store_true", help="no oxygen-stripped / insulating negatives")
    p.add_argument(
        "--split",
        choices=("random", "time", "jarvis"),
        default=d.split,
        help="random (paper), time (test: first reported >= 2010) or jarvis (JARVIS-Leaderboard supercon_chem "
        "train/test rows; validation carved from its train rows with --split-seed)",
    )
    p.add_argument("--split-seed", type=int, default=d.split_seed)
    p.add_argument(
        "--executor", choices=("local", "ray"), default="local", help="ray: one member per Ray task (default local)"
    )
    p.add_argument("--address", default="", help="Ray cluster host:port (default: $GDMCD_RAY_ADDRESS, else local Ray)")
    p.add_argument("--no-cod", action="store_true", help="train on SuperCon only (paper S3 comparison)")
    p.add_argument("--hydride-replicas", type=int, default=0, help="hydride-balanced training set (paper S5)")
    p.add_argument(
        "--data-dir", default=None, help="folder with the data files (default: $GDMCD_DATA_DIR, ../shared/data, cache)"
    )


def _cmd_train(a) -> int:
    from gdmcd_core.data.dataset import DataConfig
    from gdmcd_core.model.resnet import ModelConfig
    from gdmcd_core.training.loop import TrainConfig
    from gdmcd_core.training.run import RunSpec, run_training
    from gdmcd_core.util_ray import RayUnavailableError

    if a.members < 1 or a.epochs < 1 or a.batch_size < 2:
        return _fail("--members and --epochs must be >= 1 and --batch-size >= 2")
    try:
        spec = RunSpec(
            model=ModelConfig(width=a.width, layers=a.layers, stem=a.stem, features=a.features),
            train=TrainConfig(
                epochs=a.epochs,
                batch_size=a.batch_size,
                lr=a.lr,
                lr_min=a.lr_min,
                huber_delta_k=a.huber_delta,
                negative_margin_k=a.negative_margin,
                patience=a.patience,
                seed=a.seed,
                device=a.device,
                threads=a.threads,
            ),
            data=DataConfig(
                split=a.split,
                split_seed=a.split_seed,
                include_cod=not a.no_cod,
                hydride_replicas=a.hydride_replicas,
                supercon_replicas=a.supercon_replicas,
                repair=not a.no_repair,
                physical_negatives=not a.no_physical_negatives,
            ),
            members=a.members,
            init_from=a.init_from,
        )
        card = run_training(
            spec, a.out, data_dir=a.data_dir, log=lambda s: print(s, file=sys.stderr), executor=a.executor,
            address=a.address,
        )  # fmt: skip
    except (ValueError, FileNotFoundError, ConnectionError, RayUnavailableError) as exc:
        return _fail(str(exc))
    print(json.dumps(card["metrics_test"], indent=2))
    return 0


def _add_evaluate(sub) -> None:
    p = sub.add_parser("evaluate", help="metrics of a checkpoint on its held-out test split")
    p.add_argument("--checkpoint", default=None, help="checkpoint (default: the committed checkpoints/tc_default.pt)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default=None)
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


def _data_mismatch(card: dict, checksums: dict) -> str:
    """'' or one line naming the data files whose SHA-256 differs from the card's data_checksums."""
    recorded = card.get("data_checksums") or {}
    if not isinstance(recorded, dict):
        return ""
    bad = [f for f, h in checksums.items() if f in recorded and recorded[f] != h]
    if not bad:
        return ""
    return (
        f"data file(s) {', '.join(bad)} differ from the ones this checkpoint was trained and evaluated on "
        "(SHA-256 in its card); metrics will not match the card"
    )


def _load(path: str | None, device: str):
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
    from gdmcd_core.util import resolve_device

    return load_checkpoint(Path(path) if path else DEFAULT_CHECKPOINT, resolve_device(device))


def _cmd_evaluate(a) -> int:
    from gdmcd_core.cli.cards import write_calibrated_card, write_missing_metrics
    from gdmcd_core.data.dataset import TEST, VAL
    from gdmcd_core.model.checkpoint import CheckpointError
    from gdmcd_core.training.calibration import calibrate
    from gdmcd_core.training.evaluate import dataset_for, evaluate_checkpoint

    try:
        ens = _load(a.checkpoint, a.device)
        ds = dataset_for(ens, a.data_dir)
        mismatch = _data_mismatch(ens.card, getattr(ds, "checksums", {}) or {})
        if mismatch and a.strict_data:
            return _fail(mismatch)
        if mismatch:
            print(f"gdmcd: warning: {mismatch}", file=sys.stderr)
        if a.calibrate_on == "test" and ds.config.split != "time":
            return _fail(f"--calibrate-on test: only for a time-split checkpoint (this one is split {ds.config.split})")
        if a.write_calibration:
            calibrate(ens, ds, TEST if a.calibrate_on == "test" else VAL).apply_to(ens)
        metrics = evaluate_checkpoint(ens, ds)
        if a.write_calibration:
            write_calibrated_card(ens, metrics)
        if a.write_metrics:
            write_missing_metrics(ens, ds, metrics)
    except (CheckpointError, ValueError, FileNotFoundError) as exc:
        return _fail(str(exc))
    metrics["checkpoint_sha256"] = ens.sha256
    if a.json:
        print(json.dumps(metrics))
    else:
        for k, v in metrics.items():
            print(f"{k:36s} {v}")
    return 0


def _add_predict(sub) -> None:
    p = sub.add_parser("predict", help="predict Tc (K) of formulas")
    p.add_argument("formulas", nargs="+", metavar="FORMULA")
    p.add_argument("--checkpoint", default=None)
    p.add_argument(
        "--json",
        action="store_true",
        help="print a JSON array of {formula, parsed_formula, tc_k, tc_std_k, tc_trees_k, tc_consensus_k, "
        "distance_to_training, unseen_elements, warning} (tc_trees_k, tc_consensus_k: null without trees)",
    )
    p.add_argument("--device", default="auto")
    p.add_argument("--data-dir", default=None, help="data folder for the training-set checks (default: as train)")


def _training_reference(ens, data_dir: str | None):
    """The checkpoint's training compositions, or (None, reason) when the data files are not here."""
    from gdmcd_core.data.dataset import DataConfig
    from gdmcd_core.data.reference import training_reference

    try:
        return training_reference(DataConfig.from_dict(ens.card.get("data_config", {})), data_dir), ""
    except (FileNotFoundError, ValueError, KeyError) as exc:
        return None, f"training data not available ({exc}); distance and unseen elements not checked"


def _predict_rows(ens, good: list[str], vecs: list, data_dir: str | None, trees=None) -> list[dict]:
    """One JSON-ready row per parsed formula: Tc ± σ (σ with the distance and neighbour terms), the trees'
    Tc and the consensus when the checkpoint has trees (model/trees.py), and the training-set checks."""
    import numpy as np

    from gdmcd_core.chem.composition import format_amounts, parse_formula
    from gdmcd_core.model.trees import consensus
    from gdmcd_core.training.evaluate import FAR_L1

    x = np.stack(vecs).astype(np.float32)
    ref, why = _training_reference(ens, data_dir)
    dist, tc_nn = ref.supercon_neighbors(x) if ref is not None else (None, None)
    mean, std = ens.predict(x, distance=dist, neighbor_tc=tc_nn)
    tc_trees = trees.predict(x) if trees is not None else None
    both = consensus(mean, tc_trees) if trees is not None else None
    rows = []
    for i, f in enumerate(good):
        unseen = ref.unseen_elements(x[i]) if ref is not None else None
        d = None if dist is None or not np.isfinite(dist[i]) else round(float(dist[i]), 4)
        notes = [why] if why else []
        if unseen:
            notes.append(f"elements never seen in training: {', '.join(unseen)}; the prediction is an extrapolation")
        if d is not None and d >= FAR_L1:
            notes.append(f"far from every training superconductor (L1 {d:.2f} >= {FAR_L1:g})")
        rows.append(
            {
                "formula": f,
                "parsed_formula": format_amounts(parse_formula(f)),
                "tc_k": round(float(mean[i]), 3),
                "tc_std_k": round(float(std[i]), 3),
                "tc_trees_k": None if tc_trees is None else round(float(tc_trees[i]), 3),
                "tc_consensus_k": None if both is None else round(float(both[i]), 3),
                "distance_to_training": d,
                "unseen_elements": unseen,
                "warning": "; ".join(notes) or None,
            }
        )
    return rows


def _cmd_predict(a) -> int:
    from gdmcd_core.chem.composition import FormulaError, to_vector
    from gdmcd_core.model.checkpoint import CheckpointError
    from gdmcd_core.model.trees import second_opinion

    good, vecs, bad = [], [], []
    for f in a.formulas:
        try:
            vecs.append(to_vector(f))
            good.append(f)
        except FormulaError as exc:
            bad.append(str(exc))
    try:
        ens = _load(a.checkpoint, a.device) if good else None
    except (CheckpointError, ValueError) as exc:
        return _fail(str(exc))
    trees, why = second_opinion(ens) if good else (None, "")
    if why:
        print(f"gdmcd: warning: no second opinion from trees: {why}", file=sys.stderr)
    rows = _predict_rows(ens, good, vecs, a.data_dir, trees) if good else []
    if a.json:
        print(json.dumps(rows))
    else:
        for r in rows:
            unc = f" ± {r['tc_std_k']:.1f}" if ens is not None and ens.has_uncertainty else ""
            second = (
                ""
                if r["tc_trees_k"] is None
                else f"   trees {r['tc_trees_k']:.1f} K, consensus {r['tc_consensus_k']:.1f} K"
            )
            print(f"{r['formula']:30s} {r['tc_k']:8.2f}{unc} K{second}   (scored as {r['parsed_formula']})")
            if r["warning"]:
                print(f"  warning: {r['warning']}")
    for msg in bad:
        print(f"gdmcd: error: {msg}", file=sys.stderr)
    return EXIT_USAGE if bad else 0


def _add_ledger(sub) -> None:
    p = sub.add_parser("ledger", help="apply the data repair rules and write the ledger of every row they change")
    p.add_argument("--out", default="data_repair_ledger.csv", help="ledger CSV to write (default: %(default)s)")
    p.add_argument("--data-dir", default=None)


def _cmd_ledger(a) -> int:
    from gdmcd_core.data.paths import SUPERCON_FILE, SUPERCON_ROWS_FILE, DataNotFoundError, find_data_dir
    from gdmcd_core.data.repair import load_raw_formulas, repair_supercon, write_ledger

    try:
        data_dir = Path(a.data_dir) if a.data_dir else find_data_dir((SUPERCON_FILE,))
        raw = load_raw_formulas(data_dir / SUPERCON_ROWS_FILE) if (data_dir / SUPERCON_ROWS_FILE).is_file() else None
        table = pd.read_csv(data_dir / SUPERCON_FILE)
        kept, ledger, counts = repair_supercon(table, raw)
        write_ledger(ledger, a.out)
    except (DataNotFoundError, OSError, ValueError) as exc:
        return _fail(str(exc))
    print("| rule | rows | action |\n|---|---:|---|")
    for rule, n in counts.items():
        actions = ", ".join(sorted(set(ledger.loc[ledger["rule"] == rule, "action"]))) or "-"
        print(f"| {rule} | {n} | {actions} |")
    print(f"\n{len(table)} SuperCon compositions -> {len(kept)} kept; ledger: {a.out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gdmcd", description="Gradient Driven Material Composition Design of superconductors"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_train(sub)
    _add_evaluate(sub)
    _add_predict(sub)
    _add_ledger(sub)
    add_design_parser(sub)
    add_runs_parser(sub)
    add_merge_parser(sub)
    add_trees_parser(sub)
    return parser


COMMANDS = {"train": _cmd_train, "evaluate": _cmd_evaluate, "predict": _cmd_predict, "ledger": _cmd_ledger}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = COMMANDS.get(args.command) or getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return handler(args)
    except KeyboardInterrupt:
        print("gdmcd: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
