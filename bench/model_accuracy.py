"""Accuracy of the committed Tc checkpoints on their held-out test splits (paper Tables 1 and 6).

    python bench/model_accuracy.py [--json]

For each checkpoint in checkpoints/ (default ensemble, each of its members alone, ResNet18,
SuperCon-only, time split): SuperCon test MAE and R², precision/recall of "Tc > t" at
t = 0, 1, 5 K on the whole test split (SuperCon + COD; the SuperCon-only model is judged on the
same rows as the default model, COD test rows included), ensemble calibration, training time.
The tree and nearest-neighbour baselines on the same splits are in bench/baselines.py.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace

import numpy as np

from bench.common import add_doc_option, printed, write_doc
from gdmcd_core.data.dataset import build_dataset
from gdmcd_core.model.checkpoint import CHECKPOINT_DIR, load_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.training.evaluate import dataset_for, evaluate_checkpoint

ROWS = [
    ("tc_default.pt", "default: compact ensemble (mean of members)"),
    ("tc_resnet18.pt", "ResNet18, stock stem (paper's model)"),
    ("tc_supercon_only.pt", "compact, SuperCon only (no COD)"),
    ("tc_timesplit.pt", "compact, time split (test: first reported >= 2010)"),
]


def rows() -> list[dict]:
    out = []
    for name, label in ROWS:
        path = CHECKPOINT_DIR / name
        if not path.is_file():
            continue
        ens = load_checkpoint(path)
        ds = dataset_for(ens)
        if not ds.config.include_cod:  # judge a SuperCon-only model on the same test split as the others
            ds = build_dataset(replace(ds.config, include_cod=True))
        m = evaluate_checkpoint(ens, ds)
        card = ens.card
        out.append(
            {
                "label": label,
                "file": name,
                "members": ens.n_members,
                "train_min": card.get("train_seconds", np.nan) / 60,
                **m,
            }
        )
        if ens.n_members > 1:  # each member alone: what one model gives
            for k, member in enumerate(ens.members):
                single = TcEnsemble([member], card=card).eval()
                mk = evaluate_checkpoint(single, ds)
                out.append({"label": f"  member {k} alone", "file": name, "members": 1, "train_min": np.nan, **mk})
    return out


def fmt(v, spec=".3f") -> str:
    return "–" if v is None or (isinstance(v, float) and np.isnan(v)) else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--json", action="store_true")
    add_doc_option(ap, "model_accuracy")
    a = ap.parse_args()
    table = rows()
    if a.json:
        print(json.dumps(table, default=float))
        return
    with printed() as tables:
        print(
            "| model | split | K | SC test MAE (K) | SC test R² | precision @0/1/5 K | recall @0/1/5 K | ±1σ / ±2σ coverage | train (min) |"
        )
        print("|---|---|---:|---:|---:|---|---|---|---:|")
        for r in table:
            prec = "/".join(fmt(r[f"precision_at_{t}k"], ".2f") for t in (0, 1, 5))
            rec = "/".join(fmt(r[f"recall_at_{t}k"], ".2f") for t in (0, 1, 5))
            cov = f"{r['coverage_1sigma']:.2f} / {r['coverage_2sigma']:.2f}" if "coverage_1sigma" in r else "–"
            print(
                f"| {r['label']} | {r['split']} | {r['members']} | {r['supercon_test_mae_k']:.2f} | {r['supercon_test_r2']:.3f} "
                f"| {prec} | {rec} | {cov} | {fmt(r['train_min'], '.1f')} |"
            )
        print(
            f"\nTest rows: {table[0]['n_test_supercon']} SuperCon + {table[0]['n_test_nonsc']} COD (random split, seed 0)."
            if table
            else "no checkpoints found"
        )
    if a.doc:
        write_doc(a.doc, tables.getvalue(), checkpoints=sorted({CHECKPOINT_DIR / r["file"] for r in table}))


if __name__ == "__main__":
    main()
