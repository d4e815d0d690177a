"""`gdmcd design`: bad options exit 2 with one line before any work; a tiny run end to end."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from design_helpers import ISSUE_CANDIDATE_COLUMNS, one_thread, tiny_ensemble, tiny_reference  # noqa: F401  (autouse fixture)

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.elements import index_of
from gdmcd_core.cli import design as cli_design
from gdmcd_core.model.checkpoint import save_checkpoint


@pytest.fixture()
def tiny_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, list(tiny_ensemble().members), {"note": "test"})
    monkeypatch.setattr("gdmcd_core.data.reference.load_reference", lambda *a, **k: tiny_reference())
    monkeypatch.setattr("gdmcd_core.model.formation_energy.load_formation_energy_model", lambda *a, **k: None)
    return path


BAD = [
    (["--pin", "H=0.7", "--pin", "O=0.5"], "sum to 1.2 > 1"),
    (["--pin", "Xx=0.5"], "Xx"),
    (["--exclude", "Qq"], "Qq"),
    (["--n-range", "24-4"], "empty"),
    (["--n-range", "four"], "--n-range"),
    (["--pin", "H=0.5", "--exclude", "H"], "both pinned and excluded"),
    (["--init", "YBa2Cu3O7", "Zz9"], "Zz9"),
    (["--init-mode", "magic"], "invalid choice"),
    (["--steps2", "many"], "invalid int"),
    (["--integer-loss", "round"], "invalid choice"),
    (["--config", "/nonexistent/cfg.toml"], "no such file"),
    (["--pin", "Cu=0.13", "--pin-mode", "exact"], "no cell size N"),
    (["--lr", "-1"], "lr must be > 0"),
    (["--filter", "shiny"], "--filter 'shiny'"),
    (["--checkpoint", "/nonexistent/model.pt"], "not found"),
    (["--executor", "spark"], "invalid choice"),
    (["--executor", "ray", "--method", "random"], "gradient method only"),
    (["--shards", "-1"], "shards must be a number >= 0"),
    (["--executor", "ray", "--address", "127.0.0.1:1"], "Ray"),  # unreachable (or Ray not installed)
    (["--device", "cuda:7"] if not __import__("torch").cuda.is_available() else ["--device", "tpu"], "device"),
]


@pytest.mark.parametrize("argv, msg", BAD)
def test_bad_options_exit_2_with_one_line(tmp_path, capsys, tiny_checkpoint, argv, msg) -> None:
    out = tmp_path / "out"
    code = None
    try:
        code = cli_design.main(["--out", str(out), "--checkpoint", str(tiny_checkpoint), *argv])
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and msg in err and "Traceback" not in err
    assert not out.exists() or not any(out.iterdir())  # nothing was written


def test_occupied_out_dir_is_refused(tmp_path, capsys, tiny_checkpoint) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x").write_text("keep me")
    assert cli_design.main(["--out", str(tmp_path / "out"), "--checkpoint", str(tiny_checkpoint)]) == 2
    assert "--force" in capsys.readouterr().err


def test_design_end_to_end(tmp_path, capsys, tiny_checkpoint) -> None:
    cfg = tmp_path / "cfg.toml"
    cfg.write_text('n_candidates = 6\nsteps2 = 15\nsteps3 = 15\nexclude = ["Hg"]\n')
    out = tmp_path / "run"
    argv = [
        "--out",
        str(out),
        "--checkpoint",
        str(tiny_checkpoint),
        "--config",
        str(cfg),
        "--pin",
        "H=0.5",
        "--n-range",
        "4-12",
        "--seed",
        "1",
        "--no-progress",
        "--init-mode",
        "dataset",
        "--objective",
        "lcb",
    ]
    assert cli_design.main(argv) == 0
    t = pd.read_csv(out / "candidates.csv")
    assert ISSUE_CANDIDATE_COLUMNS <= set(t.columns) and len(t) >= 1
    for f in t["integer_formula"]:
        v = to_vector(f)
        assert v[index_of("H")] >= 0.5 - 1e-9 and v[index_of("Hg")] == 0
    assert t["n_atoms"].between(4, 12).all()
    assert {"config.json", "status.json", "trajectory.npz", "log.txt"} <= {p.name for p in out.iterdir()}
    text = capsys.readouterr()
    assert "finished" in text.err and "integer_formula" in text.out
    assert np.isfinite(t["integer_tc_k"]).all()


def test_filter_writes_only_passing_rows_and_keeps_all(tmp_path, capsys, tiny_checkpoint) -> None:
    out = tmp_path / "run"
    argv = [
        "--out",
        str(out),
        "--checkpoint",
        str(tiny_checkpoint),
        "--n-candidates",
        "6",
        "--steps2",
        "5",
        "--steps3",
        "5",
        "--no-progress",
        "--init-mode",
        "dataset",
        "--filter",
        "not_toxic",
        "--filter",
        "charge_neutral",
    ]
    assert cli_design.main(argv) == 0
    everything = pd.read_csv(out / "candidates.csv")
    kept = pd.read_csv(out / "candidates_filtered.csv")
    assert len(kept) <= len(everything)
    assert not kept["toxic"].astype(bool).any()
    assert kept["charge_neutral"].astype(str).str.lower().eq("true").all()
    assert "pass not_toxic, charge_neutral" in capsys.readouterr().err
