"""Pure numpy metrics for regression (Tc in K, or any target) and the "is it a superconductor?" decision.

The one place where evaluation figures are computed: training, `gdmcd evaluate`, the app and the bench scripts
call these. No I/O. Every function takes two aligned 1-D arrays `y_true`, `y_pred` and returns plain Python
floats/ints (JSON-ready). Undefined ratios follow scikit-learn's conventions (`zero_division=0`,
`force_finite=True`) so results never contain NaN.
"""

from __future__ import annotations

import numpy as np

# |SS_tot| below this counts as a constant target (R² is then undefined; see regression_metrics).
CONSTANT_TARGET_TOL = 1e-12
THRESHOLDS_K = (0.0, 1.0, 5.0)  # "superconductor" := Tc > t; 0 K is the paper's (Table 6)
TC_BINS_K = (0.0, 10.0, 30.0, 77.0, 300.0)  # error-by-range bins (77 K: liquid nitrogen)


def _aligned(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both inputs as 1-D float64 arrays of the same, non-zero length; ValueError otherwise."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same length, got {t.size} and {p.size}")
    if t.size == 0:
        raise ValueError("metrics need at least one sample, got empty arrays")
    if not (np.isfinite(t).all() and np.isfinite(p).all()):
        raise ValueError("y_true and y_pred must be finite (found NaN or inf)")
    return t, p


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """Mean absolute error, root mean squared error and coefficient of determination.

    Args:
        y_true: (N,) true Tc in K.
        y_pred: (N,) predicted Tc in K.

    Returns:
        {"mae": K, "rmse": K, "r2": dimensionless}. R² = 1 - SS_res / SS_tot. For a constant
        `y_true` (SS_tot = 0) R² is 1.0 for a perfect prediction and 0.0 otherwise, as in
        scikit-learn's `r2_score`.

    >>> regression_metrics(np.array([0.0, 10.0]), np.array([1.0, 9.0]))
    {'mae': 1.0, 'rmse': 1.0, 'r2': 0.96}
    """
    t, p = _aligned(y_true, y_pred)
    err = p - t
    ss_res = float(np.sum(err**2))
    ss_tot = float(np.sum((t - t.mean()) ** 2))
    if ss_tot <= CONSTANT_TARGET_TOL:
        r2 = 1.0 if ss_res <= CONSTANT_TARGET_TOL else 0.0
    else:
        r2 = 1.0 - ss_res / ss_tot
    return {"mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err**2))), "r2": float(r2)}


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.0) -> dict[str, int]:
    """Counts of the decision "superconductor" := value > threshold (strictly greater).

    Args:
        y_true: (N,) true Tc in K (non-superconductors have 0).
        y_pred: (N,) predicted Tc in K.
        threshold: Tc in K; a row is a superconductor when its Tc is strictly above it.

    Returns:
        {"tp", "fp", "fn", "tn"} as ints.
    """
    t, p = _aligned(y_true, y_pred)
    actual = t > threshold
    called = p > threshold
    return {
        "tp": int(np.sum(actual & called)),
        "fp": int(np.sum(~actual & called)),
        "fn": int(np.sum(actual & ~called)),
        "tn": int(np.sum(~actual & ~called)),
    }


def classification_metrics(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.0) -> dict[str, float | int]:
    """Precision and recall of "superconductor" (Tc > threshold) plus the confusion counts.

    Args:
        y_true: (N,) true Tc in K.
        y_pred: (N,) predicted Tc in K.
        threshold: Tc in K; "superconductor" means value > threshold, for truth and prediction alike.

    Returns:
        {"precision", "recall", "tp", "fp", "fn", "tn"}. precision = tp / (tp + fp),
        recall = tp / (tp + fn); a ratio with a zero denominator is 0.0 (scikit-learn's
        `zero_division=0`).

    >>> classification_metrics(np.array([0.0, 0.0, 20.0, 30.0]), np.array([0.0, 3.0, 25.0, 0.5]), 1.0)
    {'precision': 0.5, 'recall': 0.5, 'tp': 1, 'fp': 1, 'fn': 1, 'tn': 1}
    """
    c = confusion_counts(y_true, y_pred, threshold)
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    return {"precision": float(precision), "recall": float(recall), **c}


def threshold_metrics(
    y_true: np.ndarray, y_pred: np.ndarray, thresholds: tuple[float, ...] = THRESHOLDS_K
) -> dict[str, float]:
    """Flat {"precision_at_{t}k": ..., "recall_at_{t}k": ...} for each threshold t in K, in that order.

    >>> threshold_metrics(np.array([0.0, 10.0]), np.array([2.0, 10.0]), (0.0, 5.0))
    {'precision_at_0k': 0.5, 'recall_at_0k': 1.0, 'precision_at_5k': 1.0, 'recall_at_5k': 1.0}
    """
    out: dict[str, float] = {}
    for t in thresholds:
        c = classification_metrics(y_true, y_pred, t)
        out[f"precision_at_{t:g}k"] = c["precision"]
        out[f"recall_at_{t:g}k"] = c["recall"]
    return out


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean |y_pred - y_true| in the inputs' precision (float32 in: a float32 sum, as the training loop's
    validation score has always been taken); `regression_metrics` computes in float64 instead.

    Args:
        y_true: (N,) targets, N >= 1.
        y_pred: (N,) predictions, same unit.
    """
    return float(np.abs(np.asarray(y_pred) - np.asarray(y_true)).mean())


def mae_by_range(
    y_true: np.ndarray, y_pred: np.ndarray, edges: tuple[float, ...] = TC_BINS_K
) -> list[dict[str, float | int]]:
    """MAE per bin of the true value: [{tc_from_k, tc_to_k, n, mae_k}] for the non-empty bins lo <= y_true < hi.

    Args:
        y_true: (N,) true Tc in K.
        y_pred: (N,) predicted Tc in K (`mean_absolute_error`'s precision: that of the inputs).
        edges: increasing bin edges in K.

    >>> mae_by_range(np.array([5.0, 20.0, 25.0]), np.array([6.0, 25.0, 25.0]), (0.0, 10.0, 30.0, 77.0))
    [{'tc_from_k': 0.0, 'tc_to_k': 10.0, 'n': 1, 'mae_k': 1.0}, {'tc_from_k': 10.0, 'tc_to_k': 30.0, 'n': 2, 'mae_k': 2.5}]
    """
    t, p = np.asarray(y_true), np.asarray(y_pred)
    out: list[dict[str, float | int]] = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        m = (t >= lo) & (t < hi)
        if m.any():
            out.append(
                {
                    "tc_from_k": float(lo),
                    "tc_to_k": float(hi),
                    "n": int(m.sum()),
                    "mae_k": mean_absolute_error(t[m], p[m]),
                }
            )
    return out


__all__ = [
    "TC_BINS_K",
    "THRESHOLDS_K",
    "classification_metrics",
    "confusion_counts",
    "mae_by_range",
    "mean_absolute_error",
    "regression_metrics",
    "threshold_metrics",
]
