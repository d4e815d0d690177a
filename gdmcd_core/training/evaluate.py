"""Evaluation of a Tc checkpoint on its held-out test split (paper Table 1, S3 / Table 6).

"Superconductor" means Tc > threshold; the headline `test_precision` uses threshold 0 K as in
the paper (the model's ReLU output is exactly 0 for compositions it calls non-superconducting),
and precision/recall are also reported at 1 K and 5 K.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import spearmanr

from gdmcd_core.data.dataset import TEST, VAL, DataConfig, Dataset, build_dataset
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.training.metrics import classification_metrics, regression_metrics

THRESHOLDS_K = (0.0, 1.0, 5.0)
TC_BINS_K = (0.0, 10.0, 30.0, 77.0, 300.0)  # error-by-range bins (77 K: liquid nitrogen)


def dataset_for(ens: TcEnsemble, data_dir: str | None = None) -> Dataset:
    """Rebuild the exact dataset and split the checkpoint was trained on (from its card)."""
    cfg = DataConfig.from_dict(ens.card.get("data_config", {}))
    return build_dataset(cfg, data_dir)


def evaluate_predictions(ds: Dataset, mean: np.ndarray, std: np.ndarray, part: int = TEST) -> dict:
    """Metrics of predictions `mean`, `std` (aligned with ds rows of `part`)."""
    idx = ds.indices(part)
    sc = ds.is_supercon[idx]
    y = ds.tc_k[idx]
    out: dict = {"n_test_supercon": int(sc.sum()), "n_test_nonsc": int((~sc).sum())}
    reg = regression_metrics(y[sc], mean[sc])
    out["supercon_test_mae_k"] = reg["mae"]
    out["supercon_test_rmse_k"] = reg["rmse"]
    out["supercon_test_r2"] = reg["r2"]
    for t in THRESHOLDS_K:
        c = classification_metrics(y, mean, t)
        out[f"precision_at_{t:g}k"] = c["precision"]
        out[f"recall_at_{t:g}k"] = c["recall"]
    out["test_precision"] = out["precision_at_0k"]
    out["test_precision_threshold_k"] = 0.0
    out["supercon_predicted_zero_fraction"] = float((mean[sc & (y > 0)] == 0).mean()) if (sc & (y > 0)).any() else 0.0
    by_range = []
    for lo, hi in zip(TC_BINS_K[:-1], TC_BINS_K[1:], strict=True):
        m = sc & (y >= lo) & (y < hi)
        if m.any():
            by_range.append(
                {"tc_from_k": lo, "tc_to_k": hi, "n": int(m.sum()), "mae_k": float(np.abs(mean[m] - y[m]).mean())}
            )
    out["mae_by_tc_range"] = by_range
    if std is not None and np.any(std > 0):
        err = np.abs(mean[sc] - y[sc])
        s = std[sc]
        out["coverage_1sigma"] = float((err <= s).mean())
        out["coverage_2sigma"] = float((err <= 2 * s).mean())
        out["spearman_sigma_abs_error"] = float(spearmanr(s, err).statistic)
        out["mean_sigma_k"] = float(s.mean())
    return out


SIGMA_TARGET_COVERAGE = 0.683  # share of a normal distribution inside ±1σ


def fit_sigma_scale(ens: TcEnsemble, ds: Dataset) -> float:
    """Factor on the members' spread so that 68.3 % of validation superconductors fall inside ±1σ.

    Returns 1.0 for a single model or without validation superconductors.
    """
    idx = ds.indices(VAL)
    idx = idx[ds.is_supercon[idx]]
    if not ens.has_uncertainty or len(idx) == 0:
        return 1.0
    saved, ens.sigma_scale = ens.sigma_scale, 1.0
    try:
        mean, raw_std = ens.predict(ds.x[idx])
    finally:
        ens.sigma_scale = saved
    ratio = np.abs(mean - ds.tc_k[idx]) / np.maximum(raw_std, 1e-6)
    return float(np.quantile(ratio, SIGMA_TARGET_COVERAGE))


def evaluate_checkpoint(ens: TcEnsemble, ds: Dataset | None = None, part: int = TEST) -> dict:
    """Evaluate `ens` on `part` of its own split (rebuilt from the card if `ds` is None)."""
    ds = ds if ds is not None else dataset_for(ens)
    idx = ds.indices(part)
    mean, std = ens.predict(ds.x[idx])
    out = evaluate_predictions(ds, mean, std if ens.has_uncertainty else None, part)
    if ens.n_members > 1:
        import torch

        with torch.no_grad():
            per = ens.member_predictions(torch.as_tensor(ds.x[idx], device=ens.device)).cpu().numpy()
        sc = ds.is_supercon[idx]
        out["member_supercon_test_mae_k"] = [float(np.abs(p[sc] - ds.tc_k[idx][sc]).mean()) for p in per]
    out["n_members"] = ens.n_members
    out["split"] = ds.config.split
    out["split_seed"] = ds.config.split_seed
    return out


def test_predictions(ens: TcEnsemble, ds: Dataset | None = None) -> dict[str, np.ndarray]:
    """Per-row test predictions for plots: formula, true Tc, predicted mean and sd, is_supercon."""
    ds = ds if ds is not None else dataset_for(ens)
    idx = ds.indices(TEST)
    mean, std = ens.predict(ds.x[idx])
    return {
        "formula": ds.formula[idx],
        "tc_true_k": ds.tc_k[idx],
        "tc_pred_k": mean,
        "tc_std_k": std,
        "is_supercon": ds.is_supercon[idx],
    }
