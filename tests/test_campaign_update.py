"""Campaign model updates: censored labels, fine-tuning with replay, boosted trees, σ factor, versions, faults."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from gdmcd_core.campaign import lab_csv, store, versions
from gdmcd_core.campaign.propose import add_run
from gdmcd_core.campaign.update import (
    MIN_CALIBRATION_ROWS,
    UpdateConfig,
    boost_trees,
    labelled_loss,
    labels,
    recalibrate,
)
from gdmcd_core.chem.composition import to_vector
from gdmcd_core.cli.main import main
from gdmcd_core.model.checkpoint import load_checkpoint
from gdmcd_core.model.trees import TreeConfig, fit_trees
from gdmcd_core.util import sha256_file

REPO = Path(__file__).resolve().parents[1]
MEASURED = [  # formula, outcome, tc_k, t_min_k
    ("Nb3Sn", "superconducting", "40", ""),
    ("MgB2", "superconducting", "60", ""),
    ("NbN", "no_transition", "", "4.2"),
    ("V3Si", "not_formed", "", ""),
]


def test_a_censored_row_costs_nothing_below_t_min_and_grows_above() -> None:
    raw = torch.tensor([1.0, 3.0, 10.0, 25.0, -5.0])
    tc = torch.tensor([np.nan, np.nan, np.nan, 20.0, 0.0])
    t_min = torch.tensor([4.2, 4.2, 4.2, np.nan, 0.0])
    loss = labelled_loss(raw, tc, t_min, delta=2.0)
    assert loss[0] == 0 and loss[1] == 0 and loss[2] > 0  # below t_min: consistent with "no transition"
    assert loss[3] == pytest.approx(2.0 * (5.0 - 1.0))  # Huber on 25 vs 20 K
    assert loss[4] == 0  # a Tc = 0 replay row predicted below 0 K


def test_labels_take_superconductors_and_censored_rows_at_ambient_pressure() -> None:
    rows = [
        {"id": 1, "formula": "Nb3Sn", "outcome": "superconducting", "tc_k": 18.0, "pressure_gpa": 0.0},
        {"id": 2, "formula": "NbN", "outcome": "no_transition", "t_min_k": None, "pressure_gpa": 0.0},
        {"id": 3, "formula": "V3Si", "outcome": "not_formed", "pressure_gpa": 0.0},
        {"id": 4, "formula": "H3S", "outcome": "superconducting", "tc_k": 203.0, "pressure_gpa": 155.0},
        {"id": 5, "formula": "MgB2", "outcome": "pending", "pressure_gpa": 0.0},
    ]
    lab = labels(rows, to_vector)
    assert lab.ids == [1, 2] and lab.is_sc.tolist() == [True, False]
    assert lab.t_min[1] == 2.0 and np.isnan(lab.t_min[0])


def test_boosting_adds_rounds_on_the_residuals() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((300, 118)) ** 6
    x /= x.sum(1, keepdims=True)
    y = 50 * x[:, 28] + 10 * x[:, 7]
    trees = fit_trees(x, y, TreeConfig(max_iter=5, max_leaf_nodes=7))
    target = y + 30 * x[:, 55]  # what the lab says differs from what the trees learned
    boosted = boost_trees(trees, x, target, rounds=60)
    assert boosted.n_trees == trees.n_trees + 60
    assert np.abs(boosted.predict(x) - target).mean() < 0.7 * np.abs(trees.predict(x) - target).mean()
    assert boost_trees(trees, x, target, rounds=0) is trees


def test_sigma_factor_needs_enough_rows_and_reports_leave_one_out_coverage() -> None:
    few = recalibrate(np.ones(MIN_CALIBRATION_ROWS - 1), np.ones(MIN_CALIBRATION_ROWS - 1))
    assert few["sigma_factor"] == 1.0 and few["loo_cov1"] is None
    rng = np.random.default_rng(1)
    r = rng.normal(0, 3.0, 400)
    out = recalibrate(r, np.ones(400))  # σ 1 K where errors are 3 K: k near 3
    assert 2.5 < out["sigma_factor"] < 3.5 and 0.6 < out["loo_cov1"] < 0.76 and out["loo_cov2"] > 0.9


def _campaign_with_results(root: Path, checkpoint: Path, tmp_path: Path) -> None:
    conn = store.connect(root)
    store.new_campaign(conn, "lab", str(checkpoint))
    path = tmp_path / "results.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["formula", "outcome", "tc_k", "t_min_k"])
        w.writerows(MEASURED)
    r = lab_csv.import_results(conn, "lab", path)
    assert r.stored == len(MEASURED), r.errors
    run = tmp_path / "runs" / "run-a"
    run.mkdir(parents=True)
    with open(run / "candidates.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["integer_formula", "integer_tc_k", "integer_tc_std_k"])
        w.writerows([["Nb3Ge", 20.0, 1.0], ["MoC", 12.0, 1.0], ["NbN", 15.0, 1.0], ["PbMo6S8", 13.0, 1.0]])
    add_run(conn, "lab", run)
    conn.close()


def test_an_update_learns_the_measurements_and_records_a_version(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "campaigns"
    _campaign_with_results(root, tiny_checkpoint, tmp_path)
    base_sha = sha256_file(tiny_checkpoint)
    conn = store.connect(root)
    seen = []
    report = versions.update(conn, "lab", root, UpdateConfig(steps=80, lr=1e-2), lambda f, m: seen.append(f))
    assert seen[-1] == 1.0 and seen == sorted(seen)
    assert report["version"] == 1 and sha256_file(tiny_checkpoint) == base_sha  # the base is never changed
    sc = [m for m in report["measured"] if m["tc_k"] is not None]
    assert len(sc) == 2 and len(report["measured"]) == 3  # not_formed is no Tc label
    assert report["mae_after_k"] < report["mae_before_k"]
    moves = report["ranking_moves"]  # NbN was measured: the open candidates are the other three
    assert report["open_candidates"] == 3 and {m["formula"] for m in moves} == {"Nb3Ge", "MoC", "PbMo6S8"}
    assert sorted(m["rank_after"] for m in moves) == [1, 2, 3] and sorted(m["rank_before"] for m in moves) == [1, 2, 3]
    ens = load_checkpoint(root / "lab" / "models" / "v1.pt")  # hash-checked
    assert ens.sha256 == report["sha256"] and ens.card["campaign_update"]["parent_sha256"] == base_sha
    row = versions.latest_version(conn, 1)
    assert json.loads(row["measurement_ids_json"]) == [m["measurement_id"] for m in report["measured"]]
    assert store.counts(conn, 1)["model_versions"] == 1
    again = versions.update(conn, "lab", root, UpdateConfig(steps=2))
    assert again["version"] == 2 and versions.latest_version(conn, 1)["parent_id"] == row["id"]


def test_a_kill_during_an_update_leaves_no_version(tiny_checkpoint: Path, tmp_path: Path) -> None:
    root = tmp_path / "campaigns"
    _campaign_with_results(root, tiny_checkpoint, tmp_path)
    child = (
        "import os, signal, sys\n"
        "from gdmcd_core.cli.main import main\n"
        "import gdmcd_core.model.checkpoint as C\n"
        "real = C.save_checkpoint\n"
        "def save_then_die(*a, **k):\n"
        "    real(*a, **k)\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
        "C.save_checkpoint = save_then_die\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    env = {**os.environ, store.CAMPAIGNS_ENV: str(root)}
    proc = subprocess.run(
        [sys.executable, "-c", child, "campaign", "update", "lab", "--steps", "3"],
        cwd=REPO,
        env=env,
        capture_output=True,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-500:]
    conn = store.connect(root)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert store.counts(conn, 1)["model_versions"] == 0  # the files were written, the version never recorded
    assert (root / "lab" / "models" / "v1.pt").is_file()
    code = main(["campaign", "--root", str(root), "update", "lab", "--steps", "3", "--json"])
    assert code == 0 and store.counts(conn, 1)["model_versions"] == 1
    assert load_checkpoint(root / "lab" / "models" / "v1.pt").sha256 == versions.latest_version(conn, 1)["sha256"]
