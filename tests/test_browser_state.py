"""App state in a real browser (Playwright on Chromium, tiny model): the form stays equal to the
running job across pages, a second tab at the root URL sees the running job, and after a server
restart mid-run every page says "interrupted".

Run: `.venv/bin/python -m pytest -m browser tests/test_browser_state.py` (needs a Chromium: tests/conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from contextlib import contextmanager
from pathlib import Path

import pytest
from _app_helpers import tiny_app_env
from test_browser import REPO, _browser, _free_port, _set_number, _wait_healthy, _wait_idle, streamlit_cmd

pytestmark = pytest.mark.browser


@contextmanager
def _server(env: dict[str, str], log: Path):
    """`streamlit run app.py` on a free port; killed with SIGKILL at the end (as a crash would)."""
    port = _free_port()
    cmd = streamlit_cmd(port)
    env = {**env, "GDMCD_JOB_WORKER": "process"}  # as the app runs: a SIGKILLed server takes its workers with it
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(url, proc)
            yield url
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            proc.wait(10)


@pytest.fixture
def server_env(tmp_path: Path):
    with tiny_app_env(tmp_path) as _:
        env = dict(os.environ)
        env.pop("GDMCD_TORCH_THREADS", None)
        env.update(PYTHONPATH=str(REPO), STREAMLIT_BROWSER_GATHER_USAGE_STATS="false")
        yield env


def _open_design(page, url: str) -> None:
    page.goto(url)
    page.get_by_text("1 · Elements").wait_for(timeout=60_000)


def _start_long_run(page) -> str:
    """Non-default settings (typed formulas, toxic elements excluded, 16 candidates, many steps); returns the run id."""
    _wait_idle(page, 60_000)
    page.get_by_role("button", name=re.compile("^Exclude toxic")).click()
    _wait_idle(page)
    page.locator(".st-key-init_mode").get_by_text("Typed formulas").click()
    _wait_idle(page)
    # starts without the excluded toxic elements (a start holding an excluded element is refused, not stripped)
    box = page.locator(".st-key-init_formulas textarea")
    box.fill("YBa2Cu3O7\nBi2Sr2Ca2Cu3O10")
    box.press("Control+Enter")
    _wait_idle(page)
    _set_number(page, "Candidates", 16)
    _set_number(page, "Stage-2 steps (Tc only)", 20000)
    _set_number(page, "Stage-3 steps (Tc + α·L_integer)", 20000)
    page.get_by_role("button", name="Run design", exact=True).click()
    page.get_by_role("button", name="Stop this run", exact=True).wait_for(timeout=60_000)
    page.wait_for_function("() => new URLSearchParams(window.location.search).get('job')")
    return page.evaluate("() => new URLSearchParams(window.location.search).get('job')")


def _form_is_the_run(page, where: str, runs_dir: str, run_id: str) -> None:
    """The form on `page` holds the settings the run was made with (its config.json)."""
    from playwright.sync_api import expect

    design = json.loads((Path(runs_dir) / run_id / "config.json").read_text())["design"]
    assert (design["n_candidates"], design["steps2"], design["init_mode"]) == (16, 20000, "formulas"), design
    print(f"checking the form: {where}")
    page.get_by_label("Candidates", exact=True).wait_for(timeout=60_000)
    expect(page.get_by_label("Candidates", exact=True)).to_have_value("16")
    expect(page.get_by_label("Stage-2 steps (Tc only)", exact=True)).to_have_value("20000")
    expect(page.locator(".st-key-init_mode label:has(input:checked)")).to_contain_text("Typed formulas")
    expect(page.locator(".st-key-ms_excluded")).to_contain_text("Hg")
    expect(page.get_by_text("Editing a new run")).to_have_count(0)


def test_form_follows_the_job_across_pages_and_tabs(server_env: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    runs_dir = server_env["GDMCD_RUNS_DIR"]
    with _server(server_env, tmp_path / "streamlit.log") as url, sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        _open_design(page, url)
        run_id = _start_long_run(page)
        _form_is_the_run(page, "after starting", runs_dir, run_id)

        # Design -> Predict -> Design mid-run: the form still holds the run's settings
        nav = page.get_by_test_id("stSidebarNav")
        nav.get_by_text("Predict", exact=True).click()
        page.get_by_role("heading", name="Predict Tc").wait_for()
        indicator = page.locator(".st-key-run_indicator")
        expect(indicator).to_contain_text(run_id)  # the running job is visible from any page
        expect(indicator.get_by_role("link", name="Open this run")).to_be_visible()
        nav.get_by_text("Design", exact=True).click()
        page.get_by_role("button", name="Stop this run", exact=True).wait_for(timeout=60_000)
        _form_is_the_run(page, "back from Predict", runs_dir, run_id)
        assert f"job={run_id}" in page.url

        # a second tab at the root URL shows the running job, not a fresh "Run design"
        tab = browser.new_page(viewport={"width": 1400, "height": 1000})
        tab.set_default_timeout(30_000)
        _open_design(tab, url)
        tab.get_by_role("button", name="Stop this run", exact=True).wait_for(timeout=60_000)
        assert f"job={run_id}" in tab.url
        expect(tab.get_by_role("button", name="Run design", exact=True)).to_be_disabled()
        _form_is_the_run(tab, "second tab", runs_dir, run_id)
        expect(tab.get_by_text(re.compile(r"step [\d,]+/40,000")).first).to_be_visible(timeout=60_000)
        tab.get_by_role("button", name="Stop this run", exact=True).click()  # frees the CPU; the server goes next
        browser.close()


def test_a_server_restart_mid_run_reads_interrupted_everywhere(server_env: dict[str, str], tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=20_000)
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(30_000)
        with _server(server_env, tmp_path / "first.log") as url:
            _open_design(page, url)
            run_id = _start_long_run(page)
            expect(page.get_by_text(re.compile(r"step [\d,]+/40,000")).first).to_be_visible(timeout=60_000)
        # killed mid-run (SIGKILL); a new server on the same runs folder
        with _server(server_env, tmp_path / "second.log") as url:
            page.goto(f"{url}/?job={run_id}")
            expect(page.get_by_text("interrupted", exact=False).first).to_be_visible(timeout=60_000)
            expect(page.get_by_text("running in another")).to_have_count(0)
            expect(page.locator(".st-key-run_indicator")).to_contain_text("interrupted")
            for path in ("predict", "trajectories", "model"):
                page.goto(f"{url}/{path}")
                page.locator("h1").first.wait_for()
                indicator = page.locator(".st-key-run_indicator")
                expect(indicator).to_contain_text(run_id)
                expect(indicator).to_contain_text("interrupted")
            page.goto(f"{url}/runs")
            page.get_by_role("heading", name="Runs", exact=True).wait_for()
            expect(page.get_by_text("This run is interrupted", exact=False)).to_be_visible()
        browser.close()
