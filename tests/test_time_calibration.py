"""The time-split σ from an inner time split: fitted only on years before the outer split, carried over unchanged."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdmcd_core.data.dataset import TEST, TRAIN, DataConfig, Dataset
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.training.calibration import Calibration, fit_calibration, raw_mean_spread, training_neighbors
from gdmcd_core.training.evaluate import evaluate_checkpoint
from gdmcd_core.training.time_calibration import (
    INNER_PART,
    TIME_BANDS,
    TIME_COVERAGE_RULE,
    TIME_SIGMA_TERM,
    calibrate_inner_time,
    inner_rows,
)


def _dataset(year_split: int, years: np.ndarray, n_train: int = 60, seed: int = 3) -> Dataset:
    rng = np.random.default_rng(seed)
    n = n_train + len(years)
    x = rng.random((n, 118)).astype(np.float32) ** 8
    x /= x.sum(1, keepdims=True)
    split = np.r_[np.full(n_train, TRAIN), np.full(len(years), TEST)].astype(np.int8)
    return Dataset(
        x=x,
        tc_k=rng.uniform(1, 60, n).astype(np.float32),
        is_supercon=np.ones(n, bool),
        split=split,
        formula=np.array(["X"] * n),
        first_year=np.r_[np.full(n_train, 2000.0), years],
        is_hydride=np.zeros(n, bool),
        config=DataConfig(split="time", time_split_year=year_split),
    )


def _ensemble() -> TcEnsemble:
    members = [TcResNet(ModelConfig(width=4, layers=(1,))) for _ in range(3)]
    for k, m in enumerate(members):
        with torch.no_grad():
            m.head.bias += 3.0 * k  # members disagree: spread > 0
        m.eval()
    return TcEnsemble(members, sha256="ab" * 32)


def test_only_inner_test_rows_before_the_outer_year_are_fitted():
    years = np.r_[np.full(80, 2006.0), np.full(70, 2012.0)]
    ds = _dataset(2005, years)
    rows = inner_rows(ds, 2010)
    assert len(rows) == 80 and set(ds.first_year[rows]) == {2006.0}
    ens = _ensemble()
    cal = calibrate_inner_time(ens, ds, 2010, "both", "none", True)
    assert cal.part == INNER_PART and cal.n == 80 and cal.max_year == 2006 and cal.neighbor_scale == 0.0
    mean, spread = raw_mean_spread(ens, ds.x[rows])
    direct = fit_calibration(ds.tc_k[rows] - mean, spread, training_neighbors(ds, rows)[0])
    assert cal.sigma_scale == pytest.approx(direct.sigma_scale) and cal.band_factors == direct.band_factors
    assert Calibration.from_card({"calibration": cal.to_dict()}).max_year == 2006  # survives the card
    # the neighbour term, when asked for, is fitted on the gap to the nearest training superconductor's Tc
    tc_nn = training_neighbors(ds, rows)[1]
    with_g = calibrate_inner_time(ens, ds, 2010, term="neighbor")
    direct_g = fit_calibration(ds.tc_k[rows] - mean, spread, training_neighbors(ds, rows)[0], np.abs(mean - tc_nn))
    assert with_g.neighbor_scale == pytest.approx(direct_g.neighbor_scale)
    # the Tc term is fitted on the inner model's own predictions; bands off leaves every factor at 1
    with_h = calibrate_inner_time(ens, ds, 2010, term="tc", bands=False)
    direct_h = fit_calibration(ds.tc_k[rows] - mean, spread, training_neighbors(ds, rows)[0], tc=mean, bands=False)
    assert with_h.tc_scale == pytest.approx(direct_h.tc_scale) and set(with_h.band_factors) == {1.0}
    with pytest.raises(ValueError, match="term"):
        calibrate_inner_time(ens, ds, 2010, term="gap")
    # the defaults are the choice of bench/time_calibration.py
    chosen = calibrate_inner_time(ens, ds, 2010, TIME_COVERAGE_RULE, TIME_SIGMA_TERM, TIME_BANDS)
    assert calibrate_inner_time(ens, ds, 2010) == chosen


def test_the_carried_over_calibration_is_reported_on_the_outer_test_rows_without_cross_fitting():
    inner_ds = _dataset(2005, np.full(120, 2007.0))
    outer_ds = _dataset(2010, np.full(90, 2015.0), seed=4)
    ens = _ensemble()
    cal = calibrate_inner_time(ens, inner_ds, outer_ds.config.time_split_year)
    cal.apply_to(ens)
    m = evaluate_checkpoint(ens, outer_ds)
    assert m["calibration"]["part"] == INNER_PART and m["calibration"]["sigma_cross_fitted_folds"] is None
    rows = outer_ds.indices(TEST)
    mean, spread = raw_mean_spread(ens, outer_ds.x[rows])
    distance, tc_nn = training_neighbors(outer_ds, rows)
    sigma = cal.sigma(spread, distance, np.abs(mean - tc_nn), np.maximum(mean, 0))  # every term the choice may have
    assert m["coverage_1sigma"] == pytest.approx(np.mean(np.abs(outer_ds.tc_k[rows] - mean) <= sigma))


def test_inner_checkpoints_that_cannot_calibrate_are_refused():
    ds = _dataset(2005, np.full(40, 2007.0))
    with pytest.raises(ValueError, match="split year"):
        inner_rows(ds, 2005)
    random = Dataset(**{**ds.__dict__, "config": DataConfig(split="random")})
    with pytest.raises(ValueError, match="time split"):
        inner_rows(random, 2010)
    single = TcEnsemble([TcResNet(ModelConfig(width=4, layers=(1,))).eval()])
    with pytest.raises(ValueError, match="one member"):
        calibrate_inner_time(single, ds, 2010)
    with pytest.raises(ValueError, match="time_split_year"):
        DataConfig(split="time", time_split_year=10)


def test_the_transfer_bench_chooses_the_smallest_mean_miss_and_breaks_ties_by_fewer_factors():
    from bench.time_calibration import combinations, miss, summary

    assert miss(0.68, 0.95) == 0.0 and miss(0.80, 0.95) == pytest.approx(0.07)
    assert miss(0.60, 0.85) == pytest.approx(0.08)  # 0.03 below the ±1σ box, 0.05 below ±2σ
    combos = combinations()
    assert len(combos) == 18 and combos[0] == ("both", "none", False) and combos[-1][2] is True
    rows = [{"rule": r, "term": t, "bands": b, "miss": 0.1} for r, t, b in combos for _ in range(2)]
    rows[-1]["miss"] = rows[-2]["miss"] = 0.0  # the last combination is best on both transfers
    means = summary(rows)
    best = min(means, key=lambda m: m["mean_miss"])
    assert (best["rule"], best["term"], best["bands"]) == combos[-1]
    tied = summary([{**r, "miss": 0.1} for r in rows])
    assert min(tied, key=lambda m: m["mean_miss"])["bands"] is False  # on a tie: no band factors, no third term
    assert [m["mean_miss"] for m in means[:-1]] == [0.1] * 17 and means[-1]["mean_miss"] == 0.0
