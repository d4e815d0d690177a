"""The app's faults a new user and a fault probe found, each with the test that would have caught it: the
results caption against the run's objective, Resume during a Finalize, a cleared pin fraction, a candidates.csv
without its formula column, control characters in CSV exports, hydrates and the far-from-training warning on the
Predict page, the trees among the speculative warning's reasons, and where the browser tests find a Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from _app_helpers import app_test, tiny_app_env
from streamlit.testing.v1 import AppTest

from gdmcd_app import inputs, job_view, results_table
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.util_io import csv_bytes

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the pages import gdmcd_app.shared
    sys.path.insert(0, str(REPO))


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    with tiny_app_env(tmp_path_factory.mktemp("faults")) as e:
        yield e


def _texts(at: AppTest, *kinds: str) -> str:
    return "\n".join(str(el.value) for kind in kinds for el in getattr(at, kind))


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def write_run(root: Path, run_id: str, design: dict, candidates: str | None, status: str = "finished") -> Path:
    """A run folder as a finished run leaves it (config.json, status.json, candidates.csv when given)."""
    d = root / run_id
    d.mkdir(parents=True)
    (d / runs.CONFIG_FILE).write_text(json.dumps({"design": design, "created": time.time(), "summary": "test"}))
    prog = {"step": 100, "total_steps": 100, "tc_best_k": 50.0, "done": True}
    (d / runs.STATUS_FILE).write_text(json.dumps({"status": status, "heartbeat": time.time(), "progress": prog}))
    if candidates is not None:
        (d / runs.CANDIDATES_FILE).write_text(candidates)
    return d


# the second row is speculative by the trees alone: σ small, close to a known superconductor, trees far off
CANDIDATES = (
    "rank,candidate,integer_formula,integer_tc_k,integer_tc_std_k,integer_tc_trees_k,nearest_supercon_distance\n"
    "1,0,MgB2,40.0,2.0,41.0,0.05\n"
    "2,1,Nb3Sn,30.0,1.0,2.0,0.05\n"
)


# -- 1. the caption above the results table ------------------------------------------------------


def test_ranking_text_reads_the_design_settings() -> None:
    lcb = DesignConfig(objective="lcb", kappa=1.0).to_dict()
    assert job_view.ranking_text(lcb).startswith("ranked by Tc − σ of the integer formula")
    assert "Tc − 2σ" in job_view.ranking_text({**lcb, "kappa": 2.0})
    mean = DesignConfig(objective="mean").to_dict()
    assert job_view.ranking_text(mean).startswith("ranked by predicted Tc of the integer formula")
    assert job_view.ranking_text(["not", "a", "dict"]).startswith("ranked by Tc − σ")  # the default objective


@pytest.mark.parametrize(("objective", "caption"), [("lcb", "ranked by Tc − σ"), ("mean", "ranked by predicted Tc")])
def test_results_caption_follows_the_runs_objective(env, objective: str, caption: str) -> None:
    rid = f"20250101-000000-{'aaaaa1' if objective == 'lcb' else 'aaaaa2'}"
    write_run(Path(env["GDMCD_RUNS_DIR"]), rid, DesignConfig(objective=objective).to_dict(), CANDIDATES)
    at = app_test("design")
    at.query_params["job"] = rid
    at.run()
    _no_exceptions(at)
    head = next(m.value for m in at.markdown if "distinct candidates" in m.value)
    assert caption in head, head


# -- 7. the speculative warning names the trees ---------------------------------------------------


def test_speculative_warning_names_the_trees_disagreement(env) -> None:
    view = results_table.results_view(pd.read_csv(io.StringIO(CANDIDATES)), (), False)
    assert list(view["speculative"]) == [False, True]  # by the trees alone
    text = results_table.speculative_warning(view)
    assert text and "Nb3Sn" in text and "trees" in text and "σ above" in text and "L1 = 0.2" in text
    assert results_table.speculative_warning(view.head(1)) is None
    rid = "20250101-000000-aaaaa3"
    write_run(Path(env["GDMCD_RUNS_DIR"]), rid, DesignConfig().to_dict(), CANDIDATES)
    at = app_test("design")
    at.query_params["job"] = rid
    at.run()
    _no_exceptions(at)
    assert "the trees' Tc" in _texts(at, "warning")


# -- 2. Resume while a Finalize runs --------------------------------------------------------------


def test_resume_while_a_finalize_runs_is_refused_in_one_line(env) -> None:
    """A Finalize of the run in another tab (here: a thread blocked while it builds its engine) makes the Runs
    page say so; a Resume that gets past the page is refused by the registry, not raced against the finalize."""
    from gdmcd_app.jobs import RunBusyError
    from gdmcd_app.shared import get_registry
    from gdmcd_core.design.runs.lock import LOCK_NAME

    rid = "20250102-000000-bbbbb1"
    d = write_run(
        Path(env["GDMCD_RUNS_DIR"]), rid, DesignConfig(n_candidates=8, steps2=50, steps3=50).to_dict(), None, "running"
    )
    prog = {"step": 40, "total_steps": 100}
    (d / runs.STATUS_FILE).write_text(json.dumps({"status": "stopped", "heartbeat": time.time(), "progress": prog}))
    (d / runs.STATE_FILE).write_bytes(b"not read: the finalize never gets that far")
    assert not (d / LOCK_NAME).exists()
    at = app_test("runs").run()
    at.selectbox(key="runs_pick").set_value(rid).run()
    assert at.button(key="runs_resume") is not None  # the page was drawn before the finalize began

    registry = get_registry()
    entered, release = threading.Event(), threading.Event()

    def slow_engine(model, config, fe_model=None):
        entered.set()
        release.wait(30)
        raise ValueError("the test's finalize ends here")

    factory, registry._factory = registry._factory, slow_engine
    finalize = threading.Thread(target=lambda: pytest.raises(ValueError, registry.finalize, rid, None), daemon=True)
    try:
        finalize.start()
        assert entered.wait(10)
        with pytest.raises(RunBusyError, match="a finalize is running for this run"):
            registry.resume(rid, None)
        at.button(key="runs_resume").click().run()
        _no_exceptions(at)
        assert "A finalize is running for this run" in _texts(at, "info", "warning")
        assert at.title[0].value == "Runs" and not registry.is_active(rid)  # nothing was resumed
    finally:
        release.set()
        finalize.join(30)
        registry._factory = factory
    assert registry.busy_with(rid) is None


# -- 3. a cleared pin fraction --------------------------------------------------------------------


@pytest.mark.parametrize("cleared", [None, float("nan"), ""])
def test_a_cleared_pin_fraction_is_an_input_error(env, cleared) -> None:
    pins, errors = inputs.validate_pins([{"symbol": "Nb", "fraction": cleared, "mode": "at-least"}])
    assert not pins and errors == ["pin row 1 (Nb): the fraction of Nb is empty; give a value in (0, 1]"]
    assert inputs.pin_notes([{"symbol": "Nb", "fraction": cleared, "mode": "at-least"}]) == {"Nb": "≥ ?"}
    at = app_test("app").run()
    at.session_state["pins"] = [
        {"symbol": "H", "fraction": 0.5, "mode": "at-least"},
        {"symbol": "Nb", "fraction": cleared, "mode": "exact"},
    ]
    at.run()
    _no_exceptions(at)
    assert any("(Nb)" in e and "empty" in e for e in (el.value for el in at.error)), _texts(at, "error")


# -- 4. a candidates.csv without its formula column ------------------------------------------------


def test_runs_page_names_a_candidates_file_without_its_formula_column(env) -> None:
    rid = "20250103-000000-ccccc1"
    d = write_run(Path(env["GDMCD_RUNS_DIR"]), rid, DesignConfig().to_dict(), "rank,tc\n1,39.0\n")
    at = app_test("runs").run()
    _no_exceptions(at)
    at.selectbox(key="runs_pick").set_value(rid).run()
    _no_exceptions(at)
    at.multiselect(key="runs_compare").set_value([rid]).run()  # the comparison reads the top row's formula
    _no_exceptions(at)
    errors = _texts(at, "error")
    assert str(d / runs.CANDIDATES_FILE) in errors and "'integer_formula'" in errors, errors
    for page, key in (("design", "job"), ("trajectories", "run")):
        other = app_test(page)
        other.query_params[key] = rid
        other.run()
        _no_exceptions(other)


# -- 5. control characters in CSV exports ---------------------------------------------------------


@pytest.mark.parametrize("cell", ["\r=1+1", "\n@x", "\t=1", " =1", " \r-2+3", "\x0b+x"])
def test_csv_exports_quote_control_characters_and_neutralize_formulas(cell: str) -> None:
    from gdmcd_app.shared import csv_download_bytes

    table = pd.DataFrame({"integer_formula": ["MgB2", cell], "tc": [39.0, -3.5]})
    for data in (csv_bytes(table), csv_download_bytes(table), results_table.export_csv(table)):
        text = data.decode()
        rows = list(csv.reader(io.StringIO(text, newline="")))
        assert len(rows) == 3 and rows[1][0] == "MgB2" and rows[2][1] == "-3.5", rows
        assert rows[2][0] == "'" + cell  # shown as text, whatever precedes the formula
        if any(ord(c) < 32 for c in cell):
            assert '"' + "'" + cell + '"' in text  # quoted: the control character stays inside its cell
    assert csv_bytes(pd.DataFrame({"a": ["-3.2", " MgB2", 'x"y']})).decode() == 'a\n-3.2\n MgB2\n"x""y"\n'


# -- 6. hydrates and the far-from-training warning on the Predict page ----------------------------


def test_pretty_formula_subscripts_amounts_only() -> None:
    pretty = inputs.pretty_formula
    assert pretty("CuSO4.5H2O") == pretty("CuSO4·5H2O") == pretty("CuSO4*5H2O") == "CuSO₄·5H₂O"
    assert pretty("Na0.35CoO2·1.3H2O") == "Na₀.₃₅CoO₂·1.3H₂O"
    assert pretty("KCl.MgCl2.6H2O") == "KCl·MgCl₂·6H₂O"
    assert pretty("YBa2Cu3O6.5") == "YBa₂Cu₃O₆.₅" and pretty("La1.85Sr0.15CuO4") == "La₁.₈₅Sr₀.₁₅CuO₄"
    assert pretty("[Cu(NH3)4](NO3)2") == "[Cu(NH₃)₄](NO₃)₂"


def test_predict_page_shows_hydrates_and_the_clis_warning(env, capsys: pytest.CaptureFixture[str]) -> None:
    from gdmcd_core.cli.main import main

    formulas = ["CuSO4.5H2O", "UPu", "MgB2"]
    assert main(["predict", "--json", "--checkpoint", env["GDMCD_CHECKPOINT"], "--device", "cpu", *formulas]) == 0
    cli = {r["formula"]: r for r in json.loads(capsys.readouterr().out)}
    assert "never seen in training: U, Pu" in cli["UPu"]["warning"]  # the case the page left out
    at = app_test("predict").run()
    at.text_area(key="predict_text").set_value("\n".join(formulas)).run()
    _no_exceptions(at)
    table = next(getattr(d.value, "data", d.value) for d in at.dataframe)
    assert list(table["formula"]) == ["CuSO₄·5H₂O", "UPu", "MgB₂"]
    assert list(table["parsed_formula"]) == [inputs.pretty_formula(cli[f]["parsed_formula"]) for f in formulas]
    assert list(table["warning"]) == [cli[f]["warning"] or "" for f in formulas]
    assert cli["UPu"]["warning"] in _texts(at, "warning")


# -- 8. the browser tests' Chromium ---------------------------------------------------------------


@pytest.mark.browser
def test_browser_probe() -> None:
    """Runs only where a Chromium was found (conftest); the test below runs it without one."""


@pytest.mark.parametrize("ci", ["", "true"])
def test_browser_tests_without_chromium_skip_with_one_line_or_fail_under_ci(ci: str) -> None:
    env = {**os.environ, "GDMCD_CHROMIUM": "/nonexistent/chromium", "CI": ci}
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "browser"]
    out = subprocess.run(
        [*cmd, f"{Path(__file__).name}::test_browser_probe"],
        cwd=Path(__file__).parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    text = out.stdout + out.stderr
    assert "playwright install chromium" in text and "apt-get install chromium" in text, text
    if ci:
        assert out.returncode == 1 and "1 error" in text and "CI=true" in text, text
    else:
        assert out.returncode == 0 and "1 skipped" in text, text
