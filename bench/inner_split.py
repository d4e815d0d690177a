"""Time-split model variants scored on the inner split: trained before 2005, scored on 2005-2009.

The time-split model's test rows (first reported from 2010 on) are for reporting only; a choice between variants
(architecture, element-statistics branch, embedding, loss) is made here instead, on the superconductors first reported
2005-2009 by models trained with `--split time --time-split-year 2005`. Each variant gets R² and MAE of the network;
no row from 2010 on is predicted.

Where trees were fitted beside a checkpoint (`gdmcd trees --checkpoint runs/inner/a.pt`, on its pre-2005
superconductors) the same rows also score the answers built from the network and the trees (model/hurdle.py):
the trees alone, the consensus (their weighted mean where the network says Tc > 0 K, else 0 K; the network's
weight from the trees' card, fitted on the pre-2005 validation rows) and Tc if superconducting
(the consensus, with the trees' Tc where the network says 0 K: the column `gdmcd predict` prints as tc_if_sc_k).
The answer with the highest R² on these rows is named per checkpoint (`best_predictor`); it informs, it does not
set, what the model card reports: the card's headline `time_r2` is the ensemble's.

    python -m bench.inner_split runs/inner/a.pt runs/inner/b.pt --doc
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from bench.common import add_doc_option, fmt, publish
from gdmcd_core.model.checkpoint import load_checkpoint
from gdmcd_core.model.trees import companion_trees, consensus, tc_if_superconducting
from gdmcd_core.training.evaluate import dataset_for
from gdmcd_core.training.metrics import regression_metrics
from gdmcd_core.training.time_calibration import inner_rows

OUTER_YEAR = 2010
# the answers scored per checkpoint: the network alone, and with trees beside it the trees, the consensus and Tc if
# superconducting (module docstring); keys of `score`'s "predictors"
PREDICTORS = ("ensemble", "trees", "consensus", "tc_if_sc")


def predictor_values(ens, x: np.ndarray) -> dict[str, np.ndarray]:
    """Tc (K) per row of x from each of PREDICTORS available for this checkpoint (trees ones need trees beside it)."""
    pred, _ = ens.predict(x)
    out = {"ensemble": np.asarray(pred, np.float64)}
    trees = companion_trees(ens)
    if trees is not None:
        tc_trees = trees.predict(x)
        out["trees"] = np.asarray(tc_trees, np.float64)
        out["consensus"] = consensus(pred, tc_trees, trees.consensus_weight)
        out["tc_if_sc"] = tc_if_superconducting(pred, tc_trees, trees.consensus_weight)
    return out


def best_predictor(row: dict) -> str:
    """The predictor with the highest R² in a `score` row (ties: the earlier in PREDICTORS, the simpler)."""
    scored = row["predictors"]
    return max((k for k in PREDICTORS if k in scored), key=lambda k: (scored[k]["r2"], -PREDICTORS.index(k)))


def _huber_delta(card: dict) -> float | None:
    """The Huber transition (K) the checkpoint was trained with (older cards name it huber_delta_k)."""
    tc = card.get("train_config", {})
    value = tc.get("huber_delta", tc.get("huber_delta_k"))
    return None if value is None else float(value)


def score(path: str) -> dict:
    ens = load_checkpoint(path)
    ds = dataset_for(ens)
    rows = inner_rows(ds, OUTER_YEAR)
    values = predictor_values(ens, ds.x[rows])
    scored = {k: regression_metrics(ds.tc_k[rows], v) for k, v in values.items()}
    m = scored["ensemble"]
    cfg, data = ens.card.get("model_config", {}), ens.card.get("data_config", {})
    return {
        "checkpoint": Path(path).name,
        "features": cfg.get("features", 0),
        "branch_embedding": (cfg.get("branch_embedding") or "properties") if cfg.get("features") else "–",
        "members": ens.n_members,
        "huber_delta_k": _huber_delta(ens.card),
        "cod": bool(data.get("include_cod", True)),
        "supercon_replicas": data.get("supercon_replicas"),
        "epochs": ens.card.get("train_config", {}).get("epochs"),
        "distill_rows": int((ens.card.get("distill") or {}).get("rows", 0)),  # training/distill.py
        "distill_by_p_sc": bool((ens.card.get("distill") or {}).get("classifier")),  # labels P(SC) x Tc_trees
        "n": int(len(rows)),
        "r2": m["r2"],
        "mae_k": m["mae"],
        "sha256": ens.sha256[:12],
        "predictors": {k: {"r2": v["r2"], "mae_k": v["mae"]} for k, v in scored.items()},
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
        "| checkpoint | branch | embedding | members | epochs | Huber δ (K) | COD | SuperCon replicas | distilled | "
        "rows | R² | MAE (K) | SHA-256 |",
        "|---|---:|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['checkpoint']} | {r['features']} | {r['branch_embedding']} | {r['members']} | {r['epochs']} | "
            f"{fmt(r['huber_delta_k'], 'g')} | {'yes' if r['cod'] else 'no'} | {r['supercon_replicas']} | "
            f"{(r['distill_rows'] or '–')}{' × P(SC)' if r.get('distill_by_p_sc') else ''} | {r['n']} | "
            f"{fmt(r['r2'])} | {fmt(r['mae_k'], '.2f')} | {r['sha256']} |"
        )
    best = max(rows, key=lambda r: r["r2"])
    lines.append(f"\nHighest R²: **{best['checkpoint']}**.")
    lines += _predictor_lines(rows)
    publish({"rows": rows, "best": best["checkpoint"], "best_predictor": _best_predictors(rows)}, "\n".join(lines), a)
    return 0 if np.isfinite(best["r2"]) else 1


def _best_predictors(rows: list[dict]) -> dict[str, str]:
    return {r["checkpoint"]: best_predictor(r) for r in rows if len(r["predictors"]) > 1}


def _predictor_lines(rows: list[dict]) -> list[str]:
    """The network-and-trees answers per checkpoint with trees beside it (none: no lines)."""
    with_trees = [r for r in rows if len(r["predictors"]) > 1]
    if not with_trees:
        return []
    lines = [
        "",
        "With the trees fitted beside the checkpoint (R² / MAE in K on the same rows):",
        "",
        "| checkpoint | " + " | ".join(PREDICTORS) + " | highest R² |",
        "|---|" + "---:|" * len(PREDICTORS) + "---|",
    ]
    for r in with_trees:
        cells = [f"{fmt(r['predictors'][k]['r2'])} / {fmt(r['predictors'][k]['mae_k'], '.2f')}" for k in PREDICTORS]
        lines.append(f"| {r['checkpoint']} | " + " | ".join(cells) + f" | {best_predictor(r)} |")
    return lines


if __name__ == "__main__":
    raise SystemExit(main())
