"""The results table a chemist reads (gdmcd_app.results_table), model choice (gdmcd_app.models), the
Predict page's CSV rule, and the small helpers behind them: plain functions, plus AppTests of the pages."""

from __future__ import annotations

import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _app_helpers import app_test, make_tiny_checkpoint, tiny_app_env

from gdmcd_app import inputs, models, results_table
from gdmcd_app.figures import alpha_ramp, round_ticks
from gdmcd_app.ptable import label_color, periodic_table
from gdmcd_core.chem.composition import format_amounts, reduced_formula
from gdmcd_core.design.config import speed
from gdmcd_core.design.evidence import filters
from gdmcd_core.model.checkpoint import CheckpointError, load_checkpoint, update_card
from gdmcd_core.model.kinds import HYDRIDE_KIND

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _table() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "rank": [1, 2, 3, 4],
            "integer_formula": ["Mg2B4", "Ba4Y2Cu6O14", "H6Ca", "Nb3Sn"],
            "optimized_formula": ["Mg0.33B0.67", "Ba0.3Y0.2O0.5", "Ca0.2H0.8", "Nb0.75Sn0.25"],
            "integer_tc_k": [30.0, 90.0, 5.0, 18.0],
            "integer_tc_std_k": [2.0, 10.0, 8.0, 1.0],
            "nearest_supercon_formula": ["MgB2", "YBa2Cu3O7", None, "Nb3Sn"],
            "nearest_supercon_tc_k": [39.0, 92.0, np.nan, 18.0],
            "nearest_supercon_distance": [0.0, 0.5, np.nan, 0.0],
            "charge_neutral": pd.array([True, True, False, None], dtype="boolean"),
            "radioactive": [False, False, False, False],
            "e_hull_ev_atom": [0.0, 0.3, np.nan, 0.05],
            "frac_Mg": [0.33, 0.0, 0.0, 0.0],
        }
    )


# -- columns, derived columns ----------------------------------------------------------------------


def test_every_column_has_a_label_and_every_flag_a_tooltip() -> None:
    card = {"n_members": 4, "calibration": {"sigma_scale": 3.66, "fitted_on": "val superconductors", "n": 740}}
    specs = results_table.column_specs(card)
    assert specs["integer_tc_k"].label == "Tc (K)" and specs["integer_tc_std_k"].label == "σ (K)"
    assert specs["e_hull_ev_atom"].label == "E above hull (eV/atom)"
    assert all(s.help for s in specs.values() if s.kind == "flag"), "a flag without a tooltip"
    assert "SMACT" in specs["charge_neutral"].help and "electronegative" in specs["electronegativity_ok"].help
    sigma = specs["integer_tc_std_k"].help
    assert "3.66" in sigma and "val superconductors" in sigma and "68 %" in sigma and "n = 740" in sigma
    assert "no uncertainty" in results_table.sigma_help({"n_members": 1})
    both = {"n_members": 3, "calibration": {"sigma_scale": 4.0, "method": "gaussian_nll_shape+coverage_1and2sigma"}}
    assert "±1σ / ±2σ hold near 68 % / 95 %" in results_table.sigma_help(both)
    one = {"n_members": 3, "calibration": {"sigma_scale": 4.0, "method": "x_1and2sigma:one:no_bands", "tc_scale": 0.2}}
    assert "68 % fall within ±1σ" in results_table.sigma_help(one) and "0.20 × the predicted Tc" in (
        results_table.sigma_help(one)
    )
    assert "high-P" in results_table.column_specs(card, high_pressure=True)["integer_tc_k"].label
    assert results_table.spec_for("frac_Mg", specs).label == "x(Mg) stage 2"


def test_reduced_formula_links_and_notes() -> None:
    assert reduced_formula("Mg2B4") == "MgB2" and reduced_formula("Mg2B2") == "MgB"
    assert reduced_formula("Ba4Y2Cu6O14") == reduced_formula("YBa2Cu3O7")
    assert reduced_formula("H6Ca1") == "CaH6" and reduced_formula("La1.5Sr0.5Cu1O4") == "SrLa3Cu2O8"
    mp, oqmd = results_table.database_links("YBa2Cu3O7")
    assert mp == "https://next-gen.materialsproject.org/materials?chemsys=Ba-Cu-O-Y"
    assert oqmd == "https://oqmd.org/materials/composition/Ba-Cu-O-Y"
    assert results_table.database_links("Qq3") == ("", "")
    assert results_table.added_elements("Ba4Y2Cu6O14", "Ba0.3Y0.2O0.5") == ["Cu"]
    view = results_table.results_view(_table())
    row = view.set_index("integer_formula").loc["Ba4Y2Cu6O14"]
    assert row["reduced_formula"] == "Ba2YCu3O7" and "Cu not in the stage-2" in row["notes"]


def test_speculative_flag_and_top_rank_warning() -> None:
    assert results_table.speculative_reasons(30.0, 2.0, 0.0) == []
    assert results_table.speculative_reasons(10.0, 6.0, 0.0)  # σ > 0.5 Tc
    assert results_table.speculative_reasons(0.0, 0.6, 0.0)  # Tc floored at 1 K: 0.6 > 0.5
    assert results_table.speculative_reasons(
        90.0, 1.0, results_table.SPECULATIVE_DISTANCE_L1 + 0.01
    )  # far from known superconductors
    assert (
        results_table.speculative_reasons(90.0, 0.0, np.nan) == []
    )  # single model, unknown distance: no evidence either way
    assert results_table.speculative_reasons(131.0, 4.0, 0.05, 6.4) == [
        "the trees give 6 K"
    ]  # the second opinion disagrees
    assert results_table.speculative_reasons(136.0, 4.0, 0.05, 108.0) == []  # within half of Tc: no mark
    assert results_table.speculative_reasons(136.0, 4.0, 0.05, None) == []  # no trees: no evidence either way
    view = results_table.results_view(_table())
    assert list(view["speculative"]) == [False, True, True, False]
    assert results_table.speculative_in_top(view, top=2) == ["Ba4Y2Cu6O14"]
    assert results_table.speculative_in_top(view.iloc[[0, 3]]) == []


def test_export_equals_the_filtered_table_shown() -> None:
    t = _table()
    chosen = ["charge_neutral", "not_radioactive"]
    view = results_table.results_view(t, chosen)
    expected = filters.filter_candidates(t, chosen)
    assert list(view["integer_formula"]) == list(expected["integer_formula"]) == ["Mg2B4", "Ba4Y2Cu6O14"]
    specs = results_table.column_specs()
    csv = pd.read_csv(io.BytesIO(results_table.export_csv(view, specs)), keep_default_na=False)
    assert list(csv.columns) == [results_table.spec_for(c, specs).label for c in view.columns]
    assert list(csv["formula (N atoms)"]) == list(view["integer_formula"])
    assert list(csv["rank"]) == list(view["rank"])
    js = json.loads(results_table.export_json(view, specs))
    assert [r["formula (N atoms)"] for r in js] == list(view["integer_formula"]) and js[0]["Tc (K)"] == 30.0
    assert js[1]["nearest SC Tc (K)"] == 92.0
    # all columns: the same rows, every column, frac_ included
    wide = results_table.results_view(t, chosen, all_columns=True)
    assert "frac_Mg" in wide.columns and len(wide) == len(view)
    # the screen: subscripts, and empty cells blank (never "None")
    screen = results_table.for_screen(results_table.results_view(t))
    assert screen["integer_formula"][0] == "Mg₂B₄"
    assert screen["nearest_supercon_formula"][2] == "" and "None" not in screen.to_string()


def test_predict_csv_rule() -> None:
    assert inputs.read_formula_csv(b"name,formula\nybco,YBa2Cu3O7\n") == ["YBa2Cu3O7"]
    assert inputs.read_formula_csv(b"MgB2\nNb3Sn\n") == ["MgB2", "Nb3Sn"]  # one column, first cell a formula
    with pytest.raises(ValueError, match="no column named 'formula'") as exc:
        inputs.read_formula_csv(b"compound\nMgB2\n")  # a header that is not 'formula' is never read as data
    assert "\n" not in str(exc.value) and "'compound'" in str(exc.value)
    with pytest.raises(ValueError, match="no column named 'formula'"):
        inputs.read_formula_csv(b"MgB2,30\nNb3Sn,18\n")  # several columns and no header


# -- model choice and the card ---------------------------------------------------------------------


def test_model_refs_captions_and_the_hydride_preset(tmp_path: Path) -> None:
    ref = models.ModelRef("tc_default", "61bc315d8837d78b", "tc_regressor")
    assert ref.label == "tc_default · 61bc315d" and not ref.high_pressure
    assert "`tc_default`" in models.model_caption(ref) and "61bc315d" in models.model_caption(ref)
    hyd = models.ModelRef("tc_hydride", "5db5a168", HYDRIDE_KIND)
    assert hyd.high_pressure and "high-pressure" in models.model_caption(hyd)
    plain = make_tiny_checkpoint(tmp_path / "a" / "tiny.pt")
    assert models.hydride_checkpoint([plain])[0] is None
    assert "not present" in models.hydride_checkpoint([plain])[1]
    h = make_tiny_checkpoint(tmp_path / "b" / "tiny_h.pt")
    update_card(h, {"kind": HYDRIDE_KIND})
    path, note = models.hydride_checkpoint([plain, h])
    assert path == str(h) and "high-pressure" in note
    run_ref = models.run_model_ref({"checkpoint_path": str(h), "checkpoint_sha256": "abcdef0123"})
    assert run_ref.high_pressure and run_ref.short_hash == "abcdef01"
    assert models.run_model_ref({}) is None


def test_card_tables_and_missing_fields() -> None:
    counts = {
        "train_supercon": 10,
        "train_nonsc": 20,
        "test_supercon": 3,
        "test_nonsc": 4,
        "train_rows_after_replication": 50,
    }
    table = models.dataset_counts_table(counts)
    assert list(table["split"]) == ["train", "test", "train rows after replication"]
    assert list(table["total"]) == [30, 7, 50]
    card = {"metrics_test": {"supercon_nonhydride_test_mae_k": 5.53}, "created": "2026-11-25"}
    assert models.headline_mae(card) == ("SuperCon non-hydride test MAE", "5.53 K")
    assert models.headline_mae({}) == ("SuperCon test MAE", "not recorded")
    assert "hardware not recorded" in models.training_summary(card)
    assert "hardware" in models.missing_card_fields(card)


def test_committed_hydride_card_is_complete_and_its_hash_holds() -> None:
    path = REPO / "checkpoints" / "tc_hydride.pt"
    if not path.is_file():
        pytest.skip("no hydride checkpoint")
    model = load_checkpoint(path)  # the card's SHA-256 still matches the weights
    label, value = models.headline_mae(model.card)
    assert label == "SuperCon test MAE" and value.endswith(" K")
    card = model.card
    assert model.n_members >= 3 and card["weights"] == "int8" and card["kind"] == HYDRIDE_KIND  # an ensemble: σ
    assert card["calibration"]["part"] == "val" and card["metrics_test"]["supercon_nonhydride_test_mae_k"] > 0
    assert card["merged_from"][0]["sha256"] and card["hydride_config"]["mode"] == "hsc200"


def test_update_card_keeps_the_hash_and_refuses_weight_fields(tmp_path: Path) -> None:
    path = make_tiny_checkpoint(tmp_path / "c.pt")
    before = load_checkpoint(path).sha256
    update_card(path, {"hardware": "test rig"})
    assert load_checkpoint(path).sha256 == before and load_checkpoint(path).card["hardware"] == "test rig"
    with pytest.raises(ValueError, match="sha256"):
        update_card(path, {"sha256": "0" * 64})
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(CheckpointError, match="not updated"):
        update_card(path, {"hardware": "x"})


# -- small fixes -------------------------------------------------------------------------------------


def test_tile_labels_follow_the_tile_luminance() -> None:
    assert label_color("#ffffcc") == "#212529" and label_color("rgb(128, 0, 38)") == "#ffffff"
    fig = periodic_table(color_by="frequency", values={"O": 10_000, "H": 1, "Cu": 5000})
    tcol = dict(zip(fig.data[0].text, fig.data[0].textfont.color, strict=True))
    assert tcol["O"] == "#ffffff" and tcol["H"] == "#212529"


def test_alpha_preview_has_round_ticks() -> None:
    assert round_ticks(1389) == [0.0, 500.0, 1000.0]
    assert round_ticks(2000) == [0.0, 500.0, 1000.0, 1500.0, 2000.0]
    assert round_ticks(0) == [0.0]
    from gdmcd_app.data import alpha_schedule

    step, alpha = alpha_schedule(695, 694, 1000.0)
    fig = alpha_ramp(step, alpha, 695)
    assert list(fig.layout.xaxis.tickvals) == [0.0, 500.0, 1000.0] and fig.layout.height >= 200


def test_no_pauling_warning_when_formatting() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert format_amounts({"He": 1, "Ar": 2}) == "Ar2He"
    assert not [w for w in caught if "Pauling" in str(w.message)]


def test_time_estimate_reads_its_cache_and_never_measures_under_pytest(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv(speed.PROBE_ENV, raising=False)
    assert not speed.probe_allowed()
    ckpt = make_tiny_checkpoint(tmp_path / "t.pt")
    sha = load_checkpoint(ckpt).sha256
    assert speed.seconds_per_candidate_step(ckpt, sha) is None and not speed.cache_path().exists()
    import torch

    key = speed.cache_key("cpu", torch.get_num_threads(), sha)
    speed.cache_path().parent.mkdir(parents=True)
    speed.cache_path().write_text(json.dumps({key: {"s_per_candidate_step": 0.001}}))
    assert speed.seconds_per_candidate_step(ckpt, sha) == 0.001
    line = speed.estimate_line(256, 2000, 0.001, "cpu")
    assert "512,000 candidate-steps" in line and "about 9 min" in line
    assert "not measured" in speed.estimate_line(256, 2000, None, "cpu")


def test_time_estimate_measurement_is_fast_when_asked(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv(speed.PROBE_ENV, "1")
    ckpt = make_tiny_checkpoint(tmp_path / "t.pt")
    import time

    t0 = time.perf_counter()
    per = speed.seconds_per_candidate_step(ckpt, load_checkpoint(ckpt).sha256)
    assert per is not None and per > 0 and time.perf_counter() - t0 < 5  # < 2 s idle; slack for a busy CI
    assert speed.cache_path().is_file()


# -- pages -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    with tiny_app_env(tmp_path_factory.mktemp("results")) as e:
        yield e


def _finished_run(env: dict[str, str]) -> str:
    from gdmcd_app.jobs import JobRegistry
    from gdmcd_core.design.config.config import DesignConfig

    model = load_checkpoint(env["GDMCD_CHECKPOINT"])
    cfg = DesignConfig(
        n_candidates=4,
        init_mode="formulas",
        init_formulas=("MgB2", "Nb3Sn"),
        n_min=4,
        n_max=8,
        steps2=5,
        steps3=5,
        record_every=2,
        max_elements=3,
    )
    job = JobRegistry(env["GDMCD_RUNS_DIR"]).start(model, cfg)
    job.join(120)
    assert job.snapshot().status == "finished", job.snapshot().error
    return job.job_id


def test_results_panel_names_the_model_and_offers_the_exports(env) -> None:
    run_id = _finished_run(env)
    at = app_test("design")
    at.query_params["job"] = run_id
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("Tc predicted by model `tiny`" in c.value for c in at.caption)
    frame = next(d.value for d in at.dataframe if "integer_formula" in d.value.columns)
    assert {"reduced_formula", "speculative", "materials_project", "oqmd", "nearest_supercon_distance"} <= set(
        frame.columns
    )
    assert any("candidates pass the filters" in c.value for c in at.caption)


def test_model_page_for_the_hydride_model(env, monkeypatch) -> None:
    path = REPO / "checkpoints" / "tc_hydride.pt"
    if not path.is_file():
        pytest.skip("no hydride checkpoint")
    monkeypatch.setenv("GDMCD_CHECKPOINT", str(path))
    at = app_test("model", timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("high-pressure" in i.value for i in at.info)
    assert not any("hardware not recorded" in c.value.lower() for c in at.caption)  # the ensemble's card records it
    assert any(m.label == "SuperCon test MAE" and m.value.endswith(" K") for m in at.metric)


def test_hydride_preset_selects_the_hydride_model(env) -> None:
    if not (REPO / "checkpoints" / "tc_hydride.pt").is_file():
        pytest.skip("no hydride checkpoint")
    at = app_test("design").run()
    at.button(key="preset_hydride").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert Path(at.session_state["checkpoint"]).stem == "tc_hydride"
    assert any("hydride model" in c.value and "high-pressure" in c.value for c in at.caption)
