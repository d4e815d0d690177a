"""In a real browser: the results table's "Download shown (CSV)" holds exactly the rows and columns on
screen with the active filter (Playwright + Chromium against `streamlit run app.py`).

A tiny finished run is written into the server's runs folder first, so the page opens on its results
at once. Run: `.venv/bin/python -m pytest -m browser tests/test_browser_results.py`.
"""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from _app_helpers import tiny_app_env
from test_browser import _browser, _serve, _wait_idle

from gdmcd_app import results_table
from gdmcd_core.design.evidence import filters
from gdmcd_core.design.runs import folder as runs

pytestmark = pytest.mark.browser


@pytest.fixture
def served_run(tmp_path: Path):
    """(server URL, id of a finished run in its runs folder)."""
    from gdmcd_app.jobs import JobRegistry
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.model.checkpoint import load_checkpoint

    with tiny_app_env(tmp_path) as e:
        cfg = DesignConfig(
            n_candidates=16,
            init_mode="formulas",
            init_formulas=("MgB2", "Nb3Sn", "YBa2Cu3O7", "NaCl"),
            n_min=2,
            n_max=8,
            steps2=5,
            steps3=5,
            record_every=5,
            max_elements=4,
        )
        job = JobRegistry(e["GDMCD_RUNS_DIR"]).start(load_checkpoint(e["GDMCD_CHECKPOINT"]), cfg)
        job.join(120)
        assert job.snapshot().status == "finished", job.snapshot().error
        env = dict(os.environ)
        env.pop("GDMCD_TORCH_THREADS", None)
        for url in _serve(env, tmp_path):
            yield url, job.job_id


def test_exported_csv_equals_the_filtered_table(served_run, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, run_id = served_run
    table = runs.load_run(run_id).candidates
    key = "charge_neutral"
    label = filters.CANDIDATE_FILTERS[key][0]
    expected = results_table.results_view(table, [key])
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(30_000)
        page.goto(f"{url}/?job={run_id}")
        page.get_by_role("button", name="Download shown (CSV)", exact=True).wait_for(timeout=90_000)
        _wait_idle(page, 60_000)
        # choose the filter in the "Show only" multiselect
        box = page.get_by_role("combobox", name="Show only")
        box.click()
        box.press_sequentially(label)
        page.get_by_text(label, exact=True).last.wait_for()
        box.press("Enter")
        page.keyboard.press("Escape")
        _wait_idle(page)
        expect(page.get_by_text(re.compile(rf"^{len(expected)} of {len(table)} candidates pass"))).to_be_visible()
        if os.environ.get("GDMCD_DEBUG_SHOTS"):  # a look at the table, for a human
            page.get_by_test_id("stDataFrame").first.scroll_into_view_if_needed()
            page.wait_for_timeout(800)
            page.screenshot(path=os.environ["GDMCD_DEBUG_SHOTS"])
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download shown (CSV)", exact=True).click()
        path = tmp_path / "shown.csv"
        dl.value.save_as(path)
        browser.close()

    got = pd.read_csv(path, keep_default_na=False, dtype=str)
    want = pd.read_csv(io.BytesIO(results_table.export_csv(expected)), keep_default_na=False, dtype=str)
    assert list(got.columns) == list(want.columns)  # the screen's labels, in the screen's order
    pd.testing.assert_frame_equal(got, want)
    passing = filters.filter_candidates(table, [key])
    assert list(got["formula (N atoms)"]) == list(passing["integer_formula"])  # exactly the filtered rows


def _sections_shown(page, formula: str) -> None:
    """The candidate page of `formula` with every section, its figure and its downloads."""
    from playwright.sync_api import expect

    from gdmcd_app.inputs import pretty_formula

    expect(page.get_by_role("heading", name=pretty_formula(formula), exact=True)).to_be_visible(timeout=60_000)
    for section in (
        "Parent phase and edit",
        "Nearest known superconductors",
        "Chemistry checks",
        "Stability",
        "Path: start → stage 2 → stage 3 → integer formula",
        "Links and downloads",
    ):
        expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
    expect(page.locator(".st-key-cand_path_fig .js-plotly-plot")).to_be_visible()
    expect(page.get_by_role("button", name="Trajectory (CSV)", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name="Google Scholar")).to_be_visible()


def test_candidate_page_from_the_results_table_and_by_its_url(served_run) -> None:
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    url, run_id = served_run
    table = runs.load_run(run_id).candidates
    best, last = str(table.iloc[0]["integer_formula"]), str(table.iloc[-1]["integer_formula"])
    with sync_playwright() as p:
        browser = _browser(p)
        context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        page.goto(f"{url}/?job={run_id}")
        page.get_by_role("button", name="Download shown (CSV)", exact=True).wait_for(timeout=90_000)
        _wait_idle(page, 60_000)
        grid = page.get_by_test_id("stDataFrame").last  # the results table: the page's last table
        grid.scroll_into_view_if_needed()
        # the link column comes first: a click on the first data row's "open ↗" opens the candidate page
        link = {"x": 24, "y": 35 + 17}  # the first data row's "open ↗" (the header row is 35 px high)
        grid.hover(position=link)  # the grid draws its link on hover; a click then follows it
        page.wait_for_timeout(500)
        with context.expect_page(timeout=30_000) as opened:
            grid.click(position=link)
        tab = opened.value
        tab.wait_for_load_state()
        assert f"run={run_id}" in tab.url and f"formula={quote(best)}" in tab.url
        _sections_shown(tab, best)
        # by its address, in a fresh tab: a link shared with a colleague
        page.goto(f"{url}/candidate?run={run_id}&formula={quote(last)}")
        _sections_shown(page, last)
        with page.expect_download() as dl:
            page.get_by_role("button", name="Candidate (JSON)", exact=True).click()
        doc = json.loads(Path(dl.value.path()).read_text())
        browser.close()
    assert doc["run"] == run_id and doc["candidate"]["integer_formula"] == last
    assert len(doc["nearest_supercon"]) == 5 and doc["path"][-1]["stage"] == "integer"


@pytest.fixture
def served_stopped_run(tmp_path: Path):
    """(server URL, id of a run stopped part-way with its state saved, in its runs folder)."""
    import time

    from gdmcd_app.jobs import JobRegistry
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.model.checkpoint import load_checkpoint

    with tiny_app_env(tmp_path) as e:
        cfg = DesignConfig(
            n_candidates=4,
            init_mode="formulas",
            init_formulas=("MgB2", "Nb3Sn"),
            n_min=2,
            n_max=8,
            steps2=400,
            steps3=400,
        )
        job = JobRegistry(e["GDMCD_RUNS_DIR"]).start(load_checkpoint(e["GDMCD_CHECKPOINT"]), cfg)
        deadline = time.time() + 120
        while int((job.snapshot().progress or {}).get("step", 0)) < 5 and time.time() < deadline:
            time.sleep(0.1)
        job.stop()
        job.join(120)
        info = runs.run_info(job.job_id)
        assert info.status == "stopped" and info.has_state and info.steps_done < info.total_steps, info
        env = dict(os.environ)
        env.pop("GDMCD_TORCH_THREADS", None)
        for url in _serve(env, tmp_path):
            yield url, job.job_id


def test_resume_on_the_runs_page_moves_the_address_to_the_design_page(served_stopped_run) -> None:
    from playwright.sync_api import sync_playwright

    url, run_id = served_stopped_run
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        page.goto(f"{url}/runs")
        page.get_by_role("button", name="Resume", exact=True).click(timeout=90_000)
        # the Design page, the default one, lives at the root: "/?job=<run id>" (or "/design?job=<run id>")
        page.wait_for_url(re.compile(rf":\d+/(design)?\?job={run_id}$"), timeout=60_000)
        page.get_by_text("4 · Run").wait_for()
        browser.close()
