"""The app's pure helpers: element states, presets, pin validation, the design form, uploads, series."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gdmcd_app import form
from gdmcd_app import series as app_data
from gdmcd_app import state as ui_state
from gdmcd_core.chem.elements import TOXIC, radioactive_symbols
from gdmcd_core.design import filters
from gdmcd_core.design.config import DesignConfig
from gdmcd_core.design.runs import TrajectoryRecorder


def test_cycle_free_pinned_excluded_free() -> None:
    pins, ex = [], []
    pins, ex = ui_state.cycle_element(pins, ex, "H")
    assert pins == [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}] and ex == []
    pins, ex = ui_state.cycle_element(pins, ex, "O")
    assert [p["symbol"] for p in pins] == ["H", "O"] and pins[1]["fraction"] == ui_state.DEFAULT_PIN_FRACTION
    pins, ex = ui_state.cycle_element(pins, ex, "O")
    assert [p["symbol"] for p in pins] == ["H"] and ex == ["O"]
    pins, ex = ui_state.cycle_element(pins, ex, "O")
    assert ex == [] and ui_state.state_of("O", pins, ex) == "free"
    assert ui_state.element_states(pins, ex) == {"H": "pinned"}
    with pytest.raises(ValueError):
        ui_state.cycle_element(pins, ex, "Xx")
    with pytest.raises(ValueError):
        ui_state.next_state("gone")


def test_cycle_does_not_mutate_inputs() -> None:
    pins = [{"symbol": "H", "fraction": 0.3, "mode": "exact"}]
    ex = ["Pb"]
    ui_state.cycle_element(pins, ex, "H")
    assert pins == [{"symbol": "H", "fraction": 0.3, "mode": "exact"}] and ex == ["Pb"]


def test_typed_sets_keep_fractions_and_stay_disjoint() -> None:
    pins = [{"symbol": "H", "fraction": 0.7, "mode": "exact"}]
    pins, ex = ui_state.set_pinned(pins, ["Li"], ["H", "Li"])
    assert pins[0]["fraction"] == 0.7 and pins[1]["symbol"] == "Li" and ex == []
    pins, ex = ui_state.set_excluded(pins, ex, ["Li", "O"])
    assert [p["symbol"] for p in pins] == ["H"] and ex == ["Li", "O"]


def test_presets() -> None:
    pins, ex, note = ui_state.apply_preset("hydride", [], ["H", "O"])
    assert pins == [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}] and ex == ["O"]
    pins, ex, note = ui_state.apply_preset("radioactive", [{"symbol": "U", "fraction": 0.1, "mode": "at-least"}], [])
    assert set(ex) == set(radioactive_symbols()) - {"U"} and "U" in note
    assert all(s in ex for s in ("Po", "Tc", "Pm", "Og"))
    _, ex, _ = ui_state.apply_preset("toxic", [], ["O"])
    assert set(ex) == set(TOXIC) | {"O"}
    with pytest.raises(ValueError, match="preset"):
        ui_state.apply_preset("nice", [], [])


@pytest.mark.parametrize(
    ("rows", "match"),
    [
        ([{"symbol": "H", "fraction": 0.7}, {"symbol": "Li", "fraction": 0.6}], "sum to 1.3"),
        ([{"symbol": "H", "fraction": 1.5}], r"row 1 \(H\).*\(0, 1\]"),
        ([{"symbol": "H", "fraction": 0}], r"\(0, 1\]"),
        ([{"symbol": "H", "fraction": "half"}], "not a number"),
        ([{"symbol": "H", "fraction": float("nan")}], r"\(0, 1\]"),
        ([{"symbol": "Hx", "fraction": 0.1}], "unknown element"),
        ([{"symbol": "H", "fraction": 0.1}, {"symbol": "H", "fraction": 0.2}], "pinned twice"),
        ([{"symbol": "H", "fraction": 0.1, "mode": "most"}], "mode"),
    ],
)
def test_validate_pins_names_the_problem(rows, match) -> None:
    pins, errors = ui_state.validate_pins(rows)
    assert errors and any(__import__("re").search(match, e) for e in errors), errors


def test_validate_pins_ok_and_constraints() -> None:
    pins, errors = ui_state.validate_pins(
        [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}, {"symbol": "", "fraction": 0.2}]
    )
    assert errors == [] and [str(p) for p in pins] == ["H>=0.5"]
    assert ui_state.check_constraints(pins, ["O"]) is None
    assert "both pinned and excluded" in ui_state.check_constraints(pins, ["H"])
    assert ui_state.validate_n_range(4, 24) is None
    assert "empty N range" in ui_state.validate_n_range(10, 4)


def _values(**over):
    return {**form.form_defaults(), **over}


def test_build_design_config_ok() -> None:
    values = _values(
        pins=[{"symbol": "H", "fraction": 0.5, "mode": "at-least"}],
        excluded=["O"],
        init_mode="formulas",
        init_formulas="MgB2\nNb3Sn, YBa2Cu3O7\n\n",
        n_range=(4, 12),
        steps2=10,
        steps3=5,
    )
    cfg, errors = form.build_design_config(values)
    assert errors == {}
    assert isinstance(cfg, DesignConfig)
    assert cfg.init_formulas == ("MgB2", "Nb3Sn", "YBa2Cu3O7")
    assert [str(p) for p in cfg.pins] == ["H>=0.5"] and cfg.exclude == ("O",)
    assert (cfg.n_min, cfg.n_max, cfg.steps2, cfg.steps3) == (4, 12, 10, 5)
    back = form.form_from_config(cfg)
    assert back["pins"] == [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}] and back["excluded"] == ["O"]
    again, errors = form.build_design_config(back)  # round trip: the form shows what the run used
    assert errors == {} and again == cfg


def test_every_config_field_reaches_the_form_and_back() -> None:
    """A DesignConfig field needs no form code: non-default values of every generic field survive the trip."""
    changed = {"init_mode": "dataset", "integer_loss": "es", "objective": "lcb", "constraint_method": "relu",
               "integer_select": "final", "device": "cpu"}  # fmt: skip
    for f in form.generic_fields():
        if f.name not in changed and isinstance(f.default, (int, float)) and not isinstance(f.default, bool):
            lo, hi = form.limits(f)
            changed[f.name] = type(f.default)(hi if f.default != hi else lo)
    changed["lr"] = 0.003  # the learning-rate slider has stops
    cfg = DesignConfig(**{k: v for k, v in changed.items() if k != "max_elements"}, max_elements=5)
    back, errors = form.build_design_config(form.form_from_config(cfg))
    assert errors == {} and back == cfg


def test_form_from_config_fits_the_widgets() -> None:
    cfg = DesignConfig(n_candidates=20_000, steps2=200_000, steps3=5, n_min=30, n_max=100, lr=0.02, target_tc=5000.0)
    v = form.form_from_config(cfg)
    fields = {f.name: f for f in form.generic_fields()}
    assert v["n_candidates"] == form.limits(fields["n_candidates"])[1] and v["steps3"] == 5
    assert v["steps2"] == form.limits(fields["steps2"])[1]
    assert v["n_range"] == (30, form.N_SLIDER_MAX)
    assert v["lr"] == 0.03 and v["target_tc"] == 1000.0
    assert isinstance(v["n_candidates"], int) and isinstance(v["target_tc"], float)
    v = form.form_from_config(DesignConfig(n_values=(6, 12), exclude=("toxic",)))
    assert v["n_range"] == (6, 12) and set(v["excluded"]) == {"Be", "As", "Cd", "Hg", "Tl", "Pb"}


def test_build_design_config_errors_by_widget() -> None:
    bad = _values(
        pins=[{"symbol": "H", "fraction": 0.5}],
        excluded=["H"],
        init_mode="formulas",
        init_formulas="MgB2\nXyz3",
        n_range=(12, 4),
    )
    cfg, errors = form.build_design_config(bad)
    assert cfg is None
    assert "both pinned and excluded" in errors["pins"]
    assert "line 2" in errors["formulas"] and "Xyz3" in errors["formulas"]
    assert "empty N range" in errors["n_range"]
    _, errors = form.build_design_config(_values(init_mode="formulas", init_formulas="  "))
    assert "at least one start formula" in errors["formulas"]
    # an exact pin no N in the range can hold as whole atoms: the engine's own check, shown at the N range
    odd = _values(pins=[{"symbol": "H", "fraction": 0.37, "mode": "exact"}], n_range=(4, 6))
    _, errors = form.build_design_config(odd)
    assert "n_range" in errors and "whole atoms" in errors["n_range"]
    _, errors = form.build_design_config(_values(lr=-1.0))
    assert "lr" in errors["general"]


def test_element_label() -> None:
    assert ui_state.element_label("Fe") == "Fe · Iron"
    assert ui_state.element_label("H") == "H · Hydrogen"


def test_pretty_formula() -> None:
    assert ui_state.pretty_formula("YBa2Cu3O7") == "YBa₂Cu₃O₇"
    assert ui_state.pretty_formula("La1.85Sr0.15CuO4") == "La₁.₈₅Sr₀.₁₅CuO₄"
    assert ui_state.pretty_formula("") == ""


def test_parse_formula_lines() -> None:
    ok, errors = ui_state.parse_formula_lines("MgB2\n\nH3S, LaH10\nNaCl2x")
    assert ok == ["MgB2", "H3S", "LaH10"]
    assert len(errors) == 1 and errors[0].startswith("line 4")


def test_read_formula_csv() -> None:
    assert ui_state.read_formula_csv(b"name,formula\nybco,YBa2Cu3O7\nmgb2,MgB2\n") == ["YBa2Cu3O7", "MgB2"]
    assert ui_state.read_formula_csv(b"MgB2\nNb3Sn\n") == ["MgB2", "Nb3Sn"]  # no header: first column
    assert ui_state.read_formula_csv("\ufeffFormula\nH3S\n".encode()) == ["H3S"]
    assert ui_state.read_formula_csv(b"") == []
    # formula-looking cells are data: nothing is evaluated
    assert ui_state.read_formula_csv(b"formula\n\"=cmd|calc\"\n__import__('os')\n") == ["=cmd|calc", "__import__('os')"]
    with pytest.raises(ValueError, match="limit is 0.0 MB"):
        ui_state.read_formula_csv(b"x" * 100, max_bytes=10)
    with pytest.raises(ValueError, match="UTF-8"):
        ui_state.read_formula_csv(b"\xff\xfe\xfa")
    with pytest.raises(ValueError, match="binary"):
        ui_state.read_formula_csv(b"MgB2\x00\x01")
    with pytest.raises(ValueError, match="limit is 2"):
        ui_state.read_formula_csv(b"MgB2\nNb3Sn\nH3S\n", max_rows=2)


# -- app_data ----------------------------------------------------------------------------------


def test_alpha_schedule_matches_design_config() -> None:
    cfg = DesignConfig(steps2=3, steps3=4, alpha_max=90.0)
    step, alpha = app_data.alpha_schedule(cfg.steps2, cfg.steps3, cfg.alpha_max)
    assert list(step) == [1, 2, 3, 4, 5, 6, 7]
    assert list(alpha) == [0, 0, 0] + [cfg.alpha_at(k) for k in range(4)]
    assert list(app_data.alpha_schedule(0, 1, 5.0)[1]) == [5.0]
    assert app_data.stage3_start(cfg) == 3
    assert app_data.stage3_start({"steps2": 3, "steps3": 0}) is None


def test_series_from_rows_fills_missing() -> None:
    s = app_data.series_from_rows([{"step": 1, "tc_best_k": 5.0}, {"step": 2, "tc_best_k": 6.0, "alpha": 1.0}])
    assert list(s["step"]) == [1, 2] and np.isnan(s["alpha"][0]) and s["alpha"][1] == 1.0


def _trajectory() -> object:
    """3 candidates, snapshots at steps 0, 5 (end of stage 2), 10."""
    rec = TrajectoryRecorder(3)
    x0 = np.zeros((3, 118))
    x0[:, [0, 7, 28]] = [[0.5, 0.25, 0.25], [0.2, 0.3, 0.5], [0.4, 0.4, 0.2]]  # H, O, Cu
    x1 = x0.copy()
    x1[0] = 0
    x1[0, [0, 28]] = [0.6, 0.4]  # O dropped out
    x1[1, 29] = 0.005  # a trace of Zn appears
    x1[1, 28] -= 0.005
    for step, x, tc in ((0, x0, [10, 20, 30]), (5, x1, [15, 18, 30]), (10, x1, [16, 18, 31])):
        rec.add_snapshot(step, np.array(tc, float), np.zeros(3), x)
    for s in range(1, 11):
        rec.add_step(
            step=s,
            stage=2 if s <= 5 else 3,
            alpha=0,
            tc_best_k=30,
            tc_median_k=18,
            tc_q10_k=10,
            tc_q90_k=30,
            hinge_mean_k=1,
            int_loss_median=0.1,
        )
    return rec.to_trajectory()


def test_candidate_composition_and_series() -> None:
    traj = _trajectory()
    steps, fr = app_data.candidate_composition(traj, 1)
    assert list(steps) == [0, 5, 10]
    assert list(fr)[:3] == ["Cu", "O", "H"] and "other" in fr  # Zn (peak 0.005) is grouped
    total = sum(np.asarray(v) for v in fr.values())
    np.testing.assert_allclose(total, 1.0, atol=2e-3)  # float16 snapshots
    series = app_data.candidate_series(traj, [0, 2], "tc_k")
    assert list(series[2][1]) == [30, 30, 31]
    s = app_data.series_from_trajectory(traj)
    assert len(s["step"]) == 10


def test_stage2_change_fig4() -> None:
    ch = app_data.stage2_change(_trajectory(), steps2=5)
    assert list(ch["tc_before_k"]) == [10, 20, 30] and list(ch["tc_after_k"]) == [15, 18, 30]
    assert list(ch["element_decrease"]) == [1, -1, 0]


def test_filter_and_display_candidates() -> None:
    t = pd.DataFrame(
        {
            "rank": [1, 2, 3],
            "integer_formula": ["MgB2", "ThO2", "NaCl"],
            "integer_tc_k": [30.0, 20.0, 10.0],
            "charge_neutral": [True, True, False],
            "radioactive": [False, True, False],
            "formation_energy_ev_atom": [-0.1, 0.2, -2.0],
            "e_hull_ev_atom": [0.0, 0.3, 0.1],  # stable: within 0.1 eV/atom of the hull
            "extra": [1, 2, 3],
        }
    )
    assert set(filters.available_filters(t)) == {"charge_neutral", "not_radioactive", "stable"}
    assert list(filters.filter_candidates(t, ["charge_neutral"])["integer_formula"]) == ["MgB2", "ThO2"]
    assert list(filters.filter_candidates(t, ["charge_neutral", "not_radioactive"])["integer_formula"]) == ["MgB2"]
    assert list(filters.filter_candidates(t, ["stable", "unknown_filter", "known_element_set"])["integer_formula"]) == [
        "MgB2",
        "NaCl",
    ]
    # CSV round trip turns booleans into strings for some readers
    as_text = t.astype({"charge_neutral": str})
    assert len(filters.filter_candidates(as_text, ["charge_neutral"])) == 2
    shown = app_data.display_candidates(t)
    assert "extra" not in shown.columns and shown["integer_formula"][0] == "MgB₂"
    assert "extra" in app_data.display_candidates(t, all_columns=True).columns
    assert app_data.candidate_label(t.iloc[0]) == "#1 MgB₂ (30.0 K)"


def test_element_counts_and_predict_formulas() -> None:
    x = np.zeros((3, 118))
    x[0, [0, 7]] = 0.5
    x[1, 7] = 1
    x[2, 28] = 1
    assert app_data.element_counts(x) == {"H": 1, "O": 2, "Cu": 1}

    class Fake:
        def predict(self, x):
            return x[:, 0] * 100, np.ones(len(x))

    t = app_data.predict_formulas(Fake(), ["H2O", "Qq2", "  ", "H3S"])
    assert list(t["error"] != "") == [False, True, True, False]
    assert t["tc_k"][0] == pytest.approx(100 * 2 / 3, rel=1e-6) and np.isnan(t["tc_k"][1])
    assert "Qq" in t["error"][1] and "tc_trees_k" not in t.columns

    class Trees:
        def predict(self, x):
            return np.full(len(x), 10.0)

    t = app_data.predict_formulas(Fake(), ["H2O", "Qq2", "He"], Trees())
    assert t["tc_trees_k"].tolist()[0::2] == [10.0, 10.0] and np.isnan(t["tc_trees_k"][1])
    assert t["tc_consensus_k"][0] == pytest.approx((100 * 2 / 3 + 10) / 2) and t["tc_consensus_k"][2] == 0.0
    assert app_data.metrics_table({"metrics_test": {"supercon_test_mae_k": 5.123, "n_test_supercon": 1234}})[
        "value"
    ].tolist() == ["5.12", "1,234"]
    # the trees' figures come from their own card and win over stale ones an earlier version left in the checkpoint's
    stale = {"metrics_test": {"supercon_test_mae_k": 5.0, "trees_supercon_test_mae_k": 9.0}}
    trees_card = {"metrics_test": {"trees_supercon_test_mae_k": 4.44, "disagreement_flags_false_positive_share": 0.64}}
    table = app_data.metrics_table(stale, trees_card)
    assert table["metric"].iloc[-1] == "False positives (Tc > 0 K) the trees mark speculative"
    assert (
        dict(zip(table["metric"], table["value"], strict=True))["MAE of the trees on element statistics (K)"] == "4.44"
    )


def test_configure_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(app_data.THREADS_ENV, "1")
        assert app_data.configure_torch_threads() == 1
        monkeypatch.setenv(app_data.THREADS_ENV, "junk")  # ignored
        assert app_data.configure_torch_threads() == 1
    finally:
        torch.set_num_threads(before)
