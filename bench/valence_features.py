"""Oxygen-aware valence features for the trees and the classifier: chosen on validation rows only.

For each committed checkpoint's data and split (random: tc_default, time: tc_timesplit, JARVIS: tc_jarvis), the Tc
trees (the committed settings: mat2vec statistics, `--max-iter` rounds) and the superconductor classifier are fitted
twice, without and with the valence features of chem/valence_features.py (anion share, O per cation, oxidation-state
window, net charge at typical valences, formal Cu valence), and scored on the checkpoint's validation rows: the
trees' and the consensus' MAE on the validation superconductors, the classifier's log loss, precision and recall.
The rule, fixed before the run: a part takes the features when its validation figure (trees: consensus MAE;
classifier: log loss) is lower with them on average over the splits. An oxygen scan of YBa2Cu3O_y (y 4 to 7;
YBa2Cu3O6 and below are insulators) is printed beside, a chemistry check that is not part of the rule. No test row
is predicted here.

    python -m bench.valence_features --doc          # about 20 min on 2 CPU cores
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from bench.common import add_doc_option, fmt, publish, validation_superconductors
from gdmcd_core.chem.composition import to_vectors
from gdmcd_core.model.sc_classifier import (
    ClassifierConfig,
    classifier_rows,
    fit_classifier,
    labelled_rows,
    validation_metrics,
)
from gdmcd_core.model.trees import TreeConfig, consensus, fit_trees, training_rows
from gdmcd_core.util import REPO_ROOT

CHECKPOINTS = {
    "random": "checkpoints/tc_default.pt",
    "time": "checkpoints/tc_timesplit.pt",
    "jarvis": "checkpoints/tc_jarvis.pt",
}
OXYGEN_SCAN = tuple(f"YBa2Cu3O{y}" for y in ("4", "5", "6", "6.5", "7"))


def score_split(name: str, trees_config: TreeConfig, clf_config: ClassifierConfig, threads: int) -> list[dict]:
    """Two rows (valence off, on): validation figures of the trees, the consensus and the classifier."""
    _, ds, val_sc, net = validation_superconductors(REPO_ROOT / CHECKPOINTS[name])
    rows = training_rows(ds, trees_config)
    y = ds.tc_k[val_sc]
    parts = [labelled_rows(ds, r, clf_config.negative_weight) for r in classifier_rows(ds)]
    scan = to_vectors(list(OXYGEN_SCAN))
    out = []
    for valence in (False, True):
        t0 = time.perf_counter()
        with threadpool_limits(limits=threads):
            trees = fit_trees(ds.x[rows], ds.tc_k[rows], replace(trees_config, valence=valence))
            clf, how = fit_classifier(parts[0], parts[1], replace(clf_config, valence=valence))
        tc = trees.predict(ds.x[val_sc])
        m = validation_metrics(parts[1][1], clf.probability(parts[1][0]))
        row = {
            "split": name,
            "valence": valence,
            "val_trees_mae_k": float(np.abs(tc - y).mean()),
            "val_consensus_mae_k": float(np.abs(consensus(net, tc) - y).mean()),
            "val_log_loss": m["log_loss"],
            "val_precision": m["precision"],
            "val_recall": m["recall"],
            "rounds": how["rounds"],
            "scan_trees_k": [round(float(v), 1) for v in trees.predict(scan)],
            "scan_p_sc": [round(float(v), 3) for v in clf.probability(scan)],
            "fit_s": time.perf_counter() - t0,
            "n_val_sc": int(len(val_sc)),
        }
        print(
            f"{name:6s} valence {valence!s:5s} trees {row['val_trees_mae_k']:.3f} K, consensus "
            f"{row['val_consensus_mae_k']:.3f} K, log loss {row['val_log_loss']:.4f}, scan P {row['scan_p_sc']}, "
            f"scan trees {row['scan_trees_k']} ({row['fit_s']:.0f} s)",
            flush=True,
        )
        out.append(row)
    return out


def decide(rows: list[dict]) -> dict[str, bool]:
    """The rule of the module docstring: {"trees": ..., "classifier": ...}, True where the features are taken."""

    def mean(key: str, valence: bool) -> float:
        return float(np.mean([r[key] for r in rows if r["valence"] is valence]))

    return {
        "trees": mean("val_consensus_mae_k", True) < mean("val_consensus_mae_k", False),
        "classifier": mean("val_log_loss", True) < mean("val_log_loss", False),
    }


def markdown(rows: list[dict], choice: dict[str, bool], trees_config: TreeConfig) -> str:
    lines = [
        f"Trees: {trees_config.max_iter} rounds, embedding {trees_config.embedding or 'none'}; classifier: the "
        "committed settings (rounds chosen on the validation log loss). Validation rows only; MAE on the validation "
        "superconductors, consensus at the even weight.",
        "",
        "| split | valence features | trees MAE (K) | consensus MAE (K) | classifier log loss | precision | recall |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['split']} | {'yes' if r['valence'] else 'no'} | {fmt(r['val_trees_mae_k'])} | "
            f"{fmt(r['val_consensus_mae_k'])} | {r['val_log_loss']:.4f} | {fmt(r['val_precision'])} | "
            f"{fmt(r['val_recall'])} |"
        )
    lines += [
        "",
        "Oxygen scan (a chemistry check, not part of the rule): P(superconductor) and the trees' Tc (K) for "
        + ", ".join(OXYGEN_SCAN)
        + ".",
        "",
        "| split | valence features | P(SC) | trees Tc (K) |",
        "|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['split']} | {'yes' if r['valence'] else 'no'} | {' / '.join(f'{v:.2f}' for v in r['scan_p_sc'])} | "
            f"{' / '.join(f'{v:.0f}' for v in r['scan_trees_k'])} |"
        )
    taken = ", ".join(f"{part}: {'with' if on else 'without'} them" for part, on in choice.items())
    return "\n".join(lines) + f"\n\nChosen (lower mean validation figure over the splits): {taken}."


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--splits", nargs="+", choices=tuple(CHECKPOINTS), default=list(CHECKPOINTS))
    p.add_argument("--max-iter", type=int, default=500, help="tree rounds (default %(default)s)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="", help="also write the rows to this JSON file")
    add_doc_option(p, "valence_features")
    a = p.parse_args(argv)
    trees_config = replace(TreeConfig(), max_iter=a.max_iter, embedding="mat2vec").validate()
    rows = [r for s in a.splits for r in score_split(s, trees_config, ClassifierConfig(), a.threads)]
    choice = decide(rows)
    publish({"rows": rows, "chosen": choice, "max_iter": a.max_iter}, markdown(rows, choice, trees_config), a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
