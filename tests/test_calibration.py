"""σ calibration: the fit recovers known scales (spread, distance, neighbour), coverage, cross-fitting, cards old and new."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from design_helpers import constant_ensemble

from gdmcd_core.chem.distance import nearest_l1, unseen_elements
from gdmcd_core.data.dataset import TEST, TRAIN, VAL, DataConfig, Dataset
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.training.calibration import (
    CROSS_FIT_FOLDS,
    DISTANCE_BINS_L1,
    METHOD,
    MIN_BAND_ROWS,
    Calibration,
    calibrate,
    calibration_inputs,
    coverage_scale,
    cross_fitted_sigma,
    fit_calibration,
    raw_mean_spread,
)
from gdmcd_core.training.evaluate import evaluate_checkpoint

TRUE_S, TRUE_B = 2.0, 20.0  # spread factor and K per unit L1 of the synthetic residuals
REL_TOL = 0.1  # 3,000 rows pin both scales to a few per cent; 10 % leaves room for the seed


def test_fit_recovers_known_scales():
    rng = np.random.default_rng(1)
    n = 3000
    spread = rng.uniform(0.5, 5.0, n)
    distance = rng.uniform(0.0, 1.0, n) ** 2
    residual = rng.normal(0.0, np.sqrt((TRUE_S * spread) ** 2 + (TRUE_B * distance) ** 2))
    cal = fit_calibration(residual, spread, distance, fitted_on="synthetic")
    assert abs(cal.sigma_scale - TRUE_S) / TRUE_S < REL_TOL
    assert abs(cal.distance_scale_k - TRUE_B) / TRUE_B < REL_TOL
    assert cal.n == n and cal.method == METHOD and cal.fitted_on == "synthetic"


def test_fit_without_distance_signal_gives_small_b():
    rng = np.random.default_rng(2)
    spread = rng.uniform(0.5, 5.0, 3000)
    distance = rng.uniform(0.0, 1.0, 3000)
    cal = fit_calibration(rng.normal(0.0, 3.0 * spread), spread, distance)
    assert abs(cal.sigma_scale - 3.0) < 0.3 and cal.distance_scale_k < 1.0


def test_too_few_rows_is_not_fitted():
    cal = fit_calibration(np.ones(3), np.ones(3), np.ones(3))
    assert cal.sigma_scale == 1.0 and cal.distance_scale_k == 0.0 and "not fitted" in cal.fitted_on


def test_sigma_grows_with_distance_and_stays_positive_below_zero():
    card = {"calibration": {"sigma_scale": 1.5, "distance_scale_k": 30.0}}
    ens = constant_ensemble((-5.0, -1.0), card)  # both members predict Tc <= 0 but disagree
    x = np.zeros((5, 118), np.float32)
    x[:, 0] = 1.0
    d = np.array([0.0, 0.1, 0.2, 0.5, 1.0])
    mean, std = ens.predict(x, distance=d)
    assert np.all(mean == 0)
    assert np.allclose(std[0], 1.5 * 2.0, rtol=1e-2)  # spread ~2 K (sd of -5 and -1 on the soft floor) times s
    assert np.all(np.diff(std) > 0)
    assert np.allclose(std, np.sqrt(3.0**2 + (30.0 * d) ** 2), rtol=1e-2)
    _, std_no_d = ens.predict(x)
    assert np.allclose(std_no_d, 3.0, rtol=1e-2)  # without a distance only s applies


def test_ensemble_and_calibration_apply_the_same_band_factors():
    cal = Calibration(sigma_scale=1.0, distance_scale_k=10.0, band_edges_l1=(0.0, 0.1, 2.01), band_factors=(1.0, 2.0))
    ens = constant_ensemble((10.0, 14.0), {"calibration": cal.to_dict()})  # spread 2 K
    assert ens.has_extra_sigma_terms and Calibration.from_card(ens.card) == cal
    x = np.zeros((4, 118), np.float32)
    x[:, 0] = 1.0
    d = np.array([0.0, 0.0999, 0.1, np.nan])
    _, std = ens.predict(x, distance=d)
    base = np.sqrt(2.0**2 + (10.0 * np.nan_to_num(d)) ** 2)
    assert np.allclose(std[:3], base[:3] * [1.0, 1.0, 2.0], rtol=1e-4)
    assert np.allclose(cal.sigma(np.full(3, 2.0), d[:3]), std[:3], rtol=1e-4)
    assert np.allclose(ens.predict(x)[1], 2.0, rtol=1e-4)  # no distance given: no band, no distance term


def test_old_card_reads_sigma_scale_and_zero_b():
    ens = constant_ensemble((0.0, 2.0), {"sigma_scale": 4.0})
    assert ens.sigma_scale == 4.0 and ens.distance_scale_k == 0.0
    cal = Calibration.from_card({"sigma_scale": 4.0})
    assert cal.sigma_scale == 4.0 and cal.distance_scale_k == 0.0
    new = Calibration(sigma_scale=2.0, distance_scale_k=7.0, fitted_on="val", n=10)
    assert Calibration.from_card({"sigma_scale": 9.0, "calibration": new.to_dict()}) == new
    new.apply_to(ens)
    assert ens.distance_scale_k == 7.0 and ens.card["calibration"]["n"] == 10


def test_nearest_l1_and_unseen_elements():
    ref = np.zeros((2, 118))
    ref[0, 0] = 1.0  # H
    ref[1, [0, 7]] = 0.5  # H0.5 O0.5
    x = np.zeros((2, 118))
    x[0, [0, 7]] = [0.4, 0.6]
    x[1, 25] = 1.0  # Fe, shares nothing with ref
    idx, dist = nearest_l1(x, ref)
    assert idx.tolist() == [1, 0] and np.allclose(dist, [0.2, 2.0])
    assert unseen_elements(x[1], (ref > 0).any(0)) == ["Fe"]
    assert unseen_elements(x[0], (ref > 0).any(0)) == []
    assert nearest_l1(x, np.zeros((0, 118)))[0].tolist() == [-1, -1]


def test_heavy_tailed_errors_are_sized_for_both_one_and_two_sigma():
    """Student-t errors (heavier tails than a normal): σ sized for ±1σ alone would leave ±2σ short of 90 %; the
    fit trades a little at ±1σ (still 68 % ± 5) for ±2σ, the best least-squares compromise of both."""
    rng = np.random.default_rng(3)
    spread = rng.uniform(0.5, 5.0, 4000)
    distance = rng.uniform(0.0, 1.0, 4000)
    residual = 2.0 * spread * rng.standard_t(2.5, 4000)
    cal = fit_calibration(residual, spread, distance)
    z = np.abs(residual) / cal.sigma(spread, distance)
    cov1, cov2 = np.mean(z <= 1), np.mean(z <= 2)
    assert 0.683 < cov1 < 0.733 and cov2 > 0.90
    z68 = z / np.quantile(z, 0.683)  # the same shape sized for ±1σ = 68.3 % only
    assert np.mean(z68 <= 2) < cov2


def test_coverage_scale_is_one_for_normal_ratios_and_least_squares_otherwise():
    z = np.abs(np.random.default_rng(7).normal(size=20000))
    assert coverage_scale(z) == pytest.approx(1.0, abs=0.03)
    assert coverage_scale(3.0 * z) == pytest.approx(3.0 * coverage_scale(z))
    assert coverage_scale(np.array([])) == 1.0
    heavy = np.abs(np.random.default_rng(8).standard_t(2.0, 20000))
    k = coverage_scale(heavy)

    def loss(k: float) -> float:
        return (np.mean(heavy <= k) - 0.6827) ** 2 + (np.mean(heavy <= 2 * k) - 0.9545) ** 2

    assert all(loss(k) <= loss(k * f) for f in (0.9, 0.97, 1.03, 1.1))


def test_a_distance_band_with_larger_errors_gets_its_own_factor():
    """Errors 3x larger in one middle band (not a smooth function of distance): that band's σ is widened, the
    others are not, and every band then covers about 68 % at ±1σ."""
    rng = np.random.default_rng(9)
    n = 6000
    spread = rng.uniform(0.5, 5.0, n)
    distance = np.r_[rng.uniform(0.0, 0.5, n - 20), np.full(20, 0.8)]  # 20 rows beyond 0.5: too few for a band
    bad = (distance >= 0.3) & (distance < 0.5)
    residual = rng.normal(0.0, TRUE_S * spread * np.where(bad, 3.0, 1.0))
    cal = fit_calibration(residual, spread, distance)
    assert cal.band_edges_l1 == DISTANCE_BINS_L1 and len(cal.band_factors) == len(DISTANCE_BINS_L1) - 1
    factors = dict(zip(DISTANCE_BINS_L1, cal.band_factors, strict=False))  # band's lower edge -> factor
    assert factors[0.3] > 1.2 * max(factors[0.0], factors[0.2])  # the NLL's b·d takes up part of the 3x
    assert factors[0.5] == 1.0 and np.sum(distance >= 0.5) < MIN_BAND_ROWS
    sigma = cal.sigma(spread, distance)
    band = np.digitize(distance, DISTANCE_BINS_L1[1:-1])
    for i in np.unique(band[distance < 0.5]):
        assert abs(np.mean(np.abs(residual[band == i]) <= sigma[band == i]) - 0.683) < 0.05


def _with_third_term(seed: int, extra_mean: float, scale: float, n: int = 4000) -> tuple[np.ndarray, ...]:
    """(spread, distance, extra, residual): residuals of sd sqrt((TRUE_S · spread)² + (scale · extra)²), with no
    distance signal; extra drawn exponential with mean extra_mean (a neighbour gap or a predicted Tc, K)."""
    rng = np.random.default_rng(seed)
    spread = rng.uniform(0.5, 5.0, n)
    distance = rng.uniform(0.0, 1.0, n)
    extra = rng.exponential(extra_mean, n)
    residual = rng.normal(0.0, np.sqrt((TRUE_S * spread) ** 2 + (scale * extra) ** 2))
    return spread, distance, extra, residual


def test_fit_recovers_the_neighbour_term():
    spread, distance, gap, residual = _with_third_term(5, 10.0, 0.5)
    cal = fit_calibration(residual, spread, distance, gap)
    assert abs(cal.neighbor_scale - 0.5) / 0.5 < REL_TOL and abs(cal.sigma_scale - TRUE_S) / TRUE_S < REL_TOL
    assert cal.distance_scale_k < 2.0  # no distance signal in these residuals
    no_gap = fit_calibration(residual, spread, distance)
    assert no_gap.neighbor_scale == 0.0 and no_gap.nll > cal.nll


def _time_split_dataset(n_train: int = 60, n_test: int = 120) -> Dataset:
    rng = np.random.default_rng(6)
    x = rng.random((n_train + n_test, 118)).astype(np.float32) ** 8
    x /= x.sum(1, keepdims=True)
    split = np.r_[np.full(n_train, TRAIN), np.full(n_test, TEST)].astype(np.int8)
    return Dataset(
        x=x,
        tc_k=rng.uniform(1, 60, len(x)).astype(np.float32),
        is_supercon=np.ones(len(x), bool),
        split=split,
        formula=np.array(["X"] * len(x)),
        first_year=np.where(split == TEST, 2015.0, 2000.0),
        is_hydride=np.zeros(len(x), bool),
        config=DataConfig(split="time"),
    )


def test_a_calibration_fitted_on_test_rows_is_reported_cross_fitted():
    ds = _time_split_dataset()
    members = [TcResNet(ModelConfig(width=4, layers=(1,))) for _ in range(3)]
    for k, m in enumerate(members):
        with torch.no_grad():
            m.head.bias += 3.0 * k  # members disagree: spread > 0
        m.eval()
    ens = TcEnsemble(members)
    cal = calibrate(ens, ds, TEST)
    assert cal.part == "test" and cal.n == 120 and "first reported >= 2010" in cal.fitted_on
    rows, sigma = cross_fitted_sigma(ens, ds, TEST)
    c = calibration_inputs(ens, ds, TEST)
    fold = np.random.default_rng(0).integers(0, CROSS_FIT_FOLDS, len(rows))
    other = fit_calibration(
        c["residual"][fold != 0], c["spread"][fold != 0], c["distance"][fold != 0], c["gap"][fold != 0]
    )
    first = fold == 0  # fold 0's σ comes from the fit on fold 1 alone, not from the fit on every row
    assert np.allclose(sigma[first], other.sigma(c["spread"][first], c["distance"][first], c["gap"][first]))
    assert not np.allclose(sigma, cal.sigma(c["spread"], c["distance"], c["gap"]))
    cal.apply_to(ens)
    m = evaluate_checkpoint(ens, ds)
    assert m["calibration"]["sigma_cross_fitted_folds"] == CROSS_FIT_FOLDS
    err = np.abs(ds.tc_k[rows] - raw_mean_spread(ens, ds.x[rows])[0])
    assert m["coverage_1sigma"] == pytest.approx(np.mean(err <= sigma))
    val = calibrate(ens, ds, VAL)  # no validation rows here: nothing to fit, and never cross-fitted on test
    assert val.part == "val" and "not fitted" in val.fitted_on


def test_ensemble_sigma_uses_the_gap_to_the_neighbours_tc():
    card = {"calibration": {"sigma_scale": 1.0, "distance_scale_k": 0.0, "neighbor_scale": 0.5}}
    ens = constant_ensemble((10.0, 14.0), card)  # mean 12 K, spread 2 K
    x = np.zeros((3, 118), np.float32)
    x[:, 0] = 1.0
    mean, std = ens.predict(x, distance=np.zeros(3), neighbor_tc=np.array([12.0, 20.0, 0.0]))
    assert np.allclose(mean, 12.0)
    assert np.allclose(std, np.sqrt(2.0**2 + (0.5 * np.array([0.0, 8.0, 12.0])) ** 2), rtol=1e-4)
    assert np.allclose(ens.predict(x)[1], 2.0, rtol=1e-4)  # no neighbour given: the term is left out


def test_error_by_distance_bands_add_up_to_the_supercon_mae():
    ds = _time_split_dataset()
    m = evaluate_checkpoint(constant_ensemble((10.0, 14.0)), ds)  # members disagree: σ > 0
    bands = m["mae_by_distance_l1"]
    assert bands and all(b["l1_from"] < b["l1_to"] and b["mean_sigma_k"] > 0 for b in bands)
    assert sum(b["n"] for b in bands) == m["n_test_supercon"]
    weighted = sum(b["n"] * b["mae_k"] for b in bands) / m["n_test_supercon"]
    assert weighted == pytest.approx(m["supercon_test_mae_k"], rel=1e-5)


def test_fit_recovers_the_tc_term_and_can_leave_out_the_band_factors():
    spread, distance, tc, residual = _with_third_term(7, 20.0, 0.3)
    cal = fit_calibration(residual, spread, distance, tc=tc, bands=False)
    assert abs(cal.tc_scale - 0.3) / 0.3 < REL_TOL and abs(cal.sigma_scale - TRUE_S) / TRUE_S < REL_TOL
    assert set(cal.band_factors) == {1.0} and cal.method.endswith(":no_bands")
    sigma = cal.sigma(spread, distance, tc=tc)
    assert abs(np.mean(np.abs(residual) <= sigma) - 0.683) < 0.03
    assert np.all(cal.sigma(spread, distance, tc=-tc) < sigma)  # a negative Tc counts as 0 K
    without = fit_calibration(residual, spread, distance)
    assert without.tc_scale == 0.0 and without.nll > cal.nll
    assert Calibration.from_card({"calibration": cal.to_dict()}).tc_scale == cal.tc_scale  # survives the card


def test_ensemble_sigma_grows_with_its_own_tc():
    card = {"calibration": {"sigma_scale": 1.0, "distance_scale_k": 0.0, "tc_scale": 0.25}}
    x = np.zeros((1, 118), np.float32)
    x[:, 0] = 1.0
    low, high = constant_ensemble((10.0, 14.0), card), constant_ensemble((90.0, 94.0), card)  # spread 2 K each
    assert np.allclose(low.predict(x)[1], np.hypot(2.0, 0.25 * 12.0), rtol=1e-4)
    assert np.allclose(high.predict(x)[1], np.hypot(2.0, 0.25 * 92.0), rtol=1e-4)
    assert low.has_extra_sigma_terms
