"""The `gdmcd` command: train, evaluate, predict, design, runs, ledger, merge, trees, classifier, campaign.

Bad input gets one clear line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
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
    "predict": (
        "predict Tc (K) of formulas: P(superconductor), Tc if superconducting, expected Tc",
        "gdmcd_core.cli.predict.add_predict_parser",
    ),
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
    "classifier": (
        "fit P(superconductor) trees beside a checkpoint (the first part of the two-part output)",
        "gdmcd_core.cli.classifier.add_classifier_parser",
    ),
    "campaign": (
        "campaigns with the lab: add runs, propose a batch, import measured results, status, export",
        "gdmcd_core.cli.campaign.add_campaign_parser",
    ),
}


def _fail(msg: str) -> int:
    from gdmcd_core.util import printable  # messages may quote files' contents

    print(f"gdmcd: error: {printable(msg)}", file=sys.stderr)
    return EXIT_USAGE


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


COMMANDS = {"ledger": _cmd_ledger}


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
