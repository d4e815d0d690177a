"""In a real browser: the results table's "Download shown (CSV)" holds exactly the rows and columns on
screen with the active filter (Playwright + Chromium against `streamlit run app.py`).

A tiny finished run is written into the server's runs folder first, so the page opens on its results
at once. Run: `.venv/bin/python -m pytest -m browser tests/test_browser_results.py`.
"""

from __future__ import annotations

import io
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
