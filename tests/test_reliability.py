"""Bad input is one line on stderr and exit 2, never a traceback; damaged run folders never break a listing.

One test class per reliability issue class: verified inputs, one-line errors, unbounded
requests, safe files and locks. In-process and on a tiny untrained checkpoint: seconds in all.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from cli_helpers import one_line_exit_2

from gdmcd_core.cli.main import main
from gdmcd_core.data.dataset import data_mismatch
from gdmcd_core.data.reference import load_reference
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.config.resources import InsufficientMemoryError
from gdmcd_core.design.runs import folder as runs
from gdmcd_core.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

pytestmark = pytest.mark.fault


def design(tmp_path: Path, ckpt: Path, *extra: str) -> list[str]:
    return ["design", "--out", str(tmp_path / "out"), "--checkpoint", str(ckpt), "--no-progress", *extra]


# -- 3. verified inputs ----------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["", "  ", "/nonexistent/data", "EMPTY"])
def test_bad_data_dir_is_an_error_naming_it(tmp_path, ckpt, capsys, monkeypatch, value) -> None:
    if value == "EMPTY":
        value = str(tmp_path / "empty")
        os.mkdir(value)
    monkeypatch.setenv("GDMCD_DATA_DIR", value)
    load_reference.cache_clear()
    one_line_exit_2(capsys, design(tmp_path, ckpt, "--n-candidates", "2"), "GDMCD_DATA_DIR")
    assert not (tmp_path / "out").exists()


def test_data_checksum_differing_from_the_card_is_named() -> None:
    card = {"data_checksums": {"supercon_nims_unique.csv": "aa", "cod.csv": "bb"}}
    assert data_mismatch(card, {"supercon_nims_unique.csv": "aa", "cod.csv": "bb"}) == ""
    msg = data_mismatch(card, {"supercon_nims_unique.csv": "zz", "cod.csv": "bb"})
    assert "supercon_nims_unique.csv" in msg and "cod.csv" not in msg and "\n" not in msg


def _rewrite_card(ckpt: Path, text: str) -> None:
    ckpt.with_suffix(".json").write_text(text)


@pytest.mark.parametrize(
    "damage, needle",
    [
        (lambda c: "{not json", "not valid JSON"),
        (lambda c: "[1, 2]", "not an object"),
        (lambda c: json.dumps({k: v for k, v in c.items() if k != "sha256"}), "lacks the field 'sha256'"),
        (lambda c: json.dumps({**c, "kind": "formation_energy"}), "'formation_energy' model"),
    ],
)
def test_damaged_or_foreign_card_is_one_line(tmp_path, ckpt, capsys, damage, needle) -> None:
    card = json.loads(ckpt.with_suffix(".json").read_text())
    _rewrite_card(ckpt, damage(card))
    with pytest.raises(CheckpointError, match=needle.replace("(", r"\(")):
        load_checkpoint(ckpt)
    one_line_exit_2(capsys, design(tmp_path, ckpt), needle)


def test_absurd_model_width_is_refused_before_allocating(tmp_path) -> None:
    import torch

    from gdmcd_core.util import sha256_file

    path = tmp_path / "wide.pt"
    torch.save({"format": 1, "model_config": {"width": 10**9, "layers": [1]}, "members": [{}]}, path)
    path.with_suffix(".json").write_text(json.dumps({"sha256": sha256_file(path), "kind": "tc_regressor"}))
    with pytest.raises(CheckpointError, match="outside what a Tc model can be"):
        load_checkpoint(path)


# -- 4. one line, never a traceback ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("wrong_type.toml", 'n_candidates = "many"\n', "n_candidates must be int"),
        ("unknown.toml", "colour = 3\n", "unknown design option"),
        ("list.json", "[1, 2, 3]", "--config"),
        ("broken.toml", "n_candidates = = 3\n", "--config"),
        ("nan.json", '{"kappa": NaN}', "kappa must be a finite number"),
    ],
)
def test_bad_config_files(tmp_path, ckpt, capsys, name, text, needle) -> None:
    (tmp_path / name).write_text(text)
    one_line_exit_2(capsys, design(tmp_path, ckpt, "--config", str(tmp_path / name)), needle)


@pytest.mark.parametrize(
    "extra, needle",
    [
        (["--kappa", "inf"], "kappa must be a finite number"),
        (["--kappa", "nan"], "kappa"),
        (["--lr", "nan"], "lr"),
        (["--target-tc", "inf"], "target_tc"),
        (["--alpha-max=-inf"], "alpha_max"),
        (["--device", "tpu"], "device"),
    ],
)
def test_bad_option_values(tmp_path, ckpt, capsys, extra, needle) -> None:
    one_line_exit_2(capsys, design(tmp_path, ckpt, *extra), needle)


def test_unwritable_out_is_refused_before_work(tmp_path, ckpt, capsys) -> None:
    (tmp_path / "a-file").write_text("x")
    argv = ["design", "--out", str(tmp_path / "a-file" / "run"), "--checkpoint", str(ckpt)]
    one_line_exit_2(capsys, argv, "--out")


def test_unwritable_out_folder_is_refused(tmp_path, ckpt, capsys) -> None:
    if os.geteuid() == 0:
        pytest.skip("root writes everywhere")
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    one_line_exit_2(capsys, ["design", "--out", str(ro / "run"), "--checkpoint", str(ckpt)], "cannot write")


def _damaged_runs(root: Path) -> dict[str, Path]:
    good = runs.create_run_dir(root, "good")
    w = runs.RunWriter(good)
    w.write_config({"design": {"n_candidates": 2}, "created": 1.0, "summary": "ok"})
    w.write_status("finished", {"step": 2, "total_steps": 2})
    w.write_candidates(pd.DataFrame({"integer_formula": ["MgB2"], "integer_tc_k": [39.0]}))
    w.close()
    bad = {}
    for name in ("listcfg", "beat", "traj", "csv", "link"):
        p = runs.create_run_dir(root, name)
        (p / runs.CONFIG_FILE).write_text(json.dumps({"design": {"n_candidates": 2}, "created": 2.0}))
        (p / runs.STATUS_FILE).write_text(json.dumps({"status": "finished", "heartbeat": 1.0}))
        bad[name] = p
    (bad["listcfg"] / runs.CONFIG_FILE).write_text("[1, 2]")
    (bad["beat"] / runs.STATUS_FILE).write_text(json.dumps({"status": "running", "heartbeat": "soon"}))
    (bad["traj"] / runs.TRAJECTORY_FILE).write_bytes(b"PK\x03\x04truncated")
    (bad["csv"] / runs.CANDIDATES_FILE).write_bytes(b'integer_formula,integer_tc_k\n"MgB2,\xff\xfe')
    secret = root.parent / "secret.csv"
    secret.write_text("integer_formula,integer_tc_k\nSECRET,1\n")
    (bad["link"] / runs.CANDIDATES_FILE).symlink_to(secret)
    return bad


def test_damaged_run_folders_never_break_the_listing(tmp_path) -> None:
    root = tmp_path / "runs"
    bad = _damaged_runs(root)
    listed = {r.run_id: r for r in runs.list_runs(root)}
    assert set(listed) == {"good", *bad}
    assert listed["good"].status == "finished" and listed["good"].best_integer_formula == "MgB2"
    assert listed["listcfg"].status == runs.UNREADABLE and "config.json" in listed["listcfg"].problem
    assert listed["beat"].status == runs.UNREADABLE and "heartbeat" in listed["beat"].problem
    for name in bad:
        run = runs.load_run(name, root)  # never raises
        assert name == "beat" or run.problems or run.info.problem, name
    assert runs.load_run("traj", root).trajectory is None
    linked = runs.load_run("link", root)
    assert linked.candidates is None and "outside" in " ".join(linked.problems)  # never served
    assert listed["link"].best_integer_formula == ""


def test_runs_page_shows_a_damaged_run_and_the_others(tmp_path) -> None:
    from _app_helpers import app_test, tiny_app_env

    with tiny_app_env(tmp_path) as env:
        _damaged_runs(Path(env["GDMCD_RUNS_DIR"]))
        at = app_test("runs", timeout=60).run()
        assert not at.exception, [e.value for e in at.exception]
        for name in ("listcfg", "link", "good"):
            at.selectbox(key="runs_pick").set_value(name).run()
            assert not at.exception, (name, [e.value for e in at.exception])
        at.selectbox(key="runs_pick").set_value("link").run()
        assert any("outside" in w.value for w in at.warning)


def test_bad_max_jobs_stops_the_design_page_with_one_message(tmp_path) -> None:
    from _app_helpers import app_test, tiny_app_env

    with tiny_app_env(tmp_path), pytest.MonkeyPatch.context() as mp:
        mp.setenv("GDMCD_MAX_JOBS", "lots")
        at = app_test("runs", timeout=60)
        runs.create_run_dir(Path(os.environ["GDMCD_RUNS_DIR"]), "x")
        (Path(os.environ["GDMCD_RUNS_DIR"]) / "x" / runs.STATUS_FILE).write_text('{"status": "finished"}')
        at.run()
        assert not at.exception
        at.selectbox(key="runs_pick").set_value("x").run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("GDMCD_MAX_JOBS" in e.value for e in at.error)


# -- 5. unbounded requests --------------------------------------------------------------------------


@pytest.mark.parametrize("extra", [["--n-candidates", "1000000"], ["--n-range", "1-100000000"]])
def test_requests_beyond_memory_are_refused_before_allocating(tmp_path, ckpt, capsys, extra) -> None:
    one_line_exit_2(capsys, design(tmp_path, ckpt, *extra), "needs ~", "GB")
    assert not (tmp_path / "out").exists()


def test_app_start_refuses_a_run_beyond_memory(tmp_path) -> None:
    from design_helpers import tiny_ensemble

    from gdmcd_app.jobs import JobRegistry

    reg = JobRegistry(tmp_path / "runs")
    with pytest.raises(InsufficientMemoryError, match="needs ~"):
        reg.start(tiny_ensemble(), DesignConfig(n_candidates=1_000_000))
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())
    assert reg._reserved == 0  # the slot was given back


# -- 6. safe files ----------------------------------------------------------------------------------


def test_download_bytes_neutralize_formulas() -> None:
    from gdmcd_app.shared import csv_download_bytes

    text = csv_download_bytes(pd.DataFrame({"integer_formula": ["=HYPERLINK(1)", "MgB2"], "tc": [-3.5, 1.0]}))
    rows = text.decode().splitlines()
    assert rows[1].startswith("'=HYPERLINK") and rows[1].endswith("-3.5")


def test_filtered_candidates_are_sanitized(tmp_path, ckpt, capsys, monkeypatch) -> None:
    import gdmcd_core.design.evidence.filters as filters

    monkeypatch.setattr(filters, "filter_candidates", lambda t, keys: t.assign(note="=cmd|' /C calc'!A0"))
    argv = design(tmp_path, ckpt, "--init", "MgB2", "--n-candidates", "2", "--steps2", "2", "--steps3", "2")
    assert main([*argv, "--filter", "not_toxic", "--top", "0"]) == 0, capsys.readouterr().err
    filtered = pd.read_csv(tmp_path / "out" / "candidates_filtered.csv")
    assert filtered["note"].str.startswith("'=").all()
    assert (tmp_path / "out" / runs.STATE_FILE).is_file() and not (tmp_path / "out" / "run.lock").exists()


def test_save_checkpoint_round_trip_still_loads(tmp_path) -> None:
    from design_helpers import tiny_ensemble

    path = tmp_path / "m.pt"
    save_checkpoint(path, list(tiny_ensemble().members), {"note": "test"})
    assert load_checkpoint(path).n_members == 2


def test_cli_subprocess_bad_input_is_one_line(tmp_path, ckpt) -> None:
    """The installed entry point, end to end: a bad value is exit 2 and one stderr line."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    cmd = [sys.executable, "-m", "gdmcd_core.cli.main", *design(tmp_path, ckpt, "--kappa", "nan")]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "kappa" in r.stderr and "Traceback" not in r.stderr
