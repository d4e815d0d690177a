"""Design runs on a Ray cluster (DesignConfig.executor "ray"): the starts in shards, one Ray task each.

    optimize_sharded(engine, start, callback=None, stop_event=None, recorder=None) -> ShardedState
        what `engine.optimize` returns, computed by shards on the cluster (run.py calls it for executor "ray")
    connect(address="")               ray, initialized; RayUnavailableError / ConnectionError in one line (util_ray)
    config_from_env(config)           executor "ray" at $GDMCD_RAY_ADDRESS when it is set (the web app)

The driver (this process) draws every start with the run's seed (run.py), splits them by index
(shards.split_indices) and submits one task per shard: a fresh DesignLoop from the same model, config and
reference data optimizes the shard's starts (one GPU per task when the cluster has GPUs, else one CPU).
Candidates are independent and the loop draws no random numbers, so the merged result holds the same
candidates, in the same order, as an in-process run; shards.py says what merging does to the per-step
statistics. The tasks report their Progress to a small actor (util_ray.Board) that the driver reads about twice a
second and merges into one Progress for the callback (run.py turns it into status.json).

Stop (stop_event, i.e. Ctrl-C / SIGTERM / the app's Stop): running shards stop between steps and return what
they reached; shards not started yet are cancelled; the run keeps the shards that returned (a shard that has
not returned STOP_GRACE_S later is cancelled too). A worker that dies mid-shard (killed, node lost) is
retried by Ray (TASK_RETRIES times; the shard starts over and gives the same result). Ray is imported
lazily: the core imports and runs in-process without it.

A broken cluster (a system process of a local instance this process started has died: its GCS server, raylet,
dashboard, ...; or Ray reports a lost worker, object or actor that no retry brings back) ends the run at once,
before Ray's own driver gives up (a driver whose GCS is gone exits the process after a minute, with no cleanup):
the shards still pending are cancelled, a local instance started here is shut down (no Ray process is left
behind), and then either the shards that returned come back as a ShardedState whose `failure` says why (run.py
writes their candidates and marks the run failed), or, with none returned, ClusterFailedError (one line) is
raised (the run folder is marked failed with that line).
"""

from __future__ import annotations

import copy
import math
import os
import pickle
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from gdmcd_core.design.distributed.shards import ShardedState, merge_progress, merge_states, split_indices
from gdmcd_core.design.loop.eta import EtaClock
from gdmcd_core.design.loop.starts import StartPoints
from gdmcd_core.design.loop.trajectory import TrajectoryRecorder
from gdmcd_core.util_ray import RAY_ADDRESS_ENV, TASK_RETRIES, Board, connect

if TYPE_CHECKING:
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.loop.optimize import DesignLoop

POLL_S = 0.5  # the driver reads the tasks' progress this often (and checks the cluster it started)
STOP_GRACE_S = 30.0  # after a stop, shards still running this much later are cancelled
SHUTDOWN_WAIT_S = 2.0  # Ray's disconnect from a broken local instance is waited for this long at most
KILL_GRACE_S = 2.0  # a broken local instance's processes get this long to exit on SIGTERM before SIGKILL
# The processes of a local instance without which it cannot go on (Ray's driver exits the process a minute after
# losing either); its dashboard or log monitor may go without the run noticing.
CRITICAL_PROCESSES = ("gcs_server", "raylet")


class ClusterFailedError(RuntimeError):
    """The Ray cluster broke during a sharded run before any shard returned (one line: what was lost)."""


def config_from_env(config: DesignConfig) -> DesignConfig:
    """`config` with executor "ray" at $GDMCD_RAY_ADDRESS when that is set (gradient runs only); else as is."""
    addr = os.environ.get(RAY_ADDRESS_ENV, "").strip()
    if not addr or getattr(config, "executor", None) != "local" or getattr(config, "method", None) != "gradient":
        return config
    return config.replace(executor="ray", address=config.address or addr)


def _run_shard(payload: tuple, index: int, x: np.ndarray, board: Any) -> Any:
    """One Ray task: optimize the starts x of shard `index`; None when the run was stopped before it began."""
    import ray

    engine_cls, model, config, fe_model, reference = payload
    if ray.get(board.started.remote(index, os.getpid())):
        return None
    engine = engine_cls(model, config, fe_model, reference=reference)
    stop = threading.Event()

    def report(p: Any) -> None:
        if ray.get(board.report.remote(index, pickle.dumps(p))):
            stop.set()

    rec = TrajectoryRecorder(len(x), stage2_step=config.steps2)
    return engine.optimize(x, callback=report, stop_event=stop, recorder=rec)


def _on_cpu(m: Any) -> Any:
    """A module with its weights on the CPU (to ship to workers): itself if it already is."""
    if m is None or all(p.device.type == "cpu" for p in m.parameters()):
        return m
    return copy.deepcopy(m).cpu()


def _plan(ray: Any, cfg: DesignConfig, n: int) -> tuple[list[np.ndarray], int, str]:
    """(index blocks of the shards, GPUs per task, the tasks' device: a task sees its own GPU as "cuda")."""
    res = ray.cluster_resources()
    gpus = int(res.get("GPU", 0))
    use_gpu = gpus > 0 and cfg.device != "cpu"
    k = cfg.shards or max(1, gpus if use_gpu else int(res.get("CPU", 1)))
    return split_indices(n, k), int(use_gpu), "cuda" if use_gpu else "cpu"


def _task_error(ray: Any, exc: BaseException) -> BaseException:
    """The shard's own exception where Ray wrapped one (RayTaskError), else exc."""
    if isinstance(exc, ray.exceptions.RayTaskError):
        try:
            return exc.as_instanceof_cause()
        except Exception:  # an exception type Ray cannot rebuild
            return exc
    return exc


def optimize_sharded(
    engine: DesignLoop,
    start: StartPoints | np.ndarray,
    callback: Callable[[Any], None] | None = None,
    stop_event: threading.Event | None = None,
    recorder: TrajectoryRecorder | None = None,
) -> ShardedState:
    """What `engine.optimize(start, ...)` returns, computed in shards on the Ray cluster of engine.config.address.

    recorder (the run's own) receives the merged trajectory; the callback gets merged Progress reports. A broken
    cluster: see the module docstring (a ShardedState with `failure`, or ClusterFailedError)."""
    ray = connect(engine.config.address)
    local = _local_head(ray)
    x = start.x if isinstance(start, StartPoints) else np.asarray(start, np.float64)
    labels = list(start.label) if isinstance(start, StartPoints) else [""] * len(x)
    blocks, gpus, device = _plan(ray, engine.config, len(x))
    board = ray.remote(num_cpus=0)(Board).remote(len(blocks))
    pending = _submit(ray, engine, x, blocks, board, gpus, device)
    t0 = time.perf_counter()
    results: dict[int, Any] = {}
    watch = _Watch(ray, board, local, EtaClock(engine.config.steps2, engine.config.total_steps))
    try:
        _wait(watch, pending, results, [len(b) for b in blocks], callback, stop_event, t0)
        final_reports = _reports(ray, board)
    except ClusterFailedError as exc:
        _abandon(watch, pending)  # the board went with the cluster: not killed (a call that can block)
        if not results:
            raise
        state = _finish(engine, x, labels, blocks, results, [None] * len(blocks), recorder, None, t0)
        return replace(state, failure=str(exc))
    except BaseException:
        _cancel(ray, pending)
        _quietly(ray.kill, board)
        raise
    ray.kill(board)
    return _finish(engine, x, labels, blocks, results, final_reports, recorder, callback, t0)


class _Watch:
    """What the driver's polling loop reads: the Ray module, the progress board, the local instance this process
    started (None for a cluster started elsewhere) and the run's EtaClock (merged progress)."""

    def __init__(self, ray: Any, board: Any, local: Any, eta: EtaClock) -> None:
        self.ray, self.board, self.local, self.eta = ray, board, local, eta
        # the local instance's processes and their children as the run starts (the raylet's agents outlive a killed
        # raylet, whose children they then no longer are)
        self.family = _processes(local) if local is not None else []

    def check(self) -> None:
        """ClusterFailedError (one line) when a system process of the local instance started here has died."""
        lost = _lost_process(self.local)
        if lost:
            raise ClusterFailedError(lost)


def _local_head(ray: Any) -> Any:
    """The Ray node this process started (ray.init without an address: a local instance whose processes are its
    children), else None (connected to a cluster started elsewhere; Ray's private API is read defensively)."""
    node = getattr(getattr(getattr(ray, "_private", None), "worker", None), "_global_node", None)
    return node if node is not None and getattr(node, "head", False) else None


def _lost_process(local: Any) -> str | None:
    """Which of CRITICAL_PROCESSES of the local instance `local` has died, in words; None while all live."""
    if local is None:
        return None
    try:
        dead = [(kind, proc) for kind, proc in local.dead_processes() if kind in CRITICAL_PROCESSES]
    except Exception:  # Ray's private API changed: nothing to tell
        return None
    if not dead:
        return None
    kind, proc = dead[0]
    return f"the local Ray cluster lost its {kind} process (pid {proc.pid}, exit status {proc.returncode})"


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _quietly(fn: Callable[..., Any], *args: Any, **kw: Any) -> None:
    """fn(*args, **kw), whatever it raises: cleanup on a cluster that may be broken must not hide why it failed."""
    try:
        fn(*args, **kw)
    except Exception:
        pass


def _cancel(ray: Any, pending: dict[Any, int]) -> None:
    for ref in pending:
        _quietly(ray.cancel, ref, force=True)


def _abandon(watch: _Watch, pending: dict[Any, int]) -> None:
    """After the cluster broke: cancel the shards still pending; end a local instance started here (its processes
    and theirs, e.g. the raylet's agents, which outlive a killed raylet), then disconnect (in a thread, waited for
    SHUTDOWN_WAIT_S at most: with its GCS gone Ray's disconnect can block), so no Ray process outlives the run."""
    _cancel(watch.ray, pending)
    if watch.local is None:
        return
    _end_processes(watch)
    done = threading.Thread(target=_quietly, args=(watch.ray.shutdown,), daemon=True, name="ray-shutdown")
    done.start()
    done.join(SHUTDOWN_WAIT_S)


def _processes(local: Any) -> list[Any]:
    """psutil.Process of each process the local instance started, and of their descendants."""
    import psutil  # a dependency of Ray

    procs = []
    for infos in list(getattr(local, "all_processes", {}).values()):
        for info in infos:
            try:
                top = psutil.Process(info.process.pid)
                procs += [top, *top.children(recursive=True)]
            except psutil.Error:  # already gone
                continue
    return procs


def _end_processes(watch: _Watch) -> None:
    """Terminate the local instance's processes, now and as the run started, and their descendants (SIGTERM, then
    SIGKILL after KILL_GRACE_S). psutil checks each one's start time: a reused pid is never signalled."""
    import psutil

    procs = list({p.pid: p for p in [*watch.family, *_processes(watch.local)]}.values())
    for proc in procs:
        _quietly(proc.terminate)
    _, alive = psutil.wait_procs(procs, timeout=KILL_GRACE_S)
    for proc in alive:
        _quietly(proc.kill)
    psutil.wait_procs(alive, timeout=KILL_GRACE_S)


def _submit(
    ray: Any, engine: DesignLoop, x: np.ndarray, blocks: list[np.ndarray], board: Any, gpus: int, device: str
) -> dict[Any, int]:
    """One task per shard: {its object ref: the shard's index}. A task runs the loop in-process on `device`."""
    # shards stop before the integer refinement: it compares candidates across shards (refine.py), so it runs here
    local_cfg = replace(engine.config, executor="local", device=device, refine_steps=0)
    fe = _on_cpu(engine.fe_model)
    payload = ray.put((type(engine), _on_cpu(engine.source_model), local_cfg, fe, engine.reference))
    task = ray.remote(_run_shard).options(num_cpus=1, num_gpus=gpus, max_retries=TASK_RETRIES)
    return {task.remote(payload, i, x[b], board): i for i, b in enumerate(blocks)}


def _wait(
    watch: _Watch,
    pending: dict[Any, int],
    results: dict[int, Any],
    sizes: list[int],
    callback: Callable[[Any], None] | None,
    stop_event: threading.Event | None,
    t0: float,
) -> None:
    """Poll the shards until none is pending (`pending` shrinks and `results`, {shard index: its state}, grows as
    they return). Checks the cluster (ClusterFailedError when it broke), passes a stop on to the shards, cancels
    those still running STOP_GRACE_S after it, and hands the callback a merged Progress every POLL_S."""
    ray = watch.ray
    last_cb, stop_at = -math.inf, None
    while pending:
        watch.check()
        ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_S)
        watch.check()
        _collect(ray, ready, pending, results, stopping=stop_at is not None)
        now = time.perf_counter()
        if stop_event is not None and stop_event.is_set() and stop_at is None:
            stop_at = now
            _request_stop(ray, watch.board, pending)
        if stop_at is not None and now - stop_at > STOP_GRACE_S:
            _cancel(ray, pending)
        if callback is not None and pending and now - last_cb >= POLL_S:
            last_cb = now
            p = merge_progress(_reports(ray, watch.board), sizes, now - t0, eta=watch.eta)
            if p is not None:
                callback(p)


def _collect(ray: Any, ready: list[Any], pending: dict[Any, int], results: dict[int, Any], stopping: bool) -> None:
    """Move the returned shards from `pending` to `results` (a shard stopped before it began returns None). A
    shard's own error is raised as it is, a shard the cluster lost (its worker died past the retries, its node or
    its result lost) as ClusterFailedError; neither while the run is stopping (a cancelled shard is dropped)."""
    for ref in ready:
        i = pending.pop(ref)
        try:
            out = ray.get(ref)
        except ray.exceptions.RayError as exc:
            if stopping:
                continue
            if isinstance(exc, ray.exceptions.RayTaskError):
                raise _task_error(ray, exc) from None
            raise ClusterFailedError(f"the Ray cluster lost shard {i}: {_first_line(exc)}") from None
        if out is not None:
            results[i] = out


def _reports(ray: Any, board: Any) -> list[Any]:
    """Each shard's latest Progress (None: none yet); ClusterFailedError when the board's actor is gone."""
    try:
        state = ray.get(board.state.remote())
    except ray.exceptions.RayError as exc:
        raise ClusterFailedError(f"the Ray cluster lost the run's progress board: {_first_line(exc)}") from None
    return [None if b is None else pickle.loads(b) for b in state[0]]


def _request_stop(ray: Any, board: Any, pending: dict[Any, int]) -> None:
    """Ask the running shards to stop between steps; cancel the shards not started yet (nothing to keep)."""
    ray.get(board.request_stop.remote())
    _, pids, _ = ray.get(board.state.remote())
    for ref, i in pending.items():
        if i not in pids:
            ray.cancel(ref, force=False)


def _finish(engine, x, labels, blocks, results, reports, recorder, callback, t0) -> ShardedState:
    """Merge the shards that returned (in start order) and send the final Progress."""
    keep = sorted(results)
    elapsed = time.perf_counter() - t0
    if not keep:  # stopped before any shard began: the starts themselves, as an in-process run stopped at step 0
        stopped = threading.Event()
        stopped.set()
        state = engine.optimize(x, callback=callback, stop_event=stopped, recorder=recorder)
        return merge_states([state], [labels], recorder=recorder, elapsed_s=elapsed, shards_total=len(blocks) + 1)
    merged = merge_states(
        [results[i] for i in keep],
        [[labels[j] for j in blocks[i]] for i in keep],
        recorder=recorder,
        elapsed_s=elapsed,
        shards_total=len(blocks),
    )
    merged = engine.refine(merged)
    if callback is not None:
        p = merge_progress([reports[i] for i in keep], [len(blocks[i]) for i in keep], elapsed, done=True)
        if p is not None:
            callback(replace(p, step=merged.steps_done, eta_s=0.0))
    return merged


__all__ = ["RAY_ADDRESS_ENV", "ClusterFailedError", "config_from_env", "connect", "optimize_sharded"]
