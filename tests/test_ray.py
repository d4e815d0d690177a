"""Sharded design runs on a real local Ray cluster (a head node and one worker node, one CPU each).

The sharded run's candidate table equals the in-process run's; a worker killed mid-shard is retried and
the run completes; Stop keeps the shards' results; the run folder loads like any other. The shard merge
itself (no Ray) is checked at the end.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from design_helpers import one_thread, tiny_ensemble, tiny_reference  # noqa: F401  (autouse fixture)

from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.distributed.shards import merge_states, split_indices
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.design.runs import folder as runs

pytestmark = pytest.mark.ray
REPO = Path(__file__).resolve().parent.parent
RAY_BIN = Path(sys.executable).with_name("ray")
# 12 starts from the tiny SuperCon-like set; steps such that a shard takes about a second on one CPU
BASE = {"n_candidates": 12, "init_mode": "dataset", "init_min_tc": 0.0, "record_every": 5, "hull_columns": False}
BASE |= {"steps2": 40, "steps3": 40, "seed": 3}
TC_TOL_K = 1e-3  # integer_tc_k is recomputed from the formula text: equal formulas give equal Tc up to float noise


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, env: dict[str, str], tries: int = 2) -> None:
    """`ray ARGS`; tried again once (a node start can time out on a loaded machine), then fails with its output."""
    for _attempt in range(tries):
        proc = subprocess.run([str(RAY_BIN), *args], env=env, capture_output=True, text=True, timeout=180)
        if proc.returncode == 0:
            return
    raise RuntimeError(f"ray {' '.join(args)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory):
    """A head node and a worker node on 127.0.0.1 (one CPU each); this process is connected as the driver."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'gdmcd-studio[ray]')")
    temp = tmp_path_factory.mktemp("ray")
    port = _free_port()
    # no token authentication: a ~/.ray/auth_token left by some local `ray.init()` would switch it on for the head
    auth = {"RAY_AUTH_MODE": "disabled"}
    env = {**os.environ, **auth, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    old_auth = os.environ.get("RAY_AUTH_MODE")
    os.environ.update(auth)  # this process (the driver) too; restored at teardown
    head = ["start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1"]
    try:
        _ray(*head, "--include-dashboard=false", "--temp-dir", str(temp), "--disable-usage-stats", env=env)
        _ray("start", "--address", f"127.0.0.1:{port}", "--num-cpus", "1", "--disable-usage-stats", env=env)
        ray.init(address=f"127.0.0.1:{port}", logging_level="ERROR", log_to_driver=False)
        deadline = time.monotonic() + 60
        while ray.cluster_resources().get("CPU", 0) < 2:
            assert time.monotonic() < deadline, "the worker node did not join"
            time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        ray.shutdown()
        subprocess.run([str(RAY_BIN), "stop", "--force"], env=env, capture_output=True, timeout=120)
        if old_auth is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = old_auth


def _engine(**kw) -> DesignEngine:
    return DesignEngine(tiny_ensemble(), DesignConfig(**{**BASE, **kw}), reference=tiny_reference())


@pytest.fixture(scope="module")
def module_one_thread():
    """One torch thread for the module fixtures too (the autouse one_thread starts after them)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def local_table(module_one_thread) -> pd.DataFrame:
    """The in-process run (the reference for every sharded run)."""
    return _engine().run().candidates


def _same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    """Formulas, sources and order exactly; Tc to TC_TOL_K."""
    assert len(a) == len(b)
    for col in ("integer_formula", "n_atoms", "source", "candidate", "n_duplicates"):
        assert a[col].tolist() == b[col].tolist(), col
    for col in ("integer_tc_k", "optimized_tc_k", "final_tc_k", "initial_tc_k"):
        np.testing.assert_allclose(a[col].to_numpy(float), b[col].to_numpy(float), atol=TC_TOL_K, err_msg=col)


def test_sharded_run_equals_in_process(cluster: str, local_table: pd.DataFrame, tmp_path: Path) -> None:
    """3 shards (uneven: 4 starts each on 2 CPUs, one waits); 2 shards in the kill test below."""
    reports = []
    result = _engine(executor="ray", address=cluster, shards=3).run(tmp_path / "run", callback=reports.append)
    assert result.status == "finished" and result.steps_done == BASE["steps2"] + BASE["steps3"]
    _same_table(result.candidates, local_table)
    assert reports and reports[-1].done and reports[-1].n_candidates == BASE["n_candidates"]
    # the run folder is an ordinary one
    run = runs.load_run(tmp_path / "run")
    assert run.problems == () and run.info.status == "finished"
    assert run.info.steps_done == run.info.total_steps == 80 and run.info.n_candidates == 12
    assert len(run.candidates) == len(local_table)
    assert run.candidates["integer_formula"].tolist() == local_table["integer_formula"].tolist()
    traj = run.trajectory
    assert traj.snap_x.shape[1:] == (12, 118) and traj.snap_step[0] == 0 and traj.snap_step[-1] == 80
    assert traj.step.tolist() == list(range(1, 81))
    assert "executor" in run.config["design"] and run.config["design"]["executor"] == "ray"


def _shard_pids() -> list[int]:
    """Pids of the worker processes running a shard now (Ray titles them ray::_run_shard)."""
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "cmdline").read_bytes().startswith(b"ray::_run_shard"):
                    out.append(int(p.name))
            except OSError:
                pass
    return out


LONG = {"steps2": 500, "steps3": 500}  # a shard runs for seconds: long enough to be killed or stopped mid-way
LONG_STEPS = LONG["steps2"] + LONG["steps3"]


@pytest.fixture(scope="module")
def long_ref(module_one_thread) -> tuple[pd.DataFrame, Any]:
    """The in-process run with LONG steps: (its candidate table, its OptimizeState)."""
    from gdmcd_core.design.evidence.candidates import build_candidates, candidate_context

    engine = _engine(**LONG)
    sp = engine.start_points()
    st = engine.optimize(sp)
    table = build_candidates(
        candidate_context(engine),
        x_start=st.x_start,
        start_labels=list(sp.label),
        x_stage2=st.x_stage2,
        x_final=st.x_final,
        integer=st.integer,
        integer_step=st.integer_step,
    )
    return table, st


def test_a_killed_worker_is_retried_and_the_run_completes(cluster: str, long_ref, tmp_path: Path) -> None:
    engine = _engine(executor="ray", address=cluster, shards=2, **LONG)
    killed: list[int] = []

    def on_progress(p) -> None:  # once the shards are under way, kill one worker mid-shard
        if not killed and 0 < p.step < 0.5 * p.total_steps and (pids := _shard_pids()):
            os.kill(pids[0], signal.SIGKILL)
            killed.append(pids[0])

    result = engine.run(tmp_path / "run", callback=on_progress)
    assert killed, "no shard worker was seen running (the shards finished too fast to kill one)"
    assert result.status == "finished" and result.steps_done == LONG_STEPS
    _same_table(result.candidates, long_ref[0])


def test_stop_keeps_the_shards_results(cluster: str, long_ref, tmp_path: Path) -> None:
    """4 shards on 2 CPUs: stop once the first pair has finished; its candidates are kept whole, and the
    second pair's are kept as far as they got (or dropped, had they not started)."""
    stop = threading.Event()

    def on_progress(p) -> None:
        if p.step >= 0.5 * p.total_steps:  # the mean step over the shards: the first pair is done
            stop.set()

    engine = _engine(executor="ray", address=cluster, shards=4, **LONG)
    result = engine.run(tmp_path / "run", callback=on_progress, stop_event=stop)
    assert stop.is_set() and result.status == "stopped"
    # whole shards of 3: the two that finished, and those of the second pair that had started (the others
    # were cancelled; when none had started, every kept shard ran to the end: steps_done is then LONG_STEPS)
    assert len(result.candidates) and len(result.x_start) in (6, 9, 12)
    assert result.steps_done < LONG_STEPS or len(result.x_start) == 6
    # match each kept candidate to the in-process one from the same start: two shards (6) ran to the end
    ref = long_ref[1]
    j = [int(np.flatnonzero(np.abs(ref.x_start - x).max(1) == 0)[0]) for x in result.x_start]
    finished = [np.abs(result.x_final[i] - ref.x_final[k]).max() < 1e-6 for i, k in enumerate(j)]
    assert sum(finished) >= 6 and len(set(j)) == len(j)
    run = runs.load_run(tmp_path / "run")
    assert run.info.status == "stopped" and run.candidates is not None and len(run.candidates) == len(result.candidates)


def test_cli_runs_on_the_cluster(cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from gdmcd_core.cli import design as cli_design
    from gdmcd_core.model.checkpoint import save_checkpoint

    ckpt = tmp_path / "tiny.pt"
    save_checkpoint(ckpt, list(tiny_ensemble().members), {"note": "test"})
    monkeypatch.setattr("gdmcd_core.data.reference.load_reference", lambda *a, **k: tiny_reference())
    monkeypatch.setattr("gdmcd_core.model.formation_energy.load_formation_energy_model", lambda *a, **k: None)
    argv = ["--out", str(tmp_path / "run"), "--checkpoint", str(ckpt), "--init-mode", "dataset", "--no-progress"]
    argv += ["--n-candidates", "4", "--steps2", "10", "--steps3", "10", "--no-hull-columns", "--device", "cpu"]
    assert cli_design.main([*argv, "--executor", "ray", "--address", cluster, "--shards", "2"]) == 0
    assert "Ray at" in capsys.readouterr().err
    info = runs.load_run(tmp_path / "run").info
    assert info.status == "finished" and info.steps_done == 20 and info.n_candidates == 4


def test_ensemble_members_train_as_ray_tasks(cluster: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`gdmcd train --executor ray`: one member per task; the same weights as the in-process training."""
    import torch
    from conftest import write_tiny_data

    from gdmcd_core.data.dataset import DataConfig
    from gdmcd_core.model.checkpoint import load_checkpoint
    from gdmcd_core.model.resnet import ModelConfig
    from gdmcd_core.training.loop import TrainConfig
    from gdmcd_core.training.run import RunSpec
    from gdmcd_core.training.tasks import TC, train

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    data = str(write_tiny_data(tmp_path / "data"))
    spec = RunSpec(
        model=ModelConfig(width=4, layers=(1,)),
        train=TrainConfig(epochs=2, batch_size=16, device="cpu"),
        data=DataConfig(fractions=(0.6, 0.2, 0.2)),
        members=2,
    )
    logs: list[str] = []
    train(
        TC, spec, tmp_path / "ray.pt", data_dir=data, progress=False, log=logs.append, executor="ray", address=cluster
    )
    train(TC, spec, tmp_path / "local.pt", data_dir=data, progress=False, log=lambda s: None)
    assert any("trained on Ray" in line for line in logs)
    a, b = load_checkpoint(tmp_path / "ray.pt"), load_checkpoint(tmp_path / "local.pt")
    assert a.n_members == b.n_members == 2
    for ma, mb in zip(a.members, b.members, strict=True):
        for (name, ta), tb in zip(ma.state_dict().items(), mb.state_dict().values(), strict=True):
            torch.testing.assert_close(ta, tb, msg=name)


def test_app_jobs_go_to_the_cluster_named_by_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from gdmcd_core.design.distributed.executor import RAY_ADDRESS_ENV, config_from_env

    cfg = DesignConfig(**BASE)
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    assert config_from_env(cfg) is cfg  # the default: in-process
    monkeypatch.setenv(RAY_ADDRESS_ENV, "10.0.0.1:6379")
    assert (config_from_env(cfg).executor, config_from_env(cfg).address) == ("ray", "10.0.0.1:6379")
    assert config_from_env(cfg.replace(method="random")).executor == "local"  # shards are for the gradient method
    # the app's job registry hands the engine the cluster's config
    from gdmcd_app.jobs import JobRegistry

    seen = []

    class Engine:
        def __init__(self, model, config, fe_model=None) -> None:
            seen.append(config)

        def start_points(self):
            raise ValueError("stop here: no run needed")

    with pytest.raises(ValueError, match="stop here"):
        JobRegistry(runs_root=tmp_path / "runs", engine_factory=Engine).start(None, cfg)
    assert seen[0].executor == "ray" and seen[0].address == "10.0.0.1:6379"


def test_missing_ray_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from gdmcd_core.util_ray import RayUnavailableError, connect

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    with pytest.raises(RayUnavailableError, match=r"pip install 'gdmcd-studio\[ray\]'"):
        connect("")


def test_unreachable_address_is_one_clear_line() -> None:
    pytest.importorskip("ray", reason="Ray is not installed")
    from gdmcd_core.util_ray import _check_reachable

    with pytest.raises(ConnectionError, match="unreachable"):
        _check_reachable(f"127.0.0.1:{_free_port()}")
    with pytest.raises(ConnectionError, match="host:port"):
        _check_reachable("nonsense")


# -- the merge, without Ray ----------------------------------------------------------------------


def test_split_indices_cover_every_start_in_order() -> None:
    for n, k in [(12, 1), (12, 5), (3, 8), (1, 4)]:
        blocks = split_indices(n, k)
        assert np.concatenate(blocks).tolist() == list(range(n)) and len(blocks) == min(n, k)


def test_merging_in_process_shards_gives_the_unsplit_candidates(local_table: pd.DataFrame) -> None:
    from gdmcd_core.design.evidence.candidates import build_candidates, candidate_context

    engine = _engine()
    sp = engine.start_points()
    states = [engine.optimize(sp.x[b]) for b in split_indices(len(sp), 3)]
    labels = [[sp.label[j] for j in b] for b in split_indices(len(sp), 3)]
    merged = merge_states(states, labels)
    assert merged.recorder.to_trajectory().snap_x.shape[1] == 12 and merged.labels == list(sp.label)
    table = build_candidates(
        candidate_context(engine),
        x_start=merged.x_start,
        start_labels=merged.labels,
        x_stage2=merged.x_stage2,
        x_final=merged.x_final,
        integer=merged.integer,
        integer_step=merged.integer_step,
    )
    _same_table(table, local_table)
