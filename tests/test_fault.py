"""Fault injection: `gdmcd design` killed with SIGTERM / SIGKILL at random points loses nothing.

A real subprocess on a tiny untrained checkpoint and the tiny data folder. After SIGTERM the run
writes candidates.csv from where it was (status "stopped"); after SIGKILL its folder reads as
"interrupted" at once (dead lock holder), `gdmcd runs finalize` builds the table from state.npz and
`gdmcd runs resume` continues to the last step. Every JSON / CSV / npz left in a folder parses.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from _app_helpers import make_tiny_checkpoint
from conftest import write_tiny_data

from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs.state import RunState

pytestmark = pytest.mark.fault
REPO = Path(__file__).resolve().parent.parent
STEPS = 1500  # per stage: long enough to be killed mid-loop on a busy CPU


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = tmp_path_factory.mktemp("fault")
    return {
        **os.environ,
        "GDMCD_DATA_DIR": str(write_tiny_data(base / "data")),
        "XDG_CACHE_HOME": str(base / "cache"),
        "GDMCD_CKPT": str(make_tiny_checkpoint(base / "ckpt" / "tiny.pt")),
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
    }


def start_design(env: dict[str, str], out: Path, steps: int = STEPS) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gdmcd_core.cli.main", "design", "--out", str(out), "--checkpoint", env["GDMCD_CKPT"]]
    cmd += ["--init", "MgB2", "Nb3Sn", "--n-candidates", "4", "--n-range", "4-8", "--steps2", str(steps)]
    cmd += ["--steps3", str(steps), "--record-every", "5", "--threads", "1", "--no-progress", "--device", "cpu"]
    return subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for_state(proc: subprocess.Popen, out: Path, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not (out / runs.STATE_FILE).is_file():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, "no state.npz in time"
        time.sleep(0.05)


def assert_nothing_truncated(folder: Path) -> None:
    for p in folder.iterdir():
        if p.suffix == ".json" or p.name == "run.lock":
            json.loads(p.read_text())
        elif p.suffix == ".csv":
            pd.read_csv(p)
        elif p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                [z[k] for k in z.files]


@pytest.fixture()
def in_process(env, monkeypatch: pytest.MonkeyPatch):
    """Run `gdmcd` in this process (no interpreter start-up) with the fixture's data folder."""
    from gdmcd_core.cli.main import main
    from gdmcd_core.data.reference import load_reference

    for k in ("GDMCD_DATA_DIR", "XDG_CACHE_HOME"):
        monkeypatch.setenv(k, env[k])
    load_reference.cache_clear()
    yield main
    load_reference.cache_clear()


def steps_of(folder: Path) -> tuple[int, int]:
    prog = json.loads((folder / runs.STATUS_FILE).read_text())["progress"]
    return prog["step"], prog["total_steps"]


@pytest.mark.parametrize("seed", [1, 2])
def test_sigterm_writes_the_candidates_from_the_last_state(env, tmp_path: Path, seed: int) -> None:
    out = tmp_path / "run"
    proc = start_design(env, out)
    wait_for_state(proc, out)
    time.sleep(random.Random(seed).uniform(0.0, 1.5))
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "SIGTERM" in err and "Traceback" not in err
    info = runs.load_run(out).info
    assert info.status == "stopped"
    step, total = steps_of(out)
    assert 0 < step < total
    table = pd.read_csv(out / runs.CANDIDATES_FILE)
    assert len(table) >= 1
    assert RunState.load(out / runs.STATE_FILE).step == step  # the final state is the stop's
    assert not (out / "run.lock").exists()  # released
    assert_nothing_truncated(out)


def test_sigkill_then_finalize_then_resume(env, in_process, tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    proc = start_design(env, out)
    wait_for_state(proc, out)
    time.sleep(random.Random(3).uniform(0.2, 1.0))
    proc.kill()
    proc.communicate(timeout=30)
    assert runs.list_runs(tmp_path)[0].status == "interrupted"  # the lock's holder is dead: no waiting
    assert not (out / runs.CANDIDATES_FILE).exists()
    assert_nothing_truncated(out)
    saved = RunState.load(out / runs.STATE_FILE).step

    assert in_process(["runs", "finalize", str(out), "--threads", "1"]) == 0, capsys.readouterr().err
    assert runs.load_run(out).info.status == "stopped"
    assert len(pd.read_csv(out / runs.CANDIDATES_FILE)) >= 1
    assert steps_of(out)[0] == saved

    cmd = [sys.executable, "-m", "gdmcd_core.cli.main", "runs", "resume", str(out), "--no-progress", "--threads", "1"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while runs.load_run(out).info.steps_done <= saved + 20:  # the resumed loop is running past the saved step
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    run = runs.load_run(out)
    assert run.info.status == "stopped" and saved < run.info.steps_done < 2 * STEPS
    steps = run.trajectory.step
    assert steps[-1] == run.info.steps_done and (np.diff(steps) > 0).all()  # numbering continues, no repeats
    assert "resumed at step" in run.log
    assert RunState.load(out / runs.STATE_FILE).step == run.info.steps_done
    assert_nothing_truncated(out)


def test_a_live_run_cannot_be_forced_over_finalized_or_deleted(env, in_process, tmp_path: Path, capsys) -> None:
    root = tmp_path / "root"
    out = root / "live-run"
    proc = start_design(env, out)
    try:
        wait_for_state(proc, out)
        assert runs.list_runs(root)[0].status == "running"
        assert in_process(["design", "--out", str(out), "--force", "--checkpoint", env["GDMCD_CKPT"]]) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "in use by process" in err
        assert in_process(["runs", "finalize", str(out)]) == 2
        assert "still running" in capsys.readouterr().err
        with pytest.raises(runs.RunLockedError):
            runs.delete_run("live-run", root)
        assert out.is_dir()
    finally:
        proc.kill()
        proc.communicate(timeout=30)
    runs.delete_run("live-run", root)  # a dead holder's lock does not protect the folder
    assert not out.exists()
