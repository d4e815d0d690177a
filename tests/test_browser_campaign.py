"""The campaign loop in a real browser (Playwright + Chromium): new → add a design run → propose → import a results
file with two bad rows → update the model → propose again. Run: `.venv/bin/python -m pytest -m browser
tests/test_browser_campaign.py`."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from _app_helpers import SMALL_RUN, tiny_app_env
from test_browser import _browser, _serve, _set_number, _shoot, _wait_idle

from gdmcd_core.campaign import store

pytestmark = pytest.mark.browser
# a finished run with a dozen distinct candidates: twelve tiny-data superconductors as starts, no pins
CAMPAIGN_RUN = {
    **SMALL_RUN,
    "n_candidates": 12,
    "init_formulas": (
        "MgB2",
        "Nb3Sn",
        "NbTi",
        "YBa2Cu3O7",
        "La1.85Sr0.15CuO4",
        "HgBa2Ca2Cu3O8",
        "Bi2Sr2CaCu2O8",
        "LaFeAsO0.9F0.1",
        "FeSe",
        "NbN",
        "V3Si",
        "CaC6",
    ),
    "pins": (),
    "exclude": (),
}


def _finished_run(env: dict[str, str]) -> None:
    from gdmcd_app.jobs import JobRegistry
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.model.checkpoint import load_checkpoint

    job = JobRegistry(env["GDMCD_RUNS_DIR"]).start(
        load_checkpoint(env["GDMCD_CHECKPOINT"]), DesignConfig(**CAMPAIGN_RUN)
    )
    job.join(120)
    assert job.snapshot().status == "finished", job.snapshot().error


@pytest.fixture
def campaign_app(tmp_path: Path):
    with tiny_app_env(tmp_path) as env:
        _finished_run(env)
        served = dict(os.environ)
        served.pop("GDMCD_TORCH_THREADS", None)
        served[store.CAMPAIGNS_ENV] = str(tmp_path / "campaigns")
        for url in _serve(served, tmp_path):
            yield url, tmp_path / "campaigns"


def _click(page, name: str) -> None:
    page.get_by_role("button", name=name).first.click()
    _wait_idle(page, 120_000)


def test_the_campaign_loop_in_the_browser(campaign_app, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, root = campaign_app
    with sync_playwright() as p:
        browser = _browser(p)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        page.goto(f"{url}/campaign")
        expect(page.get_by_text("No campaign yet")).to_be_visible()
        page.get_by_label("New campaign").fill("lab")
        _click(page, "Create")
        _click(page, "Add run")
        expect(page.get_by_text("Added")).to_be_visible()
        _set_number(page, "Batch size", 10)
        _click(page, "Propose")
        expect(page.get_by_text("Download the batch (CSV)")).to_be_visible()
        conn = store.connect(root)
        sent = [
            r[0] for r in conn.execute("SELECT p.formula FROM batch_items i JOIN proposals p ON p.id = i.proposal_id")
        ]
        assert len(sent) == 10

        results = tmp_path / "results.csv"
        with open(results, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["formula", "outcome", "tc_k", "t_min_k"])
            w.writerow([sent[0], "superconducting", "14.0", ""])
            w.writerow(["Qz3O", "superconducting", "10", ""])  # bad: no element Qz
            w.writerow([sent[1], "no_transition", "", "2.0"])
            w.writerow(["MgB2", "superconducting", "", ""])  # bad: no Tc
        page.locator("input[type=file]").set_input_files(str(results))
        _wait_idle(page)
        expect(page.get_by_text("2 rows stored")).to_be_visible()
        expect(page.get_by_text("row 3")).to_be_visible()
        expect(page.get_by_text("row 5")).to_be_visible()

        _click(page, "Update the model from the measurements")
        expect(page.get_by_text("Model version 1 recorded (")).to_be_visible(timeout=120_000)
        _click(page, "Propose")
        _shoot(page, "campaign")
        assert store.counts(conn, 1)["batches"] == 2 and store.counts(conn, 1)["model_versions"] == 1
        browser.close()
