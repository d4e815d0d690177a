"""The JARVIS-Leaderboard contribution: supercon_chem test predictions of the committed JARVIS model, ready to submit.

Writes `bench/jarvis_leaderboard/<name>/` in the leaderboard's contribution layout:

- `AI-SinglePropertyPrediction-Tc-supercon_chem-test-mae.csv.zip`: one CSV (`id,target,prediction`, id the
  JARVIS row id) for every test row: the consensus of checkpoints/tc_jarvis.pt and its trees (model/trees.py);
  a row whose published formula cannot be read gets the median training Tc, as in bench/model_card.py;
- `metadata.json`: model, team, software, hardware and the seconds the predictions took;
- `run.sh`: the commands that train the model and write these files again.

Computing the predictions computes the test MAE: it is printed and logged (bench/results/test_log.md).
Nothing is chosen here.

    python -m bench.jarvis_leaderboard
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from bench.model_card import jarvis_abs_errors
from gdmcd_core.data.jarvis import load_jarvis_rows
from gdmcd_core.data.paths import JARVIS_SPLIT_FILE, find_data_dir
from gdmcd_core.model.checkpoint import CHECKPOINT_DIR, load_checkpoint
from gdmcd_core.model.trees import companion_trees, consensus
from gdmcd_core.training.testset_log import log_test_figures
from gdmcd_core.util import REPO_ROOT, atomic_write_bytes, atomic_write_text

BENCHMARK = "AI-SinglePropertyPrediction-Tc-supercon_chem-test-mae"
NAME = "gdmcd_resnet_trees_consensus"
RUN_SH = """#!/usr/bin/env bash
# Train the JARVIS-split ensemble and its trees, then write this contribution (GDMCD Studio repository root).
set -euo pipefail
gdmcd train --split jarvis --members 8 --out checkpoints/tc_jarvis.pt
gdmcd trees --checkpoint checkpoints/tc_jarvis.pt
python -m bench.jarvis_leaderboard
"""


def predictions(data_dir: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, object, float]:
    """(ids, targets, predictions) of every test row, the MAE, the ensemble and the seconds taken."""
    folder = Path(data_dir) if data_dir else find_data_dir((JARVIS_SPLIT_FILE,))
    rows = load_jarvis_rows(folder / JARVIS_SPLIT_FILE)
    train, test = rows.parsed & ~rows.is_test, (rows.parsed | rows.estimated) & rows.is_test
    fallback = float(np.median(rows.tc_k[train]))
    ens = load_checkpoint(CHECKPOINT_DIR / "tc_jarvis.pt")
    trees = companion_trees(ens)
    t0 = time.perf_counter()
    tc = ens.predict(rows.x[test])[0]
    pred_read = consensus(tc, trees.predict(rows.x[test]), trees.consensus_weight) if trees is not None else tc
    seconds = time.perf_counter() - t0
    pred = np.full(len(rows), fallback)
    pred[test] = pred_read
    err = jarvis_abs_errors(pred_read, rows, fallback)
    return rows.jarvis_id[rows.is_test], rows.tc_k[rows.is_test], pred[rows.is_test], float(err.mean()), ens, seconds


def zipped_csv(ids: np.ndarray, target: np.ndarray, pred: np.ndarray) -> bytes:
    text = "id,target,prediction\n" + "".join(
        f"{int(i)},{float(t):.6g},{float(p):.6g}\n" for i, t, p in zip(ids, target, pred, strict=True)
    )
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(f"{BENCHMARK}.csv", text)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", default=str(REPO_ROOT / "bench" / "jarvis_leaderboard" / NAME))
    a = p.parse_args(argv)
    ids, target, pred, mae, ens, seconds = predictions(a.data_dir)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out / f"{BENCHMARK}.csv.zip", zipped_csv(ids, target, pred))
    meta = {
        "model_name": "GDMCD ResNet ensemble + element-statistics trees (consensus)",
        "project_url": "",  # fill in at submission: where the code is published
        "date_submitted": time.strftime("%m-%d-%Y"),
        "author_email": "",
        "database_version": "supercon_chem (jarvis_supercon_chem_split.csv)",
        "team_name": "GDMCD Studio",
        "time_taken_seconds": {f"{BENCHMARK}.csv.zip": round(seconds, 2)},
        "language": "python",
        "os": platform.system().lower(),
        "software_used": f"torch {torch.__version__}, scikit-learn, numpy",
        "hardware_used": f"CPU ({platform.machine()})",
        "git_url": [],
        "checkpoint_sha256": ens.sha256,
    }
    atomic_write_text(out / "metadata.json", json.dumps(meta, indent=2) + "\n")
    atomic_write_text(out / "run.sh", RUN_SH)
    log_test_figures(ens.sha256, "tc_jarvis.pt consensus (JARVIS-Leaderboard test rows): contribution files, MAE")
    print(f"{out}: {len(ids)} test rows, MAE {mae:.3f} K")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
