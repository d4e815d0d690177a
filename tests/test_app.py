"""Each page's logic with Streamlit's AppTest (inputs -> outputs, errors), on a tiny model and data set.

AppTest cannot click Plotly points; the Design page's typed multiselects drive the same state
(the browser test clicks the table itself).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from _app_helpers import app_test, finished_small_run, tiny_app_env
from streamlit.testing.v1 import AppTest

from gdmcd_app.jobs import JobRegistry
from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.elements import index_of
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.model.checkpoint import load_checkpoint

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the pages import gdmcd_app.shared
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    with tiny_app_env(tmp_path_factory.mktemp("app")) as e:
        yield e


@pytest.fixture(scope="module")
def finished_run(env: dict[str, str]) -> str:
    """A small finished run in the app's runs folder (H >= 0.5 pinned, O excluded)."""
    return finished_small_run(env)


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def _frame_with(at: AppTest, column: str):
    """The first dataframe on the page that has `column` (AppTest does not expose dataframe keys)."""
    for d in at.dataframe:
        v = getattr(d.value, "data", d.value)  # a Styler wraps the frame
        if column in v.columns:
            return v
    raise LookupError(f"no dataframe with a {column!r} column")


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def test_entry_point_shows_the_model_in_use(env) -> None:
    at = app_test("app").run()
    _no_exceptions(at)
    side = " ".join(m.value for m in at.sidebar.markdown)
    assert "tiny" in side and "ensemble of 2" in side and "CPU" in side


def test_predict_bad_rows_get_their_own_message(env) -> None:
    at = app_test("predict").run()
    _no_exceptions(at)
    at.text_area(key="predict_text").set_value("MgB2\nXq2\n\nH3S").run()
    _no_exceptions(at)
    table = _frame_with(at, "problem")
    assert list(table["row"]) == [1, 2, 3]
    assert table["tc_k"].notna().tolist() == [True, False, True]
    assert "Xq" in table["problem"][1] and table["problem"][0] == ""
    assert any("1 of 3 rows" in e for e in _errors(at))


def test_predict_no_model_is_an_error_not_a_traceback(env, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("GDMCD_CHECKPOINT", str(tmp_path / "missing.pt"))
    at = app_test("predict").run()
    _no_exceptions(at)
    assert any("No Tc model" in e for e in _errors(at))


def test_design_typed_pins_and_exclusions_share_the_table_state(env) -> None:
    at = app_test("design").run()
    _no_exceptions(at)
    at.multiselect(key="ms_pinned").set_value(["H"]).run()
    assert at.session_state["pins"] == [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}]
    at.multiselect(key="ms_excluded").set_value(["O", "Pb"]).run()
    assert at.session_state["excluded"] == ["O", "Pb"]
    # excluding a pinned element moves it out of the pin table
    at.multiselect(key="ms_excluded").set_value(["H", "O", "Pb"]).run()
    assert at.session_state["pins"] == [] and at.session_state["excluded"] == ["H", "O", "Pb"]
    assert at.multiselect(key="ms_pinned").value == []
    at.button(key="preset_hydride").click().run()
    assert at.session_state["pins"][0]["symbol"] == "H" and "H" not in at.session_state["excluded"]
    assert at.session_state["init_mode"] == "hydride"
    at.button(key="preset_toxic").click().run()
    assert {"Hg", "Tl", "Cd", "As", "Pb", "Be"} <= set(at.session_state["excluded"])
    at.button(key="clear_elements").click().run()
    assert at.session_state["pins"] == [] and at.session_state["excluded"] == []
    _no_exceptions(at)


def test_design_bad_input_is_shown_next_to_the_widget(env) -> None:
    at = app_test("design").run()
    at.session_state["pins"] = [
        {"symbol": "H", "fraction": 0.7, "mode": "at-least"},
        {"symbol": "Li", "fraction": 0.6, "mode": "exact"},
    ]
    at.radio(key="init_mode").set_value("formulas").run()
    at.text_area(key="init_formulas").set_value("MgB2\nQq3").run()
    _no_exceptions(at)
    errors = _errors(at)
    assert any("sum to 1.3" in e for e in errors)
    assert any("line 2" in e and "Qq3" in e for e in errors)
    at.button(key="run_design").click().run()
    assert any("Fix the problems" in e for e in _errors(at))
    assert "job_id" not in at.session_state
    _no_exceptions(at)


def test_design_rejects_a_bad_run_id_in_the_url(env) -> None:
    at = app_test("design")
    at.query_params["job"] = "../../etc/passwd"
    at.run()
    _no_exceptions(at)
    assert any("not valid" in e for e in _errors(at))
    at = app_test("design")
    at.query_params["job"] = "20990101-000000-abcdef"  # well-formed, but no such run
    at.run()
    _no_exceptions(at)
    assert any("no run" in e for e in _errors(at))


def test_design_run_from_the_form_to_the_results(env) -> None:
    at = app_test("design").run()
    at.multiselect(key="ms_pinned").set_value(["H"]).run()
    at.multiselect(key="ms_excluded").set_value(["O"]).run()
    at.radio(key="init_mode").set_value("formulas").run()
    at.text_area(key="init_formulas").set_value("MgB2\nNb3Sn").run()
    at.number_input(key="n_candidates").set_value(4)
    at.number_input(key="max_elements").set_value(3)
    at.number_input(key="steps2").set_value(10)
    at.number_input(key="steps3").set_value(10)
    at.slider(key="n_range").set_value((4, 8))
    at.run()
    assert not _errors(at)
    at.button(key="run_design").click().run()
    _no_exceptions(at)
    job_id = at.session_state["job_id"]
    assert at.query_params["job"] == [job_id] or at.query_params["job"] == job_id
    from gdmcd_app.shared import get_registry

    job = get_registry().get(job_id)
    assert job is not None
    job.join(120)
    at.run()
    _no_exceptions(at)
    assert any("finished" in m.value for m in at.markdown)
    table = _frame_with(at, "integer_formula")
    assert len(table) >= 1
    cand = runs.load_run(job_id).candidates
    for f in cand["integer_formula"]:
        x = to_vector(f)
        assert x[index_of("H")] >= 0.5 - 1e-6 and x[index_of("O")] == 0
    # bad input afterwards does not lose the results on screen
    at.text_area(key="init_formulas").set_value("Qq3").run()
    assert any("Qq3" in e for e in _errors(at))
    assert len(_frame_with(at, "integer_formula")) == len(table)
    # filters narrow the table; reuse puts the run's settings back into the form
    at.button(key="reuse_settings").click().run()
    assert at.session_state["init_formulas"] == "MgB2\nNb3Sn" and at.session_state["steps2"] == 10
    at.button(key="new_run").click().run()
    assert "job_id" not in at.session_state
    _no_exceptions(at)


def test_design_opened_on_a_run_shows_its_results_and_settings(env, finished_run: str) -> None:
    at = app_test("design")
    at.query_params["job"] = finished_run  # a reload or a second tab: a fresh session
    at.run()
    _no_exceptions(at)
    assert at.session_state["pins"] == [{"symbol": "H", "fraction": 0.5, "mode": "at-least"}]
    assert at.session_state["excluded"] == ["O"]
    assert at.session_state["steps2"] == 10 and at.session_state["max_elements"] == 3
    assert len(_frame_with(at, "integer_formula")) >= 1
    assert any("finished" in m.value for m in at.markdown)


def test_trajectories_page(env, finished_run: str) -> None:
    at = app_test("trajectories")
    at.query_params["run"] = finished_run
    at.run()
    _no_exceptions(at)
    assert at.selectbox(key="traj_run").value == finished_run
    charts = at.get("plotly_chart")
    assert len(charts) >= 7  # composition, Tc, L_int, run Tc, run loss, Fig. 4a, Fig. 4b
    assert at.multiselect(key=f"traj_pick-{finished_run}").value
    at = app_test("trajectories")
    at.query_params["run"] = "../outside"
    at.run()
    _no_exceptions(at)
    assert any("not in the runs folder" in e for e in _errors(at))


def test_runs_page_lists_compares_and_deletes(env, finished_run: str) -> None:
    at = app_test("runs").run()
    _no_exceptions(at)
    listed = _frame_with(at, "run")
    assert finished_run in list(listed["run"])
    at.selectbox(key="runs_pick").set_value(finished_run).run()
    assert len(at.get("plotly_chart")) >= 1  # comparison of best Tc
    # a second run to delete (the first one is used by the other tests)
    model = load_checkpoint(env["GDMCD_CHECKPOINT"])
    cfg = DesignConfig(
        n_candidates=2,
        init_mode="formulas",
        init_formulas=("MgB2",),
        n_min=2,
        n_max=4,
        steps2=3,
        steps3=0,
        max_elements=2,
    )
    victim = JobRegistry(env["GDMCD_RUNS_DIR"]).start(model, cfg)
    victim.join(60)
    at = app_test("runs").run()
    at.selectbox(key="runs_pick").set_value(victim.job_id).run()
    at.button(key="runs_delete").click().run()
    _no_exceptions(at)
    assert not victim.run_dir.exists()
    assert finished_run in [r.run_id for r in runs.list_runs()]


def test_model_page_card_parity_and_error_by_range(env) -> None:
    at = app_test("model").run()
    _no_exceptions(at)
    metrics = _frame_with(at, "metric")
    assert "MAE on SuperCon test (K)" in list(metrics["metric"])
    assert len(at.get("plotly_chart")) == 2  # parity plot, error by Tc range
    assert any(m.value == "2" or m.value == 2 for m in at.metric)  # ensemble members


def test_every_page_waits_for_runs_gracefully(tmp_path: Path) -> None:
    with tiny_app_env(tmp_path):
        for name in ("trajectories", "runs"):
            at = app_test(name).run()
            _no_exceptions(at)
            assert any("No runs yet" in i.value for i in at.info)
    time.sleep(0)  # nothing left running
