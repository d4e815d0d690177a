"""Calibration of the ensemble σ: fitted on held-out rows, never reported on the rows it was fitted on.

Model (model/ensemble.py): σ² = (s · spread)² + (b · d)² + (g · gap)² + (h · Tc)², with spread the members'
raw sd (K), d the L1 distance in atomic fractions (0..2) from the composition to its nearest training SuperCon
composition, gap = |Tc − Tc_nn| the difference (K) between the prediction and that neighbour's measured Tc and
Tc the prediction itself (K, floored at 0). The gap and Tc terms are fitted only where asked for (`gap`, `tc`
given); (s, b, g, h) maximize the Gaussian likelihood of the residuals r = Tc_measured - Tc:

    NLL(s, b, g, h) = ½ Σ [ log(2π σ²) + r² / σ² ]

minimized over their logarithms with L-BFGS-B from a few starts (the NLL is not convex). The NLL fixes
how σ splits between the terms; its size is then set by coverage, because Tc errors are heavier-tailed
than a normal: one factor on all terms makes the shares of rows within ±1σ and ±2σ as near a normal's
68.3 % and 95.4 % as the rows allow (`coverage_scale`: least squares over both). Errors do not grow
smoothly with distance (a band of new chemistry can be worse than the farthest rows), so the same
rule then gives each L1 distance band (DISTANCE_BINS_L1) its own factor on σ, fitted on that band's
rows (a band with fewer than MIN_BAND_ROWS keeps factor 1). The fit uses superconductors only (the
rows the coverage figures are about); COD and synthetic negatives are left out.

Where the rows come from matters. Validation rows of a random split sit next to training rows, so
a fit there learns b ≈ 0 and a σ too narrow for new chemistry. The time-split ensemble is therefore
calibrated on its post-2010 test superconductors (`calibrate(..., part=TEST)`, what design faces: new
compounds), and every coverage figure on those rows is cross-fitted (`cross_fitted_sigma`: the
(s, b, g) used for a row were fitted on the other fold). The result is stored in the card under
"calibration" with the part it was fitted on; a card without it falls back to its old "sigma_scale".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from scipy.optimize import minimize

from gdmcd_core.chem.distance import nearest_l1
from gdmcd_core.data.dataset import SPLIT_NAMES, TEST, TRAIN, VAL, Dataset
from gdmcd_core.model.ensemble import TcEnsemble, calibrated_sigma

METHOD = "gaussian_nll_shape+coverage_1and2sigma_by_distance_band"  # NLL shape, then coverage per band
DISTANCE_BINS_L1 = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 2.01)  # σ bands, also the error-by-distance report (L1, 0..2)
MIN_BAND_ROWS = 100  # a band with fewer fitted rows keeps factor 1 (a coverage on 100 rows is ±5 %)
VARIANCE_FLOOR_K2 = 0.01  # σ >= 0.1 K: a row with spread 0 at distance 0 must not make the NLL infinite
LOG_S_BOUNDS = (np.log(1e-3), np.log(1e3))  # s: the member spread is at most 1000x too small or too large
LOG_B_BOUNDS = (np.log(1e-3), np.log(1e4))  # b in K per unit L1; the lower end reads as b = 0
LOG_G_BOUNDS = (np.log(1e-4), np.log(1e2))  # g: sd per K of gap to the neighbour's Tc; the lower end reads as 0
LOG_H_BOUNDS = (np.log(1e-4), np.log(1e1))  # h: sd per K of predicted Tc; the lower end reads as 0
B_ZERO_K = 2e-3  # a fitted b below this (K per unit L1: < 0.004 K at the largest distance) is reported as 0
G_ZERO = 2e-4  # a fitted g below this (< 0.06 K of σ at a 300 K gap) is reported as 0
H_ZERO = 2e-4  # a fitted h below this (< 0.06 K of σ at 300 K) is reported as 0
MIN_ROWS = 10  # fewer rows than this: no fit, s = 1 and b = g = 0
CROSS_FIT_FOLDS = 2  # cross_fitted_sigma: folds of the rows a calibration is both fitted and evaluated on


@dataclass(frozen=True)
class Calibration:
    """Fitted σ calibration: sigma_scale s (dimensionless), distance_scale_k b (K per unit L1 distance),
    neighbor_scale g (dimensionless, on |Tc − Tc_nn|), tc_scale h (dimensionless, on the predicted Tc); part: the
    split part ("val", "test") of the rows."""

    sigma_scale: float = 1.0
    distance_scale_k: float = 0.0
    neighbor_scale: float = 0.0
    tc_scale: float = 0.0
    fitted_on: str = "not fitted"
    n: int = 0
    method: str = METHOD
    nll: float | None = None  # mean NLL per row at the optimum (nats)
    part: str = SPLIT_NAMES[VAL]
    band_edges_l1: tuple[float, ...] = ()  # σ factor per distance band: band i is edges[i] <= d < edges[i + 1]
    band_factors: tuple[float, ...] = ()
    # the latest first-report year among the rows the fit saw (an inner time split: 2009), None where not recorded
    max_year: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> Calibration:
        """The card's "calibration", or an old card's top-level "sigma_scale" with b = 0."""
        cal = card.get("calibration")
        if cal:
            known = {
                k: cal[k]
                for k in (
                    "sigma_scale",
                    "distance_scale_k",
                    "neighbor_scale",
                    "tc_scale",
                    "fitted_on",
                    "n",
                    "method",
                    "nll",
                    "part",
                    "max_year",
                )
                if k in cal
            }
            bands = {k: tuple(cal[k]) for k in ("band_edges_l1", "band_factors") if cal.get(k)}
            return cls(**known, **bands)
        return cls(sigma_scale=float(card.get("sigma_scale", 1.0)), fitted_on="card sigma_scale (no distance term)")

    def sigma(
        self, spread: np.ndarray, distance: np.ndarray, gap: np.ndarray | None = None, tc: np.ndarray | None = None
    ) -> np.ndarray:
        """σ (N,) in K, as TcEnsemble.calibrated_std, from aligned spread, distance and (optional) gap and
        predicted-Tc arrays."""
        spread_t, distance_t = (torch.as_tensor(np.asarray(v, np.float64)) for v in (spread, distance))
        gap_t, tc_t = (None if v is None else torch.as_tensor(np.asarray(v, np.float64)) for v in (gap, tc))
        scales = (self.sigma_scale, self.distance_scale_k, self.neighbor_scale, self.tc_scale)
        return calibrated_sigma(spread_t, distance_t, gap_t, scales, *self._bands(), tc_t).numpy()

    def _bands(self) -> tuple[tuple[float, ...], tuple[float, ...]]:
        return tuple(self.band_edges_l1), tuple(self.band_factors)

    def apply_to(self, ens: TcEnsemble) -> None:
        """Set (s, b, g) on an ensemble and record them in its in-memory card."""
        ens.sigma_scale = float(self.sigma_scale)
        ens.distance_scale_k = float(self.distance_scale_k)
        ens.neighbor_scale = float(self.neighbor_scale)
        ens.tc_scale = float(self.tc_scale)
        ens.band_edges_l1, ens.band_factors = self._bands()
        ens.card = {**ens.card, "calibration": self.to_dict(), "sigma_scale": float(self.sigma_scale)}


ONE_SIGMA_COVERAGE = 0.6827  # share of a normal within ±1 sd
TWO_SIGMA_COVERAGE = 0.9545  # share of a normal within ±2 sd


COVERAGE_RULES = ("both", "one", "two")  # coverage_scale: least squares over ±1σ and ±2σ, or ±1σ / ±2σ alone


def coverage_scale(z: np.ndarray, rule: str = "both") -> float:
    """Factor k on σ for |error| / σ ratios z (N,): the shares of z <= k and z <= 2k come as near a normal's
    68.3 % and 95.4 % as possible (rule "both": least squares over both; "one": the ±1σ share alone; "two": the
    ±2σ share alone; the smallest such k). 1 for no rows."""
    if rule not in COVERAGE_RULES:
        raise ValueError(f"coverage rule must be one of {COVERAGE_RULES}, got {rule!r}")
    z = np.sort(np.asarray(z, np.float64)[np.isfinite(z)])
    if not len(z):
        return 1.0
    k = np.unique(np.r_[z, z / 2])  # the shares only change at these k
    k = k[k > 0] if (k > 0).any() else np.array([1.0])
    cov1 = np.searchsorted(z, k, side="right") / len(z)
    cov2 = np.searchsorted(z, 2 * k, side="right") / len(z)
    weights = {"both": (1.0, 1.0), "one": (1.0, 0.0), "two": (0.0, 1.0)}[rule]
    loss = weights[0] * (cov1 - ONE_SIGMA_COVERAGE) ** 2 + weights[1] * (cov2 - TWO_SIGMA_COVERAGE) ** 2
    return float(k[np.argmin(loss)])


def _variance(columns: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """σ² + floor for (N, T) term inputs and (T,) squared scales."""
    return columns**2 @ weights + VARIANCE_FLOOR_K2


def gaussian_nll(
    residual: np.ndarray,
    spread: np.ndarray,
    distance: np.ndarray,
    s: float,
    b: float,
    gap: np.ndarray | None = None,
    g: float = 0.0,
) -> float:
    """Mean Gaussian NLL (nats) of residuals (K) under σ² = (s·spread)² + (b·distance)² + (g·gap)² + floor."""
    cols = np.stack([spread, distance] + ([gap] if gap is not None else []), 1)
    var = _variance(cols, np.array([s, b] + ([g] if gap is not None else [])) ** 2)
    return float(0.5 * np.mean(np.log(2 * np.pi * var) + residual**2 / var))


def fit_calibration(
    residual: np.ndarray,
    spread: np.ndarray,
    distance: np.ndarray,
    gap: np.ndarray | None = None,
    fitted_on: str = "given rows",
    part: str = SPLIT_NAMES[VAL],
    rule: str = "both",
    tc: np.ndarray | None = None,
    bands: bool = True,
) -> Calibration:
    """Fit (s, b[, g][, h]) by Gaussian NLL on aligned (N,) arrays: residual (K), raw spread (K), distance (L1,
    0..2) and, if given, gap = |mean − Tc of the nearest training superconductor| (K) and tc, the predicted Tc (K);
    g and h are 0 without them. bands: a σ factor per distance band after the overall size (else none)."""
    names = ["s", "b"] + ["g"] * (gap is not None) + ["h"] * (tc is not None)
    cols = [np.asarray(spread, np.float64), np.asarray(distance, np.float64)]
    cols += [np.asarray(v, np.float64) for v in (gap, tc) if v is not None]
    if tc is not None:
        cols[-1] = np.maximum(cols[-1], 0.0)  # as calibrated_sigma: the Tc term is on max(Tc, 0)
    r = np.asarray(residual, np.float64)
    ok = np.isfinite(r) & np.all([np.isfinite(c) for c in cols], 0)
    r, x = r[ok], np.stack([c[ok] for c in cols], 1)
    if len(r) < MIN_ROWS:
        return Calibration(fitted_on=f"not fitted: {len(r)} rows of {fitted_on}", n=int(len(r)), part=part)
    scales = _nll_scales(r, x, names)
    # The NLL fixes the shape (how σ splits between the terms); coverage fixes the size, overall and then
    # per distance band (module docstring).
    z = np.abs(r) / np.sqrt(_variance(x, scales**2))
    overall = coverage_scale(z, rule)
    scales, z = scales * overall, z / overall
    band = np.digitize(x[:, 1], DISTANCE_BINS_L1[1:-1])
    in_band = [band == i for i in range(len(DISTANCE_BINS_L1) - 1)]
    factors = [coverage_scale(z[m], rule) if bands and m.sum() >= MIN_BAND_ROWS else 1.0 for m in in_band]
    var = _variance(x, scales**2) * np.asarray(factors)[band] ** 2
    fitted = dict(zip(names, (float(v) for v in scales), strict=True))
    method = METHOD if rule == "both" else f"{METHOD}:{rule}"
    return Calibration(
        sigma_scale=fitted["s"],
        distance_scale_k=fitted["b"],
        neighbor_scale=fitted.get("g", 0.0),
        tc_scale=fitted.get("h", 0.0),
        fitted_on=fitted_on,
        n=int(len(r)),
        nll=float(0.5 * np.mean(np.log(2 * np.pi * var) + r**2 / var)),
        method=method if bands else f"{method}:no_bands",
        part=part,
        band_edges_l1=DISTANCE_BINS_L1,
        band_factors=tuple(float(f) for f in factors),
    )


_BOUNDS = {"s": LOG_S_BOUNDS, "b": LOG_B_BOUNDS, "g": LOG_G_BOUNDS, "h": LOG_H_BOUNDS}
_ZERO = {"s": 0.0, "b": B_ZERO_K, "g": G_ZERO, "h": H_ZERO}  # a fitted scale below this is reported as 0


def _nll_scales(r: np.ndarray, x: np.ndarray, names: list[str]) -> np.ndarray:
    """The scales (T,) of the (N, T) term inputs x that minimize the Gaussian NLL of residuals r (N,): L-BFGS-B
    over their logarithms from a few starts (the NLL is not convex); tiny ones are set to 0 (_ZERO)."""
    r2, x2 = r**2, x**2

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w = np.exp(2 * theta)
        var = x2 @ w + VARIANCE_FLOOR_K2
        f = 0.5 * np.mean(np.log(var) + r2 / var)
        dvar = 0.5 * (1 / var - r2 / var**2)  # dNLL/dvar per row (mean taken below)
        return float(f), (dvar[:, None] * x2).mean(0) * 2 * w

    rms = float(np.sqrt(np.mean(r2)))
    s0 = rms / np.maximum(np.sqrt(x2.mean(0)), 1e-6)  # each term alone explaining the residuals
    t = x.shape[1]
    starts = [s0 * np.r_[1.0, [1e-3] * (t - 1)], s0 * 0.5, s0 * np.r_[1e-2, [1.0] * (t - 1)], np.ones(t)]
    starts += [s0 * np.where(np.arange(t) == j, 1.0, 1e-2) for j in range(2, t)]
    bounds = [_BOUNDS[n] for n in names]
    lo, hi = np.array(bounds).T
    best = None
    for start in starts:
        theta0 = np.clip(np.log(np.maximum(start, 1e-9)), lo, hi)
        res = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    scales = np.exp(best.x)
    zero = np.array([_ZERO[n] for n in names])
    return np.where(scales < zero, 0.0, scales)


def distance_to_training(ds: Dataset, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) L1 distance (0..2) from ds.x[rows] to the nearest training SuperCon composition."""
    return training_neighbors(ds, rows)[0]


def training_neighbors(ds: Dataset, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distance (0..2), Tc in K) of the nearest training SuperCon composition of each of ds.x[rows]."""
    idx = ds.indices(TRAIN)
    sc = idx[ds.is_supercon[idx]]
    j, d = nearest_l1(ds.x[rows], ds.x[sc])
    tc = np.where(j >= 0, ds.tc_k[sc][j.clip(0)] if len(sc) else np.nan, np.nan)
    return d, tc


def raw_mean_spread(ens: TcEnsemble, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, uncalibrated member spread) in K for x (B, 118)."""
    saved = ens.sigma_scale, ens.distance_scale_k, ens.neighbor_scale
    ens.sigma_scale, ens.distance_scale_k, ens.neighbor_scale = 1.0, 0.0, 0.0
    try:
        return ens.predict(x)
    finally:
        ens.sigma_scale, ens.distance_scale_k, ens.neighbor_scale = saved


def _where(ds: Dataset, part: int) -> str:
    what = f"{SPLIT_NAMES[part]} superconductors (split {ds.config.split}, seed {ds.config.split_seed})"
    return what + (", first reported >= 2010" if part == TEST and ds.config.split == "time" else "")


def calibration_inputs(ens: TcEnsemble, ds: Dataset, part: int) -> dict[str, np.ndarray]:
    """Superconductor rows of `part` with what a fit needs: rows, residual, spread, distance, gap (K)."""
    idx = ds.indices(part)
    idx = idx[ds.is_supercon[idx]]
    mean, spread = raw_mean_spread(ens, ds.x[idx])
    return fit_inputs(ds, idx, mean, spread, *training_neighbors(ds, idx))


def fit_inputs(
    ds: Dataset, rows: np.ndarray, mean: np.ndarray, spread: np.ndarray, distance: np.ndarray, tc_nn: np.ndarray
) -> dict[str, np.ndarray]:
    """What a fit needs from predictions already made for ds rows `rows`: mean (K) and raw spread (K), and the
    nearest training superconductor's distance and Tc (K) -> rows, residual, spread, distance, gap."""
    return {
        "rows": rows,
        "residual": ds.tc_k[rows] - mean,
        "spread": spread,
        "distance": distance,
        "gap": np.abs(mean - tc_nn),
        "tc": np.maximum(mean, 0.0),
    }


def calibrate(ens: TcEnsemble, ds: Dataset, part: int = VAL) -> Calibration:
    """Fit (s, b, g) for `ens` on the superconductors of `part` of its own split. K = 1: not fitted.

    part=TEST is for the time split only: its test rows are what design faces, and figures on them
    must then be cross-fitted (`cross_fitted_sigma`); evaluate.py does that from the card's "part".

    The neighbour term g is fitted on those rows only. On validation rows of a random split the nearest
    training compound is usually a near-copy, so g would take over from the spread there and shrink s, which
    would leave σ too narrow wherever the neighbour is not looked up."""
    where = _where(ds, part)
    if not ens.has_uncertainty:
        return Calibration(fitted_on=f"not fitted: single model ({where})", part=SPLIT_NAMES[part])
    c = calibration_inputs(ens, ds, part)
    gap = c["gap"] if part == TEST else None
    return fit_calibration(c["residual"], c["spread"], c["distance"], gap, where, SPLIT_NAMES[part])


def cross_fit(inputs: dict[str, np.ndarray], folds: int = CROSS_FIT_FOLDS, seed: int = 0) -> np.ndarray:
    """σ (N,) for aligned residual, spread, distance and gap arrays (as `calibration_inputs` gives them):
    each row's σ uses (s, b, g) fitted on the other folds (rows drawn into folds with `seed`)."""
    r, spread, distance, gap = (np.asarray(inputs[k]) for k in ("residual", "spread", "distance", "gap"))
    fold = np.random.default_rng(seed).integers(0, folds, len(r))
    sigma = np.full(len(r), np.nan)
    for f in range(folds):
        fit = fold != f
        cal = fit_calibration(r[fit], spread[fit], distance[fit], gap[fit])
        sigma[~fit] = cal.sigma(spread[~fit], distance[~fit], gap[~fit])
    return sigma


def cross_fitted_sigma(
    ens: TcEnsemble, ds: Dataset, part: int = TEST, folds: int = CROSS_FIT_FOLDS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, σ) for the superconductors of `part`: each row's σ uses (s, b, g) fitted on the other folds.

    What a calibration fitted on these rows (`calibrate(..., part)`) is worth on rows it has not seen."""
    c = calibration_inputs(ens, ds, part)
    return c["rows"], cross_fit(c, folds, seed)


__all__ = [
    "DISTANCE_BINS_L1",
    "Calibration",
    "coverage_scale",
    "calibrate",
    "cross_fit",
    "cross_fitted_sigma",
    "distance_to_training",
    "fit_calibration",
    "fit_inputs",
    "gaussian_nll",
    "training_neighbors",
]
