"""Scoring of a discovery benchmark (bench/discovery.py): hits on held-out superconductors, the random-draw
baseline, forward-pass counting and the credibility of the top-ranked candidates.

A *target* is a SuperCon composition first reported from 2010 on (the time split's test set) that is
absent from the pre-2010 data. A ranked candidate is a *hit* when its composition equals a target's
(4-decimal fractions, i.e. the same reduced formula) or lies within L1 <= HIT_L1 of one (fractions,
0..2), and is not itself a pre-2010 SuperCon composition (proposing a known superconductor is not a
discovery, even one next to a new one). hits@K counts the hits among the first K candidates.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.elements import radioactive_symbols
from gdmcd_core.chem.valence import cu_valence_plausible
from gdmcd_core.data.dataset import TEST, Dataset
from gdmcd_core.data.repair import NOBLE_GASES
from gdmcd_core.design.evidence.validity import smact_flags
from gdmcd_core.design.search.methods import composition_keys

HIT_L1 = 0.05  # L1 distance (fractions) within which a candidate matches a target
KS = (50, 200, 1000)
HIGH_TC_K = 20.0  # "hits for Tc >= 20 K": the matched target's Tc
CHUNK = 2048  # candidate rows per block in nearest_within


@dataclass(frozen=True)
class Targets:
    """x: (T, 118) fractions, tc_k: (T,) K, formula: (T,); known_keys: keys of every pre-2010 SuperCon composition."""

    x: np.ndarray
    tc_k: np.ndarray
    formula: np.ndarray
    known_keys: frozenset

    def __len__(self) -> int:
        return len(self.tc_k)


def time_split_targets(ds: Dataset) -> Targets:
    """The post-2010 SuperCon compositions of a time-split dataset, minus any equal to a pre-2010 one."""
    if ds.config.split != "time":
        raise ValueError(f"the discovery benchmark needs a time-split dataset, got split {ds.config.split!r}")
    test = ds.is_supercon & (ds.split == TEST)
    known = frozenset(composition_keys(ds.x[ds.is_supercon & ~test]))
    keys = composition_keys(ds.x[test])
    new = np.array([k not in known for k in keys], bool)
    idx = np.flatnonzero(test)[new]
    return Targets(ds.x[idx].astype(np.float64), ds.tc_k[idx].astype(np.float64), ds.formula[idx], known)


def nearest_within(a: np.ndarray, t: np.ndarray, tol: float = HIT_L1) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a (N, 118), the nearest row of t (T, 118) by L1 if within tol: (index or -1, distance or inf).

    Exact and fast on large N: |a_e - t_e| <= L1 for every element e, so only the pairs that agree
    within tol on the two largest elements of the a-row get their full L1 computed.
    """
    a, t = np.asarray(a, np.float64), np.asarray(t, np.float64)
    idx, dist = np.full(len(a), -1), np.full(len(a), np.inf)
    if len(a) == 0 or len(t) == 0:
        return idx, dist
    top = np.argsort(-a, axis=1, kind="stable")[:, :2]
    for s in range(0, len(a), CHUNK):
        ac, tp = a[s : s + CHUNK], top[s : s + CHUNK]
        rows = np.arange(len(ac))
        ok = np.ones((len(ac), len(t)), bool)
        for j in range(tp.shape[1]):
            ok &= np.abs(ac[rows, tp[:, j]][:, None] - t[:, tp[:, j]].T) <= tol
        ii, jj = np.nonzero(ok)
        if len(ii) == 0:
            continue
        d = np.abs(ac[ii] - t[jj]).sum(1)
        order = np.lexsort((d, ii))  # per candidate row, the smallest distance first
        ii, jj, d = ii[order], jj[order], d[order]
        first = np.r_[True, ii[1:] != ii[:-1]]
        ii, jj, d = ii[first], jj[first], d[first]
        within = d <= tol + 1e-9
        idx[s + ii[within]], dist[s + ii[within]] = jj[within], d[within]
    return idx, dist


@dataclass(frozen=True)
class HitFlags:
    """Per ranked candidate: hit (any Tc), hit_high (a matched target with Tc >= HIGH_TC_K), the matched target."""

    hit: np.ndarray
    hit_high: np.ndarray
    target: np.ndarray  # (C,) index into the targets or -1

    def at(self, ks: tuple[int, ...] = KS, high: bool = False) -> dict[int, int]:
        h = self.hit_high if high else self.hit
        return {k: int(h[:k].sum()) for k in ks}


def hit_flags(x: np.ndarray, targets: Targets, tol: float = HIT_L1) -> HitFlags:
    """Hits of ranked candidates x (C, 118) against the targets (see the module docstring)."""
    x = np.asarray(x, np.float64).reshape(-1, 118)
    keys = composition_keys(x)
    novel = np.array([k not in targets.known_keys for k in keys], bool)
    j, _ = nearest_within(x, targets.x, tol)
    high = targets.tc_k >= HIGH_TC_K
    jh, _ = nearest_within(x, targets.x[high], tol)
    return HitFlags(hit=(j >= 0) & novel, hit_high=(jh >= 0) & novel, target=np.where(novel, j, -1))


def formula_vectors(formulas: list[str]) -> np.ndarray:
    return np.stack([to_vector(f) for f in formulas]) if len(formulas) else np.zeros((0, 118))


def expected_random_hits(n_hits: int, pool_size: int, ks: tuple[int, ...] = KS) -> dict[int, float]:
    """Expected hits of K compositions drawn uniformly without replacement from a pool holding n_hits hits.

    The hypergeometric mean min(K, pool) * n_hits / pool.
    """
    if pool_size <= 0:
        return {k: 0.0 for k in ks}
    return {k: min(k, pool_size) * n_hits / pool_size for k in ks}


class PassCounter:
    """Compositions passed through a Tc model: forward rows and rows whose forward builds a graph (a backward follows).

    Counted with a forward hook on the first member's input layer (one composition through the ensemble
    = one row); `freeze()` keeps the counts as they are (e.g. when the search ends, before the table).
    """

    def __init__(self) -> None:
        self.forward = self.with_grad = 0
        self.frozen: tuple[int, int] | None = None

    def hook(self, _module, inputs, _output) -> None:
        x = inputs[0]
        self.forward += int(x.shape[0])
        if torch.is_grad_enabled() and x.requires_grad:
            self.with_grad += int(x.shape[0])

    def freeze(self) -> None:
        if self.frozen is None:
            self.frozen = (self.forward, self.with_grad)

    def counts(self) -> dict[str, int]:
        fwd, grad = self.frozen if self.frozen is not None else (self.forward, self.with_grad)
        # a backward pass costs about two forward passes (the usual estimate for dense networks)
        return {"forward_rows": fwd, "backward_rows": grad, "forward_equivalents": fwd + 2 * grad}


@contextmanager
def count_passes(model: torch.nn.Module) -> Iterator[PassCounter]:
    """Count the rows through `model` (a TcEnsemble: its first member's stem; a fused ensemble (the engine's
    scorer.fused): its shared stem; else the module itself)."""
    counter = PassCounter()
    members = getattr(model, "members", None)
    target = members[0] if members is not None else model
    target = getattr(target, "stem", target)
    handle = target.register_forward_hook(counter.hook)
    try:
        yield counter
    finally:
        handle.remove()


BAD_ELEMENTS = frozenset(NOBLE_GASES) | frozenset(radioactive_symbols())


MAX_CREDIBLE_ELEMENTS = 6


def passes_checks(table: pd.DataFrame) -> np.ndarray:
    """(rows,) bool: charge-neutral (SMACT rule), a plausible formal Cu valence if a cuprate (Cu and O),
    no noble gas or radioactive element, at most MAX_CREDIBLE_ELEMENTS elements."""
    out = []
    for f, neutral in zip(table["integer_formula"], table["charge_neutral"], strict=True):
        a = parse_formula(f)
        cu_ok = cu_valence_plausible(a) is True if ("Cu" in a and "O" in a) else True
        out.append(bool(neutral) and cu_ok and not set(a) & BAD_ELEMENTS and len(a) <= MAX_CREDIBLE_ELEMENTS)
    return np.asarray(out, bool)


def credibility(table: pd.DataFrame, top: int, passing_only: bool = False) -> dict[str, float | int | str]:
    """Plausibility of the `top` best-ranked candidates of a candidate table (rank order); passing_only:
    of the `top` best-ranked among those that pass every check (`passes_checks`)."""
    t = table.sort_values("rank")
    t = (t[passes_checks(t)] if passing_only else t).head(top)
    formulas = list(t["integer_formula"])
    amounts = [parse_formula(f) for f in formulas]
    if "charge_neutral" in t and t["charge_neutral"].notna().all():
        neutral = t["charge_neutral"].astype(bool).to_numpy()
    else:
        neutral = np.array([smact_flags(f)[0] for f in formulas], bool)
    cuprate = [a for a in amounts if "Cu" in a and "O" in a]
    verdicts = [cu_valence_plausible(a) for a in cuprate]  # None: undefined (e.g. Fe, ambiguous valence): not ok
    plausible = sum(v is True for v in verdicts)
    n = max(len(t), 1)
    sd = t["integer_tc_std_k"].to_numpy(float)
    tc = t["integer_tc_k"].to_numpy(float)
    return {
        "n": len(t),
        "tc_k": float(tc.mean()) if len(t) else float("nan"),
        "sigma_k": float(sd.mean()) if len(t) else float("nan"),
        "tc_minus_sigma_k": float((tc - sd).mean()) if len(t) else float("nan"),
        "pct_charge_neutral": 100.0 * float(neutral.sum()) / n,
        "cuprates": len(cuprate),
        "pct_cuprates_cu_valence_plausible": 100.0 * plausible / len(cuprate) if cuprate else float("nan"),
        "cuprates_cu_valence_undefined": sum(v is None for v in verdicts),
        "pct_noble_or_radioactive": 100.0 * sum(bool(set(a) & BAD_ELEMENTS) for a in amounts) / n,
        "mean_elements": float(np.mean([len(a) for a in amounts])) if amounts else float("nan"),
    }
