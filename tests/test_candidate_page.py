"""The candidate page: one candidate's whole story, opened by its address (?run=…&formula=…) or from the link
column of every candidate table; bad addresses get one error line. Also the numbers behind it: the k nearest
SuperCon entries, the path with the integer formula drawn last (elements only the rounding added included), the
JSON and CSV downloads."""

from __future__ import annotations

import base64
import dataclasses
import json
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd
import pytest
from _app_helpers import app_test, finished_small_run, tiny_app_env
from design_helpers import tiny_reference
from streamlit.testing.v1 import AppTest

from gdmcd_app import candidate_story, data
from gdmcd_app.inputs import pretty_formula
from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.distance import nearest_k_l1, nearest_l1
from gdmcd_core.chem.elements import index_of
from gdmcd_core.design.loop.trajectory import Trajectory
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.model.hurdle import plus_minus

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the pages import gdmcd_app.shared
    sys.path.insert(0, str(REPO))

SECTIONS = (
    "Parent phase and edit",
    "Nearest known superconductors",
    "Chemistry checks",
    "Stability",
    "Path: start → stage 2 → stage 3 → integer formula",
    "Links and downloads",
)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    with tiny_app_env(tmp_path_factory.mktemp("candidate")) as e:
        yield e


@pytest.fixture(scope="module")
def run_id(env: dict[str, str]) -> str:
    """A small finished run of the tiny model in the app's runs folder."""
    return finished_small_run(env)


def _open(run: str | None = None, formula: str | None = None) -> AppTest:
    at = app_test("candidate")
    if run is not None:
        at.query_params["run"] = run
    if formula is not None:
        at.query_params["formula"] = formula
    return at.run()


def _no_exceptions(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def _labels(at: AppTest, kind: str) -> list[str]:
    return [el.proto.label for el in at.get(kind)]


def _param(at: AppTest, name: str) -> str:
    v = at.query_params[name]
    return v[0] if isinstance(v, list) else v


def _array(v) -> np.ndarray:
    """A Plotly JSON array: a list, or {"dtype", "bdata"} (base64)."""
    if isinstance(v, dict):
        return np.frombuffer(base64.b64decode(v["bdata"]), dtype=np.dtype(v["dtype"]))
    return np.asarray(v)


def _frame_with(at: AppTest, column: str) -> pd.DataFrame:
    for d in at.dataframe:
        if column in d.value.columns:
            return d.value
    raise LookupError(f"no dataframe with a {column!r} column")


# -- the page --------------------------------------------------------------------------------------------


def test_opened_by_its_address_it_shows_every_section(env, run_id: str) -> None:
    table = runs.load_run(run_id).candidates
    row = table.iloc[len(table) - 1]  # not the default (best) row
    formula = str(row["integer_formula"])
    at = _open(run_id, formula)
    _no_exceptions(at)
    assert not at.error
    assert [h.value for h in at.header] == [pretty_formula(formula)]
    assert [s.value for s in at.subheader] == list(SECTIONS)
    assert at.selectbox(key="cand_formula").value == formula and at.selectbox(key="cand_run").value == run_id
    # Tc with σ, as the table has them
    tc = at.metric[0]
    assert tc.value == plus_minus(row["integer_tc_k"], row["integer_tc_std_k"])  # never '± 0.0'
    assert "± 0.0 " not in tc.value
    # the parent phase and the edit: their columns when the run's table has them, else a line saying so
    not_computed = any(c.value == "Parent phase and edit: not computed for this run." for c in at.caption)
    if candidate_story.has_parent(row):
        shown = [c for c in candidate_story.PARENT_COLUMNS if c in row]
        parent = next(d.value for d in at.dataframe if "quantity" in d.value.columns)
        assert len(parent) == len(shown) and not not_computed
    else:
        assert not_computed
    # the 5 nearest SuperCon entries; the first is the table's nearest known superconductor
    near = _frame_with(at, "distance_l1")
    assert len(near) == candidate_story.NEAREST_K
    assert near["formula"].iloc[0] == pretty_formula(str(row["nearest_supercon_formula"]))
    assert near["distance_l1"].iloc[0] == pytest.approx(float(row["nearest_supercon_distance"]), abs=1e-6)
    assert near["distance_l1"].is_monotonic_increasing and near["year"].notna().all()
    # chemistry checks and the hull energy, labelled as the results table labels them
    facts = [set(d.value["quantity"]) for d in at.dataframe if "quantity" in d.value.columns]
    assert any("charge-neutral" in f and "passes checks" in f for f in facts)
    assert any("E above hull (eV/atom)" in f for f in facts)
    # the path: its steps in words, the figure with the integer formula's elements, downloads and links
    steps = _frame_with(at, "composition")
    assert list(steps["step"])[:2] == ["start", "after stage 2"] and "integer formula" in set(steps["step"])
    (chart,) = at.get("plotly_chart")
    fig = json.loads(chart.proto.spec)
    names = {t.get("name") for t in fig["data"]}
    for symbol in parse_formula(formula):
        assert symbol in names or "other" in names
    assert _labels(at, "download_button") == ["Candidate (JSON)", "Trajectory (CSV)"]
    assert _labels(at, "link_button") == ["Materials Project", "OQMD", "Google Scholar"]


def test_without_an_address_it_opens_the_newest_runs_best_candidate(env, run_id: str) -> None:
    at = _open()
    _no_exceptions(at)
    best = str(runs.load_run(run_id).candidates.iloc[0]["integer_formula"])
    assert at.selectbox(key="cand_formula").value == best
    assert _param(at, "run") == run_id and _param(at, "formula") == best  # the address names it: shareable


def test_picking_another_candidate_follows_in_the_address(env, run_id: str) -> None:
    table = runs.load_run(run_id).candidates
    at = _open(run_id)
    other = str(table.iloc[-1]["integer_formula"])
    at.selectbox(key="cand_formula").set_value(other).run()
    _no_exceptions(at)
    assert _param(at, "formula") == other and at.header[0].value == pretty_formula(other)


@pytest.mark.parametrize(
    ("run", "formula", "says"),
    [
        ("20990101-000000-000000", None, "is not in the runs folder"),
        ("../../etc", "MgB2", "is not in the runs folder"),
        ("x" * 100_000, None, "is not in the runs folder"),
        (None, "Xe2Ne", "is not among the"),
        (None, "((((((((((((((((((((Fe))))))))))))))))))))" * 50, "is not among the"),
        (None, "\r=1+1", "is not among the"),
    ],
)
def test_a_bad_address_gets_one_error_line(env, run_id: str, run: str | None, formula: str | None, says: str) -> None:
    at = _open(run if run is not None else run_id, formula)
    _no_exceptions(at)
    assert len(at.error) == 1, [e.value for e in at.error]
    message = at.error[0].value
    assert says in message and "\n" not in message and len(message) < 300
    assert not at.header  # no candidate shown under the error


def test_every_candidate_table_links_to_the_candidate_page(env, run_id: str) -> None:
    table = runs.load_run(run_id).candidates
    for name, params in (("design", {"job": run_id}), ("runs", {})):
        at = app_test(name)
        for k, v in params.items():
            at.query_params[k] = v
        at.run()
        _no_exceptions(at)
        shown = _frame_with(at, candidate_story.OPEN_COLUMN)
        links = list(shown[candidate_story.OPEN_COLUMN])
        assert len(links) == min(len(table), 20)
        for link, formula in zip(links, table["integer_formula"], strict=False):
            url = urlsplit(link)
            assert url.path == candidate_story.CANDIDATE_PAGE
            assert parse_qs(url.query) == {"run": [run_id], "formula": [formula]}


def test_the_trajectories_page_draws_the_integer_formula_and_offers_csv(env, run_id: str) -> None:
    at = app_test("trajectories")
    at.query_params["run"] = run_id
    at.run()
    _no_exceptions(at)
    area = json.loads(at.get("plotly_chart")[0].proto.spec)
    focus = runs.load_run(run_id).candidates.iloc[0]
    names = {t.get("name") for t in area["data"]}
    assert all(s in names or "other" in names for s in parse_formula(str(focus["integer_formula"])))
    xs = _array([t["x"] for t in area["data"] if t.get("stackgroup")][0])
    assert "integer formula" in json.dumps(area["layout"].get("annotations", []))
    snap_step = runs.load_run(run_id).trajectory.snap_step
    assert len(xs) == len(snap_step) + 1 and xs[-1] > snap_step[-1]  # the integer formula: one more point, last
    assert _labels(at, "download_button") == [
        "Download this composition path (CSV)",
        "Download Tc and integer loss of these candidates (CSV)",
        "Download the run's statistics per step (CSV)",
    ]
    assert len(at.get("page_link")) == 1  # to this candidate's page


def test_the_design_page_draws_the_live_panel_beside_the_run_button(env) -> None:
    """The Run button and the live panel share one row of columns: the charts are in view next to the button."""
    import ast

    source = (REPO / "gdmcd_app" / "views" / "design.py").read_text()
    render = next(n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.FunctionDef) and n.name == "render")
    text = ast.unparse(render)
    assert "controls, beside = st.columns(" in text
    assert text.index("with controls:") < text.index("_run_controls(") < text.index("with beside:")
    assert text.index("with beside:") < text.index("_beside_run_button(")
    at = app_test("design").run()
    _no_exceptions(at)
    assert any("live charts appear here" in c.value for c in at.caption)


# -- the numbers behind it ----------------------------------------------------------------------------------


def test_nearest_k_l1_agrees_with_nearest_l1_and_sorts() -> None:
    ref = tiny_reference()
    x = to_vector("Nb3VH4")
    idx, dist = nearest_k_l1(x, ref.sc_x, 5)
    j, d = nearest_l1(x[None], ref.sc_x)
    assert idx[0] == j[0] and dist[0] == pytest.approx(d[0])
    assert np.all(np.diff(dist) >= 0) and len(idx) == 5
    brute = np.abs(ref.sc_x.astype(np.float64) - x).sum(1)
    assert np.allclose(dist, np.sort(brute)[:5], atol=1e-5)
    assert len(nearest_k_l1(x, ref.sc_x, 1000)[0]) == len(ref.sc_x)
    assert len(nearest_k_l1(x, np.zeros((0, 118)), 5)[0]) == 0


def test_nearest_supercon_table_has_tc_year_and_distance() -> None:
    ref = tiny_reference()
    years = np.where(ref.sc_formula == "MgB2", 2001.0, np.nan)
    near = candidate_story.nearest_supercon("MgB2", dataclasses.replace(ref, sc_year=years), k=3)
    assert list(near.columns) == ["formula", "tc_k", "year", "distance_l1"]
    assert near.iloc[0].tolist() == ["MgB2", 39.0, 2001.0, 0.0]
    assert np.isnan(near["year"].iloc[1])  # its year unknown
    assert candidate_story.nearest_supercon("MgB2", ref, k=2)["year"].isna().all()  # a reference without years


def _trajectory() -> Trajectory:
    """Two candidates, three snapshots (start, end of stage 2 at step 10, end of stage 3 at step 20); candidate 0
    is Nb-Sn-H throughout: V never appears in its trajectory."""
    x = np.zeros((3, 2, 118), np.float16)
    for s, (nb, sn) in enumerate([(0.4, 0.1), (0.3, 0.2), (0.35, 0.15)]):
        x[s, 0, index_of("Nb")], x[s, 0, index_of("Sn")], x[s, 0, index_of("H")] = nb, sn, 0.5
        x[s, 1, index_of("Mg")], x[s, 1, index_of("B")] = 0.5, 0.5
    t = np.arange(1, 21)
    stats = {k: np.zeros(20) for k in ("alpha", "tc_best_k", "tc_median_k", "tc_q10_k", "tc_q90_k", "hinge_mean_k")}
    return Trajectory(
        step=t,
        stage=np.where(t <= 10, 2, 3),
        int_loss_median=np.zeros(20),
        snap_step=np.array([0, 10, 20]),
        snap_tc_k=np.array([[5.0, 1.0], [8.0, 2.0], [9.0, 3.0]], np.float32),
        snap_int_loss=np.array([[0.3, 0.1], [0.2, 0.1], [0.05, 0.0]], np.float32),
        snap_x=x,
        **stats,
    )


ROW = {
    "candidate": 0,
    "integer_formula": "Nb3VH4",
    "integer_tc_k": 9.5,
    "integer_tc_std_k": 1.5,
    "integer_step": 21,
    "integer_loss": 0.0,
}


def test_the_path_ends_on_the_integer_formula_with_the_elements_the_rounding_added() -> None:
    traj = _trajectory()
    path = data.candidate_path(traj, ROW, steps2=10)
    assert list(path["step"]) == [0, 10, 20, 21]
    assert list(path["stage"]) == ["start", "stage 2", "stage 3", "integer"]
    assert list(path["tc_k"]) == [5.0, 8.0, 9.0, 9.5]
    assert path["tc_std_k"].iloc[-1] == 1.5 and path["tc_std_k"].iloc[:3].isna().all()
    assert list(path.columns[5:]) == ["frac_H", "frac_Nb", "frac_V", "frac_Sn"]  # by the integer formula's share
    assert path["frac_V"].tolist() == [0.0, 0.0, 0.0, 0.125]  # only the refinement added V
    assert path["frac_Nb"].iloc[-1] == 0.375 and path["frac_Sn"].iloc[-1] == 0.0
    steps, fractions = data.candidate_composition(traj, 0, final=data.integer_point(traj, ROW))
    assert list(steps) == [0, 10, 20, 21] and "V" in fractions and fractions["V"][-1] == pytest.approx(0.125)
    # without the integer formula, the trajectory alone never shows V (what the page drew before)
    assert "V" not in data.candidate_composition(traj, 0)[1]
    # a formula taken at an earlier stage-3 step is still drawn after the loop
    assert data.integer_point(traj, {**ROW, "integer_step": 16})[0] == 21


def test_the_candidate_json_and_csv_hold_row_nearest_and_path() -> None:
    traj = _trajectory()
    path = data.candidate_path(traj, ROW, steps2=10)
    near = candidate_story.nearest_supercon("Nb3VH4", tiny_reference(), k=2)
    doc = json.loads(candidate_story.candidate_json("r1", {**ROW, "cu_valence": float("nan")}, near, path))
    assert doc["run"] == "r1" and doc["candidate"]["integer_formula"] == "Nb3VH4"
    assert doc["candidate"]["cu_valence"] is None  # NaN written as null: strict JSON
    assert len(doc["nearest_supercon"]) == 2 and doc["nearest_supercon"][0]["year"] is None
    assert [p["stage"] for p in doc["path"]] == ["start", "stage 2", "stage 3", "integer"]
    from gdmcd_app.shared import csv_download_bytes

    back = pd.read_csv(__import__("io").BytesIO(csv_download_bytes(path)))
    assert list(back.columns[:5]) == ["step", "stage", "tc_k", "tc_std_k", "integer_loss"]
    assert back["frac_V"].iloc[-1] == 0.125


def test_find_candidate_by_formula_or_composition() -> None:
    table = pd.DataFrame({"rank": [1, 2], "integer_formula": ["Nb3Sn", "Nb6Sn2"]})
    assert candidate_story.find_candidate(table, "Nb6Sn2")["rank"] == 2  # exact first
    assert candidate_story.find_candidate(table, "SnNb3")["rank"] == 1  # same composition, best rank
    assert candidate_story.find_candidate(table, "MgB2") is None
    assert candidate_story.find_candidate(table, "((((") is None
    assert candidate_story.candidate_options(table) == {"Nb3Sn": "#1 Nb₃Sn", "Nb6Sn2": "#2 Nb₆Sn₂"}
    no_rank = pd.DataFrame({"integer_formula": ["MgB2"], "integer_tc_k": [39.04]})  # a table from elsewhere
    assert candidate_story.candidate_options(no_rank) == {"MgB2": "#1 MgB₂ (39.0 K)"}
    assert candidate_story.trajectory_column({"candidate": float("nan")}) is None


def test_facts_say_what_an_empty_cell_means_and_parent_columns_show_when_present() -> None:
    row = pd.Series(
        {
            "integer_tc_k": 30.0,
            "integer_tc_std_k": 3.0,
            "p_superconductor": 0.8,
            "tc_if_sc_k": 35.0,
            "charge_neutral": pd.NA,
            "cu_valence": np.nan,
            "toxic": "False",
            "parent_formula": "Nb3Sn",
            "edit": "Sn -> V",
        }
    )
    tc = candidate_story.tc_facts(row)
    assert list(tc["value"]) == ["30.0 ± 3.0 K", "0.80", "35.0"]
    facts = candidate_story.facts(row, candidate_story.CHEMISTRY_COLUMNS)
    checks = dict(zip(facts["quantity"], facts["value"], strict=True))
    assert checks["charge-neutral"] == "not tested" and checks["toxic"] == "no"
    assert checks["Cu valence"].startswith("not defined")
    assert candidate_story.has_parent(row) and not candidate_story.has_parent(row.drop(["parent_formula", "edit"]))
    parent = candidate_story.facts(row, candidate_story.PARENT_COLUMNS)
    assert list(parent["value"]) == ["Nb3Sn", "Sn -> V"]


def test_a_run_with_parent_and_two_part_columns_shows_them(env, run_id: str) -> None:
    """A table with the parent-phase and two-part columns (another run's table): both shown, no trajectory needed."""
    root = Path(env["GDMCD_RUNS_DIR"])
    rid = "20300101-000000-aaaaaa"
    d = root / rid
    d.mkdir(parents=True)
    (d / runs.CONFIG_FILE).write_text(json.dumps({"design": {"steps2": 10, "steps3": 10}, "created": time.time()}))
    prog = {"step": 20, "total_steps": 20, "done": True}
    (d / runs.STATUS_FILE).write_text(json.dumps({"status": "finished", "heartbeat": time.time(), "progress": prog}))
    (d / runs.CANDIDATES_FILE).write_text(
        "rank,candidate,integer_formula,integer_tc_k,integer_tc_std_k,p_superconductor,tc_if_sc_k,parent_formula,edit\n"
        "1,0,MgB2,40.0,2.0,0.9,42.0,MgB2,none\n"
    )
    try:
        at = _open(rid, "MgB2")
        _no_exceptions(at)
        assert not at.error
        assert [m.value for m in at.metric] == ["40.0 ± 2.0 K", "0.90", "42.0"]
        parent = [d.value for d in at.dataframe if "quantity" in d.value.columns][0]
        assert list(parent["value"]) == ["MgB2", "none"]
        assert any("no trajectory" in i.value for i in at.info)
        assert _labels(at, "download_button") == ["Candidate (JSON)"]  # no trajectory, no trajectory CSV
        at.selectbox(key="cand_run").set_value(run_id).run()  # another run: its best candidate
        _no_exceptions(at)
        best = str(runs.load_run(run_id).candidates.iloc[0]["integer_formula"])
        assert _param(at, "run") == run_id and _param(at, "formula") == best and not at.error
    finally:
        runs.delete_run(rid, root)


def test_a_site_repair_says_it_was_added_after_the_search() -> None:
    from gdmcd_app.candidate_story import integer_origin

    row = {"path": "site repair of candidate 7 (Sr for Mg)", "integer_step": 220}
    assert integer_origin(row, 400).startswith("added after the search: site repair of candidate 7")
    assert integer_origin({"path": "stage 3, best integer (step 220)", "integer_step": 220}, 400) == (
        "rounded from the composition at step 220"
    )
