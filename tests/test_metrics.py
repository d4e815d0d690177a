"""Metrics: hand-computed values, invariants, edge cases and agreement with scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import mean_absolute_error, precision_score, r2_score, recall_score

from gdmcd_core.training import metrics
from gdmcd_core.training.metrics import classification_metrics, confusion_counts, regression_metrics, threshold_metrics


def test_regression_hand_computed() -> None:
    m = regression_metrics(np.array([0.0, 10.0, 20.0]), np.array([2.0, 10.0, 17.0]))
    assert m["mae"] == pytest.approx(5.0 / 3)
    assert m["rmse"] == pytest.approx(np.sqrt(13.0 / 3))
    assert m["r2"] == pytest.approx(1 - 13.0 / 200.0)


def test_regression_perfect_and_mean_predictor() -> None:
    y = np.array([1.0, 5.0, 9.0, 40.0])
    assert regression_metrics(y, y) == {"mae": 0.0, "rmse": 0.0, "r2": 1.0}
    assert regression_metrics(y, np.full_like(y, y.mean()))["r2"] == pytest.approx(0.0)


def test_regression_matches_sklearn_and_rmse_ge_mae() -> None:
    rng = np.random.default_rng(0)
    y = rng.gamma(2.0, 10.0, 200)
    p = y + rng.normal(0, 5, 200)
    m = regression_metrics(y, p)
    assert m["mae"] == pytest.approx(mean_absolute_error(y, p))
    assert m["r2"] == pytest.approx(r2_score(y, p))
    assert m["rmse"] >= m["mae"]


def test_regression_constant_target_is_finite() -> None:
    y = np.zeros(3)
    assert regression_metrics(y, y)["r2"] == 1.0
    assert regression_metrics(y, np.array([0.0, 1.0, 0.0]))["r2"] == 0.0


def test_classification_strictly_greater_than_threshold() -> None:
    y = np.array([0.0, 0.0, 1.0, 5.0, 30.0])
    p = np.array([0.0, 1.0, 1.0, 6.0, 0.5])
    c0 = classification_metrics(y, p, 0.0)
    assert (c0["tp"], c0["fp"], c0["fn"], c0["tn"]) == (3, 1, 0, 1)
    assert c0["precision"] == pytest.approx(3 / 4) and c0["recall"] == 1.0
    c1 = classification_metrics(y, p, 1.0)  # Tc = 1.0 exactly is NOT > 1 K
    assert (c1["tp"], c1["fp"], c1["fn"], c1["tn"]) == (1, 0, 1, 3)
    assert c1["precision"] == 1.0 and c1["recall"] == 0.5


def test_classification_counts_sum_and_match_sklearn() -> None:
    rng = np.random.default_rng(1)
    y = np.where(rng.random(300) < 0.4, rng.gamma(2.0, 10.0, 300), 0.0)
    p = np.clip(y + rng.normal(0, 4, 300), 0, None)
    for t in (0.0, 1.0, 5.0):
        c = classification_metrics(y, p, t)
        assert c["tp"] + c["fp"] + c["fn"] + c["tn"] == len(y)
        assert c["precision"] == pytest.approx(precision_score(y > t, p > t))
        assert c["recall"] == pytest.approx(recall_score(y > t, p > t))


def test_classification_no_predicted_positive_gives_zero_not_nan() -> None:
    c = classification_metrics(np.array([0.0, 10.0]), np.array([0.0, 0.0]))
    assert c["precision"] == 0.0 and c["recall"] == 0.0
    c = classification_metrics(np.array([0.0, 0.0]), np.array([0.0, 0.0]))
    assert c["recall"] == 0.0 and c["tn"] == 2


def test_threshold_metrics_keys() -> None:
    out = threshold_metrics(np.array([0.0, 10.0]), np.array([2.0, 10.0]))
    assert set(out) == {f"{k}_at_{t}k" for k in ("precision", "recall") for t in (0, 1, 5)}
    assert out["precision_at_0k"] == 0.5 and out["precision_at_5k"] == 1.0


@pytest.mark.parametrize(
    ("y_true", "y_pred", "match"),
    [
        ([1.0, 2.0], [1.0], "same length"),
        ([], [], "at least one"),
        ([1.0, np.nan], [1.0, 2.0], "finite"),
    ],
)
def test_bad_inputs_raise(y_true: list[float], y_pred: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        regression_metrics(np.array(y_true), np.array(y_pred))
    with pytest.raises(ValueError, match=match):
        confusion_counts(np.array(y_true), np.array(y_pred))


def test_mae_by_range_bins_the_true_value_and_skips_empty_bins() -> None:
    rows = metrics.mae_by_range(np.array([5.0, 20.0, 25.0, 100.0, 300.0]), np.array([6.0, 25.0, 25.0, 80.0, 0.0]))
    assert [(r["tc_from_k"], r["tc_to_k"], r["n"], r["mae_k"]) for r in rows] == [
        (0.0, 10.0, 1, 1.0),
        (10.0, 30.0, 2, 2.5),
        (77.0, 300.0, 1, 20.0),  # 30-77 K is empty; 300 K is past the last edge
    ]


def test_mean_absolute_error_keeps_the_inputs_precision() -> None:
    rng = np.random.default_rng(0)
    y, p = rng.uniform(0, 100, (2, 1001)).astype(np.float32)
    assert metrics.mean_absolute_error(y, p) == float(np.abs(p - y).mean())  # a float32 sum, as training takes it
    assert metrics.mean_absolute_error(y, p) == pytest.approx(mean_absolute_error(y, p), rel=1e-6)
    assert metrics.mean_absolute_error(y.astype(float), p.astype(float)) == pytest.approx(
        regression_metrics(y, p)["mae"], abs=1e-12
    )


def test_evaluation_figures_come_from_the_metrics_module(tiny_data_dir) -> None:
    """evaluate_predictions reports exactly what threshold_metrics and mae_by_range compute."""
    from gdmcd_core.data.dataset import TEST, DataConfig, build_dataset
    from gdmcd_core.training.evaluate import evaluate_predictions

    ds = build_dataset(DataConfig(fractions=(0.6, 0.2, 0.2)))
    y = ds.tc_k[ds.indices(TEST)]
    sc = ds.is_supercon[ds.indices(TEST)]
    pred = (y * 0.9 + np.linspace(-3, 3, len(y))).astype(np.float32)
    out = evaluate_predictions(ds, pred, None)
    assert {k: out[k] for k in threshold_metrics(y, pred)} == threshold_metrics(y, pred)
    assert out["mae_by_tc_range"] == metrics.mae_by_range(y[sc], pred[sc])
