"""The Campaign page (AppTest): create a campaign, add a finished run, propose a batch, update from measurements."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
from _app_helpers import app_test, finished_small_run, tiny_app_env

from gdmcd_core.campaign import lab_csv, store

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # the pages import gdmcd_app.shared
    sys.path.insert(0, str(REPO))


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    with tiny_app_env(tmp_path) as e:
        monkeypatch.setenv(store.CAMPAIGNS_ENV, str(tmp_path / "campaigns"))
        yield e


def _table(at, column: str):
    """The first dataframe on the page with `column` (AppTest does not keep a dataframe's key)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def _texts(at) -> str:
    return " ".join(str(x.value) for x in [*at.markdown, *at.caption, *at.success, *at.error, *at.info, *at.warning])


def test_the_loop_on_the_campaign_page(env: dict[str, str], tmp_path: Path) -> None:
    run_id = finished_small_run(env)
    at = app_test("campaign").run()
    assert not at.exception and "No campaign yet" in _texts(at)
    at.text_input(key="campaign_new_name").input("lab-1")
    at.button[0].click().run()  # the form's Create
    assert not at.exception and at.selectbox(key="campaign_name").value == "lab-1"
    assert any(run_id in o for o in at.selectbox(key="campaign_run").options)
    at.button(key="campaign_add_run").click().run()
    assert not at.exception and "Added" in _texts(at)
    at.number_input(key="campaign_n").set_value(2)
    at.button(key="campaign_propose").click().run()
    assert not at.exception
    batch = _table(at, "reason")
    assert len(batch) == 2 and "formula" in batch.columns

    # the lab's answer (the uploader is the browser test's; here the same import through the core)
    results = tmp_path / "results.csv"
    with open(results, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["formula", "outcome", "tc_k", "t_min_k"])
        w.writerow([batch["formula"].iloc[0], "superconducting", "12.5", ""])
        w.writerow(["Xq2", "pending", "", ""])  # a bad row
        w.writerow(["Nb3Ge", "no_transition", "", "4.2"])
    r = lab_csv.import_results(store.connect(), "lab-1", results)
    assert r.stored == 2 and len(r.errors) == 1

    at.run()
    assert _table(at, "outcome").shape[0] == 2
    at.button(key="campaign_update").click().run()
    assert not at.exception and "Model version 1 recorded" in _texts(at)
    assert _table(at, "σ factor").shape[0] == 1
    at.button(key="campaign_propose").click().run()  # proposed with version 1: nothing measured comes back
    again = set(_table(at, "reason")["formula"])
    assert not again & {batch["formula"].iloc[0]}
