"""Which element embedding the trees use: every choice scored on validation rows only.

For the JARVIS and time-split checkpoints, trees are fitted on each checkpoint's training superconductors
(model/trees.py training_rows) with the fractions and element statistics alone, then with the statistics of
each element embedding shipped in the elementembeddings wheel (chem/embeddings.py) added. Each is scored on
the checkpoint's validation superconductors: the trees' MAE and the consensus with the ResNet ensemble
(model/trees.py consensus). No test row is predicted here.

    python -m bench.tree_features --doc          # about 20 min on 2 CPU cores
    python -m bench.tree_features --embeddings magpie oliynyk --max-iter 300   # a quick look
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from threadpoolctl import threadpool_limits

from bench.common import add_doc_option, fmt, publish, validation_superconductors
from gdmcd_core.chem.embeddings import EMBEDDINGS
from gdmcd_core.model.trees import TreeConfig, consensus, fit_trees, training_rows
from gdmcd_core.util import REPO_ROOT

CHECKPOINTS = {"jarvis": "checkpoints/tc_jarvis.pt", "time": "checkpoints/tc_timesplit.pt"}


def score_split(name: str, embeddings: list[str], config: TreeConfig, threads: int) -> list[dict]:
    """One row per embedding ("" first): validation MAE of the trees and of the consensus, fit seconds."""
    _, ds, val, net = validation_superconductors(REPO_ROOT / CHECKPOINTS[name])
    rows = training_rows(ds, config)
    y = ds.tc_k[val]
    out = []
    for emb in ["", *embeddings]:
        t0 = time.perf_counter()
        with threadpool_limits(limits=threads):
            trees = fit_trees(ds.x[rows], ds.tc_k[rows], replace(config, embedding=emb))
        fit_s = time.perf_counter() - t0
        tc = trees.predict(ds.x[val])
        row = {
            "split": name,
            "embedding": emb or "none",
            "n_features": trees.n_features,
            "val_trees_mae_k": float(np.abs(tc - y).mean()),
            "val_consensus_mae_k": float(np.abs(consensus(net, tc) - y).mean()),
            "val_resnet_mae_k": float(np.abs(net - y).mean()),
            "fit_s": fit_s,
            "n_val": int(len(val)),
        }
        print(
            f"{name:6s} {row['embedding']:10s} trees {row['val_trees_mae_k']:.3f} K, consensus "
            f"{row['val_consensus_mae_k']:.3f} K ({fit_s:.0f} s)",
            flush=True,
        )
        out.append(row)
    return out


def markdown(rows: list[dict], config: TreeConfig) -> str:
    lines = [
        f"Trees: {config.max_iter} rounds, learning rate {config.learning_rate}, {config.max_leaf_nodes} leaves; "
        "validation superconductors only (MAE in K).",
        "",
        "| split | embedding | features | trees MAE | consensus MAE | ResNet MAE | fit (s) | rows |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['split']} | {r['embedding']} | {r['n_features']} | {fmt(r['val_trees_mae_k'])} | "
            f"{fmt(r['val_consensus_mae_k'])} | {fmt(r['val_resnet_mae_k'])} | {r['fit_s']:.0f} | {r['n_val']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--splits", nargs="+", choices=tuple(CHECKPOINTS), default=list(CHECKPOINTS))
    p.add_argument("--embeddings", nargs="+", choices=EMBEDDINGS, default=list(EMBEDDINGS))
    p.add_argument("--max-iter", type=int, default=TreeConfig().max_iter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", default="", help="also write the rows to this JSON file")
    add_doc_option(p, "tree_features")
    a = p.parse_args(argv)
    config = replace(TreeConfig(), max_iter=a.max_iter).validate()
    rows = [r for s in a.splits for r in score_split(s, a.embeddings, config, a.threads)]
    best = {
        s: min((r for r in rows if r["split"] == s), key=lambda r: r["val_consensus_mae_k"])["embedding"]
        for s in a.splits
    }
    text = (
        markdown(rows, config)
        + "\n\nLowest validation consensus MAE: "
        + ", ".join(f"{s}: {b}" for s, b in best.items())
    )
    publish({"rows": rows, "best": best, "max_iter": config.max_iter}, text, a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
