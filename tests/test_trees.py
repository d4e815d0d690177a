"""Trees on element statistics: exported trees reproduce scikit-learn, storage is safe, the consensus gate."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.ensemble import HistGradientBoostingRegressor

from gdmcd_core.chem.element_features import feature_matrix
from gdmcd_core.model.checkpoint import CheckpointError, card_path
from gdmcd_core.model.trees import (
    EVEN_WEIGHT,
    TreeConfig,
    companion_trees,
    consensus,
    export_sklearn,
    fit_trees,
    load_trees,
    save_trees,
    tc_if_superconducting,
    training_rows,
    trees_path,
)


def _data(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 2-4 element compositions among the first 40 elements; Tc depends on Cu (28) and O (7)."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 118), np.float32)
    for i in range(n):
        els = rng.choice(40, size=rng.integers(2, 5), replace=False)
        x[i, els] = rng.dirichlet(np.ones(len(els)))
    y = 80 * x[:, 28] * (x[:, 7] > 0.2) + 10 * x[:, 25] + rng.normal(0, 0.5, n)
    return x, np.clip(y, 0, None)


def test_exported_trees_reproduce_sklearn() -> None:
    x, y = _data()
    feats = feature_matrix(x)
    model = HistGradientBoostingRegressor(max_iter=60, max_leaf_nodes=15, random_state=0, early_stopping=False)
    model.fit(feats, y)
    trees = export_sklearn(model, feats.shape[1])
    x_new, _ = _data(300, seed=1)
    f_new = feature_matrix(x_new)
    ours, ref = trees.predict_features(f_new), np.clip(model.predict(f_new), 0, None)
    assert trees.n_trees == 60
    np.testing.assert_allclose(ours, ref, atol=1e-3)
    # on the training rows too, where features sit exactly at bin edges (threshold rounding must be exact)
    np.testing.assert_allclose(trees.predict(x), np.clip(model.predict(feats), 0, None), atol=1e-3)


def test_fit_trees_learns_and_clips() -> None:
    x, y = _data()
    trees = fit_trees(x, y, TreeConfig(max_iter=80, learning_rate=0.1, max_leaf_nodes=15))
    pred = trees.predict(x)
    assert (pred >= 0).all()
    assert np.abs(pred - y).mean() < 0.5 * np.abs(y - y.mean()).mean()


def test_tree_config_is_validated() -> None:
    with pytest.raises(ValueError, match="max_iter"):
        TreeConfig(max_iter=0).validate()
    with pytest.raises(ValueError, match="max_leaf_nodes"):
        TreeConfig(max_leaf_nodes=1).validate()


def test_consensus_is_the_mean_where_the_resnet_calls_a_superconductor() -> None:
    out = consensus(np.array([0.0, 10.0, 90.0]), np.array([3.0, 20.0, 70.0]))
    np.testing.assert_allclose(out, [0.0, 15.0, 80.0])


def test_the_resnets_weight_moves_the_consensus_and_the_tc_if_superconducting() -> None:
    net, trees = np.array([0.0, 10.0, 90.0]), np.array([3.0, 20.0, 70.0])
    np.testing.assert_allclose(consensus(net, trees, 0.2), [0.0, 18.0, 74.0])
    np.testing.assert_allclose(consensus(net, trees, 1.0), [0.0, 10.0, 90.0])
    np.testing.assert_allclose(tc_if_superconducting(net, trees, 0.2), [3.0, 18.0, 74.0])  # a zero: the trees' Tc


def test_the_consensus_weight_comes_from_the_trees_card(tmp_path) -> None:
    _, path, _ = _saved(tmp_path)
    assert load_trees(path)[0].consensus_weight == EVEN_WEIGHT  # no weight in the card: the even mean
    _, path, _ = _saved(tmp_path, {"consensus_weight": 0.2})
    assert load_trees(path)[0].consensus_weight == 0.2


def test_trees_fit_on_the_training_superconductors_only_by_default() -> None:
    is_sc = np.array([True, False, True, True, False, True])
    ds = SimpleNamespace(is_supercon=is_sc, train_indices=lambda: np.array([0, 0, 1, 2, 4, 4]))  # replicas kept
    np.testing.assert_array_equal(training_rows(ds), [0, 0, 2])
    np.testing.assert_array_equal(training_rows(ds, TreeConfig(supercon_only=False)), [0, 0, 1, 2, 4, 4])


def _saved(tmp_path, card_extra: dict | None = None):
    x, y = _data(200)
    trees = fit_trees(x, y, TreeConfig(max_iter=10, max_leaf_nodes=7))
    path = trees_path(tmp_path / "tc_small.pt")
    save_trees(path, trees, {"data_config": {"split": "random"}, **(card_extra or {})})
    return trees, path, x


def test_save_load_roundtrip_and_hash_check(tmp_path) -> None:
    trees, path, x = _saved(tmp_path)
    assert path.name == "tc_small.trees.pt"
    loaded, card = load_trees(path)
    assert card["kind"] == "tc_trees" and card["n_trees"] == 10
    assert not loaded.extended and loaded.n_features == 118 + 4 * 7  # TreeConfig's default: the basic properties
    np.testing.assert_array_equal(loaded.predict(x), trees.predict(x))
    blob = torch.load(path, weights_only=True)  # plain tensors: loads without unpickling code
    assert set(blob) >= {"feature", "right_offset", "value", "roots"}
    blob["value"][0] += 1.0
    torch.save(blob, path)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_trees(path)


def test_trees_on_the_extended_properties_keep_their_feature_set(tmp_path) -> None:
    x, y = _data(200)
    trees = fit_trees(x, y, TreeConfig(max_iter=10, max_leaf_nodes=7, extended_features=True))
    path = trees_path(tmp_path / "tc_ext.pt")
    save_trees(path, trees, {})
    loaded, _ = load_trees(path)
    assert loaded.extended and loaded.n_features == 118 + 4 * 18
    np.testing.assert_array_equal(loaded.predict(x), trees.predict(x))


def test_trees_on_an_element_embedding_keep_it_through_save_and_load(tmp_path) -> None:
    x, y = _data(200)
    trees = fit_trees(x, y, TreeConfig(max_iter=10, max_leaf_nodes=7, embedding="magpie"))
    path = trees_path(tmp_path / "tc_emb.pt")
    save_trees(path, trees, {})
    loaded, _ = load_trees(path)
    assert loaded.embedding == "magpie" and loaded.n_features == 118 + 4 * 7 + 4 * 22
    np.testing.assert_array_equal(loaded.predict(x), trees.predict(x))
    with pytest.raises(ValueError, match="embedding"):
        TreeConfig(embedding="word2vec").validate()


def test_trees_whose_embedding_is_not_installed_are_refused_in_one_line(tmp_path, monkeypatch) -> None:
    from gdmcd_core.chem.embeddings import EmbeddingUnavailableError
    from gdmcd_core.model import trees as trees_module

    x, y = _data(100)
    path = trees_path(tmp_path / "tc_emb.pt")
    save_trees(path, fit_trees(x, y, TreeConfig(max_iter=3, max_leaf_nodes=4, embedding="magpie")), {})

    def missing(name: str):
        raise EmbeddingUnavailableError("element embedding 'magpie' needs the elementembeddings package")

    monkeypatch.setattr(trees_module, "embedding_table", missing)
    with pytest.raises(CheckpointError, match="elementembeddings"):
        load_trees(path)


def test_damaged_node_arrays_are_refused(tmp_path) -> None:
    trees, path, _ = _saved(tmp_path)
    split = int(np.flatnonzero(trees.feature >= 0)[0])
    trees.right[split] = split  # a cycle: the traversal would never end
    save_trees(path, trees, {"data_config": {"split": "random"}})
    with pytest.raises(CheckpointError, match="inconsistent"):
        load_trees(path)


def test_companion_trees_must_match_the_ensembles_data(tmp_path) -> None:
    trees, path, x = _saved(tmp_path)
    ens = SimpleNamespace(path=str(tmp_path / "tc_small.pt"), card={"data_config": {"split": "random"}})
    found = companion_trees(ens)
    assert found is not None
    np.testing.assert_array_equal(found.predict(x), trees.predict(x))
    other = SimpleNamespace(path=ens.path, card={"data_config": {"split": "time"}})
    with pytest.raises(CheckpointError, match="other data"):
        companion_trees(other)
    assert companion_trees(SimpleNamespace(path=str(tmp_path / "none.pt"), card={})) is None
    assert json.loads(card_path(path).read_text())["data_config"] == {"split": "random"}


def test_a_tc_checkpoint_is_not_trees(tmp_path) -> None:
    _, path, _ = _saved(tmp_path)
    card = json.loads(card_path(path).read_text())
    card_path(path).write_text(json.dumps({**card, "kind": "tc_regressor"}))
    with pytest.raises(CheckpointError, match="not a 'tc_trees'"):
        load_trees(path)


def test_the_ensembles_error_follows_its_disagreement_with_the_trees() -> None:
    from gdmcd_core.training.evaluate import consensus_metrics

    n = 50
    tc = np.linspace(1.0, 100.0, n)
    ds = SimpleNamespace(x=np.zeros((n, 118)), tc_k=tc, is_supercon=np.ones(n, bool), indices=lambda part: np.arange(n))
    err = np.where(np.arange(n) < 10, 20.0, 1.0) * np.linspace(1.0, 1.5, n)  # 10 rows far off
    trees = SimpleNamespace(predict=lambda x: tc.copy(), consensus_weight=0.5)  # right: disagreement = the error
    m = consensus_metrics(ds, tc + err, trees)
    assert m["disagreement_spearman_abs_error"] == pytest.approx(1.0)
    assert m["disagreement_top_mae_k"] == pytest.approx(err[:10].mean())
    assert m["disagreement_rest_mae_k"] == pytest.approx(err[10:].mean())
    assert m["trees_supercon_test_mae_k"] == 0.0


def test_the_disagreement_mark_is_scored_on_the_ensembles_false_positives() -> None:
    from gdmcd_core.training.evaluate import consensus_metrics

    tc_true = np.array([12.0, 9.0, 0.0, 0.0, 5.0, 0.0])
    mean = np.array([10.0, 10.0, 10.0, 10.0, 0.0, 0.0])  # rows 2 and 3: the ensemble's false positives
    tc_trees = np.array([10.0, 12.0, 2.0, 30.0, 5.0, 0.0])  # the trees disagree (> 0.5 x Tc) on rows 2 and 3 only
    n = len(mean)
    ds = SimpleNamespace(x=np.zeros((n, 118)), tc_k=tc_true, is_supercon=tc_true > 0, indices=lambda part: np.arange(n))
    m = consensus_metrics(ds, mean, SimpleNamespace(predict=lambda x: tc_trees))
    assert m["disagreement_flags_false_positive_share"] == 1.0
    assert m["disagreement_flags_true_positive_share"] == 0.0
    assert m["disagreement_false_positive_auc"] == 1.0
    m = consensus_metrics(ds, mean, SimpleNamespace(predict=lambda x: mean.copy()))  # trees that always agree
    assert m["disagreement_flags_false_positive_share"] == 0.0 and m["disagreement_false_positive_auc"] == 0.5
