"""The `gdmcd` command: train, evaluate, predict, design, runs, ledger, merge.

Bad input gets one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable
from pathlib import Path

EXIT_USAGE = 2
# Every sub-command: its one-line help and the function that adds its options to its parser (a name in this module
# or module.function). Only the chosen sub-command's options are added, so `gdmcd --help` imports no torch or pandas.
SUBCOMMANDS = {
    "train": (
        "train a model (ensemble) for a task (--task tc: Tc on SuperCon + COD) and save a checkpoint",
        "gdmcd_core.cli.train.add_train_parser",
    ),
    "evaluate": ("metrics of a checkpoint on its held-out test split", "gdmcd_core.cli.train.add_evaluate_parser"),
    "predict": ("predict Tc (K) of formulas", "_add_predict"),
    "ledger": ("apply the data repair rules and write the ledger of every row they change", "_add_ledger"),
    "design": (
        "design compositions with high predicted Tc (gradient descent on the frozen model)",
        "gdmcd_core.cli.design.add_design_parser",
    ),
    "runs": (
        "list run folders; finalize or resume a stopped or interrupted run",
        "gdmcd_core.cli.runs.add_runs_parser",
    ),
    "merge": (
        "merge ensembles of the same model and split (e.g. other seeds) into one checkpoint",
        "gdmcd_core.cli.merge.add_merge_parser",
    ),
    "trees": (
        "fit gradient-boosted trees on element statistics beside a checkpoint (a second opinion on Tc)",
        "gdmcd_core.cli.trees.add_trees_parser",
    ),
}


def _fail(msg: str) -> int:
    from gdmcd_core.util import printable  # messages may quote files' contents

    print(f"gdmcd: error: {printable(msg)}", file=sys.stderr)
    return EXIT_USAGE


def _load(path: str | None, device: str):
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
    from gdmcd_core.util import resolve_device

    return load_checkpoint(Path(path) if path else DEFAULT_CHECKPOINT, resolve_device(device))


def _add_predict(p: argparse.ArgumentParser) -> None:
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


def _predict_rows(ens, good: list[str], vecs: list, data_dir: str | None, trees=None) -> list[dict]:
    """One JSON-ready row per parsed formula: Tc ± σ (σ with the distance and neighbour terms), the trees'
    Tc and the consensus when the checkpoint has trees (model/trees.py), and the training-set checks."""
    import numpy as np

    from gdmcd_core.chem.composition import format_amounts, parse_formula
    from gdmcd_core.model.trees import consensus
    from gdmcd_core.training.evaluate import prediction_warnings, training_reference_for

    x = np.stack(vecs).astype(np.float32)
    ref, why = training_reference_for(ens.card, data_dir)
    dist, tc_nn = ref.supercon_neighbors(x) if ref is not None else (None, None)
    mean, std = ens.predict(x, distance=dist, neighbor_tc=tc_nn)
    tc_trees = trees.predict(x) if trees is not None else None
    both = consensus(mean, tc_trees) if trees is not None else None
    warnings = prediction_warnings(x, ref, why, dist)
    rows = []
    for i, f in enumerate(good):
        rows.append(
            {
                "formula": f,
                "parsed_formula": format_amounts(parse_formula(f)),
                "tc_k": round(float(mean[i]), 3),
                "tc_std_k": round(float(std[i]), 3),
                "tc_trees_k": None if tc_trees is None else round(float(tc_trees[i]), 3),
                "tc_consensus_k": None if both is None else round(float(both[i]), 3),
                "distance_to_training": None if dist is None or not np.isfinite(dist[i]) else round(float(dist[i]), 4),
                "unseen_elements": ref.unseen_elements(x[i]) if ref is not None else None,
                "warning": warnings[i],
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


def _add_ledger(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="data_repair_ledger.csv", help="ledger CSV to write (default: %(default)s)")
    p.add_argument("--data-dir", default=None)


def _cmd_ledger(a) -> int:
    import pandas as pd

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


def _options_adder(command: str) -> Callable[[argparse.ArgumentParser], None]:
    module, _, name = SUBCOMMANDS[command][1].rpartition(".")
    return getattr(importlib.import_module(module), name) if module else globals()[name]


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The `gdmcd` parser; the options of sub-command `chosen` only (None: of every sub-command)."""
    parser = argparse.ArgumentParser(
        prog="gdmcd", description="Gradient Driven Material Composition Design of superconductors"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command, (text, _) in SUBCOMMANDS.items():
        p = sub.add_parser(command, help=text)
        if chosen is None or command == chosen:
            _options_adder(command)(p)
    return parser


COMMANDS = {"predict": _cmd_predict, "ledger": _cmd_ledger}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser(chosen=next((a for a in argv if not a.startswith("-")), ""))  # the first word
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
