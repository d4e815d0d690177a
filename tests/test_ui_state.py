"""The app's pure helpers: element states, presets, pin validation, the design form, uploads, series."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from gdmcd_app import data, form, inputs, job_view
from gdmcd_core.chem.elements import TOXIC, radioactive_symbols
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.evidence import filters
from gdmcd_core.design.objective.constraints import expand_exclude
from gdmcd_core.design.runs.folder import TrajectoryRecorder


def test_cycle_free_pinned_excluded_free() -> None:
    pins, ex = [], []
    pins, ex = inputs.cycle_element(pins, ex, "H")
    assert pins == [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}] and ex == []
    pins, ex = inputs.cycle_element(pins, ex, "O")
    assert [p["symbol"] for p in pins] == ["H", "O"] and pins[1]["fraction"] == inputs.DEFAULT_PIN_FRACTION
    pins, ex = inputs.cycle_element(pins, ex, "O")
    assert [p["symbol"] for p in pins] == ["H"] and ex == ["O"]
    pins, ex = inputs.cycle_element(pins, ex, "O")
    assert ex == [] and inputs.state_of("O", pins, ex) == "free"
    assert inputs.element_states(pins, ex) == {"H": "pinned"}
    with pytest.raises(ValueError):
        inputs.cycle_element(pins, ex, "Xx")
    with pytest.raises(ValueError):
        inputs.next_state("gone")


def test_cycle_does_not_mutate_inputs() -> None:
    pins = [{"symbol": "H", "fraction": 0.3, "mode": "exact"}]
    ex = ["Pb"]
    inputs.cycle_element(pins, ex, "H")
    assert pins == [{"symbol": "H", "fraction": 0.3, "mode": "exact"}] and ex == ["Pb"]


def test_typed_sets_keep_fractions_and_stay_disjoint() -> None:
    pins = [{"symbol": "H", "fraction": 0.7, "mode": "exact"}]
    pins, ex = inputs.set_pinned(pins, ["Li"], ["H", "Li"])
    assert pins[0]["fraction"] == 0.7 and pins[1]["symbol"] == "Li" and ex == []
    pins, ex = inputs.set_excluded(pins, ex, ["Li", "O"])
    assert [p["symbol"] for p in pins] == ["H"] and ex == ["Li", "O"]


def test_presets() -> None:
    pins, ex, note = inputs.apply_preset("hydride", [], ["H", "O"])
    assert pins == [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}] and ex == ["O"]
    pins, ex, note = inputs.apply_preset("radioactive", [{"symbol": "U", "fraction": 0.1, "mode": "at-least"}], [])
    assert set(ex) == set(radioactive_symbols()) - {"U"} and "U" in note
    assert all(s in ex for s in ("Po", "Tc", "Pm", "Og"))
    _, ex, _ = inputs.apply_preset("toxic", [], ["O"])
    assert set(ex) == set(TOXIC) | {"O"}
    with pytest.raises(ValueError, match="preset"):
        inputs.apply_preset("nice", [], [])


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
    pins, errors = inputs.validate_pins(rows)
    assert errors and any(__import__("re").search(match, e) for e in errors), errors


def test_validate_pins_ok_and_constraints() -> None:
    pins, errors = inputs.validate_pins(
        [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}, {"symbol": "", "fraction": 0.2}]
    )
    assert errors == [] and [str(p) for p in pins] == ["H>=0.5"]
    assert inputs.check_constraints(pins, ["O"]) is None
    assert "both pinned and excluded" in inputs.check_constraints(pins, ["H"])
    assert inputs.validate_n_range(4, 24) is None
    assert "empty N range" in inputs.validate_n_range(10, 4)


def _values(**over):
    return {**form.form_defaults(), **over}


def test_build_design_config_ok() -> None:
    values = _values(
        pins=[{"symbol": "H", "fraction": 0.5, "mode": "at-least"}],
        excluded=["F"],
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
    assert [str(p) for p in cfg.pins] == ["H>=0.5"] and cfg.exclude == ("F",)
    assert (cfg.n_min, cfg.n_max, cfg.steps2, cfg.steps3) == (4, 12, 10, 5)
    back = form.form_from_config(cfg)
    assert back["pins"] == [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}] and back["excluded"] == ["F"]
    again, errors = form.build_design_config(back)  # round trip: the form shows what the run used
    assert errors == {} and again == cfg


# Two configs that between them move every DesignConfig field off its default (executor "ray" runs the
# gradient method only, so the search method changes in the second); the second also holds values beyond
# the form's widget ranges, as a CLI run can.
EVERY_FIELD = DesignConfig(
    n_candidates=4096,
    init_mode="formulas",
    init_formulas=("MgB2", "Nb3Sn"),
    interpolation_partners="any",
    init_min_tc=200.0,
    pins=({"symbol": "H", "fraction": 0.5, "mode": "at-least"}, {"symbol": "S", "fraction": 0.25, "mode": "exact"}),
    pin_mode="exact",
    exclude=("O", "Pb"),
    exclude_unseen=False,
    exclude_implausible=False,
    max_elements=20,
    n_min=5,
    n_max=30,
    n_values=(4, 8, 12),
    integer_loss="es",
    alpha_max=100_000.0,
    steps2=20_000,
    steps3=20_000,
    lr=0.003,
    lr3=1.0,
    target_tc=1000.0,
    pressure_gpa=1000.0,
    seed=2**31 - 1,
    device="cpu",
    constraint_method="relu",
    keep_element_count=False,
    record_every=100_000,
    integer_select="final",
    select_every=10_000,
    refine_steps=100_000,
    objective="mean",
    kappa=10.0,
    ensemble_mode="rotate",
    full_every=1000,
    formation_energy_weight=10_000.0,
    valence_weight=100_000.0,
    cu_valence_weight=100_000.0,
    distance_weight=100_000.0,
    trust_radius=2.0,
    hull_columns=False,
    mixtures_last=False,
    misfits_last=False,
    known_last=False,
    site_repair=False,
    max_per_family=99,
    executor="ray",
    address="10.0.0.1:6379",
    shards=4096,
)
BEYOND_THE_WIDGETS = DesignConfig(
    n_candidates=20_000,
    steps2=200_000,
    steps3=5,
    n_min=30,
    n_max=100,
    lr=0.02,
    target_tc=5000.0,
    method="evolution",
    init_mode="dataset",
)


def test_both_configs_move_every_field() -> None:
    unchanged = [
        f.name
        for f in dataclasses.fields(DesignConfig)
        if all(getattr(c, f.name) == f.default for c in (EVERY_FIELD, BEYOND_THE_WIDGETS))
    ]
    assert unchanged == []


@pytest.mark.parametrize("cfg", [EVERY_FIELD, BEYOND_THE_WIDGETS, DesignConfig()], ids=["every", "beyond", "default"])
def test_config_to_form_to_config_is_exact(cfg: DesignConfig) -> None:
    """A run reopened in the app is the same run: every field survives config -> form -> config."""
    back, errors = form.build_design_config(form.form_from_config(cfg))
    assert errors == {}
    assert back == cfg, {
        f.name: getattr(back, f.name) for f in dataclasses.fields(cfg) if getattr(back, f.name) != getattr(cfg, f.name)
    }


def test_the_widgets_hold_what_a_run_used() -> None:
    """Nothing is clamped: the number widgets, the learning-rate stops and the N slider widen to the run's values."""
    v = form.form_from_config(BEYOND_THE_WIDGETS)
    fields = {f.name: f for f in form.generic_fields()}
    assert v["n_candidates"] == 20_000 and form.limits(fields["n_candidates"], 20_000) == (1, 20_000)
    assert form.limits(fields["n_candidates"], 16) == form.limits(fields["n_candidates"]) == (1, 4096)
    assert v["target_tc"] == 5000.0 and isinstance(form.limits(fields["target_tc"], 5000.0)[1], float)
    assert v["lr"] == 0.02 and 0.02 in form.lr_options(v["lr"]) and set(form.LR_OPTIONS) < set(form.lr_options(0.02))
    assert v["n_range"] == (30, 100) and form.n_slider_max(v["n_range"]) == 100
    assert form.n_slider_max((4, 24)) == form.N_SLIDER_MAX
    assert isinstance(v["n_candidates"], int) and isinstance(v["target_tc"], float)
    v = form.form_from_config(DesignConfig(n_values=(6, 12), exclude=("toxic",)))
    assert v["n_values"] == "6, 12" and v["n_range"] == (4, 24)
    assert set(v["excluded"]) == {"Be", "As", "Cd", "Hg", "Tl", "Pb"}


def test_the_same_run_spelt_otherwise_comes_back_as_the_form_writes_it() -> None:
    """Pins without a mode of their own, exclusion words and unused start formulas: the same run."""
    cfg = DesignConfig(pins=("H=0.5", "S>=0.1"), pin_mode="exact", exclude=("toxic", "O"), init_formulas=("MgB2",))
    back, errors = form.build_design_config(form.form_from_config(cfg))
    assert errors == {} and back == form.canonical_config(cfg)
    assert [p.resolved(cfg.pin_mode) for p in cfg.pins] == list(back.pins) and back.pin_mode == "exact"
    assert back.exclude == expand_exclude(cfg.exclude) and back.init_formulas == ()
    assert job_view.form_vs_run(back, cfg.to_dict()) == []  # no "Editing a new run" for the same run


def test_explicit_cell_sizes() -> None:
    assert inputs.parse_n_values("") == ((), None)
    assert inputs.parse_n_values("12, 4 8,,4") == ((4, 8, 12), None)
    assert "whole numbers" in inputs.parse_n_values("4, eight")[1]
    assert ">= 1" in inputs.parse_n_values("0, 4")[1]
    cfg, errors = form.build_design_config(_values(n_values="8, 4", n_range=(12, 4)))  # the set overrides the range
    assert errors == {} and cfg.ns == (4, 8)
    _, errors = form.build_design_config(_values(n_values="4, x"))
    assert "whole numbers" in errors["n_range"]


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
    assert inputs.element_label("Fe") == "Fe · Iron"
    assert inputs.element_label("H") == "H · Hydrogen"


def test_pretty_formula() -> None:
    assert inputs.pretty_formula("YBa2Cu3O7") == "YBa₂Cu₃O₇"
    assert inputs.pretty_formula("La1.85Sr0.15CuO4") == "La₁.₈₅Sr₀.₁₅CuO₄"
    assert inputs.pretty_formula("") == ""


def test_parse_formula_lines() -> None:
    ok, errors = inputs.parse_formula_lines("MgB2\n\nH3S, LaH10\nNaCl2x")
    assert ok == ["MgB2", "H3S", "LaH10"]
    assert len(errors) == 1 and errors[0].startswith("line 4")


def test_read_formula_csv() -> None:
    assert inputs.read_formula_csv(b"name,formula\nybco,YBa2Cu3O7\nmgb2,MgB2\n") == ["YBa2Cu3O7", "MgB2"]
    assert inputs.read_formula_csv(b"MgB2\nNb3Sn\n") == ["MgB2", "Nb3Sn"]  # no header: first column
    assert inputs.read_formula_csv("\ufeffFormula\nH3S\n".encode()) == ["H3S"]
    assert inputs.read_formula_csv(b"") == []
    # formula-looking cells are data: nothing is evaluated
    assert inputs.read_formula_csv(b"formula\n\"=cmd|calc\"\n__import__('os')\n") == ["=cmd|calc", "__import__('os')"]
    with pytest.raises(ValueError, match="limit is 0.0 MB"):
        inputs.read_formula_csv(b"x" * 100, max_bytes=10)
    with pytest.raises(ValueError, match="UTF-8"):
        inputs.read_formula_csv(b"\xff\xfe\xfa")
    with pytest.raises(ValueError, match="binary"):
        inputs.read_formula_csv(b"MgB2\x00\x01")
    with pytest.raises(ValueError, match="limit is 2"):
        inputs.read_formula_csv(b"MgB2\nNb3Sn\nH3S\n", max_rows=2)


# -- data ---------------------------------------------------------------------------------------


def test_alpha_schedule_matches_design_config() -> None:
    cfg = DesignConfig(steps2=3, steps3=4, alpha_max=90.0)
    step, alpha = data.alpha_schedule(cfg.steps2, cfg.steps3, cfg.alpha_max)
    assert list(step) == [1, 2, 3, 4, 5, 6, 7]
    assert list(alpha) == [0, 0, 0] + [cfg.alpha_at(k) for k in range(4)]
    assert list(data.alpha_schedule(0, 1, 5.0)[1]) == [5.0]
    assert data.stage3_start(cfg) == 3
    assert data.stage3_start({"steps2": 3, "steps3": 0}) is None


def test_series_from_rows_fills_missing() -> None:
    s = data.series_from_rows([{"step": 1, "tc_best_k": 5.0}, {"step": 2, "tc_best_k": 6.0, "alpha": 1.0}])
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
    steps, fr = data.candidate_composition(traj, 1)
    assert list(steps) == [0, 5, 10]
    assert list(fr)[:3] == ["Cu", "O", "H"] and "other" in fr  # Zn (peak 0.005) is grouped
    total = sum(np.asarray(v) for v in fr.values())
    np.testing.assert_allclose(total, 1.0, atol=2e-3)  # float16 snapshots
    series = data.candidate_series(traj, [0, 2], "tc_k")
    assert list(series[2][1]) == [30, 30, 31]
    s = data.series_from_trajectory(traj)
    assert len(s["step"]) == 10


def test_stage2_change_fig4() -> None:
    ch = data.stage2_change(_trajectory(), steps2=5)
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
    shown = data.display_candidates(t)
    assert "extra" not in shown.columns and shown["integer_formula"][0] == "MgB₂"
    assert "extra" in data.display_candidates(t, all_columns=True).columns
    assert data.candidate_label(t.iloc[0]) == "#1 MgB₂ (30.0 K)"


def test_element_counts_and_predict_formulas() -> None:
    x = np.zeros((3, 118))
    x[0, [0, 7]] = 0.5
    x[1, 7] = 1
    x[2, 28] = 1
    assert data.element_counts(x) == {"H": 1, "O": 2, "Cu": 1}

    class Fake:
        def predict(self, x):
            return x[:, 0] * 100, np.ones(len(x))

    t = data.predict_formulas(Fake(), ["H2O", "Qq2", "  ", "H3S"])
    assert list(t["error"] != "") == [False, True, True, False]
    assert t["tc_k"][0] == pytest.approx(100 * 2 / 3, rel=1e-6) and np.isnan(t["tc_k"][1])
    assert "Qq" in t["error"][1] and "tc_trees_k" not in t.columns

    class Trees:
        consensus_weight = 0.2  # the network's weight in the consensus, as fitted on validation rows

        def predict(self, x):
            return np.full(len(x), 10.0)

    t = data.predict_formulas(Fake(), ["H2O", "Qq2", "He"], Trees())
    assert t["tc_trees_k"].tolist()[0::2] == [10.0, 10.0] and np.isnan(t["tc_trees_k"][1])
    assert t["tc_consensus_k"][0] == pytest.approx(0.2 * 100 * 2 / 3 + 0.8 * 10) and t["tc_consensus_k"][2] == 0.0
    shown = data.metrics_table({}, {"consensus_weight": 0.2, "metrics_test": {}})
    assert shown["value"].tolist() == ["0.2"] and "weight" in shown["metric"][0]
    assert data.metrics_table({"metrics_test": {"supercon_test_mae_k": 5.123, "n_test_supercon": 1234}})[
        "value"
    ].tolist() == ["5.12", "1,234"]
    # the trees' figures come from their own card and win over stale ones an earlier version left in the checkpoint's
    stale = {"metrics_test": {"supercon_test_mae_k": 5.0, "trees_supercon_test_mae_k": 9.0}}
    trees_card = {"metrics_test": {"trees_supercon_test_mae_k": 4.44, "disagreement_flags_false_positive_share": 0.64}}
    table = data.metrics_table(stale, trees_card)
    assert table["metric"].iloc[-1] == "False positives (Tc > 0 K) the trees mark speculative"
    assert (
        dict(zip(table["metric"], table["value"], strict=True))["MAE of the trees on element statistics (K)"] == "4.44"
    )


def test_configure_torch_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        monkeypatch.setenv(data.THREADS_ENV, "1")
        assert data.configure_torch_threads() == 1
        monkeypatch.setenv(data.THREADS_ENV, "junk")  # ignored
        assert data.configure_torch_threads() == 1
    finally:
        torch.set_num_threads(before)
