"""The discovery benchmark (bench/discovery.py, bench/discovery_metrics.py): targets, hits, precision and recall, the
random-draw expectation, bootstrap intervals, pass counting, and a whole run on a tiny fixture."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest
import torch
from design_helpers import constant_ensemble, one_thread, tiny_ensemble  # noqa: F401  (autouse fixture)

from bench import discovery as D
from bench import discovery_metrics as dm
from gdmcd_core.data.dataset import TEST, TRAIN, VAL, DataConfig, Dataset
from gdmcd_core.data.reference import reference_from_dataset
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.search.methods import KnownCompositions

# formula, Tc (K), first year, split
ROWS = [
    ("YBa2Cu3O7", 92.0, 1987, TRAIN),
    ("MgB2", 39.0, 2001, TRAIN),
    ("Nb3Sn", 18.0, 1954, TRAIN),
    ("LaFeAsO", 26.0, 2008, VAL),
    ("CaB2", 8.0, 2015, TEST),  # planted: MgB2 with Ca2+ for Mg2+ (L1 0.67 from MgB2), a new element set
    ("Mg0.95Ca0.05B2", 38.0, 2012, TEST),  # a doping variant of MgB2 (L1 0.033): not a target
    ("La2CuO4", 0.0, 2011, TEST),  # Tc 0 K: not a target
    ("CaO", 0.0, np.nan, TRAIN),  # non-superconductors: the elements the model has seen
    ("NaCl", 0.0, np.nan, TRAIN),
    ("SrTiO3", 0.0, np.nan, TRAIN),
]
NON_SC = {"CaO", "NaCl", "SrTiO3"}


def dataset() -> Dataset:
    x = dm.formula_vectors([r[0] for r in ROWS]).astype(np.float32)
    return Dataset(
        x=x,
        tc_k=np.array([r[1] for r in ROWS], np.float32),
        is_supercon=np.array([r[0] not in NON_SC for r in ROWS]),
        split=np.array([r[3] for r in ROWS], np.int8),
        formula=np.array([r[0] for r in ROWS]),
        first_year=np.array([r[2] for r in ROWS], float),
        is_hydride=np.zeros(len(ROWS), bool),
        config=DataConfig(split="time"),
    )


def settings(tmp_path, **design) -> D.Settings:
    """The committed settings with a tiny run: B = 32 dataset starts, 2 + 2 steps, 2 seeds."""
    raw = D.Settings.load().raw
    tiny = dict(n_candidates=32, init_mode="dataset", init_min_tc=0.0, steps2=2, steps3=2, refine_steps=2, n_max=12)
    lines = [f"{k} = {json.dumps(v)}" for k, v in (raw["design"] | tiny | design).items()]
    text = (
        D.CONFIG.read_text()
        .split("\n[design]\n")[0]
        .replace("seeds = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]", "seeds = [0, 1]")
    )
    path = tmp_path / "discovery.toml"
    path.write_text(text + "\n[design]\n" + "\n".join(lines) + "\n")
    return D.Settings.load(path)


def test_targets_are_new_and_far_from_known() -> None:
    s = dataset()
    later = s.is_supercon & (s.split == TEST)
    t = dm.discovery_targets(s.x, s.tc_k, s.formula, s.is_supercon & ~later, later, 0.1)
    assert list(t.formula) == ["CaB2"]
    assert t.new_sets == ((4, 19),) and t.element_set.tolist() == [0]  # {B, Ca}


def targets_fixture() -> dm.Targets:
    x = dm.formula_vectors(["FeSe", "K0.8Fe2Se2", "H3S", "H3Se"])
    earlier = dm.formula_vectors(["FeTe", "H2S"])
    allx = np.concatenate([x, earlier])
    later = np.r_[np.ones(4, bool), np.zeros(2, bool)]
    return dm.discovery_targets(
        allx, np.full(6, 10.0), np.array(["FeSe", "KFeSe", "H3S", "H3Se", "FeTe", "H2S"]), ~later, later, 0.1
    )


def test_ranking_metrics_on_a_ranked_list() -> None:
    t = targets_fixture()
    assert list(t.formula) == ["FeSe", "KFeSe", "H3S", "H3Se"]
    assert len(t.new_sets) == 3  # {Fe, Se}, {K, Fe, Se}, {H, Se}; {H, S} is H2S's
    ranked = [
        "Fe2Se2",  # rank 1: FeSe (reduced formula): hit, new set {Fe, Se}
        "FeTe",  # rank 2: a known composition: nothing
        "K0.8Fe2Se1.98Te0.02",  # rank 3: L1 0.008 from K0.8Fe2Se2: hit; element set {K, Fe, Se, Te} is not new
        "H3S0.9Cl0.1",  # rank 4: L1 0.05 from H3S: a hit at the threshold
        "HSe",  # rank 5: no target within 0.05, but the new element set {H, Se}
    ]
    m = dm.match(dm.formula_vectors(ranked), t, 0.05)
    assert m.hit.tolist() == [True, False, True, True, False]
    got = dm.ranking_metrics(m, t, (1, 3, 5))
    assert (
        got["precision_at_1"] == 1.0 and got["precision_at_3"] == pytest.approx(2 / 3) and got["precision_at_5"] == 0.6
    )
    assert got["target_hits_at_5"] == 3 and got["recall_at_5"] == 0.75
    assert [got[f"element_set_hits_at_{k}"] for k in (1, 3, 5)] == [1, 1, 2]


def test_random_draw_is_the_exact_expectation() -> None:
    """Against the average over every K-subset of a small pool."""
    t = targets_fixture()
    pool = dm.formula_vectors(["FeSe", "Fe1.01Se0.99", "HSe", "NbN", "H3S", "MgB2"])
    m = dm.match(pool, t, 0.05)
    for k in (1, 2, 4, 10):
        subsets = list(itertools.combinations(range(len(pool)), min(k, len(pool))))
        brute = {}
        for sub in subsets:
            sm = dm.match(pool[list(sub)], t, 0.05)
            for key, v in dm.ranking_metrics(sm, t, (k,)).items():
                brute[key] = brute.get(key, 0.0) + v / len(subsets)
        got = dm.random_draw_metrics(m, t, (k,))
        for key, v in brute.items():
            assert got[key] == pytest.approx(v), (k, key)


def test_pairs_within_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    t = np.zeros((40, 118))
    t[np.arange(40)[:, None], rng.integers(0, 6, size=(40, 3))] = rng.random((40, 3))
    t /= t.sum(1, keepdims=True)
    a = np.concatenate([t + rng.normal(0, 0.01, t.shape) * (t > 0), rng.dirichlet(np.ones(118), 20)])
    a = np.clip(a, 0, None)
    a /= a.sum(1, keepdims=True)
    d_all = np.abs(a[:, None] - t[None]).sum(-1)
    ii, jj = dm.pairs_within(a, t, 0.05)
    assert set(zip(ii.tolist(), jj.tolist(), strict=True)) == set(zip(*np.nonzero(d_all <= 0.05), strict=True))
    idx, dist = dm.nearest_within(a, t, 0.05)
    ok = d_all.min(1) <= 0.05
    assert (idx >= 0).tolist() == ok.tolist() and (idx[ok] == d_all.argmin(1)[ok]).all()
    np.testing.assert_allclose(dist[ok], d_all.min(1)[ok])


def test_bootstrap_summary() -> None:
    s = dm.bootstrap_summary([1.0, 2.0, 3.0, 4.0], resamples=2000, seed=0, level=0.95)
    assert s["mean"] == 2.5 and s["per_seed"] == [1.0, 2.0, 3.0, 4.0]
    assert 1.0 <= s["ci_low"] < 2.5 < s["ci_high"] <= 4.0
    assert dm.bootstrap_summary([2.0, 2.0], 100, 0, 0.95) | {"per_seed": None} == {
        "mean": 2.0,
        "ci_low": 2.0,
        "ci_high": 2.0,
        "per_seed": None,
    }


def test_credibility_of_a_table() -> None:
    table = pd.DataFrame(
        {
            "rank": [2, 1, 3],
            "integer_formula": ["YBa2Cu3O7", "La2CuO4", "XeF2"],
            "integer_tc_k": [90.0, 40.0, 10.0],
            "integer_tc_std_k": [10.0, 4.0, 1.0],
        }
    )
    c = dm.credibility(table, top=2)
    assert c["n"] == 2 and c["tc_k"] == 65.0 and c["sigma_k"] == 7.0 and c["tc_minus_sigma_k"] == 58.0
    assert c["cuprates"] == 2 and c["pct_cuprates_cu_valence_plausible"] == 100.0
    assert c["pct_charge_neutral"] == 100.0 and c["pct_noble_or_radioactive"] == 0.0
    assert dm.credibility(table, top=3)["pct_noble_or_radioactive"] == pytest.approx(100 / 3)


def test_count_passes() -> None:
    model = tiny_ensemble(members=3)
    with dm.count_passes(model) as n:
        with torch.no_grad():
            model(torch.rand(5, 118))
        x = torch.rand(4, 118, requires_grad=True)
        model.mean_std(x)[0].sum().backward()
        n.freeze()
        model(torch.rand(7, 118))
    assert n.counts() == {"forward_rows": 9, "backward_rows": 4, "forward_equivalents": 17}
    model(torch.rand(2, 118))  # the hook is gone
    assert n.forward == 16


def test_committed_settings_are_frozen_and_match_the_code() -> None:
    s = D.Settings.load()
    D.check_code(s)
    assert len(s.seeds) >= 10 and s.ks == (10, 50, 200)
    t = s.raw["targets"]
    assert t["hit_l1"] <= t["min_l1_to_known"] / 2 and t["first_year"] == 2010
    assert s.design.method == "gradient" and s.raw["baselines"]["database_pool"] == "cod2009"


def test_settings_refuse_an_unfrozen_field(tmp_path) -> None:
    path = tmp_path / "s.toml"
    path.write_text(D.CONFIG.read_text().replace("kappa = 1.0\n", ""))
    with pytest.raises(SystemExit, match="missing \\['kappa'\\]"):
        D.Settings.load(path)


def test_tiny_benchmark_finds_the_planted_target(tmp_path, monkeypatch, capsys) -> None:
    """`python -m bench.discovery --json`, two seeds of every arm on tiny data with a constant model: the JSON it
    prints is the one it writes, and the substitution method proposes the planted target CaB2."""
    ds = dataset()
    s = settings(tmp_path)
    targets, n_earlier = D.targets_of(ds, s)
    cod = KnownCompositions(dm.formula_vectors(["CaO", "SrO", "BaCuO2"]).astype(np.float32), np.array(["a", "b", "c"]))
    inp = D.Inputs(constant_ensemble((30.0, 30.0)), reference_from_dataset(ds), targets, cod, n_earlier)
    monkeypatch.setattr(D, "prepare", lambda settings, data_dir, device: (inp, "a constant model"))
    out = tmp_path / "results" / "discovery.json"
    D.main(["--config", str(s.path), "--json", "--out", str(out), "--threads", "1"])
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    numbers = json.loads(out.read_text())
    assert printed == numbers and numbers["measured"]["date"]
    assert numbers["config_sha256"] == s.sha256 and numbers["n_targets"] == 1 and numbers["seeds"] == [0, 1]
    for arm in (*D.METHODS, *D.BASELINES):
        for key in ("precision_at_50", "target_hits_at_200", "element_set_hits_at_200"):
            entry = numbers["arms"][arm][key]
            assert set(entry) == {"mean", "ci_low", "ci_high", "per_seed"} and len(entry["per_seed"]) == 2
    sub = numbers["arms"]["substitution"]
    assert sub["target_hits_at_200"]["per_seed"] == [1.0, 1.0] and sub["element_set_hits_at_200"]["mean"] == 1.0
    assert sub["hit_targets"] == {"CaB2": 2}
    assert numbers["arms"]["random_draw"]["target_hits_at_200"]["mean"] > 0
    grad = numbers["arms"]["gradient"]["forward_equivalents"]["per_seed"]
    for arm in ("evolution", "random", "database", "substitution", "uniform_substitution"):
        spent = numbers["arms"][arm]["forward_equivalents"]["per_seed"]
        assert all(x <= g for x, g in zip(spent, grad, strict=True))  # never more than the gradient's
        if arm in ("evolution", "random"):  # the whole budget, to within one generation of B = 32
            assert all(x > g - 32 for x, g in zip(spent, grad, strict=True))
    text = D.report(numbers)
    assert s.sha256 in text and "CaB2" in text and "rounded starts" in text
    assert json.loads(json.dumps(numbers)) == numbers
    assert math.isfinite(numbers["arms"]["gradient"]["precision_at_10"]["mean"])


def test_legacy_results_still_render() -> None:
    old = {"hits_at_50": {"gradient": 0, "database": 1}, "hits_at_200": {"gradient": 2, "database": 3}}
    text = D.report(old)
    assert "Superseded" in text and "| database | 1 | 3 |" in text


def test_design_fields_all_frozen() -> None:
    """A new DesignConfig field must be frozen in bench/discovery.toml (Settings.load refuses to run otherwise), or
    named in ADDED_LATER with the value that keeps the frozen behaviour (the file is not edited once scored)."""
    names = {f for f in DesignConfig.__dataclass_fields__} - set(D.RUN_FIELDS)
    frozen = set(D.Settings.load().raw["design"])
    assert names == frozen | set(D.ADDED_LATER) and not frozen & set(D.ADDED_LATER)
    assert D.Settings.load().design.site_repair is False


def test_keep_share_inner_decides_and_restores(tmp_path) -> None:
    """The inner split's share runs leave refine.KEEP_SHARE as it was; ties keep the code's value."""
    from bench import keep_share_inner as K
    from gdmcd_core.design.loop import refine

    before = refine.KEEP_SHARE
    ds = dataset()
    s = settings(tmp_path)
    targets, _ = D.targets_of(ds, s)
    results = K.run_shares(constant_ensemble((30.0, 30.0)), ds, targets, s, tiny=True)
    assert refine.KEEP_SHARE == before and list(results) == [float(v) for v in s.raw["keep_share_inner"]["shares"]]
    assert all(len(rows) == 1 and "target_hits_at_200" in rows[0] for rows in results.values())
    tie = {0.0: [{"m": 1.0}], 0.25: [{"m": 1.0}], 0.5: [{"m": 0.0}]}
    assert K.decide(tie, "m", 0.25) == 0.25 and K.decide(tie, "m", 0.5) == 0.0
    assert K.decide({0.1: [{"m": 2.0}], 0.25: [{"m": 1.0}]}, "m", 0.25) == 0.1
