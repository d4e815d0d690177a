"""App state that never lies: one status per run on every page, the form against the run on screen,
the live panel's phases and ETA, run names and tags, the Runs page's settings diff (plain functions
and AppTest, on a tiny model; the browser test drives the same through Chromium)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from _app_helpers import app_test, switch_page, tiny_app_env
from streamlit.testing.v1 import AppTest

from gdmcd_app import form, job_view, run_list
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs import meta as run_meta
from gdmcd_core.design.runs.lock import LOCK_NAME, LockInfo, is_alive

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _snap(**kw):
    base = dict(
        job_id="r1", status="running", progress=None, history=[], phase="", phase_started=None, stop_requested=False
    )
    return SimpleNamespace(**{**base, **kw})


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def write_interrupted_run(root: Path, run_id: str, design: dict, steps: int = 40, total: int = 100) -> Path:
    """A run folder as a killed server leaves it: status "running", its lock held by a dead process."""
    d = root / run_id
    d.mkdir(parents=True)
    (d / runs.CONFIG_FILE).write_text(json.dumps({"design": design, "created": time.time(), "summary": "test"}))
    prog = {"step": steps, "total_steps": total, "tc_best_k": 50.0}
    (d / runs.STATUS_FILE).write_text(json.dumps({"status": "running", "heartbeat": time.time(), "progress": prog}))
    lock = {"pid": _dead_pid(), "host": socket.gethostname(), "started": time.time(), "heartbeat": time.time()}
    (d / LOCK_NAME).write_text(json.dumps(lock))
    return d


# -- plain functions ----------------------------------------------------------------------------


def test_progress_view_shows_phases_then_numbers_never_nan() -> None:
    v = job_view.progress_view(_snap(phase="first_step", phase_started=100.0), now=112.0)
    assert "first optimization step" in v.text and "12 s" in v.text and "nan" not in v.text.lower()
    assert v.fraction == 0 and not v.has_points
    assert dict(v.phases)["writing the run folder"] == "done"
    assert dict(v.phases)["first optimization step (warm-up)"] == "now"
    p = {"step": 1, "total_steps": 10, "stage": 2, "tc_best_k": float("nan")}
    v = job_view.progress_view(_snap(progress=p, history=[{"step": 1, "elapsed_s": 3, "tc_best_k": float("nan")}]))
    assert "best Tc —" in v.text and "ETA estimating…" in v.text and "nan" not in v.text.lower()
    assert not v.has_points and dict(v.phases)["optimization loop"] == "now"
    hist = [{"step": s, "elapsed_s": float(s), "tc_best_k": 10.0 + s} for s in range(1, 6)]
    p = {"step": 5, "total_steps": 10, "stage": 2, "tc_best_k": 15.04, "eta_s": 5.2}  # the engine's ETA (eta.py)
    v = job_view.progress_view(_snap(progress=p, history=hist, stop_requested=True))
    assert "step 5/10" in v.text and "best Tc 15.0 K" in v.text and "ETA 5 s" in v.text and "stopping" in v.text
    assert v.has_points and v.fraction == 0.5
    v = job_view.progress_view(_snap(progress={**p, "done": True}, history=hist, phase="candidates"))
    assert "candidate table" in v.text


def test_formats() -> None:
    assert job_view.fmt_k(154.0258) == "154.0 K" and job_view.fmt_k(float("nan")) == "—" and job_view.fmt_k(None) == "—"
    assert job_view.fmt_duration(45) == "45 s" and job_view.fmt_duration(200) == "3 min 20 s"
    assert job_view.fmt_duration(11552) == "3 h 12 min"


def test_one_status_for_a_run() -> None:
    info = SimpleNamespace(status="interrupted")
    assert job_view.run_status(None, info) == "interrupted"
    assert job_view.run_status(_snap(status="starting"), info) == "running"
    assert job_view.run_status(_snap(status="failed"), None) == "failed"
    assert job_view.run_status(None, None) == "unknown"


def test_settings_diff_lists_only_what_differs() -> None:
    a = DesignConfig(n_candidates=16, steps2=60, pins=("H>=0.5",), init_mode="formulas", init_formulas=("MgB2",))
    b = DesignConfig(n_candidates=64, steps2=60, pins=("H>=0.5",))
    rows = job_view.settings_diff({"a": a.to_dict(), "b": json.loads(json.dumps(b.to_dict()))})
    by = {r["setting"]: r for r in rows}
    assert set(by) == {job_view.LABELS[k] for k in ("n_candidates", "init_mode", "init_formulas")}
    assert by[job_view.LABELS["n_candidates"]]["a"] == "16" and by[job_view.LABELS["n_candidates"]]["b"] == "64"
    assert job_view.settings_diff({"a": a.to_dict(), "b": a.to_dict()}) == []
    assert job_view.form_vs_run(a, a.to_dict()) == []
    diff = job_view.form_vs_run(b, a.to_dict())
    assert "(run: 16)" in job_view.describe_diff(diff) and job_view.form_vs_run(None, a.to_dict())


def test_form_values_dropped_on_another_page_come_back() -> None:
    session = {"steps2": 500}
    kept = {"steps2": 60, "n_candidates": 16, "init_mode": "formulas"}
    back = form.restore_dropped(session, kept, ["steps2", "n_candidates", "init_mode", "seed"])
    assert sorted(back) == ["init_mode", "n_candidates"]
    assert session == {"steps2": 500, "n_candidates": 16, "init_mode": "formulas"}
    # the first run after another page: a value reset to its default is put back too
    assert form.restore_dropped(session, kept, ["steps2", "seed"], entering=True) == ["steps2"]
    assert session["steps2"] == 60


def test_run_meta_round_trip_and_validation(tmp_path: Path) -> None:
    assert run_meta.parse_tags("Hydride, paper ,hydride,, ") == ("hydride", "paper")
    assert run_meta.parse_tags(["a b", "C"]) == ("a b", "c")
    for bad in ("a/b", "x" * 40, ",".join(f"t{i}" for i in range(30))):
        with pytest.raises(ValueError):
            run_meta.parse_tags(bad)
    with pytest.raises(ValueError, match="at most"):
        run_meta.clean_name("n" * 100)
    d = write_interrupted_run(tmp_path, "20250101-000000-aaaaaa", DesignConfig().to_dict())
    assert run_meta.read_meta(d) == run_meta.RunMeta()
    run_meta.write_meta(d, "  first   try ", "hydride, paper")
    assert run_meta.read_meta(d) == run_meta.RunMeta("first try", ("hydride", "paper"))
    info = runs.list_runs(tmp_path)[0]
    assert (info.name, info.tags, info.status) == ("first try", ("hydride", "paper"), "interrupted")
    (d / run_meta.META_FILE).write_text("{not json")
    assert run_meta.read_meta(d) == run_meta.RunMeta()
    assert runs.run_info(d.name, tmp_path).name == ""
    with pytest.raises(FileNotFoundError):
        run_meta.write_meta(tmp_path / "missing", "x")


def test_runs_table_rows_and_tag_filter(tmp_path: Path) -> None:
    for i, tags in enumerate(("hydride, paper", "paper", "")):
        d = write_interrupted_run(tmp_path, f"2025010{i + 1}-000000-aaaaaa", DesignConfig().to_dict())
        run_meta.write_meta(d, f"run {i}", tags)
    infos = runs.list_runs(tmp_path)
    assert run_list.all_tags(infos) == ["hydride", "paper"]
    assert [r.name for r in run_list.with_tags(infos, ["paper"])] == ["run 1", "run 0"]
    assert [r.name for r in run_list.with_tags(infos, ["paper", "hydride"])] == ["run 0"]
    assert len(run_list.with_tags(infos, [])) == 3
    rows = run_list.run_rows(infos, lambda r: r.status)
    assert rows[0]["its Tc"] == "—" and rows[0]["steps"] == "40/100" and rows[-1]["tags"] == "hydride, paper"


def test_a_lock_whose_pid_was_reused_is_not_alive() -> None:
    host, now = socket.gethostname(), time.time()
    assert is_alive(LockInfo(os.getpid(), host, now, now))
    # this very process started long after the lock was taken: a restarted server that got the old pid
    assert not is_alive(LockInfo(os.getpid(), host, now - 86_400, now))


def test_open_run_id_points_at_a_run_under_way_or_interrupted(tmp_path: Path) -> None:
    assert job_view.open_run_id([], tmp_path) is None
    write_interrupted_run(tmp_path, "20250101-000000-aaaaaa", DesignConfig().to_dict())
    assert job_view.open_run_id([], tmp_path) is None  # nothing runs
    assert job_view.open_run_id([], tmp_path, interrupted=True) == "20250101-000000-aaaaaa"
    assert job_view.open_run_id(["x", "y"], tmp_path) == "y"


def test_run_design_reports_its_phases(tmp_path: Path) -> None:
    from gdmcd_app.jobs import JobRegistry
    from gdmcd_core.design.engine import DesignEngine
    from gdmcd_core.design.run import PHASES, run_design
    from gdmcd_core.model.checkpoint import load_checkpoint

    with tiny_app_env(tmp_path) as env:
        model = load_checkpoint(env["GDMCD_CHECKPOINT"])
        cfg = DesignConfig(
            n_candidates=2, init_mode="formulas", init_formulas=("MgB2",), n_min=2, n_max=4, steps2=3, steps3=0
        )
        seen: list[str] = []
        run_design(DesignEngine(model, cfg), tmp_path / "r", phase=seen.append)
        assert seen == list(PHASES)
        job = JobRegistry(tmp_path / "runs").start(model, cfg)  # the registry's jobs hear them too
        job.join(60)
        assert job.snapshot().status == "finished" and job.snapshot().phase == "candidates"


# -- pages (AppTest) ------------------------------------------------------------------------------


@dataclass
class HeldEngine:
    """A fake engine whose run writes a real run folder and then waits on `release`."""

    config: DesignConfig
    release: threading.Event = field(default_factory=threading.Event)

    def start_points(self):
        return "start"

    def run(self, run_dir=None, callback=None, stop_event=None, *, start=None):
        w = runs.RunWriter(run_dir)
        try:
            w.write_config({"design": self.config.to_dict(), "created": time.time(), "summary": "held"})
            w.write_status("running", {"step": 0, "total_steps": self.config.total_steps})
            self.release.wait(60)
            w.write_status("stopped", {"step": 0, "total_steps": self.config.total_steps})
            return SimpleNamespace(status="stopped", candidates=pd.DataFrame())
        finally:
            w.close()


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory):
    with tiny_app_env(tmp_path_factory.mktemp("state")) as e:
        yield e


def _texts(at: AppTest) -> str:
    parts = [m.value for m in at.markdown] + [c.value for c in at.caption] + [i.value for i in at.info]
    parts += [w.value for w in at.warning] + [e.value for e in at.error]
    return "\n".join(str(p) for p in parts)


@pytest.fixture
def held_job(env):
    """A job of the app's own registry that stays "running" until the test ends."""
    from gdmcd_app.shared import get_registry

    cfg = DesignConfig(
        n_candidates=16, steps2=60, steps3=40, init_mode="formulas", init_formulas=("MgB2",), pins=("H>=0.5",)
    )
    engine = HeldEngine(cfg)
    registry = get_registry()
    factory, registry._factory = registry._factory, lambda m, c, fe=None: engine
    try:
        job = registry.start(None, cfg)
    finally:
        registry._factory = factory
    yield job
    engine.release.set()
    job.join(30)


def test_a_fresh_tab_at_the_root_shows_the_running_job(env, held_job) -> None:
    at = app_test("app").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.query_params["job"] in (held_job.job_id, [held_job.job_id])
    assert at.session_state["n_candidates"] == 16 and at.session_state["steps2"] == 60
    assert at.session_state["init_mode"] == "formulas"
    assert at.button(key="run_design").disabled
    side = " ".join(m.value for m in at.sidebar.markdown)
    assert held_job.job_id in side
    assert "Editing a new run" not in _texts(at)
    # the user edits the form: it is marked as a new draft, and can be put back
    at.number_input(key="steps2").set_value(500).run()
    assert "Editing a new run" in _texts(at) and "(run: 60)" in _texts(at)
    at.button(key="restore_run_settings").click().run()
    assert at.session_state["steps2"] == 60 and "Editing a new run" not in _texts(at)


def test_form_keeps_the_run_settings_across_pages(env, held_job) -> None:
    at = app_test("app")
    at.query_params["job"] = held_job.job_id
    at.run()
    assert at.session_state["steps2"] == 60
    for name in ("predict", "runs", "design"):  # Design -> Predict -> Runs -> Design during the run
        switch_page(at, name).run()
        assert not at.exception, [e.value for e in at.exception]
    assert at.session_state["steps2"] == 60 and at.session_state["n_candidates"] == 16
    assert at.session_state["init_mode"] == "formulas" and at.number_input(key="steps2").value == 60
    assert "Editing a new run" not in _texts(at)


def test_a_cli_run_reopened_in_the_app_is_the_same_run(env) -> None:
    """Settings only the CLI or a config file make (an explicit N set, values beyond the widgets' ranges, pins
    that take the run's pin mode, exclusion words) come back into the form as the same run."""
    cfg = DesignConfig(
        n_candidates=8192,
        steps2=30_000,
        steps3=10,
        lr=0.005,
        n_max=100,
        n_values=(6, 12, 90),
        pins=("H=0.5",),
        pin_mode="exact",
        exclude=("toxic",),
        keep_element_count=False,
    )
    rid = "20240301-000000-c1c1c1"
    write_interrupted_run(Path(env["GDMCD_RUNS_DIR"]), rid, cfg.to_dict())
    at = app_test("design")
    at.query_params["job"] = rid
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    ss = at.session_state
    assert (ss["n_values"], ss["n_range"], ss["lr"], ss["n_candidates"]) == ("6, 12, 90", (4, 100), 0.005, 8192)
    assert at.text_input(key="n_values").value == "6, 12, 90" and at.number_input(key="steps2").value == 30_000
    assert "Editing a new run" not in _texts(at)
    values = {k: ss[k] for k in form.form_defaults()}
    assert form.build_design_config(values) == (form.canonical_config(cfg), {})


def test_an_interrupted_run_says_so_on_every_page(env) -> None:
    cfg = DesignConfig(n_candidates=8, steps2=50, steps3=50)
    rid = "20240101-000000-dead00"
    write_interrupted_run(Path(env["GDMCD_RUNS_DIR"]), rid, cfg.to_dict())
    at = app_test("design")
    at.query_params["job"] = rid
    at.run()
    assert not at.exception
    text = _texts(at)
    assert "interrupted" in text and "another server process" not in text and "running in another" not in text
    at = app_test("runs").run()
    at.selectbox(key="runs_pick").set_value(rid).run()
    rows = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert rows.set_index("run").loc[rid, "status"] == "interrupted"
    assert "interrupted" in _texts(at)


def test_runs_page_opens_a_run_on_the_design_and_trajectories_pages(env) -> None:
    """The pages are functions registered by url path; st.switch_page reaches them with the run in the address."""
    rid = "20240401-000000-0e0e0e"
    write_interrupted_run(Path(env["GDMCD_RUNS_DIR"]), rid, DesignConfig(n_candidates=8, steps2=50).to_dict())
    at = app_test("app")
    switch_page(at, "runs").run()
    at.selectbox(key="runs_pick").set_value(rid).run()
    at.button(key="open_design").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Design superconductor compositions"
    assert at.query_params["job"] in (rid, [rid]) and at.session_state["n_candidates"] == 8
    switch_page(at, "runs").run()
    at.selectbox(key="runs_pick").set_value(rid).run()
    at.button(key="open_traj").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title[0].value == "Trajectories" and at.selectbox(key="traj_run").value == rid


def test_runs_page_names_tags_filters_and_diffs(env) -> None:
    root = Path(env["GDMCD_RUNS_DIR"])
    a = write_interrupted_run(root, "20240201-000000-aaaaaa", DesignConfig(n_candidates=8, steps2=50).to_dict())
    b = write_interrupted_run(root, "20240202-000000-bbbbbb", DesignConfig(n_candidates=32, steps2=50).to_dict())
    run_meta.write_meta(b, "bigger", "sweep")
    at = app_test("runs").run()
    at.selectbox(key="runs_pick").set_value(a.name).run()
    at.text_input(key=f"runs_name-{a.name}").set_value("smaller")
    at.text_input(key=f"runs_tagtext-{a.name}").set_value("sweep, small")
    at.button(key="runs_save_meta").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert run_meta.read_meta(a) == run_meta.RunMeta("smaller", ("sweep", "small"))
    at.multiselect(key="runs_tags").set_value(["sweep"]).run()
    listed = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert set(listed["run"]) == {a.name, b.name}
    at.multiselect(key="runs_compare").set_value([a.name, b.name]).run()
    diff = next(d.value for d in at.dataframe if "setting" in d.value.columns)
    assert list(diff["setting"]) == [job_view.LABELS["n_candidates"]]
    assert list(diff.iloc[0][["smaller (aaaaaa)", "bigger (bbbbbb)"]]) == ["8", "32"]
    at.multiselect(key="runs_tags").set_value(["small"]).run()
    listed = next(d.value for d in at.dataframe if "status" in d.value.columns)
    assert list(listed["run"]) == [a.name]


def test_cli_runs_list_shows_name_and_tags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from gdmcd_core.cli.main import main

    d = write_interrupted_run(tmp_path, "20250101-000000-aaaaaa", DesignConfig().to_dict())
    run_meta.write_meta(d, "first try", "hydride, paper")
    assert main(["runs", "list", "--root", str(tmp_path)]) == 0
    line = capsys.readouterr().out.strip()
    assert "interrupted" in line and '"first try"' in line and "[hydride, paper]" in line


def test_a_bad_server_setting_does_not_stop_pages_that_only_show_status(tmp_path: Path) -> None:
    with tiny_app_env(tmp_path), pytest.MonkeyPatch.context() as mp:
        mp.setenv("GDMCD_MAX_JOBS", "lots")
        write_interrupted_run(tmp_path / "runs", "20250101-000000-aaaaaa", DesignConfig().to_dict())
        at = app_test("app")
        switch_page(at, "predict").run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.text_area(key="predict_text") is not None


def test_warm_up_loads_the_reference_data_ahead_of_the_first_run(tmp_path: Path) -> None:
    from gdmcd_app.jobs import warm_up
    from gdmcd_core.data.reference import load_reference

    with tiny_app_env(tmp_path), pytest.MonkeyPatch.context() as mp:
        warm_up()  # off in the tests' environment
        assert load_reference.cache_info().currsize == 0
        mp.setenv("GDMCD_WARM_UP", "1")
        warm_up()
        assert load_reference.cache_info().currsize == 1
