"""Smoke test of bench/baselines.py on the tiny synthetic data (conftest's tiny_data_dir)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from bench.baselines import SPLITS, GbtConfig, fit_1nn, main, run_split
from gdmcd_core.chem.composition import to_vector


def test_1nn_returns_the_tc_of_the_nearest_training_composition() -> None:
    x = np.stack([to_vector(f) for f in ["MgB2", "NaCl", "Nb3Sn"]])
    predict = fit_1nn(x, np.array([39.0, 0.0, 18.0]))
    q = np.stack([to_vector(f) for f in ["MgB1.9C0.1", "NaCl", "Nb3Sn0.9Al0.1"]])
    np.testing.assert_allclose(predict(q), [39.0, 0.0, 18.0])


@pytest.mark.parametrize("split", ["random", "time"])
def test_run_split_reports_every_model(tiny_data_dir: Path, split: str) -> None:
    rows, info = run_split(split, SPLITS[split], GbtConfig(max_iter=3), log=lambda s: None)
    assert [r["model"] for r in rows] == ["gbt", "gbt_sc_only", "1nn"]
    for r in rows:
        assert r["split"] == split and r["train_rows"] > 0
        for k in ("supercon_test_mae_k", "supercon_test_r2", "precision_at_0k", "recall_at_5k", "fit_s"):
            assert math.isfinite(r[k])
    assert rows[0]["train_rows"] == info["counts"]["train_rows_after_replication"]


def test_main_json_is_one_object(tiny_data_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--split", "random", "--max-iter", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["results"]) == 3 and out["splits"][0]["split"] == "random"
