"""The two-part answer: P(superconductor) from classifier trees, Tc if superconducting, the expected Tc; σ never
reported as 0 where it is unknown; pressure echoed and labelled; the test log."""

from __future__ import annotations

import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from gdmcd_core.chem.element_features import feature_matrix
from gdmcd_core.cli.main import main
from gdmcd_core.model import hurdle
from gdmcd_core.model.checkpoint import CheckpointError, card_path, load_checkpoint, read_card, save_checkpoint
from gdmcd_core.model.sc_classifier import (
    ClassifierConfig,
    ScClassifier,
    classifier_beside,
    classifier_path,
    fit_classifier,
    labels_and_weights,
    load_classifier,
    log_loss,
)
from gdmcd_core.model.trees import export_sklearn, tree_features
from gdmcd_core.training.evaluate import training_reference_for

PREDICT_KEYS = {"p_superconductor", "tc_if_sc_k", "tc_k", "tc_std_k", "pressure_gpa", "call", "tc_low_k", "tc_high_k"}
KEPT_KEYS = {"tc_trees_k", "tc_consensus_k", "distance_to_training", "unseen_elements", "warning", "parsed_formula"}


def _data(n: int = 500, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random 2-4 element compositions; 'superconducting' when Cu (28) is above 10 % and O (7) above 20 %."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 118), np.float32)
    for i in range(n):
        els = rng.choice(40, size=rng.integers(2, 5), replace=False)
        x[i, els] = rng.dirichlet(np.ones(len(els)))
    y = ((x[:, 28] > 0.1) & (x[:, 7] > 0.2)) | (x[:, 25] > 0.5)
    return x, y.astype(np.int8)


def _fit_tiny_classifier(checkpoint: Path) -> dict:
    args = ["classifier", "--checkpoint", str(checkpoint), "--max-iter", "15", "--max-leaf-nodes", "7"]
    assert main([*args, "--min-samples-leaf", "2", "--json"]) == 0
    return json.loads(card_path(classifier_path(checkpoint)).read_text())


def test_exported_classifier_trees_give_sklearns_probabilities() -> None:
    x, y = _data()
    feats = feature_matrix(x)
    model = HistGradientBoostingClassifier(max_iter=40, max_leaf_nodes=15, random_state=0, early_stopping=False)
    model.fit(feats, y)
    clf = ScClassifier(export_sklearn(model, feats.shape[1]))
    x_new, _ = _data(200, seed=1)
    np.testing.assert_allclose(clf.probability(x_new), model.predict_proba(feature_matrix(x_new))[:, 1], atol=1e-5)
    np.testing.assert_allclose(clf.probability(x), model.predict_proba(feats)[:, 1], atol=1e-5)


def test_rounds_are_chosen_on_the_validation_rows() -> None:
    x, y = _data(600)
    tr, va = slice(0, 450), slice(450, None)
    w = np.ones(len(y))
    clf, how = fit_classifier((x[tr], y[tr], w[tr]), (x[va], y[va], w[va]), ClassifierConfig(max_iter=60))
    assert 1 <= how["rounds"] == clf.n_trees <= 60
    # no truncation of the same fit does better on the validation rows than the one kept
    model = HistGradientBoostingClassifier(
        max_iter=60, learning_rate=0.1, max_leaf_nodes=31, min_samples_leaf=20, random_state=0, early_stopping=False
    )
    model.fit(tree_features(x[tr], valence=True), y[tr], sample_weight=w[tr])  # the default: valence features
    staged = [log_loss(y[va], p[:, 1], w[va]) for p in model.staged_predict_proba(tree_features(x[va], valence=True))]
    assert log_loss(y[va], clf.probability(x[va]), w[va]) == pytest.approx(min(staged), abs=1e-6)
    with pytest.raises(ValueError, match="one class"):
        fit_classifier((x[tr], np.zeros(450, np.int8), w[tr]), (x[va], y[va], w[va]))


def test_negatives_are_weaker_evidence() -> None:
    y, w = labels_and_weights(np.array([True, True, False]), np.array([30.0, 0.0, 0.0]), 0.5)
    assert list(y) == [1, 0, 0] and list(w) == [1.0, 0.5, 0.5]  # a SuperCon row at 0 K is not a superconductor
    with pytest.raises(ValueError, match="negative_weight"):
        ClassifierConfig(negative_weight=0).validate()


def test_hurdle_parts_and_the_uncertain_call() -> None:
    # network 0 K, trees 77 K, P(SC) 0.5: uncertain, with an interval from 0 K past the trees' Tc
    parts = hurdle.two_part(np.array([0.0]), np.array([0.001]), np.array([77.0]), np.array([0.5]))
    assert parts.call == [hurdle.UNCERTAIN]
    assert parts.tc_if_sc_k[0] == 77.0 and parts.tc_if_sc_std_k[0] == pytest.approx(math.hypot(0.001, 38.5))
    assert parts.tc_k[0] == pytest.approx(38.5) and parts.tc_low_k[0] == 0.0 and parts.tc_high_k[0] > 77.0
    var = 0.5 * parts.tc_if_sc_std_k[0] ** 2 + 0.25 * 77.0**2  # the hurdle mixture's variance
    assert parts.tc_std_k[0] == pytest.approx(math.sqrt(var))
    # agreement: both say superconductor, the interval is the Tc if superconducting ± 2σ
    sure = hurdle.two_part(np.array([90.0]), np.array([2.0]), np.array([92.0]), np.array([0.99]))
    assert sure.call == [hurdle.SC] and sure.tc_if_sc_k[0] == 91.0 and sure.tc_low_k[0] > 80
    # the network and the classifier disagree: uncertain, whatever P(SC)
    assert hurdle.two_part(np.array([0.0]), np.array([1.0]), np.array([30.0]), np.array([0.95])).call == ["uncertain"]
    # no classifier: the ensemble's own Tc and σ; one member: σ unknown (NaN), never 0
    alone = hurdle.two_part(np.array([12.0, 0.0]), None)
    assert list(alone.tc_k) == [12.0, 0.0] and np.isnan(alone.tc_std_k).all()
    assert alone.p_superconductor is None and np.isnan(alone.tc_if_sc_k[1]) and alone.call == [None, None]
    assert np.isnan(alone.tc_low_k).all()  # no σ, no interval
    plain = hurdle.two_part(np.array([12.0]), np.array([2.0]))
    assert plain.call == [None] and (plain.tc_low_k[0], plain.tc_high_k[0]) == (8.0, 16.0)


def test_plus_minus_never_prints_a_zero_sigma() -> None:
    assert hurdle.plus_minus(23.14, 4.0) == "23.1 ± 4.0 K"
    assert hurdle.plus_minus(0.0, 0.0004) == "0.0 ± 0.0004 K"
    for unknown in (None, float("nan"), 0.0):
        assert hurdle.plus_minus(5.0, unknown) == "5.0 ± n/a K"
    assert hurdle.plus_minus(None, 1.0) == "n/a"
    assert hurdle.json_number(0.00004, sigma=True) == 0.00004 and hurdle.json_number(0.0, sigma=True) is None
    assert hurdle.json_number(float("nan")) is None and hurdle.json_number(0.0) == 0.0
    assert hurdle.json_number(12.34567) == 12.346


def test_classifier_beside_a_checkpoint_gives_the_two_part_answer(tiny_checkpoint, tiny_data_dir, capsys):
    card = _fit_tiny_classifier(tiny_checkpoint)
    capsys.readouterr()
    assert card["kind"] == "tc_sc_classifier" and card["rounds"] <= 15 and "metrics_val" in card
    assert card["data_config"] == read_card(tiny_checkpoint)["data_config"]
    assert main(["predict", "MgB2", "NaCl", "LaH10", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    rows = {r["formula"]: r for r in json.loads(capsys.readouterr().out)}
    for r in rows.values():
        assert PREDICT_KEYS | KEPT_KEYS | {"tc_ensemble_k", "tc_ensemble_std_k"} <= set(r)
        assert 0 <= r["p_superconductor"] <= 1 and r["pressure_gpa"] == 0.0
        assert r["tc_k"] == pytest.approx(r["p_superconductor"] * r["tc_if_sc_k"], abs=2e-3)  # expected Tc
        assert (
            r["tc_std_k"] is not None
            and r["tc_std_k"] > 0
            and r["call"] in {"superconductor", "uncertain", "not a superconductor"}
        )
    assert main(["predict", "MgB2", "NaCl", "--checkpoint", str(tiny_checkpoint)]) == 0
    out = capsys.readouterr().out
    assert "P(SC)" in out and "Tc if SC" in out and "± 0.0 " not in out and "± 0.0K" not in out


def test_a_damaged_or_foreign_classifier_is_refused(tiny_checkpoint, tiny_data_dir, capsys):
    _fit_tiny_classifier(tiny_checkpoint)
    path = classifier_path(tiny_checkpoint)
    model, _ = load_classifier(path)
    sc_card = json.loads(card_path(path).read_text())
    foreign = {**sc_card, "data_config": {**sc_card["data_config"], "split": "time"}}
    card_path(path).write_text(json.dumps(foreign))
    with pytest.raises(CheckpointError, match="other data"):
        classifier_beside(tiny_checkpoint, read_card(tiny_checkpoint))
    card_path(path).write_text(json.dumps(sc_card))
    path.write_bytes(path.read_bytes()[:-8] + b"damaged!")
    capsys.readouterr()
    assert main(["predict", "MgB2", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["p_superconductor"] is None and "no P(superconductor)" in err and "SHA-256" in err
    assert model.n_trees >= 1


def test_one_member_reports_sigma_as_null(tiny_checkpoint, tiny_data_dir, tmp_path, capsys):
    ens = load_checkpoint(tiny_checkpoint)
    card = {k: v for k, v in ens.card.items() if k not in ("sha256", "model_config", "n_members")}
    one = tmp_path / "one.pt"
    save_checkpoint(one, [ens.members[0]], card)
    assert main(["predict", "MgB2", "YBa2Cu3O7", "--json", "--checkpoint", str(one)]) == 0
    for r in json.loads(capsys.readouterr().out):
        assert r["tc_std_k"] is None and r["tc_ensemble_std_k"] is None and r["p_superconductor"] is None
        assert r["tc_k"] == r["tc_ensemble_k"] and r["tc_k"] >= 0 and r["call"] is None
    assert main(["predict", "MgB2", "YBa2Cu3O7", "--checkpoint", str(one)]) == 0
    out = capsys.readouterr().out
    assert "± n/a" in out and "± 0.0" not in out


def test_pressure_is_echoed_and_labelled(tiny_checkpoint, tiny_data_dir, capsys):
    base = ["predict", "--json", "--checkpoint", str(tiny_checkpoint)]
    assert main([*base, "MgB2", "LaH10"]) == 0
    rows = {r["formula"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["MgB2"]["pressure_gpa"] == 0.0 and not rows["MgB2"]["high_pressure"]
    assert "pressure" not in (rows["MgB2"]["warning"] or "")
    assert rows["LaH10"]["high_pressure"] and "out of the model's scope" in rows["LaH10"]["warning"]
    assert main([*base, "MgB2", "--pressure-gpa", "14"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["pressure_gpa"] == 14.0 and row["high_pressure"]
    assert "14 GPa" in row["warning"] and "no pressure input" in row["warning"]
    assert main([*base, "MgB2", "--pressure-gpa", "-1"]) == 2
    err = capsys.readouterr().err
    assert "--pressure-gpa" in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_design_config_records_the_pressure() -> None:
    from gdmcd_core.cli.design import add_design_parser
    from gdmcd_core.design.config.config import DesignConfig

    cfg = DesignConfig(pressure_gpa=150.0)
    assert DesignConfig.from_json(cfg.to_json()).pressure_gpa == 150.0 and DesignConfig().pressure_gpa == 0.0
    with pytest.raises(ValueError, match="pressure_gpa"):
        DesignConfig(pressure_gpa=-1.0)
    import argparse

    parsed = add_design_parser(argparse.ArgumentParser()).parse_args(["--out", "r", "--pressure-gpa", "20"])
    assert parsed.pressure_gpa == 20.0


def test_candidate_columns_of_the_two_part_answer() -> None:
    from gdmcd_core.chem.composition import to_vector
    from gdmcd_core.design.evidence.candidates import _second_opinion_columns

    ux = np.stack([to_vector("MgB2"), to_vector("LaH10")])
    ctx = SimpleNamespace(
        second_opinion=lambda x: np.array([40.0, 200.0]),
        sc_probability=lambda x: np.array([0.9, 0.4]),
        pressure_gpa=0.0,
        consensus_weight=0.5,
    )
    cols = _second_opinion_columns(ctx, ux, np.array([38.0, 0.0]))
    assert list(cols["p_superconductor"]) == [0.9, 0.4]
    assert list(cols["tc_if_sc_k"]) == [39.0, 200.0]  # mean where the network says Tc > 0, else the trees
    ctx.consensus_weight = 0.0  # a checkpoint whose validation rows favour the trees
    cols = _second_opinion_columns(ctx, ux, np.array([38.0, 0.0]))
    assert list(cols["tc_if_sc_k"]) == [40.0, 200.0] and list(cols["integer_tc_consensus_k"]) == [40.0, 0.0]
    assert list(cols["high_pressure"]) == [False, True]
    ctx = SimpleNamespace(second_opinion=None, sc_probability=None, pressure_gpa=5.0)
    cols = _second_opinion_columns(ctx, ux, np.array([38.0, 0.0]))
    assert set(cols) == {"high_pressure"} and cols["high_pressure"].all()


def test_evaluate_appends_to_the_test_log(tiny_checkpoint, tiny_data_dir, capsys):
    from gdmcd_core.training.testset_log import log_path

    log = log_path()
    before = log.read_text().splitlines() if log.is_file() else []
    assert main(["evaluate", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    sha = json.loads(capsys.readouterr().out)["checkpoint_sha256"]
    new = log.read_text().splitlines()[len(before) :]
    assert len(new) == 1 and sha[:12] in new[0] and "tiny.pt (random split): test MAE" in new[0]
    assert Path(log).resolve() != (Path(__file__).resolve().parent.parent / "bench/results/test_log.md")


def test_the_predict_page_table_matches_the_cli(tiny_checkpoint, tiny_data_dir, capsys):
    from gdmcd_app import data
    from gdmcd_core.model.sc_classifier import companion_classifier
    from gdmcd_core.model.trees import second_opinion

    _fit_tiny_classifier(tiny_checkpoint)
    capsys.readouterr()
    formulas = ["MgB2", "Xx2", "YBa2Cu3O7"]
    ens = load_checkpoint(tiny_checkpoint)
    table = data.predict_formulas(ens, formulas, second_opinion(ens)[0], companion_classifier(ens)[0])
    assert {"p_superconductor", "tc_if_sc_k", "tc_k", "tc_std_k", "call", "tc_ensemble_k"} <= set(table.columns)
    assert table.loc[1, "error"] and np.isnan(table.loc[1, "p_superconductor"]) and table.loc[1, "call"] == ""
    assert main(["predict", "MgB2", "YBa2Cu3O7", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    cli = json.loads(capsys.readouterr().out)
    for i, r in zip((0, 2), cli, strict=True):
        for key in ("p_superconductor", "tc_if_sc_k", "tc_k", "tc_std_k"):
            assert table.loc[i, key] == pytest.approx(r[key], abs=2e-3), key
        assert table.loc[i, "call"] == r["call"]
    # a calibration with distance and neighbour terms: the page looks up the same nearest training superconductor
    card = json.loads(card_path(tiny_checkpoint).read_text())
    card["calibration"] = {**card.get("calibration", {}), "distance_scale_k": 30.0, "neighbor_scale": 0.5}
    card_path(tiny_checkpoint).write_text(json.dumps(card))
    ens = load_checkpoint(tiny_checkpoint)
    ref = training_reference_for(ens.card)[0]
    table = data.predict_formulas(ens, formulas, second_opinion(ens)[0], companion_classifier(ens)[0], ref)
    assert main(["predict", "MgB2", "YBa2Cu3O7", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    cli = json.loads(capsys.readouterr().out)
    for i, r in zip((0, 2), cli, strict=True):
        assert table.loc[i, "tc_ensemble_std_k"] == pytest.approx(r["tc_ensemble_std_k"], abs=2e-3)
    plain = data.predict_formulas(ens, formulas)  # no reference: σ without the terms, narrower
    assert plain.loc[2, "tc_std_k"] < table.loc[2, "tc_ensemble_std_k"]


def test_a_classifier_can_add_the_cod_rows_its_resnet_trained_without(tiny_checkpoint, tiny_data_dir, capsys):
    from dataclasses import replace

    from gdmcd_core.data.dataset import DataConfig, build_dataset
    from gdmcd_core.model.checkpoint import update_card

    with_cod = build_dataset(DataConfig(fractions=(0.6, 0.2, 0.2)), str(tiny_data_dir))
    without = build_dataset(replace(with_cod.config, include_cod=False), str(tiny_data_dir))
    sc_with, sc_without = with_cod.is_supercon, without.is_supercon
    np.testing.assert_array_equal(with_cod.x[sc_with], without.x[sc_without])  # the same superconductors ...
    np.testing.assert_array_equal(with_cod.split[sc_with], without.split[sc_without])  # ... in the same split
    card = read_card(tiny_checkpoint)
    update_card(tiny_checkpoint, {"data_config": {**card["data_config"], "include_cod": False}})
    plain = _fit_tiny_classifier(tiny_checkpoint)
    args = ["classifier", "--checkpoint", str(tiny_checkpoint), "--max-iter", "15", "--max-leaf-nodes", "7"]
    assert main([*args, "--min-samples-leaf", "2", "--add-cod", "--json"]) == 0
    capsys.readouterr()
    added = json.loads(card_path(classifier_path(tiny_checkpoint)).read_text())
    assert not plain["cod_added"] and added["cod_added"]
    n_cod = int((~sc_with).sum() - (~sc_without).sum())
    assert n_cod > 0 and added["train_rows"] > plain["train_rows"]
    assert added["data_config"]["include_cod"] is False  # beside the checkpoint: its data config, COD added
    assert (
        load_checkpoint(tiny_checkpoint) is not None
        and main(["predict", "MgB2", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    )
    (row,) = json.loads(capsys.readouterr().out)
    assert 0.0 <= row["p_superconductor"] <= 1.0  # the classifier is used beside the checkpoint
