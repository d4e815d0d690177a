import json

import pytest
import torch

from gdmcd_core.cli.main import main


def test_predict_json_and_bad_inputs(tiny_checkpoint, capsys):
    code = main(["predict", "MgB2", "Xx2", "YBa2Cu3O7", "Cu0O", "--json", "--checkpoint", str(tiny_checkpoint)])
    out, err = capsys.readouterr()
    assert code == 2
    rows = json.loads(out)
    assert [r["formula"] for r in rows] == ["MgB2", "YBa2Cu3O7"]  # good ones still answered
    assert all(r["tc_k"] >= 0 and r["tc_std_k"] >= 0 for r in rows)
    assert "unknown element 'Xx'" in err and "zero amount" in err
    assert "Traceback" not in err


def test_predict_all_good_exits_zero(tiny_checkpoint, capsys):
    assert main(["predict", "Nb3Sn", "--checkpoint", str(tiny_checkpoint)]) == 0
    assert "Nb3Sn" in capsys.readouterr().out


def test_evaluate_json(tiny_checkpoint, tiny_data_dir, capsys):
    assert main(["evaluate", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    m = json.loads(capsys.readouterr().out)
    for key in ("supercon_test_mae_k", "supercon_test_r2", "test_precision", "n_test_supercon", "n_test_nonsc"):
        assert key in m


def test_missing_checkpoint_is_a_clear_error(tmp_path, capsys):
    assert main(["predict", "MgB2", "--checkpoint", str(tmp_path / "nope.pt")]) == 2
    assert "not found" in capsys.readouterr().err


def test_train_resumes_from_work_folder(tiny_data_dir, tmp_path, capsys):
    out = tmp_path / "m.pt"
    args = [
        "train",
        "--out",
        str(out),
        "--width",
        "4",
        "--layers",
        "1",
        "--epochs",
        "1",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--members",
        "2",
    ]
    assert main(args) == 0
    assert out.is_file() and not (tmp_path / "m.pt.work").exists()
    assert json.loads(out.with_suffix(".json").read_text())["n_members"] == 2


def test_predict_json_reports_training_checks(tiny_checkpoint, capsys):
    assert main(["predict", "MgB2", "CuSO4·5H2O", "NbTc", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    rows = {r["formula"]: r for r in json.loads(capsys.readouterr().out)}
    for r in rows.values():
        assert {"parsed_formula", "unseen_elements", "distance_to_training", "warning"} <= set(r)
    assert rows["CuSO4·5H2O"]["parsed_formula"] == "CuH10SO9"
    assert rows["NbTc"]["unseen_elements"] == ["Tc"] and "Tc" in rows["NbTc"]["warning"]
    assert rows["MgB2"]["unseen_elements"] == [] and 0 <= rows["MgB2"]["distance_to_training"] <= 2


def test_evaluate_json_reports_uncertainty_figures(tiny_checkpoint, tiny_data_dir, capsys):
    assert main(["evaluate", "--json", "--write-calibration", "--checkpoint", str(tiny_checkpoint)]) == 0
    m = json.loads(capsys.readouterr().out)
    for key in ("coverage_1sigma", "coverage_2sigma", "far_coverage_1sigma", "spearman_sigma_abs_error", "calibration"):
        assert key in m
    card = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    assert "fitted_on" in card["calibration"] and card["calibration"]["n"] >= 0
    assert card["calibration"]["part"] == "val" and card["recalibrated"]["by"] == "gdmcd evaluate --write-calibration"
    assert card["metrics_test"]["coverage_1sigma"] == m["coverage_1sigma"]  # metrics rewritten with the new σ


def test_calibrating_on_test_rows_needs_a_time_split(tiny_checkpoint, tiny_data_dir, capsys):
    before = tiny_checkpoint.with_suffix(".json").read_text()
    args = ["evaluate", "--write-calibration", "--calibrate-on", "test", "--checkpoint", str(tiny_checkpoint)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "--calibrate-on test" in err and "time-split" in err and len(err.strip().splitlines()) == 1
    assert tiny_checkpoint.with_suffix(".json").read_text() == before


def test_train_with_the_element_statistics_branch_saves_and_predicts(tiny_data_dir, tmp_path, capsys):
    from gdmcd_core.model.checkpoint import load_checkpoint

    out = tmp_path / "branch.pt"
    args = ["train", "--out", str(out), "--width", "4", "--layers", "1", "--features", "6", "--epochs", "1"]
    assert main([*args, "--batch-size", "8", "--device", "cpu"]) == 0
    ens = load_checkpoint(out)
    assert ens.members[0].config.features == 6 and ens.members[0].branch is not None
    capsys.readouterr()
    assert main(["predict", "MgB2", "--json", "--checkpoint", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["tc_k"] >= 0
    assert main([*args[:-2], "--features", "-1"]) == 2
    assert "features" in capsys.readouterr().err


def test_merge_joins_members_of_like_ensembles_and_refuses_others(tiny_data_dir, tmp_path, capsys):
    from gdmcd_core.model.checkpoint import load_checkpoint

    base = ["train", "--width", "4", "--layers", "1", "--epochs", "1", "--batch-size", "8", "--device", "cpu"]
    a, b, other, out = (tmp_path / f"{n}.pt" for n in ("a", "b", "other", "ab"))
    assert main([*base, "--out", str(a), "--members", "2"]) == 0
    assert main([*base, "--out", str(b), "--seed", "7"]) == 0
    assert main([*base, "--out", str(other), "--width", "8"]) == 0
    capsys.readouterr()
    assert main(["merge", str(a), str(b), "--out", str(out)]) == 0
    assert "3 members" in capsys.readouterr().out
    merged = load_checkpoint(out)
    card = json.loads(out.with_suffix(".json").read_text())
    assert merged.n_members == 3 and [s["n_members"] for s in card["merged_from"]] == [2, 1]
    sources = [load_checkpoint(p) for p in (a, b)]
    x = torch.zeros(1, 118)
    x[0, 11] = 1.0  # Mg
    expected = torch.cat([e.member_raw_predictions(x) for e in sources])
    assert torch.allclose(merged.member_raw_predictions(x), expected)
    assert card["metrics_test"]["n_members"] == 3 and "calibration" in card
    assert main(["merge", str(a), str(other), "--out", str(tmp_path / "x.pt")]) == 2
    assert "model_config differs" in capsys.readouterr().err
    assert main(["merge", str(a), str(a), "--out", str(tmp_path / "y.pt")]) == 2
    assert "identical weights" in capsys.readouterr().err
    assert main(["merge", str(a), "--out", str(tmp_path / "z.pt")]) == 2
    assert "at least two" in capsys.readouterr().err
    # one source stored again with int8 weights: a smaller file whose card says so, evaluated as stored
    small = tmp_path / "a8.pt"
    assert main(["merge", str(a), "--out", str(small), "--weights", "int8"]) == 0
    card8 = json.loads(small.with_suffix(".json").read_text())
    assert card8["weights"] == "int8" and card8["n_members"] == 2
    stored = torch.load(small, weights_only=True)["members"][0]  # (a width-4 model: too small to be smaller)
    assert {v.dtype for k, v in stored.items() if v.ndim >= 2 and not k.endswith("scale")} == {torch.int8}
    q, src = load_checkpoint(small), load_checkpoint(a)
    err = (q.member_raw_predictions(x) - src.member_raw_predictions(x)).abs().max()
    assert 0 < err < 0.05 * src.member_raw_predictions(x).abs().max() + 1e-3  # rounded, not lost


def test_int8_storage_round_trips_each_channel() -> None:
    from gdmcd_core.model.checkpoint import dequantize_int8, quantize_int8

    w = torch.randn(16, 3, 3, 3) * torch.logspace(-3, 1, 16)[:, None, None, None]  # channels of very different size
    q, scale = quantize_int8(w)
    assert q.dtype == torch.int8 and scale.shape == (16,)
    back = dequantize_int8(q, scale)
    per_channel = (back - w).abs().amax((1, 2, 3)) / w.abs().amax((1, 2, 3))
    assert per_channel.max() <= 0.5 / 127 + 1e-6  # at most half a step of its own channel's scale


def test_trees_beside_a_checkpoint_give_a_second_opinion(tiny_checkpoint, tiny_data_dir, capsys):
    assert main(["predict", "MgB2", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["tc_trees_k"] is None and row["tc_consensus_k"] is None  # no trees yet
    assert main(["trees", "--checkpoint", str(tiny_checkpoint), "--reweight"]) == 2  # nothing to reweight
    err = capsys.readouterr().err
    assert "no trees at" in err and "Traceback" not in err
    args = ["trees", "--checkpoint", str(tiny_checkpoint), "--max-iter", "20", "--max-leaf-nodes", "7", "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["trees"].endswith("tiny.trees.pt") and report["trees_supercon_test_mae_k"] >= 0
    written = json.loads(tiny_checkpoint.with_name("tiny.trees.json").read_text())["metrics_test"]
    assert written["consensus_supercon_test_mae_k"] == report["consensus_supercon_test_mae_k"]  # for the Model page
    assert main(["evaluate", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    m = json.loads(capsys.readouterr().out)
    assert m["consensus_supercon_test_mae_k"] == report["consensus_supercon_test_mae_k"]
    assert main(["predict", "MgB2", "Nb3Sn", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    w = report["consensus_weight"]
    assert w in [round(0.1 * i, 1) for i in range(11)]
    for r in json.loads(capsys.readouterr().out):
        assert r["tc_trees_k"] >= 0
        expected = w * r["tc_k"] + (1 - w) * r["tc_trees_k"] if r["tc_k"] > 0 else 0.0
        assert abs(r["tc_consensus_k"] - expected) < 2e-3
    # --reweight refits the weight alone: the trees file stays, the card gets the same weight back
    trees_pt, trees_json = tiny_checkpoint.with_name("tiny.trees.pt"), tiny_checkpoint.with_name("tiny.trees.json")
    before = trees_pt.read_bytes()
    trees_json.write_text(
        json.dumps({**json.loads(trees_json.read_text()), "consensus_weight": 0.5 if w != 0.5 else 1.0})
    )
    assert main(["trees", "--checkpoint", str(tiny_checkpoint), "--reweight", "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["consensus_weight"] == w and trees_pt.read_bytes() == before
    assert json.loads(trees_json.read_text())["consensus_weight"] == w
    assert main(["trees", "--checkpoint", str(tiny_checkpoint), "--learning-rate", "0"]) == 2
    err = capsys.readouterr().err
    assert "learning_rate" in err and "Traceback" not in err
    # trees of other data (a stale file): evaluate and predict still answer, and say why there is no second opinion
    trees_card = tiny_checkpoint.with_name("tiny.trees.json")
    card = json.loads(trees_card.read_text())
    trees_card.write_text(json.dumps({**card, "data_config": {**card["data_config"], "split": "time"}}))
    assert main(["evaluate", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    m = json.loads(capsys.readouterr().out)
    assert "other data" in m["trees_error"] and "consensus_supercon_test_mae_k" not in m
    assert main(["predict", "MgB2", "--json", "--checkpoint", str(tiny_checkpoint)]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)[0]["tc_trees_k"] is None and "no second opinion" in err


def test_write_metrics_fills_only_missing_fields_and_keeps_the_earlier_fills(tiny_checkpoint, tiny_data_dir, capsys):
    from gdmcd_core.model.checkpoint import read_card, update_card

    def drop(key):
        card = read_card(tiny_checkpoint)
        metrics = {k: v for k, v in card["metrics_test"].items() if k != key}
        update_card(tiny_checkpoint, {"metrics_test": metrics})
        return card["metrics_test"][key]

    mae = drop("supercon_test_mae_k")
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--write-metrics"]) == 0
    card = read_card(tiny_checkpoint)
    # the same figure, up to the float16 storage of the weights (the card's was computed before saving)
    assert abs(card["metrics_test"]["supercon_test_mae_k"] - mae) < 1e-3 * mae
    assert card["filled_later"]["fields"] == ["supercon_test_mae_k"]
    drop("supercon_test_r2")
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--write-metrics"]) == 0
    fill = read_card(tiny_checkpoint)["filled_later"]
    assert fill["fields"] == ["supercon_test_r2"] and fill["earlier"][0]["fields"] == ["supercon_test_mae_k"]
    # the trees' figures belong in the trees' card: a stale one an earlier version wrote here is removed, not refilled
    card = read_card(tiny_checkpoint)
    update_card(tiny_checkpoint, {"metrics_test": {**card["metrics_test"], "trees_supercon_test_mae_k": 99.0}})
    assert main(["evaluate", "--checkpoint", str(tiny_checkpoint), "--write-metrics"]) == 0
    card = read_card(tiny_checkpoint)
    assert "trees_supercon_test_mae_k" not in card["metrics_test"]
    assert card["filled_later"]["removed"]["fields"] == ["trees_supercon_test_mae_k"]
    capsys.readouterr()


def test_design_summary_prints_the_trees_opinion_when_there_is_one(capsys):
    import pandas as pd

    from gdmcd_core.cli.design import print_table

    table = pd.DataFrame({"rank": [1], "integer_formula": ["Ba2CaBe3Cu4HgO11"], "integer_tc_k": [131.8]})
    print_table(table, 5)
    assert "integer_tc_trees_k" not in capsys.readouterr().out
    print_table(table.assign(integer_tc_trees_k=[6.4]), 5)
    out = capsys.readouterr().out
    assert "integer_tc_trees_k" in out and "6.4" in out


def test_train_formation_energy_task_saves_its_card_and_prints_its_metrics(tmp_path, capsys):
    from test_formation_energy import write_tiny_jarvis

    from gdmcd_core.model.formation_energy import load_formation_energy_model

    data, out = write_tiny_jarvis(tmp_path / "data"), tmp_path / "fe.pt"
    args = ["train", "--task", "formation_energy", "--out", str(out), "--width", "4", "--epochs", "2"]
    assert main([*args, "--batch-size", "16", "--device", "cpu", "--data-dir", str(data)]) == 0
    printed = json.loads(capsys.readouterr().out)
    card = json.loads(out.with_suffix(".json").read_text())
    assert printed == card["metrics"] and "test_mae_ev_atom" in printed
    assert card["train_config"]["huber_delta"] == 0.1 and card["train_config"]["lr"] == 0.005  # the task's defaults
    assert load_formation_energy_model(out).config.output_relu is False


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--task", "formation_energy", "--split", "time"], "split-seed"),
        (["--task", "formation_energy", "--no-repair"], "split-seed"),
        (["--hydride-mode", "hsc1"], "--task hydride"),
        (["--task", "hydride", "--hydride-replicas", "5"], "--hydride-mode"),
        (["--epochs", "0"], "--epochs"),
        (["--distill-rows", "10"], "--distill-trees"),
        (["--task", "hydride", "--distill-trees", "t.trees.pt"], "--task tc"),
        (["--distill-trees", "missing.trees.pt"], "no file missing.trees.pt"),
        (["--distill-classifier", "m.sc.pt"], "--distill-trees"),
    ],
)
def test_train_refuses_options_its_task_does_not_take(tmp_path, capsys, extra, message):
    assert main(["train", "--out", str(tmp_path / "x.pt"), "--data-dir", str(tmp_path), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
