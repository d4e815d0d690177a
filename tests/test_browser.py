"""End to end in a real browser: Playwright drives Chromium (its own, else Debian's) against `streamlit run app.py`.

Pins H and excludes O by clicking the periodic table, starts a tiny design run on a tiny model,
watches the live Tc chart grow, stops the run, downloads the candidate CSV and checks that every
row honours the pin and the exclusion. With GDMCD_SCREENSHOTS=1 it also saves a screenshot of
every page to assets/screenshots/ (the README's pictures).

Run: `.venv/bin/python -m pytest -m browser tests/test_browser.py` (a Chromium: see tests/conftest.py).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from _app_helpers import tiny_app_env
from conftest import chromium_executable

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.elements import index_of
from gdmcd_core.design.objective.constraints import PIN_TOL

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
SCREENSHOT_DIR = REPO / "assets" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise TimeoutError(f"streamlit did not answer at {url} within {timeout:.0f} s")


@pytest.fixture
def app_url(tmp_path: Path):
    """A streamlit server on a free loopback port with a fresh runs folder and a tiny checkpoint and
    data set (or, for README screenshots, the checkpoint in $GDMCD_TEST_CHECKPOINT and the real data)."""
    override = os.environ.get("GDMCD_TEST_CHECKPOINT")
    with tiny_app_env(tmp_path):
        env = dict(os.environ)
        env.pop("GDMCD_TORCH_THREADS", None)  # the server picks its own (one thread on a CPU)
        if override:
            for k in ("GDMCD_DATA_DIR", "XDG_CACHE_HOME"):
                env.pop(k, None)
            env["GDMCD_CHECKPOINT"] = str(Path(override).resolve())
        yield from _serve(env, tmp_path)


def streamlit_cmd(port: int) -> list[str]:
    """`streamlit run app.py`, headless on 127.0.0.1:port (the browser tests' server)."""
    options = {
        "server.headless": "true",
        "server.port": str(port),
        "server.address": "127.0.0.1",
        "server.fileWatcherType": "none",
        "browser.gatherUsageStats": "false",
    }
    return [sys.executable, "-m", "streamlit", "run", "app.py", *(a for k, v in options.items() for a in (f"--{k}", v))]


def _serve(env: dict[str, str], tmp_path: Path):
    port = _free_port()
    env.update(
        PYTHONPATH=str(REPO),
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        GDMCD_JOB_WORKER="process",  # as the app runs: each design in a worker process
    )
    cmd = streamlit_cmd(port)
    log = open(tmp_path / "streamlit.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _browser(p):
    """Chromium through Playwright: its own when installed, else Debian's (conftest.chromium_executable; a test
    without one was skipped, or failed under CI, before it got here)."""
    return p.chromium.launch(executable_path=chromium_executable(), headless=True, args=CHROMIUM_ARGS)


def _wait_idle(page, timeout: float = 30_000) -> None:
    """Wait until Streamlit has finished the current script run (the status widget is gone)."""
    page.wait_for_timeout(300)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout)


def _click_tile(page, symbol: str) -> None:
    """Click an element tile and wait for the redrawn table (its key changes after each click)."""
    chart = page.locator("[class*='st-key-ptable-']").first
    chart.locator(".js-plotly-plot g.textpoint").first.wait_for()
    key = next(c for c in chart.get_attribute("class").split() if c.startswith("st-key-ptable-"))
    n = int(key.rsplit("-", 1)[1])
    chart.locator("g.textpoint text").filter(has_text=re.compile(f"^{symbol}$")).first.click(force=True)
    page.locator(f".st-key-ptable-{n + 1} .js-plotly-plot g.textpoint").first.wait_for()
    _wait_idle(page)


def _set_number(page, label: str, value: int | float) -> None:
    from playwright.sync_api import Error, expect

    box = page.get_by_label(label, exact=True)
    for attempt in range(5):  # while a rerun ends, Streamlit may briefly show the stale widget beside the new one
        try:
            expect(box).to_have_count(1, timeout=30_000)
            box.fill(str(value))
            break
        except (Error, AssertionError):
            if attempt == 4:
                raise
            _wait_idle(page)
    box.press("Enter")
    _wait_idle(page)


# points in the live chart's "best" trace (plotly.js keeps decoded arrays in _fullData); while Streamlit re-renders
# the fragment a hidden stale copy of the chart can sit beside the new one, so only visible charts count
_LIVE_POINTS_JS = """() => {
    const els = [...document.querySelectorAll('.st-key-live_tc .js-plotly-plot')]
        .filter(el => el.offsetParent !== null && el._fullData);
    if (!els.length) return -1;
    return Math.max(...els.map(el => {
        const best = el._fullData.find(t => t.name === 'best');
        return best && best.x ? best.x.length : 0;
    }));
}"""


def _points_in_live_chart(page) -> int:
    return page.evaluate(_LIVE_POINTS_JS)


def _shoot(page, name: str) -> None:
    """Screenshot of the whole page (Streamlit scrolls inside its main pane, so the viewport grows)."""
    if os.environ.get("GDMCD_SCREENSHOTS") != "1":
        return
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    height = page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollHeight")
    page.set_viewport_size({"width": size["width"], "height": min(max(int(height) + 40, size["height"]), 5000)})
    page.wait_for_timeout(1000)  # charts re-layout to the new size
    page.screenshot(path=str(SCREENSHOT_DIR / f"{name}.png"))
    page.set_viewport_size(size)


def test_pin_exclude_run_stop_download(app_url: str, tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
        page.set_default_timeout(30_000)
        _check_deep_link(page, app_url)
        _pin_h_exclude_o(page, app_url)
        _start_long_run(page)
        n_points = _check_live_chart(page)
        _page_times_during_run(page, app_url, tmp_path)
        _check_reload_finds_the_run(page, n_points)
        _check_table(_stop_and_download(page, tmp_path))
        if os.environ.get("GDMCD_SCREENSHOTS") == "1":
            _finished_run_screenshots(page, app_url)
        browser.close()


def _check_deep_link(page, app_url: str) -> None:
    """A deep link as the fresh server's first request still gets the app's navigation."""
    from playwright.sync_api import expect

    page.goto(f"{app_url}/predict")
    page.get_by_role("heading", name="Predict Tc").wait_for(timeout=60_000)
    expect(page.get_by_test_id("stSidebarNav")).to_contain_text("Trajectories")
    expect(page.get_by_test_id("stSidebarNav")).not_to_contain_text("shared")


def _pin_h_exclude_o(page, app_url: str) -> None:
    """Click H once (pinned), O twice (excluded) in the design page's periodic table."""
    from playwright.sync_api import expect

    page.goto(app_url)
    page.get_by_text("1 · Elements").wait_for()
    _wait_idle(page, 60_000)
    _click_tile(page, "H")
    _click_tile(page, "O")
    _click_tile(page, "O")
    expect(page.locator(".st-key-ms_pinned")).to_contain_text("H")
    expect(page.locator(".st-key-ms_excluded")).to_contain_text("O")


def _start_long_run(page) -> None:
    """A tiny run that would take a while: it is stopped part-way."""
    _set_number(page, "Candidates", 8)
    _set_number(page, "Max. distinct elements (0 = no cap)", 4)
    _set_number(page, "Stage-2 steps (Tc only)", 20000)
    _set_number(page, "Stage-3 steps (Tc + α·L_integer)", 20000)
    page.get_by_role("button", name="Run design", exact=True).click()


def _check_live_chart(page) -> int:
    """The live chart appears and grows; returns its latest number of points."""
    page.locator(".st-key-live_tc .js-plotly-plot").filter(visible=True).first.wait_for(timeout=60_000)
    page.wait_for_function(f"() => ({_LIVE_POINTS_JS})() >= 2", timeout=60_000)
    n1 = _points_in_live_chart(page)
    # the live chart sits beside the Run button: on screen together, not a screen or more below it
    button = page.get_by_role("button", name="Run design", exact=True).bounding_box()
    chart = page.locator(".st-key-live_tc .js-plotly-plot").filter(visible=True).first.bounding_box()
    assert button and chart and chart["x"] > button["x"] + button["width"], (button, chart)
    assert abs(chart["y"] - button["y"]) < page.viewport_size["height"] / 2, (button, chart)
    page.wait_for_timeout(2500)
    n2 = _points_in_live_chart(page)
    assert n2 > n1 >= 2, f"live chart did not update ({n1} -> {n2} points)"
    _shoot(page, "design_running")
    return n2


PAGE_LIMIT_S = 2.0  # a page settles within this while a run goes in the same server (issue: under 2 s)
# A new tab (a full page load) of Design with the run on it: the browser loads and compiles plotly.js again and draws
# the periodic table and the live charts, 2.9-3.1 s on this 2-core CPU (1.9-2.0 s with no run); this bound guards
# against it getting worse (README, docs/app.md). Reached from the sidebar, as a user switches pages, it is under 2 s.
NEW_TAB_DESIGN_LIMIT_S = 5.0
PAGES_DURING_RUN = (("runs", "Runs"), ("model", "Model card"), ("predict", "Predict Tc"), ("campaign", "Campaign"))
NAV_LABELS = {"runs": "Runs", "model": "Model", "predict": "Predict", "campaign": "Campaign", "design": "Design"}
PAGE_TIMES_FILE = "page_times_during_run.json"  # written into the test's tmp folder, printed for the README


def _settled(page, path: str) -> None:
    """The page is drawn: Design until its live chart is drawn (its live panel reruns every second by design),
    every other page until its script run has ended (Streamlit's status widget gone)."""
    if path == "design":
        page.locator(".st-key-live_tc .js-plotly-plot").filter(visible=True).first.wait_for()
    else:
        page.wait_for_function("() => !document.querySelector('[data-testid=\"stStatusWidget\"]')")


def _page_times_during_run(page, url: str, tmp_path: Path) -> dict[str, dict[str, float]]:
    """Open the other pages while the run goes, then Design again, twice: from the sidebar (as a user switches
    pages: seconds from the click until the page's title is drawn and it has settled, `_settled`) and as a new tab
    (a full page load of its URL). Every page must settle under PAGE_LIMIT_S from the sidebar; as a new tab, every
    page but Design too (Design: NEW_TAB_DESIGN_LIMIT_S)."""
    import json

    order = (*PAGES_DURING_RUN, ("design", "Design superconductor compositions"))
    times: dict[str, dict[str, float]] = {"sidebar": {}, "new_tab": {}}
    for path, title in order:
        t0 = time.perf_counter()
        page.get_by_test_id("stSidebarNav").get_by_role("link", name=NAV_LABELS[path], exact=True).click()
        page.get_by_role("heading", name=title).first.wait_for()
        _settled(page, path)
        times["sidebar"][path] = round(time.perf_counter() - t0, 2)
    for path, title in order:
        t0 = time.perf_counter()
        page.goto(f"{url}/{path}")
        page.get_by_role("heading", name=title).first.wait_for()
        _settled(page, path)
        times["new_tab"][path] = round(time.perf_counter() - t0, 2)
    (tmp_path / PAGE_TIMES_FILE).write_text(json.dumps(times))
    print(f"page times during a run (s): {times}")
    slow = {f"{how} {p}": t for how, ts in times.items() for p, t in ts.items() if t >= _limit(how, p)}
    assert not slow, f"pages slower than {PAGE_LIMIT_S} s (Design as a new tab: {NEW_TAB_DESIGN_LIMIT_S} s): {slow}"
    return times


def _limit(how: str, path: str) -> float:
    return NEW_TAB_DESIGN_LIMIT_S if (how, path) == ("new_tab", "design") else PAGE_LIMIT_S


def _check_reload_finds_the_run(page, n_points: int) -> None:
    """The run lives in the server's job registry, not in the page: a reload finds it again."""
    from playwright.sync_api import expect

    page.reload()
    page.wait_for_function(f"() => ({_LIVE_POINTS_JS})() > {n_points}", timeout=60_000)
    expect(page.locator(".st-key-ms_pinned")).to_contain_text("H")  # the form shows the run's settings
    expect(page.locator(".st-key-ms_excluded")).to_contain_text("O")


def _stop_and_download(page, tmp_path: Path) -> Path:
    """Stop the run, then download its candidate table; returns the saved CSV."""
    from playwright.sync_api import expect

    page.get_by_role("button", name="Stop this run", exact=True).click()
    download_button = page.get_by_role("button", name="Download full table (CSV)", exact=True)
    download_button.wait_for(timeout=60_000)
    expect(page.get_by_text("stopped", exact=False).first).to_be_visible()
    with page.expect_download() as dl:
        download_button.click()
    csv_path = tmp_path / "candidates.csv"
    dl.value.save_as(csv_path)
    _shoot(page, "design_stopped")
    return csv_path


def _check_table(csv_path: Path) -> None:
    """Every candidate honours the pin H >= 0.5 and the exclusion of O."""
    table = pd.read_csv(csv_path)
    assert len(table) >= 1
    h, o = index_of("H"), index_of("O")
    for formula in table["integer_formula"]:
        x = to_vector(formula)
        assert x[h] >= 0.5 - PIN_TOL, f"{formula} breaks the pin H >= 0.5"
        assert x[o] == 0, f"{formula} holds the excluded O"
    assert (table["frac_H"] >= 0.5 - PIN_TOL).all()
    assert "frac_O" not in table.columns or (table["frac_O"] == 0).all()


def _finished_run_screenshots(page, app_url: str) -> None:
    """README pictures: a short run that finishes (same pins), then every page."""
    page.get_by_role("button", name="New run", exact=True).click()
    _wait_idle(page)
    _set_number(page, "Candidates", 32)
    _set_number(page, "Stage-2 steps (Tc only)", 300)
    _set_number(page, "Stage-3 steps (Tc + α·L_integer)", 300)
    page.get_by_role("button", name="Run design", exact=True).click()
    page.get_by_role("button", name="Download full table (CSV)", exact=True).wait_for(
        timeout=900_000
    )  # real model, 2 cores + chromium
    _wait_idle(page)
    run_id = page.evaluate("() => new URLSearchParams(window.location.search).get('job')")
    _shoot(page, "design")
    for name, path in (
        ("trajectories", f"trajectories?run={run_id}"),
        ("candidate", f"candidate?run={run_id}"),  # the run's best candidate
        ("predict", "predict"),
        ("runs", "runs"),
        ("model", "model"),
    ):
        page.goto(f"{app_url}/{path}")
        page.locator("h1").first.wait_for()
        _wait_idle(page, 60_000)
        page.wait_for_timeout(1500)
        _shoot(page, name)
