"""The ResNet's weight in its consensus with the trees, fitted on validation superconductors."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from gdmcd_core.data.dataset import TRAIN, VAL
from gdmcd_core.training.consensus_weight import WEIGHTS, consensus_weight_for, fit_consensus_weight


def _truth(n: int = 400, seed: int = 0) -> tuple[np.random.Generator, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng, rng.uniform(5, 100, n)


def test_the_more_accurate_model_gets_the_weight() -> None:
    rng, y = _truth()
    close, far = y + rng.normal(0, 1, len(y)), y + rng.normal(0, 15, len(y))
    assert fit_consensus_weight(close, far, y)["consensus_weight"] == 1.0  # the ResNet exact-ish: it alone
    assert fit_consensus_weight(far, close, y)["consensus_weight"] == 0.0  # the trees exact-ish: they alone
    a, b = y + rng.normal(0, 5, len(y)), y + rng.normal(0, 5, len(y))  # equally good, independent errors
    assert 0.3 <= fit_consensus_weight(a, b, y)["consensus_weight"] <= 0.7


def test_ties_keep_the_even_mean_and_the_fit_is_recorded() -> None:
    _, y = _truth(50)
    out = fit_consensus_weight(y + 3.0, y + 3.0, y)  # the two agree: every weight has the same MAE
    assert out["consensus_weight"] == 0.5
    fit = out["consensus_weight_fit"]
    assert fit["part"] == "validation" and fit["rows"] == 50
    assert list(fit["mae_k_by_weight"]) == [f"{w:.1f}" for w in WEIGHTS]
    assert fit["mae_k_by_weight"]["0.5"] == pytest.approx(3.0)


def test_a_resnet_zero_scores_the_trees_tc() -> None:
    y = np.array([40.0, 40.0, 40.0, 40.0])
    net = np.array([0.0, 0.0, 0.0, 60.0])  # three confident zeros on superconductors
    trees = np.array([40.0, 40.0, 40.0, 20.0])
    out = fit_consensus_weight(net, trees, y)
    assert out["consensus_weight_fit"]["mae_k_by_weight"]["0.5"] == pytest.approx(0.0)  # (60 + 20) / 2 = 40
    assert out["consensus_weight"] == 0.5


def test_no_rows_is_an_error() -> None:
    with pytest.raises(ValueError, match="validation superconductors"):
        fit_consensus_weight(np.zeros(0), np.zeros(0), np.zeros(0))


def test_only_validation_superconductors_are_used() -> None:
    rng, y = _truth(40)
    split = np.array([VAL, TRAIN] * 20)
    is_sc = np.array([True, True, False, True] * 10)
    ds = SimpleNamespace(
        x=np.arange(40, dtype=np.float32)[:, None],
        tc_k=y,
        is_supercon=is_sc,
        indices=lambda part: np.flatnonzero(split == part),
    )
    seen = []

    class Net:
        def predict(self, x):
            seen.append(x[:, 0].astype(int))
            return y[x[:, 0].astype(int)], None

    trees = SimpleNamespace(predict=lambda x: y[x[:, 0].astype(int)] + 10.0)
    out = consensus_weight_for(Net(), ds, trees)
    expected = np.flatnonzero((split == VAL) & is_sc)
    np.testing.assert_array_equal(seen[0], expected)
    assert out["consensus_weight"] == 1.0 and out["consensus_weight_fit"]["rows"] == len(expected)
