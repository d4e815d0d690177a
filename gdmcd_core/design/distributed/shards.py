"""Shards of a design run: split the starts by index, merge the shards' results back in start order.

Pure arrays, no Ray (executor.py runs the shards). Candidates are independent and the loop draws no random
numbers, so a run split into shards and merged back holds the candidates of the unsplit run, in the same
order. What merging cannot recover exactly: the per-step statistics across all candidates. tc_best_k is the
maximum over the shards and hinge_mean_k the size-weighted mean (both exact); the quantiles (tc_median_k,
tc_q10_k, tc_q90_k, int_loss_median) are size-weighted means of the shards' quantiles (exact for one shard).
The snapshots are exact: they are concatenated at the steps every shard recorded.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gdmcd_core.design.config.resources import MAX_SNAPSHOT_ENTRIES
from gdmcd_core.design.loop.eta import EtaClock
from gdmcd_core.design.loop.results import OptimizeState
from gdmcd_core.design.loop.trajectory import STEP_FIELDS, TrajectoryRecorder
from gdmcd_core.design.objective.integer_loss import Integerized

_MEAN_FIELDS = ("tc_median_k", "tc_q10_k", "tc_q90_k", "hinge_mean_k", "int_loss_median")


@dataclass(frozen=True)
class ShardedState(OptimizeState):
    """An OptimizeState merged from shards. labels: the start labels of the candidates kept (every start's
    unless shards were dropped); shards_done / shards_total: shards that returned a result / were planned;
    failure: why the run ended early when its cluster broke (executor.py), else ""."""

    labels: list[str] = field(default_factory=list)
    shards_done: int = 0
    shards_total: int = 0
    failure: str = ""


def split_indices(n: int, shards: int) -> list[np.ndarray]:
    """Contiguous index blocks of 0..n-1, as even as possible; never an empty block (at most n shards)."""
    k = max(1, min(int(shards), n))
    return [b for b in np.array_split(np.arange(n), k) if len(b)]


def _merge_rows(recs: list[TrajectoryRecorder]) -> dict[str, list[float]]:
    """Per-step rows: at each step, the shards that recorded it (a stopped shard has fewer rows)."""
    out: dict[str, list[float]] = {k: [] for k in STEP_FIELDS}
    for t in range(max((len(r.rows["step"]) for r in recs), default=0)):
        have = [r for r in recs if len(r.rows["step"]) > t]
        w = np.asarray([r.n_candidates for r in have], np.float64)
        w = w / w.sum() if w.sum() > 0 else np.full(len(have), 1.0 / len(have))
        for k in STEP_FIELDS:
            vals = np.asarray([r.rows[k][t] for r in have], np.float64)
            if k == "tc_best_k":
                out[k].append(float(vals.max()))
            elif k in _MEAN_FIELDS:
                out[k].append(float((w * vals).sum()))
            else:  # step, stage, alpha: the same in every shard at the same step index
                out[k].append(float(vals[0]))
    return out


def _concat(arrays: list[np.ndarray | None]) -> np.ndarray | None:
    return None if any(a is None for a in arrays) else np.concatenate(arrays)


def merge_recorders(recs: list[TrajectoryRecorder], into: TrajectoryRecorder | None = None) -> TrajectoryRecorder:
    """One recorder for the candidates of `recs` in order (filled into `into` when given, e.g. the run's own).

    Snapshots: those at steps every shard took, concatenated along the candidates (thinned, first and last
    kept, to MAX_SNAPSHOT_ENTRIES), plus a last one from each shard's last snapshot when the shards ended at
    different steps (a stop): it carries the largest of their steps."""
    B = sum(r.n_candidates for r in recs)
    out = into if into is not None else TrajectoryRecorder(B, stage2_step=recs[0].stage2_step if recs else None)
    out.n_candidates = B
    out.rows = _merge_rows(recs)
    common = sorted(set.intersection(*(set(r.snaps["step"]) for r in recs))) if recs else []
    ends = [r.snaps["step"][-1] for r in recs if r.snaps["step"]]
    stride = max(1, int(np.ceil(len(common) * B * 118 / MAX_SNAPSHOT_ENTRIES)))
    keep = [s for i, s in enumerate(common) if i % stride == 0 or i == len(common) - 1]
    snaps: dict[str, list[np.ndarray]] = {"step": [], "tc": [], "il": [], "x": []}
    for s in keep:
        idx = [r.snaps["step"].index(s) for r in recs]
        snaps["step"].append(s)
        for k in ("tc", "il", "x"):
            snaps[k].append(np.concatenate([r.snaps[k][i] for r, i in zip(recs, idx, strict=True)]))
    if recs and len(ends) == len(recs) and len(set(ends)) > 1:
        snaps["step"].append(max(ends))
        for k in ("tc", "il", "x"):
            snaps[k].append(np.concatenate([r.snaps[k][-1] for r in recs]))
    out.snaps = snaps
    out.first_x = _concat([r.first_x for r in recs])
    out.last_x = _concat([r.last_x for r in recs])
    out.stage2_x = _concat([r.stage2_x for r in recs])
    out.last_x_step = min((r.last_x_step for r in recs), default=-1)
    return out


def merge_states(
    states: list[OptimizeState],
    labels: list[list[str]],
    *,
    recorder: TrajectoryRecorder | None = None,
    elapsed_s: float = 0.0,
    shards_total: int | None = None,
) -> ShardedState:
    """The shards' states (in start order) as one: arrays concatenated, steps_done the fewest any shard did,
    stopped if any shard stopped or any planned shard is missing."""
    if not states:
        raise ValueError("no shard finished: nothing to merge")
    total = len(states) if shards_total is None else shards_total
    integ = Integerized(
        n_atoms=np.concatenate([s.integer.n_atoms for s in states]),
        amounts=np.concatenate([s.integer.amounts for s in states]),
        formulas=[f for s in states for f in s.integer.formulas],
        loss=np.concatenate([s.integer.loss for s in states]),
    )
    return ShardedState(
        x_start=np.concatenate([s.x_start for s in states]),
        x_stage2=np.concatenate([s.x_stage2 for s in states]),
        x_final=np.concatenate([s.x_final for s in states]),
        steps_done=min(s.steps_done for s in states),
        stopped=any(s.stopped for s in states) or len(states) < total,
        recorder=merge_recorders([s.recorder for s in states], into=recorder),
        elapsed_s=elapsed_s,
        integer=integ,
        integer_step=np.concatenate([np.asarray(s.integer_step) for s in states]),
        labels=[x for lab in labels for x in lab],
        shards_done=len(states),
        shards_total=total,
    )


def merge_progress(
    reports: list[Any | None], sizes: list[int], elapsed_s: float, done: bool = False, eta: EtaClock | None = None
) -> Any | None:
    """One Progress (engine.Progress) for the whole run from each shard's latest (None: not started).

    step: the size-weighted mean of the shards' steps (a shard not started counts 0); tc_best_k the maximum;
    the quantiles and the integer loss size-weighted means over the started shards; n_candidates all of them;
    eta_s: from `eta` (the run's EtaClock, fed the merged step here), else the mean time per step so far."""
    have = [(p, n) for p, n in zip(reports, sizes, strict=True) if p is not None]
    if not have:
        return None
    B = sum(sizes)
    w = np.asarray([n for _, n in have], np.float64)
    w = w / w.sum()
    step = int(sum(p.step * n for p, n in have) // max(B, 1))
    slowest = min(have, key=lambda pn: pn[0].step)[0]
    total = slowest.total_steps
    mean = {k: float(sum(wi * getattr(p, k) for wi, (p, _) in zip(w, have, strict=True))) for k in _MEAN_FIELDS[:3]}
    return replace(
        slowest,
        step=step,
        stage=slowest.stage,
        alpha=slowest.alpha,
        tc_best_k=max(float(p.tc_best_k) for p, _ in have),
        int_loss_median=float(sum(wi * p.int_loss_median for wi, (p, _) in zip(w, have, strict=True))),
        elapsed_s=elapsed_s,
        eta_s=_eta(eta, step, total, elapsed_s, done),
        n_candidates=B,
        done=done,
        **mean,
    )


def _eta(eta: EtaClock | None, step: int, total: int, elapsed_s: float, done: bool) -> float:
    """Seconds left: 0 when done; from the run's EtaClock when given (NaN until measured), else the mean step time."""
    if done:
        return 0.0
    if eta is None:
        return elapsed_s / step * (total - step) if step else 0.0
    eta.add(step, elapsed_s)
    return eta.eta_s()
