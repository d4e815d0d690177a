"""Distance-aware calibration of the ensemble σ, fitted on the validation split (never on test rows).

Model (model/ensemble.py): σ² = (s · spread)² + (b · d)², with spread the members' raw sd (K) and
d the L1 distance in atomic fractions (0..2) from the composition to its nearest training SuperCon
composition. (s, b) maximize the Gaussian likelihood of the validation residuals r = Tc - mean:

    NLL(s, b) = ½ Σ [ log(2π σ²) + r² / σ² ]

minimized over (log s, log b) with L-BFGS-B from a few starts (the NLL is not convex in (s, b)).
The fit uses the validation superconductors only (the rows the coverage figures are about); COD
and synthetic negatives are left out. The result is stored in the checkpoint card under
"calibration"; a card without it falls back to its old "sigma_scale" and b = 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize

from gdmcd_core.chem.distance import nearest_l1
from gdmcd_core.data.dataset import SPLIT_NAMES, TRAIN, VAL, Dataset
from gdmcd_core.model.ensemble import TcEnsemble

METHOD = "gaussian_nll_shape+coverage_68"  # NLL for the split between the terms, then ±1σ = 68.3 % of rows
VARIANCE_FLOOR_K2 = 0.01  # σ >= 0.1 K: a row with spread 0 at distance 0 must not make the NLL infinite
LOG_S_BOUNDS = (np.log(1e-3), np.log(1e3))  # s: the member spread is at most 1000x too small or too large
LOG_B_BOUNDS = (np.log(1e-3), np.log(1e4))  # b in K per unit L1; the lower end reads as b = 0
B_ZERO_K = 2e-3  # a fitted b below this (K per unit L1: < 0.004 K at the largest distance) is reported as 0
MIN_ROWS = 10  # fewer validation rows than this: no fit, s = 1 and b = 0


@dataclass(frozen=True)
class Calibration:
    """Fitted σ calibration. sigma_scale s (dimensionless), distance_scale_k b (K per unit L1 distance)."""

    sigma_scale: float = 1.0
    distance_scale_k: float = 0.0
    fitted_on: str = "not fitted"
    n: int = 0
    method: str = METHOD
    nll: float | None = None  # mean NLL per validation row at the optimum (nats)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_card(cls, card: dict[str, Any]) -> Calibration:
        """The card's "calibration", or an old card's top-level "sigma_scale" with b = 0."""
        cal = card.get("calibration")
        if cal:
            known = {
                k: cal[k] for k in ("sigma_scale", "distance_scale_k", "fitted_on", "n", "method", "nll") if k in cal
            }
            return cls(**known)
        return cls(sigma_scale=float(card.get("sigma_scale", 1.0)), fitted_on="card sigma_scale (no distance term)")

    def apply_to(self, ens: TcEnsemble) -> None:
        """Set (s, b) on an ensemble and record them in its in-memory card."""
        ens.sigma_scale = float(self.sigma_scale)
        ens.distance_scale_k = float(self.distance_scale_k)
        ens.card = {**ens.card, "calibration": self.to_dict(), "sigma_scale": float(self.sigma_scale)}


ONE_SIGMA_COVERAGE = 0.6827  # share of a normal within ±1 sd


def gaussian_nll(residual: np.ndarray, spread: np.ndarray, distance: np.ndarray, s: float, b: float) -> float:
    """Mean Gaussian NLL (nats) of residuals (K) under σ² = (s·spread)² + (b·distance)² + floor."""
    var = (s * spread) ** 2 + (b * distance) ** 2 + VARIANCE_FLOOR_K2
    return float(0.5 * np.mean(np.log(2 * np.pi * var) + residual**2 / var))


def fit_calibration(
    residual: np.ndarray, spread: np.ndarray, distance: np.ndarray, fitted_on: str = "given rows"
) -> Calibration:
    """Fit (s, b) by Gaussian NLL on aligned (N,) arrays: residual (K), raw spread (K), distance (L1, 0..2)."""
    r = np.asarray(residual, np.float64)
    sp = np.asarray(spread, np.float64)
    d = np.asarray(distance, np.float64)
    ok = np.isfinite(r) & np.isfinite(sp) & np.isfinite(d)
    r, sp, d = r[ok], sp[ok], d[ok]
    if len(r) < MIN_ROWS:
        return Calibration(fitted_on=f"not fitted: {len(r)} rows of {fitted_on}", n=int(len(r)))
    r2 = r**2

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        s2, b2 = np.exp(2 * theta)
        a, c = sp**2, d**2
        var = s2 * a + b2 * c + VARIANCE_FLOOR_K2
        f = 0.5 * np.mean(np.log(var) + r2 / var)
        dvar = 0.5 * (1 / var - r2 / var**2)  # dNLL/dvar per row (mean taken below)
        grad = np.array([np.mean(dvar * a) * 2 * s2, np.mean(dvar * c) * 2 * b2])
        return float(f), grad

    rms = float(np.sqrt(np.mean(r2)))
    s0 = rms / max(float(np.sqrt(np.mean(sp**2))), 1e-6)
    b0 = rms / max(float(np.sqrt(np.mean(d**2))), 1e-6)
    starts = [(s0, b0 * 1e-3), (s0 * 0.5, b0 * 0.5), (s0 * 1e-2, b0), (1.0, 1.0)]
    bounds = [LOG_S_BOUNDS, LOG_B_BOUNDS]
    best = None
    for s_init, b_init in starts:
        theta0 = np.clip(
            np.log([max(s_init, 1e-9), max(b_init, 1e-9)]), [lo for lo, _ in bounds], [hi for _, hi in bounds]
        )
        res = minimize(objective, theta0, jac=True, method="L-BFGS-B", bounds=bounds)
        if best is None or res.fun < best.fun:
            best = res
    s, b = (float(v) for v in np.exp(best.x))
    if b < B_ZERO_K:
        b = 0.0
    # The NLL fixes the shape (how σ splits between spread and distance); Tc errors are heavier-tailed than
    # a normal, so the NLL widens σ to cover the tails. Rescale both terms so that ±1σ holds 68.3 % of the
    # rows, as a normal's would: ±1σ is then read as "68 %", and ±2σ is measured, not assumed.
    z = np.abs(r) / np.sqrt((s * sp) ** 2 + (b * d) ** 2 + VARIANCE_FLOOR_K2)
    q = float(np.quantile(z, ONE_SIGMA_COVERAGE))
    s, b = s * q, b * q
    return Calibration(
        sigma_scale=s,
        distance_scale_k=b,
        fitted_on=fitted_on,
        n=int(len(r)),
        nll=gaussian_nll(r, sp, d, s, b),
        method=METHOD,
    )


def training_supercon_x(ds: Dataset) -> np.ndarray:
    """(N, 118) SuperCon compositions of the TRAIN split: what "distance to training" is measured against."""
    idx = ds.indices(TRAIN)
    return ds.x[idx[ds.is_supercon[idx]]]


def distance_to_training(ds: Dataset, rows: np.ndarray) -> np.ndarray:
    """(len(rows),) L1 distance (0..2) from ds.x[rows] to the nearest training SuperCon composition."""
    return nearest_l1(ds.x[rows], training_supercon_x(ds))[1]


def raw_mean_spread(ens: TcEnsemble, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean, uncalibrated member spread) in K for x (B, 118)."""
    saved = ens.sigma_scale, ens.distance_scale_k
    ens.sigma_scale, ens.distance_scale_k = 1.0, 0.0
    try:
        return ens.predict(x)
    finally:
        ens.sigma_scale, ens.distance_scale_k = saved


def calibrate(ens: TcEnsemble, ds: Dataset) -> Calibration:
    """Fit (s, b) for `ens` on the validation superconductors of `ds` (its own split). K = 1: not fitted."""
    idx = ds.indices(VAL)
    idx = idx[ds.is_supercon[idx]]
    where = f"{SPLIT_NAMES[VAL]} superconductors (split {ds.config.split}, seed {ds.config.split_seed})"
    if not ens.has_uncertainty:
        return Calibration(fitted_on=f"not fitted: single model ({where})")
    mean, spread = raw_mean_spread(ens, ds.x[idx])
    return fit_calibration(ds.tc_k[idx] - mean, spread, distance_to_training(ds, idx), fitted_on=where)


__all__ = ["Calibration", "calibrate", "distance_to_training", "fit_calibration", "gaussian_nll"]
