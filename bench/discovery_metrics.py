"""Scoring of the discovery benchmark (bench/discovery.py): targets, hits, precision and recall at K, the random-draw
expectation, bootstrap intervals over seeds, forward-pass counting and the credibility of the top candidates.

A *target* is a superconductor (Tc > 0 K) first reported from the cut-off year on that lies farther than `min_l1`
(L1 in atomic fractions, 0..2) from every superconductor composition reported before it: doping variants of known
compounds (La1.9Sm0.1CuO4 next to La2CuO4, L1 0.05) are not targets. A ranked candidate *hits* a target when it
lies within `hit_l1` of it; with hit_l1 <= min_l1 / 2 no candidate within hit_l1 of a known composition (a rounding
of a known superconductor) can hit a target (triangle inequality). Per ranked list and K (its first K candidates):

* precision@K: share of the K that hit some target (a list shorter than K counts the missing ones as misses);
* target hits@K: distinct targets hit; recall@K = target hits@K / number of targets;
* element-set hits@K: distinct *new element sets* (the element set of a target that no earlier superconductor has)
  that are the element set of one of the K, whatever its stoichiometry: the right chemical system proposed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, radioactive_symbols
from gdmcd_core.chem.valence import cu_valence_plausible
from gdmcd_core.data.repair import NOBLE_GASES
from gdmcd_core.design.evidence.validity import smact_flags
from gdmcd_core.design.search.methods import composition_keys

CHUNK = 2048  # candidate rows per block in pairs_within
PAIR_CHUNK = 65536  # candidate-target pairs whose full L1 is computed at once (65536 x 118 float64: 62 MB)
METRICS = ("precision", "recall", "target_hits", "element_set_hits")


@dataclass(frozen=True)
class Targets:
    """x: (T, 118) fractions, tc_k: (T,) K, formula: (T,); element_set: (T,) index into `new_sets` or -1 (the
    target's element set is held by an earlier superconductor); new_sets: the new element sets (index tuples)."""

    x: np.ndarray
    tc_k: np.ndarray
    formula: np.ndarray
    element_set: np.ndarray
    new_sets: tuple[tuple[int, ...], ...]

    def __len__(self) -> int:
        return len(self.tc_k)


def element_set(row: np.ndarray) -> tuple[int, ...]:
    """The element indices (Z-1) present in a composition (118,)."""
    return tuple(np.flatnonzero(np.asarray(row) > 0).tolist())


def discovery_targets(
    x: np.ndarray, tc_k: np.ndarray, formula: np.ndarray, earlier: np.ndarray, later: np.ndarray, min_l1: float
) -> Targets:
    """The targets among superconductor rows: `later` (N,) bool rows with Tc > 0 K farther than min_l1 (L1) from
    every `earlier` (N,) bool row; x (N, 118), tc_k (N,) K, formula (N,). Rows with equal compositions count once."""
    x = np.asarray(x, np.float64)
    cand = np.flatnonzero(later & (np.asarray(tc_k) > 0))
    near, _ = nearest_within(x[cand], x[earlier], min_l1)
    cand = cand[near < 0]
    _, first = np.unique(composition_keys(x[cand]), return_index=True)
    cand = cand[np.sort(first)]
    known_sets = {element_set(r) for r in x[earlier]}
    sets = [element_set(r) for r in x[cand]]
    new_sets = tuple(dict.fromkeys(s for s in sets if s not in known_sets))
    index = {s: i for i, s in enumerate(new_sets)}
    es = np.array([index.get(s, -1) for s in sets], np.int64)
    return Targets(x[cand], np.asarray(tc_k, np.float64)[cand], np.asarray(formula)[cand], es, new_sets)


def _pairs_block(ac: np.ndarray, top: np.ndarray, t: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """(candidate, target) pairs within tol (L1) of one block of candidates; top: their two largest elements."""
    rows = np.arange(len(ac))
    ok = np.ones((len(ac), len(t)), bool)
    for j in range(top.shape[1]):  # |a_e - t_e| <= L1 for every element e: a cheap exact prefilter
        ok &= np.abs(ac[rows, top[:, j]][:, None] - t[:, top[:, j]].T) <= tol
    ii, jj = np.nonzero(ok)
    d = np.concatenate(
        [np.abs(ac[ii[s : s + PAIR_CHUNK]] - t[jj[s : s + PAIR_CHUNK]]).sum(1) for s in range(0, len(ii), PAIR_CHUNK)]
        or [np.zeros(0)]
    )
    within = d <= tol + 1e-9
    return ii[within], jj[within]


def pairs_within(a: np.ndarray, t: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """Every pair (i, j) with L1(a_i, t_j) <= tol: (i (P,), j (P,)) for rows of a (N, 118) and t (T, 118), exact."""
    a, t = np.asarray(a, np.float64).reshape(-1, N_ELEMENTS), np.asarray(t, np.float64).reshape(-1, N_ELEMENTS)
    if len(a) == 0 or len(t) == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    top = np.argsort(-a, axis=1, kind="stable")[:, :2]
    out_i, out_j = [], []
    for s in range(0, len(a), CHUNK):
        ii, jj = _pairs_block(a[s : s + CHUNK], top[s : s + CHUNK], t, tol)
        out_i.append(ii + s)
        out_j.append(jj)
    return np.concatenate(out_i), np.concatenate(out_j)


def nearest_within(a: np.ndarray, t: np.ndarray, tol: float) -> tuple[np.ndarray, np.ndarray]:
    """For each row of a (N, 118), the nearest row of t (T, 118) by L1 if within tol: (index or -1, distance or inf)."""
    idx, dist = np.full(len(a), -1), np.full(len(a), np.inf)
    ii, jj = pairs_within(a, t, tol)
    if len(ii) == 0:
        return idx, dist
    d = np.abs(np.asarray(a, np.float64)[ii] - np.asarray(t, np.float64)[jj]).sum(1)
    order = np.lexsort((d, ii))
    ii, jj, d = ii[order], jj[order], d[order]
    first = np.r_[True, ii[1:] != ii[:-1]]
    idx[ii[first]], dist[ii[first]] = jj[first], d[first]
    return idx, dist


@dataclass(frozen=True)
class Matches:
    """What each ranked candidate matches: (candidate, target) pairs within hit_l1 and the candidate's new element set
    (index into Targets.new_sets, or -1)."""

    n: int
    pair_c: np.ndarray
    pair_t: np.ndarray
    new_set: np.ndarray

    @property
    def hit(self) -> np.ndarray:
        """(n,) bool: the candidate hits some target."""
        out = np.zeros(self.n, bool)
        out[self.pair_c] = True
        return out


def match(x: np.ndarray, targets: Targets, hit_l1: float) -> Matches:
    """Matches of ranked candidates x (C, 118), best first."""
    x = np.asarray(x, np.float64).reshape(-1, N_ELEMENTS)
    ci, tj = pairs_within(x, targets.x, hit_l1)
    index = {s: i for i, s in enumerate(targets.new_sets)}
    new_set = np.array([index.get(element_set(r), -1) for r in x], np.int64)
    return Matches(len(x), ci, tj, new_set)


def ranking_metrics(m: Matches, targets: Targets, ks: tuple[int, ...]) -> dict[str, float]:
    """precision_at_K, recall_at_K, target_hits_at_K, element_set_hits_at_K of one ranked list (module docstring)."""
    hit = m.hit
    out: dict[str, float] = {}
    for k in ks:
        found = np.unique(m.pair_t[m.pair_c < k])
        sets = np.unique(m.new_set[:k][m.new_set[:k] >= 0])
        out[f"precision_at_{k}"] = float(hit[:k].sum()) / k
        out[f"target_hits_at_{k}"] = float(len(found))
        out[f"recall_at_{k}"] = len(found) / max(len(targets), 1)
        out[f"element_set_hits_at_{k}"] = float(len(sets))
    return out


def _miss_probability(m: np.ndarray, pool: int, k: int) -> np.ndarray:
    """P(none of m marked rows among k drawn without replacement from pool rows) = C(pool - m, k) / C(pool, k)."""
    m = np.asarray(m, np.float64)
    out = np.zeros(len(m))
    ok = pool - m >= k
    lg = math.lgamma
    for i in np.flatnonzero(ok):
        r = m[i]
        out[i] = math.exp(lg(pool - r + 1) - lg(pool - r - k + 1) - lg(pool + 1) + lg(pool - k + 1))
    return out


def random_draw_metrics(m: Matches, targets: Targets, ks: tuple[int, ...]) -> dict[str, float]:
    """The expected `ranking_metrics` of K candidates drawn uniformly without replacement from a pool (m: the pool's
    matches, in any order): hypergeometric expectations, exact."""
    pool, hit = m.n, m.hit
    per_target = np.bincount(m.pair_t, minlength=len(targets))
    per_target = per_target[per_target > 0]
    sets = m.new_set[m.new_set >= 0]
    per_set = np.bincount(sets)[np.bincount(sets) > 0] if len(sets) else np.zeros(0, np.int64)
    out: dict[str, float] = {}
    for k in ks:
        drawn = min(k, pool)
        found = float((1.0 - _miss_probability(per_target, pool, drawn)).sum()) if pool else 0.0
        out[f"precision_at_{k}"] = drawn * float(hit.sum()) / max(pool, 1) / k
        out[f"target_hits_at_{k}"] = found
        out[f"recall_at_{k}"] = found / max(len(targets), 1)
        out[f"element_set_hits_at_{k}"] = float((1.0 - _miss_probability(per_set, pool, drawn)).sum()) if pool else 0.0
    return out


def bootstrap_summary(values: list[float], resamples: int, seed: int, level: float) -> dict:
    """{"mean", "ci_low", "ci_high", "per_seed"}: the mean over seeds and its percentile bootstrap interval at `level`
    (seeds resampled with replacement `resamples` times, numpy Generator seeded with `seed`)."""
    v = np.asarray(values, np.float64)
    if len(v) == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "per_seed": []}
    means = v[np.random.default_rng(seed).integers(len(v), size=(resamples, len(v)))].mean(1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return {"mean": float(v.mean()), "ci_low": float(lo), "ci_high": float(hi), "per_seed": [float(a) for a in v]}


def formula_vectors(formulas: list[str]) -> np.ndarray:
    return np.stack([to_vector(f) for f in formulas]) if len(formulas) else np.zeros((0, N_ELEMENTS))


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
