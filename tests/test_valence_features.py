"""Oxygen-aware valence features: the numbers a chemist would compute, and trees and classifiers that keep them."""

from __future__ import annotations

import numpy as np
import pytest

from gdmcd_core.chem.composition import to_vectors
from gdmcd_core.chem.valence import cu_valence
from gdmcd_core.chem.valence_features import CU_UNDEFINED, FEATURE_NAMES, valence_features
from gdmcd_core.model.sc_classifier import ClassifierConfig, fit_classifier, load_classifier, save_classifier
from gdmcd_core.model.trees import TreeConfig, fit_trees, load_trees, save_trees, tree_feature_names, trees_path


def _f(formula: str) -> dict[str, float]:
    return dict(zip(FEATURE_NAMES, valence_features(to_vectors([formula]))[0].tolist(), strict=True))


def test_oxygen_content_and_cu_valence_of_ybco() -> None:
    o7, o6, o4 = (_f(f"YBa2Cu3O{y}") for y in (7, 6, 4))
    assert o7["anion_fraction"] == pytest.approx(7 / 13) and o7["o_per_cation"] == pytest.approx(7 / 6)
    assert o7["cu_valence"] == pytest.approx(cu_valence({"Y": 1, "Ba": 2, "Cu": 3, "O": 7}), abs=1e-5)
    assert o6["cu_valence"] == pytest.approx(5 / 3, abs=1e-5) and o4["cu_valence"] == pytest.approx(1 / 3, abs=1e-5)
    # at typical valences (Cu +2) O7 holds one excess anion charge (holes), O6 one too few, O4 five
    assert o7["net_typical_charge"] == pytest.approx(-1 / 13, abs=1e-6)
    assert o6["net_typical_charge"] == pytest.approx(1 / 12, abs=1e-6)
    assert o4["net_typical_charge"] == pytest.approx(5 / 10, abs=1e-6)
    assert o7["typical_share"] == pytest.approx(1.0)
    # the oxidation-state window narrows towards "too reduced" as oxygen leaves
    assert o4["charge_lo"] > 0 > o7["charge_lo"]


def test_intermetallics_and_ambiguous_valences_have_no_cu_valence() -> None:
    nb3sn, fese, lsco = _f("Nb3Sn"), _f("FeSe"), _f("La1.85Sr0.15CuO4")
    assert nb3sn["anion_fraction"] == 0 and nb3sn["o_per_cation"] == 0 and nb3sn["net_typical_charge"] == 0
    assert nb3sn["cu_valence"] == CU_UNDEFINED == fese["cu_valence"]
    assert fese["typical_share"] == pytest.approx(0.5)  # Fe has no single typical valence
    assert lsco["cu_valence"] == pytest.approx(2.15, abs=1e-5)
    with pytest.raises(ValueError, match="shape"):
        valence_features(np.zeros((2, 117)))


def _data(n: int = 400, seed: int = 0, cation: int = 55, charge: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """A-Cu-O compositions (A: Ba, index 55, or another cation of that charge) at varying oxygen; 'Tc' and
    'superconducting' rise with the formal Cu valence."""
    rng = np.random.default_rng(seed)
    amounts = np.stack([rng.uniform(1, 3, n), rng.uniform(1, 2, n), rng.uniform(1, 8, n)], 1)  # A, Cu, O
    x = np.zeros((n, 118), np.float32)
    x[:, [cation, 28, 7]] = amounts / amounts.sum(1, keepdims=True)
    v = (2 * amounts[:, 2] - charge * amounts[:, 0]) / amounts[:, 1]
    return x, np.clip(40 * (v - 1.8), 0, 60)


def test_trees_and_classifier_keep_the_valence_features_through_save_and_load(tmp_path) -> None:
    x, y = _data()
    trees = fit_trees(x, y, TreeConfig(max_iter=20, max_leaf_nodes=7, valence=True))
    assert trees.valence and trees.n_features == len(tree_feature_names(valence=True)) == 118 + 28 + 7
    path = trees_path(tmp_path / "tc_val.pt")
    save_trees(path, trees, {})
    loaded, _ = load_trees(path)
    assert loaded.valence
    np.testing.assert_array_equal(loaded.predict(x), trees.predict(x))
    sc = (y > 0).astype(np.int8)
    w = np.ones(len(y))
    clf, _ = fit_classifier(
        (x[:300], sc[:300], w[:300]), (x[300:], sc[300:], w[300:]), ClassifierConfig(max_iter=30, valence=True)
    )
    assert clf.trees.valence
    save_classifier(tmp_path / "tc_val.sc.pt", clf, {})
    back, _ = load_classifier(tmp_path / "tc_val.sc.pt")
    np.testing.assert_allclose(back.probability(x), clf.probability(x))


def test_the_valence_features_carry_the_oxygen_rule_to_a_cation_of_another_charge() -> None:
    x, y = _data(400)  # trained on Ba-Cu-O
    x_sr, y_sr = _data(200, seed=1, cation=38, charge=3.0)  # scored on Y-Cu-O: Y is +3, Ba +2
    err = {}
    for valence in (False, True):
        trees = fit_trees(x, y, TreeConfig(max_iter=60, max_leaf_nodes=7, valence=valence))
        err[valence] = np.abs(trees.predict(x_sr) - y_sr).mean()
    assert err[True] < 0.5 * err[False]


def test_flagged_rows_stay_out_of_the_classifier_and_tree_fits() -> None:
    from types import SimpleNamespace

    from gdmcd_core.data.dataset import TRAIN, VAL
    from gdmcd_core.model.sc_classifier import classifier_rows
    from gdmcd_core.model.trees import training_rows

    split = np.array([TRAIN, TRAIN, TRAIN, VAL, VAL])
    flags = np.array([False, True, False, True, False])
    ds = SimpleNamespace(
        is_supercon=np.ones(5, bool),
        valence_suspect=flags,
        indices=lambda part: np.flatnonzero(split == part),
        train_indices=lambda: np.flatnonzero(split == TRAIN),
    )
    assert [r.tolist() for r in classifier_rows(ds)] == [[0, 2], [4]]
    assert [r.tolist() for r in classifier_rows(ds, skip_valence_suspect=False)] == [[0, 1, 2], [3, 4]]
    assert training_rows(ds, TreeConfig(skip_valence_suspect=True)).tolist() == [0, 2]
    assert training_rows(ds).tolist() == [0, 1, 2]  # the Tc trees keep them by default (validation MAE)
    del ds.valence_suspect  # a dataset that records no flags: every row
    assert training_rows(ds, TreeConfig(skip_valence_suspect=True)).tolist() == [0, 1, 2]
