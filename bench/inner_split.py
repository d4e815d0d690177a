"""Time-split model variants scored on the inner split: trained before 2005, scored on 2005-2009.

The time-split model's test rows (first reported from 2010 on) are for reporting only; a choice between variants
(architecture, element-statistics branch, embedding, loss) is made here instead, on the superconductors first reported
2005-2009 by models trained with `--split time --time-split-year 2005`. Each variant gets R² and MAE of the network;
no row from 2010 on is predicted.

    python -m bench.inner_split runs/inner/a.pt runs/inner/b.pt --doc
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import add_doc_option, fmt, publish
from gdmcd_core.model.checkpoint import load_checkpoint
from gdmcd_core.training.evaluate import dataset_for
from gdmcd_core.training.metrics import regression_metrics
from gdmcd_core.training.time_calibration import inner_rows

OUTER_YEAR = 2010


def _huber_delta(card: dict) -> float | None:
    """The Huber transition (K) the checkpoint was trained with (older cards name it huber_delta_k)."""
    tc = card.get("train_config", {})
    value = tc.get("huber_delta", tc.get("huber_delta_k"))
    return None if value is None else float(value)


def score(path: str) -> dict:
    ens = load_checkpoint(path)
    ds = dataset_for(ens)
    rows = inner_rows(ds, OUTER_YEAR)
    pred, _ = ens.predict(ds.x[rows])
    m = regression_metrics(ds.tc_k[rows], pred)
    cfg = ens.card.get("model_config", {})
    return {
        "checkpoint": Path(path).name,
        "features": cfg.get("features", 0),
        "branch_embedding": (cfg.get("branch_embedding") or "properties") if cfg.get("features") else "–",
        "members": ens.n_members,
        "huber_delta_k": _huber_delta(ens.card),
        "n": int(len(rows)),
        "r2": m["r2"],
        "mae_k": m["mae"],
        "sha256": ens.sha256[:12],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="time-split checkpoints trained with --time-split-year 2005")
    p.add_argument("--json", default="")
    add_doc_option(p, "inner_split")
    a = p.parse_args(argv)
    rows = [score(c) for c in a.checkpoints]
    lines = [
        "Superconductors first reported 2005–2009, models trained on rows first reported before 2005.",
        "",
        "| checkpoint | branch | embedding | members | Huber δ (K) | rows | R² | MAE (K) | SHA-256 |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['checkpoint']} | {r['features']} | {r['branch_embedding']} | {r['members']} | "
            f"{fmt(r['huber_delta_k'], 'g')} | {r['n']} | "
            f"{fmt(r['r2'])} | {fmt(r['mae_k'], '.2f')} | {r['sha256']} |"
        )
    best = max(rows, key=lambda r: r["r2"])
    lines.append(f"\nHighest R²: **{best['checkpoint']}**.")
    publish({"rows": rows, "best": best["checkpoint"]}, "\n".join(lines), a)
    return 0 if np.isfinite(best["r2"]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
