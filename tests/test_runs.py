"""Run folders: ids, traversal safety, listing, loading, deleting, crash detection."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pandas as pd
import pytest

from gdmcd_core.design.runs import folder as runs
from gdmcd_core.design.runs.folder import (
    RunWriter,
    Trajectory,
    TrajectoryRecorder,
    create_run_dir,
    delete_run,
    list_runs,
    load_run,
    new_run_id,
    run_path,
    validate_run_id,
)

BAD_IDS = ["", ".", "..", "../x", "a/b", "a\\b", "/etc", ".hidden", "x" * 200, "a b", "a\x00b", "ü", "run.1", "~"]


def test_new_ids_are_valid_and_unique() -> None:
    ids = {new_run_id() for _ in range(50)}
    assert len(ids) == 50 and all(validate_run_id(i) == i for i in ids)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_traversal_and_malformed_ids_are_rejected(tmp_path, bad: str) -> None:
    with pytest.raises(ValueError):
        run_path(bad, tmp_path)
    with pytest.raises(ValueError):
        delete_run(bad, tmp_path)
    with pytest.raises(ValueError):
        load_run(bad, tmp_path)


def test_symlink_out_of_the_root_is_rejected(tmp_path) -> None:
    root, outside = tmp_path / "runs", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (outside / "config.json").write_text("{}")
    os.symlink(outside, root / "evil")
    with pytest.raises(ValueError, match="outside"):
        run_path("evil", root)
    with pytest.raises(ValueError):
        delete_run("evil", root)
    assert (outside / "config.json").exists()
    assert [r.run_id for r in list_runs(root)] == []


def test_root_from_environment(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv(runs.RUNS_ENV, str(tmp_path / "elsewhere"))
    assert runs.runs_root() == (tmp_path / "elsewhere").resolve()


def _write_run(path, status="finished", heartbeat=None) -> None:
    w = RunWriter(path)
    w.write_config({"design": {"n_candidates": 2}, "created": time.time(), "summary": "toy"})
    w.write_status(status, {"step": 3, "total_steps": 4})
    if heartbeat is not None:
        st = json.loads((path / "status.json").read_text())
        st["heartbeat"] = heartbeat
        (path / "status.json").write_text(json.dumps(st))
    rec = TrajectoryRecorder(2)
    for s in range(1, 4):
        rec.add_step(
            step=s,
            stage=2,
            alpha=0.0,
            tc_best_k=s,
            tc_median_k=s,
            tc_q10_k=s,
            tc_q90_k=s,
            hinge_mean_k=1.0,
            int_loss_median=0.1,
        )
    rec.add_snapshot(0, np.ones(2), np.zeros(2), np.full((2, 118), 1 / 118))
    w.write_trajectory(rec)
    w.write_candidates(pd.DataFrame({"integer_formula": ["MgB2"], "integer_tc_k": [39.0]}))
    w.log("hello")
    w.close()  # a writer releases the run lock when it is done


def test_create_list_load_delete(tmp_path) -> None:
    a = create_run_dir(tmp_path)
    _write_run(a)
    b = create_run_dir(tmp_path, "my-run_2")
    _write_run(b, status="running", heartbeat=time.time() - 10 * runs.STATUS_STALE_S)
    (tmp_path / "not-a-run").mkdir()
    with pytest.raises(FileExistsError):
        create_run_dir(tmp_path, "my-run_2")
    listed = {r.run_id: r for r in list_runs(tmp_path)}
    assert set(listed) == {a.name, "my-run_2"}
    assert listed[a.name].status == "finished" and listed[a.name].best_integer_formula == "MgB2"
    assert listed["my-run_2"].status == "interrupted"  # running, but its heartbeat stopped
    run = load_run(a.name, tmp_path)
    assert run.candidates.loc[0, "integer_tc_k"] == 39.0 and "hello" in run.log
    assert run.trajectory.tc_best_k.tolist() == [1, 2, 3] and run.trajectory.snap_x.shape == (1, 2, 118)
    assert load_run(a).info.run_id == a.name  # by folder path too
    with pytest.raises(ValueError, match="not a run folder"):
        delete_run("not-a-run", tmp_path)
    delete_run(a.name, tmp_path)
    assert not a.exists() and [r.run_id for r in list_runs(tmp_path)] == ["my-run_2"]
    with pytest.raises(FileNotFoundError):
        delete_run(a.name, tmp_path)


def test_writes_are_atomic_and_leave_no_temp_files(tmp_path) -> None:
    _write_run(tmp_path / "r")
    names = sorted(p.name for p in (tmp_path / "r").iterdir())
    assert names == ["candidates.csv", "config.json", "log.txt", "status.json", "trajectory.npz"]
    with pytest.raises(ValueError):
        RunWriter(tmp_path / "r").write_status("exploded")


def test_trajectory_round_trip(tmp_path) -> None:
    rec = TrajectoryRecorder(3)
    rec.add_snapshot(0, np.arange(3.0), np.zeros(3), np.zeros((3, 118)))
    rec.add_snapshot(0, np.arange(3.0), np.zeros(3), np.zeros((3, 118)))  # same step twice: kept once
    t = rec.to_trajectory()
    (tmp_path / "t.npz").write_bytes(t.to_npz_bytes())
    u = Trajectory.load(tmp_path / "t.npz")
    assert u.snap_step.tolist() == [0] and u.candidate(2)["tc_k"].tolist() == [2.0]
