"""Scoring of the discovery benchmark (bench/discovery_metrics.py) on hand-made examples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from design_helpers import one_thread, tiny_ensemble  # noqa: F401  (autouse fixture)

from bench.discovery_metrics import (
    count_passes,
    credibility,
    expected_random_hits,
    formula_vectors,
    hit_flags,
    nearest_within,
    time_split_targets,
)
from gdmcd_core.data.dataset import TEST, TRAIN, VAL, DataConfig, Dataset

# formula, Tc (K), first year, split
ROWS = [
    ("YBa2Cu3O7", 92.0, 1987, TRAIN),
    ("MgB2", 39.0, 2001, VAL),
    ("LaFeAsO", 26.0, 2008, TRAIN),
    ("FeSe", 8.0, 2012, TEST),  # new, low Tc
    ("K0.8Fe2Se2", 30.0, 2010, TEST),  # new, Tc >= 20 K
    ("H3S", 203.0, 2015, TEST),  # new, Tc >= 20 K
    ("NaCl", 0.0, np.nan, TRAIN),  # a non-superconductor row
]


def dataset() -> Dataset:
    x = formula_vectors([r[0] for r in ROWS]).astype(np.float32)
    is_sc = np.array([r[0] != "NaCl" for r in ROWS])
    return Dataset(
        x=x,
        tc_k=np.array([r[1] for r in ROWS], np.float32),
        is_supercon=is_sc,
        split=np.array([r[3] for r in ROWS], np.int8),
        formula=np.array([r[0] for r in ROWS]),
        first_year=np.array([r[2] for r in ROWS], float),
        is_hydride=np.zeros(len(ROWS), bool),
        config=DataConfig(split="time"),
    )


def test_targets_are_the_new_superconductors() -> None:
    t = time_split_targets(dataset())
    assert list(t.formula) == ["FeSe", "K0.8Fe2Se2", "H3S"]
    with pytest.raises(ValueError, match="time"):
        ds = dataset()
        ds.config = DataConfig(split="random")
        time_split_targets(ds)


def test_hits_at_k_on_a_ranked_list() -> None:
    targets = time_split_targets(dataset())
    ranked = [
        "Fe2Se2",  # rank 1: FeSe by reduced formula (low Tc)
        "YBa2Cu3O7",  # rank 2: a pre-2010 superconductor: never a hit
        "NbN",  # rank 3: nothing
        "K0.8Fe2Se1.98Te0.02",  # rank 4: L1 = 0.008 from K0.8Fe2Se2 (Tc 30 K)
        "H3S0.9Cl0.1",  # rank 5: L1 = 0.05 from H3S: a hit at the threshold
        "H3S0.8Cl0.2",  # rank 6: L1 = 0.1: not a hit
        "H2S",  # rank 7: L1 = 0.167: not a hit
    ]
    flags = hit_flags(formula_vectors(ranked), targets)
    assert flags.hit.tolist() == [True, False, False, True, True, False, False]
    assert flags.hit_high.tolist() == [False, False, False, True, True, False, False]
    assert flags.at((1, 4, 5, 50)) == {1: 1, 4: 2, 5: 3, 50: 3}
    assert flags.at((1, 4, 50), high=True) == {1: 0, 4: 1, 50: 2}
    assert list(targets.formula[flags.target[[0, 3, 4]]]) == ["FeSe", "K0.8Fe2Se2", "H3S"]


def test_nearest_within_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    t = np.zeros((40, 118))
    t[np.arange(40)[:, None], rng.integers(0, 6, size=(40, 3))] = rng.random((40, 3))
    t /= t.sum(1, keepdims=True)
    a = np.concatenate([t + rng.normal(0, 0.01, t.shape) * (t > 0), rng.dirichlet(np.ones(118), 20)])
    a = np.clip(a, 0, None)
    a /= a.sum(1, keepdims=True)
    d_all = np.abs(a[:, None] - t[None]).sum(-1)
    idx, dist = nearest_within(a, t, 0.05)
    best = d_all.argmin(1)
    ok = d_all.min(1) <= 0.05
    assert (idx >= 0).tolist() == ok.tolist()
    np.testing.assert_allclose(dist[ok], d_all.min(1)[ok])
    assert (idx[ok] == best[ok]).all()


def test_expected_random_hits() -> None:
    assert expected_random_hits(10, 1000, (50, 200, 1000, 5000)) == {50: 0.5, 200: 2.0, 1000: 10.0, 5000: 10.0}
    assert expected_random_hits(0, 0, (50,)) == {50: 0.0}


def test_credibility_of_a_table() -> None:
    table = pd.DataFrame(
        {
            "rank": [2, 1, 3],
            "integer_formula": ["YBa2Cu3O7", "La2CuO4", "XeF2"],
            "integer_tc_k": [90.0, 40.0, 10.0],
            "integer_tc_std_k": [10.0, 4.0, 1.0],
        }
    )
    c = credibility(table, top=2)
    assert c["n"] == 2 and c["tc_k"] == 65.0 and c["sigma_k"] == 7.0 and c["tc_minus_sigma_k"] == 58.0
    assert c["cuprates"] == 2 and c["pct_cuprates_cu_valence_plausible"] == 100.0
    assert c["pct_charge_neutral"] == 100.0 and c["pct_noble_or_radioactive"] == 0.0
    assert credibility(table, top=3)["pct_noble_or_radioactive"] == pytest.approx(100 / 3)
    assert c["mean_elements"] == 3.5


def test_count_passes() -> None:
    model = tiny_ensemble(members=3)
    with count_passes(model) as n:
        with torch.no_grad():
            model(torch.rand(5, 118))
        x = torch.rand(4, 118, requires_grad=True)
        model.mean_std(x)[0].sum().backward()
        n.freeze()
        model(torch.rand(7, 118))
    assert n.counts() == {"forward_rows": 9, "backward_rows": 4, "forward_equivalents": 17}
    model(torch.rand(2, 118))  # the hook is gone
    assert n.forward == 16
