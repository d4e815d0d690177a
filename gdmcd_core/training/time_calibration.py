"""σ for the time-split model from an inner time split: nothing it is fitted on was reported from 2010 on.

The time-split ensemble is trained on SuperCon rows first reported before 2010 and tested on the rest. Its
validation rows are a random share of the pre-2010 rows, so they sit next to training rows, and a σ fitted
there is too narrow for new chemistry (±1σ / ±2σ cover 60 % / 80 % of the post-2010 rows); a σ fitted on the
post-2010 rows themselves can only be reported cross-fitted, and still used the test set.

The inner split repeats the outer one a step earlier: an ensemble with the same settings is trained on rows
first reported before 2005 (`gdmcd train --split time --time-split-year 2005`), and its errors on the
superconductors first reported 2005-2009 -- new to it as the post-2010 ones are new to the outer model --
fit the calibration (`calibration.fit_calibration`: the σ shape by Gaussian likelihood, its size by coverage).
That calibration is then carried over to the outer ensemble unchanged:

    σ² = (s · spread)² + (b · d)² + (third term)²,   times the factor of d's band when bands are on

with spread the members' sd and d the L1 distance to the nearest training superconductor (each model's own).
The third term is none, the neighbour term g · |Tc − Tc_nn| (the gap in K between the predicted Tc and that
superconductor's Tc) or the Tc term h · Tc (the model's own predicted Tc: errors grow with Tc, and the size of
the errors differs from one period to the next with the Tc of what was found in it). Which term, whether each
distance band gets its own factor, and how σ is sized (TIME_SIGMA_TERM, TIME_BANDS, TIME_COVERAGE_RULE) were
chosen together by bench/time_calibration.py on transfers wholly before 2010 (1995→2000 and 2000→2005) with inner
models trained as the committed time-split model is: the ±1σ rule, the Tc term, no band factors (with the earlier
recipe, 3 SuperCon replicas against the COD rows instead of 12, the neighbour term had won). The design loop looks
up d and Tc_nn of the nearest reference superconductor for a model calibrated with them, so the σ it ranks by is
the σ whose coverage the model card reports. The carried-over calibration records `max_year` (2009) and the inner checkpoint's SHA-256.
"""

from __future__ import annotations

import numpy as np

from gdmcd_core.data.dataset import TEST, Dataset
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.training.calibration import Calibration, fit_calibration, raw_mean_spread, training_neighbors

INNER_PART = "inner_time"  # Calibration.part of a calibration carried over from an inner time split
# How σ is sized on the inner rows (calibration.coverage_scale), which third term it has and whether each distance
# band gets its own factor: chosen together by bench/time_calibration.py on transfers wholly before 2010 (fitted on
# one window by one model, scored on the next window by the next model; docs/benchmarks/time_calibration.md)
TIME_COVERAGE_RULE = "one"
SIGMA_TERMS = ("none", "neighbor", "tc")  # no third term, g · |Tc - Tc_nn|, or h · Tc (the predicted Tc)
TIME_SIGMA_TERM = "tc"
TIME_BANDS = False


def inner_rows(inner_ds: Dataset, before_year: int) -> np.ndarray:
    """Superconductor rows of the inner model's test part first reported before `before_year`."""
    if inner_ds.config.split != "time":
        raise ValueError(f"the inner checkpoint must have a time split, not {inner_ds.config.split!r}")
    if inner_ds.config.time_split_year >= before_year:
        raise ValueError(
            f"the inner checkpoint's split year ({inner_ds.config.time_split_year}) must be before the "
            f"time-split model's ({before_year})"
        )
    idx = inner_ds.indices(TEST)
    year = inner_ds.first_year[idx].astype(np.float64)
    return idx[inner_ds.is_supercon[idx] & (year < before_year)]


def calibrate_inner_time(
    inner: TcEnsemble,
    inner_ds: Dataset,
    before_year: int,
    rule: str = TIME_COVERAGE_RULE,
    term: str = TIME_SIGMA_TERM,
    bands: bool = TIME_BANDS,
) -> Calibration:
    """Fit (s, b and the `term`'s scale) and, with `bands`, the band factors on the inner ensemble's errors on its
    superconductors first reported from its split year up to `before_year` - 1 (module docstring); `rule`:
    calibration.coverage_scale's. ValueError for a single-member inner model or an unknown term."""
    if term not in SIGMA_TERMS:
        raise ValueError(f"term must be one of {SIGMA_TERMS}, got {term!r}")
    if not inner.has_uncertainty:
        raise ValueError("the inner checkpoint has one member: it has no spread to calibrate")
    idx = inner_rows(inner_ds, before_year)
    mean, spread = raw_mean_spread(inner, inner_ds.x[idx])
    distance, tc_nn = training_neighbors(inner_ds, idx)
    gap = np.abs(mean - tc_nn) if term == "neighbor" else None
    tc = mean if term == "tc" else None
    years = inner_ds.first_year[idx].astype(np.float64)
    max_year = int(np.nanmax(years)) if len(idx) else None
    where = (
        f"inner time split: an ensemble trained on rows first reported before {inner_ds.config.time_split_year}, "
        f"fitted on its {len(idx)} superconductors first reported {inner_ds.config.time_split_year}-{before_year - 1}"
        f" (checkpoint sha256 {inner.sha256[:12]})"
    )
    residual = inner_ds.tc_k[idx] - mean
    cal = fit_calibration(residual, spread, distance, gap, where, INNER_PART, rule, tc=tc, bands=bands)
    return Calibration(**{**cal.to_dict(), "max_year": max_year})


__all__ = [
    "INNER_PART",
    "SIGMA_TERMS",
    "TIME_BANDS",
    "TIME_COVERAGE_RULE",
    "TIME_SIGMA_TERM",
    "calibrate_inner_time",
    "inner_rows",
]
