"""Distillation: substitutes are near elements, labels come from the teacher, the teacher must share the split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gdmcd_core.chem.elements import symbols
from gdmcd_core.data.dataset import TRAIN, DataConfig, build_dataset
from gdmcd_core.model.trees import TreeConfig, fit_trees, save_trees, training_rows, trees_path
from gdmcd_core.training.distill import DistillConfig, check_teacher, distill_rows, similar_elements, substitutions

SYM = symbols()
Z = {s: i for i, s in enumerate(SYM)}


def _rows(*formulas: dict[str, float]) -> np.ndarray:
    x = np.zeros((len(formulas), 118), np.float32)
    for r, f in enumerate(formulas):
        for el, amount in f.items():
            x[r, Z[el]] = amount
    return x / x.sum(1, keepdims=True)


def test_substitutes_are_near_elements_present_in_enough_rows() -> None:
    x = _rows(*([{"La": 2, "Cu": 1, "O": 4}] * 5 + [{"Pr": 2, "Ni": 1, "O": 4}] * 5 + [{"Au": 1, "Xe": 1}]))
    near = similar_elements(x, k=3, min_count=5)
    allowed = {Z[s] for s in ("La", "Cu", "O", "Pr", "Ni")}
    assert set(near[Z["La"]]) - {-1} <= allowed - {Z["La"]}  # Au and Xe appear in one row only: never substitutes
    assert Z["Pr"] in near[Z["La"]]  # the only other rare earth on offer is La's nearest
    assert Z["Ni"] in near[Z["Cu"]]


def test_a_substitution_swaps_one_element_at_the_same_amount() -> None:
    x = _rows({"La": 2, "Cu": 1, "O": 4})
    near = np.full((118, 1), -1)
    near[Z["La"], 0] = Z["Pr"]  # only La has a substitute
    out = substitutions(x, 20, near, np.random.default_rng(0))
    assert out.shape == (20, 118)
    np.testing.assert_allclose(out[:, Z["Pr"]], x[0, Z["La"]])
    assert not out[:, Z["La"]].any()
    np.testing.assert_allclose(out.sum(1), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="no substitution"):
        substitutions(x, 5, np.full((118, 1), -1), np.random.default_rng(0))


def test_the_teacher_must_share_the_split() -> None:
    data = DataConfig(split="time", time_split_year=2005)
    check_teacher({"data_config": {**data.to_dict(), "supercon_replicas": 12}}, data)  # replicas do not matter
    with pytest.raises(ValueError, match="time_split_year 2010 vs 2005"):
        check_teacher({"data_config": {**data.to_dict(), "time_split_year": 2010}}, data)
    with pytest.raises(ValueError, match="another split"):
        check_teacher({}, data)
    # the split year means nothing outside a time split: a teacher whose card does not record it is accepted
    jarvis = DataConfig(split="jarvis")
    check_teacher({"data_config": {k: v for k, v in jarvis.to_dict().items() if k != "time_split_year"}}, jarvis)
    with pytest.raises(ValueError, match="split 'random' vs 'jarvis'"):
        check_teacher({"data_config": {**jarvis.to_dict(), "split": "random"}}, jarvis)


def _teacher_on(data_dir, tmp_path, data: DataConfig):
    """(dataset, teacher trees fitted on its training superconductors, their saved path) for `data`."""
    ds = build_dataset(data, data_dir)
    rows = training_rows(ds)
    trees = fit_trees(ds.x[rows], ds.tc_k[rows], TreeConfig(max_iter=20, max_leaf_nodes=7, min_samples_leaf=1))
    teacher = trees_path(tmp_path / "t.pt")
    save_trees(teacher, trees, {"data_config": data.to_dict()})
    return ds, trees, teacher


def test_distill_rows_are_labelled_by_the_teacher(tiny_data_dir, tmp_path) -> None:
    ds, trees, teacher = _teacher_on(tiny_data_dir, tmp_path, DataConfig(fractions=(0.6, 0.2, 0.2)))
    x, y, record = distill_rows(ds, DistillConfig(trees=str(teacher), rows=50, min_count=1))
    np.testing.assert_allclose(y, trees.predict(x), rtol=1e-6)
    train_sc = ds.x[ds.indices(TRAIN)][ds.is_supercon[ds.indices(TRAIN)]]
    # every row differs from some training superconductor in exactly one element swapped at the same amount
    for v in x[:10]:
        swapped = [
            (v > 0).sum() == (s > 0).sum() and np.allclose(np.sort(v[v > 0]), np.sort(s[s > 0])) and (v != s).sum() == 2
            for s in train_sc
        ]
        assert any(swapped)
    assert record["teacher_sha256"] == json.loads(teacher.with_suffix(".json").read_text())["sha256"]
    assert record["rows"] == 50
    other = DataConfig(fractions=(0.6, 0.2, 0.2), split_seed=1)
    save_trees(teacher, trees, {"data_config": other.to_dict()})
    with pytest.raises(ValueError, match="split_seed"):
        distill_rows(ds, DistillConfig(trees=str(teacher), rows=5, min_count=1))


def test_a_classifier_turns_the_labels_into_the_expected_tc(tiny_data_dir, tmp_path) -> None:
    from gdmcd_core.model.sc_classifier import (
        ClassifierConfig,
        classifier_rows,
        fit_classifier,
        labelled_rows,
        load_classifier,
        save_classifier,
    )

    data = DataConfig(fractions=(0.6, 0.2, 0.2))
    ds, trees, teacher = _teacher_on(tiny_data_dir, tmp_path, data)
    parts = [labelled_rows(ds, r, 0.5) for r in classifier_rows(ds)]
    clf, _ = fit_classifier(*parts, ClassifierConfig(max_iter=20, min_samples_leaf=2))
    path = tmp_path / "t.sc.pt"
    save_classifier(path, clf, {"data_config": data.to_dict()})
    config = DistillConfig(trees=str(teacher), rows=50, min_count=1, classifier=str(path))
    x, y, record = distill_rows(ds, config)
    np.testing.assert_allclose(y, load_classifier(path)[0].probability(x) * trees.predict(x), rtol=1e-5, atol=1e-5)
    assert record["classifier_sha256"] and 0 <= record["label_mean_p_superconductor"] <= 1
    save_classifier(path, clf, {"data_config": {**data.to_dict(), "split_seed": 1}})
    with pytest.raises(ValueError, match="split_seed"):
        distill_rows(ds, config)


def test_gdmcd_train_distils_and_records_the_teacher(tiny_data_dir, tmp_path) -> None:
    from gdmcd_core.cli.main import main

    def teacher_for(data: DataConfig):
        ds = build_dataset(data, tiny_data_dir)
        rows = training_rows(ds)
        trees = fit_trees(ds.x[rows], ds.tc_k[rows], TreeConfig(max_iter=10, min_samples_leaf=1))
        save_trees(teacher, trees, {"data_config": data.to_dict()})
        return json.loads(teacher.with_suffix(".json").read_text())["sha256"]

    teacher = trees_path(tmp_path / "teacher.pt")
    out = tmp_path / "m.pt"
    args = ["train", "--out", str(out), "--width", "4", "--layers", "1", "--epochs", "1", "--batch-size", "8"]
    args += ["--device", "cpu", "--distill-trees", str(teacher), "--distill-rows", "40", "--distill-min-count", "1"]
    teacher_for(DataConfig(fractions=(0.6, 0.2, 0.2)))
    assert main(args) == 2  # fitted on another split than the run's (the default fractions)
    sha = teacher_for(DataConfig())
    assert main(args) == 0
    card = json.loads(out.with_suffix(".json").read_text())
    assert card["distill"]["rows"] == 40 and card["distill"]["min_count"] == 1
    assert card["distill"]["teacher_sha256"] == sha
