"""Pure numpy metrics for Tc regression and the "is it a superconductor?" decision.

No I/O, no globals. Every function takes two aligned 1-D arrays `y_true`, `y_pred` of Tc in K
and returns plain Python floats/ints (JSON-ready). Undefined ratios follow scikit-learn's
conventions (`zero_division=0`, `force_finite=True`) so results never contain NaN.
"""

from __future__ import annotations

import numpy as np

# |SS_tot| below this counts as a constant target (R² is then undefined; see regression_metrics).
CONSTANT_TARGET_TOL = 1e-12


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
    y_true: np.ndarray, y_pred: np.ndarray, thresholds: tuple[float, ...] = (0.0, 1.0, 5.0)
) -> dict[str, float]:
    """Flat {"precision_at_{t}k": ..., "recall_at_{t}k": ...} for each threshold t in K."""
    out: dict[str, float] = {}
    for t in thresholds:
        c = classification_metrics(y_true, y_pred, t)
        out[f"precision_at_{t:g}k"] = c["precision"]
        out[f"recall_at_{t:g}k"] = c["recall"]
    return out


__all__ = ["classification_metrics", "confusion_counts", "regression_metrics", "threshold_metrics"]
