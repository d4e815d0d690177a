"""Shared pieces of the model benchmarks: load a checkpoint with its calibrated σ, tree / 1-NN baselines
(bench/baselines.py) on any training rows, and number formatting.

Nothing here trains a neural network. A checkpoint whose card has no "calibration" (cards written
before the distance-aware σ) gets (s, b) fitted on its own validation split at bench time, and the
returned note says so.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from bench.baselines import GbtConfig, fit_1nn, fit_gbt
from gdmcd_core.data.dataset import Dataset
from gdmcd_core.model.checkpoint import load_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.training.calibration import calibrate
from gdmcd_core.training.evaluate import dataset_for

QUICK_TREE_ROUNDS = 30  # --quick: boosting rounds of the trees (full: GbtConfig.max_iter = 400)
QUICK_TRAIN_ROWS = 4000  # --quick: trees and 1-NN fit on at most this many (seeded) training rows


def load_calibrated(path: str | Path, data_dir: str | None = None) -> tuple[TcEnsemble, Dataset, str]:
    """(ensemble, its own dataset and split, calibration note). Fits (s, b) on validation if the card has none."""
    ens = load_checkpoint(path)
    ds = dataset_for(ens, data_dir)
    if "calibration" in ens.card:
        return ens, ds, f"calibration from the card ({ens.card['calibration'].get('fitted_on', '?')})"
    if not ens.has_uncertainty:
        return ens, ds, "single model: no σ"
    cal = calibrate(ens, ds)
    cal.apply_to(ens)
    return ens, ds, f"calibration fitted at bench time on {cal.fitted_on} (card has none)"


def subsample(idx: np.ndarray, n_max: int | None, seed: int = 0) -> np.ndarray:
    """At most n_max rows of idx, seeded, order kept (all of them when n_max is None)."""
    if n_max is None or len(idx) <= n_max:
        return idx
    return np.sort(np.random.default_rng(seed).choice(idx, n_max, replace=False))


def tree_predictions(
    x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, quick: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """HistGradientBoosting on the 118 fractions and 1-NN (L2 on fractions): test predictions in K (trees, 1-NN)."""
    rows = subsample(np.arange(len(y_train)), QUICK_TRAIN_ROWS if quick else None)
    cfg = GbtConfig(max_iter=QUICK_TREE_ROUNDS) if quick else GbtConfig()
    trees = fit_gbt(x_train[rows], y_train[rows], cfg)
    nn = fit_1nn(x_train[rows], y_train[rows])
    return np.asarray(trees(x_test), float), np.asarray(nn(x_test), float)


def fmt(v: object, spec: str = ".3f") -> str:
    """A number for a table cell; '–' for None/NaN, strings as they are."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "–"
    if isinstance(v, bool | str):
        return str(v)
    return format(v, spec)
