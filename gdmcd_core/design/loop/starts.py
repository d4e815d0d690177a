"""Start compositions for a design run (paper: main text and S5).

* `from_dataset`: training superconductors with Tc above a threshold (a `StartPool`), drawn at random.
* `interpolate`: r x_a + (1 - r) x_b for two such compositions, r ~ Beta(10, 10). With partners
  "any" (the paper) x_b is any entry; two random SuperCon entries usually come from different
  families, and their union holds 8-12 elements (an "element soup" no chemist would make). With
  partners "family" (the default) x_b is drawn among the entries whose element set differs from
  x_a's by at most one element (|S_a ∪ S_b| <= max(|S_a|, |S_b|) + 1, and <= max_elements when
  capped): a doping series or a substituted relative, so the start stays near a known compound.
* `hydride_grid`: the S5 grids — binaries H_(n-1) A (eq. 16: H fraction (n-1)/n, n = 2..10) and
  ternaries H2 A B (eq. 17: H 0.5, A 0.25, B 0.25), over every allowed element A (and B).
* `from_formulas`: compositions the user types; extra candidates are jittered copies.

Each returns `StartPoints`: x (B, 118) fractions summing to 1 and a label per row saying where it
came from. The training data arrives as a reference.ReferenceData of arrays, so tests use tiny sets.
All randomness goes through the numpy Generator passed in (seeded by the run).
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np

from gdmcd_core.chem.composition import format_vector, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS, index_of, symbols
from gdmcd_core.data.reference import ReferenceData
from gdmcd_core.design.config.config import INIT_MODES, PARTNER_MODES, check_start_formula
from gdmcd_core.design.objective.constraints import Constraints

BETA_AB = (10.0, 10.0)  # interpolation ratio ~ Beta(10, 10) (paper)
HYDRIDE_N = tuple(range(2, 11))  # eq. 16: n = 2..10
FORMULA_JITTER_SIGMA = 0.15  # log-normal jitter of fractions for extra copies of user formulas


@dataclass(frozen=True)
class StartPoints:
    """x: (B, 118) fractions summing to 1; label: B strings naming the source of each row."""

    x: np.ndarray
    label: list[str]

    def __len__(self) -> int:
        return len(self.label)


@dataclass(frozen=True)
class StartPool:
    """The training superconductors a start may come from: x (N, 118) float64 fractions and formula (N,) of every
    SuperCon entry, and idx, the rows with Tc above the threshold that hold an element a start may use."""

    x: np.ndarray
    formula: np.ndarray
    idx: np.ndarray

    @classmethod
    def of(cls, reference: ReferenceData, min_tc: float, usable_mask: np.ndarray | None = None) -> StartPool:
        """The SuperCon entries of `reference` with Tc > min_tc (K) holding an element of usable_mask (118,) bool
        (any element when None). Raises ValueError when there is none."""
        x = np.asarray(reference.sc_x, np.float64)
        ok = np.asarray(reference.sc_tc_k) > min_tc
        if usable_mask is not None:
            ok &= (x[:, usable_mask] > 0).any(1)
        idx = np.flatnonzero(ok)
        if len(idx) == 0:
            raise ValueError(
                f"no training composition has Tc above {min_tc:g} K (after constraints); lower the threshold"
            )
        return cls(x, reference.sc_formula, idx)


def _draw(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """n indices from pool: without replacement while possible."""
    if n <= len(pool):
        return rng.choice(pool, size=n, replace=False)
    return np.concatenate([rng.permutation(pool), rng.choice(pool, size=n - len(pool), replace=True)])


def from_dataset(pool: StartPool, n: int, rng: np.random.Generator) -> StartPoints:
    """n compositions of the pool, at random."""
    idx = _draw(pool.idx, n, rng)
    return StartPoints(pool.x[idx], [str(pool.formula[i]) for i in idx])


def family_partners(
    x: np.ndarray, pool: np.ndarray, a: np.ndarray, rng: np.random.Generator, max_elements: int = 0
) -> np.ndarray:
    """For each first partner a (indices into x), a second partner from `pool` in a's family (see the
    module docstring): a different composition whose element set differs by at most one element.
    A row with no such partner is paired with itself (its start is then the entry itself)."""
    xp = np.asarray(x, np.float64)[pool]
    present = (xp > 0).astype(np.float32)
    counts = present.sum(1)
    out = np.empty(len(a), dtype=np.int64)
    for lo in range(0, len(a), 256):
        xa = np.asarray(x, np.float64)[a[lo : lo + 256]]
        pa = (xa > 0).astype(np.float32)
        na = pa.sum(1, keepdims=True)
        union = na + counts[None, :] - pa @ present.T
        ok = union <= np.maximum(na, counts[None, :]) + 1
        if max_elements:
            ok &= union <= max_elements
        for i, row in enumerate(ok):
            cand = np.flatnonzero(row)
            cand = cand[np.abs(xp[cand] - xa[i]).sum(1) > 1e-9]  # not the same composition
            out[lo + i] = pool[rng.choice(cand)] if len(cand) else a[lo + i]
    return out


def interpolate(
    pool: StartPool,
    n: int,
    rng: np.random.Generator,
    beta_ab: tuple[float, float] = BETA_AB,
    partners: str = "any",
    max_elements: int = 0,
) -> StartPoints:
    """n interpolations r x_a + (1 - r) x_b of two compositions of the pool, r ~ Beta.

    partners: "any" (x_b any entry of the pool, the paper) or "family" (`family_partners`)."""
    if partners not in PARTNER_MODES:
        raise ValueError(f"interpolation partners must be one of {PARTNER_MODES}, got {partners!r}")
    x, formula = pool.x, pool.formula
    a = rng.choice(pool.idx, size=n)
    b = rng.choice(pool.idx, size=n) if partners == "any" else family_partners(x, pool.idx, a, rng, max_elements)
    r = rng.beta(*beta_ab, size=n)
    out = r[:, None] * x[a] + (1 - r[:, None]) * x[b]
    labels = [f"{r[i]:.2f}*{formula[a[i]]} + {1 - r[i]:.2f}*{formula[b[i]]}" for i in range(n)]
    return StartPoints(out, labels)


def hydride_grid(allowed: np.ndarray, h_fraction: float = 0.5, ns: tuple[int, ...] = HYDRIDE_N) -> StartPoints:
    """The S5 start grid over the allowed elements (118,) bool (H itself is never an A or B).

    Binaries (eq. 16): x_H = (n - 1)/n, x_A = 1/n for n in ns with (n - 1)/n >= h_fraction.
    Ternaries (eq. 17): x_H = 0.5, x_A = x_B = 0.25 for each unordered pair A != B
    (with h_fraction > 0.5 the ternary H share is raised to h_fraction and A, B split the rest).
    """
    h = index_of("H")
    allowed = np.asarray(allowed, bool).copy()
    allowed[h] = False
    others = np.flatnonzero(allowed)
    syms = symbols()
    rows, labels = [], []
    for n in ns:
        xh = (n - 1) / n
        if xh < h_fraction - 1e-12:
            continue
        for a in others:
            v = np.zeros(N_ELEMENTS)
            v[h], v[a] = xh, 1 - xh
            rows.append(v)
            labels.append(f"hydride grid: H{n - 1}{syms[a]}" if n > 2 else f"hydride grid: H{syms[a]}")
    xh3 = max(0.5, h_fraction)
    for a, b in combinations(others, 2):
        v = np.zeros(N_ELEMENTS)
        v[h], v[a], v[b] = xh3, (1 - xh3) / 2, (1 - xh3) / 2
        rows.append(v)
        labels.append(f"hydride grid: H2{syms[a]}{syms[b]}" if xh3 == 0.5 else f"hydride grid: {format_vector(v)}")
    if not rows:
        raise ValueError("the hydride grid is empty: H must be allowed and at least one other element free")
    return StartPoints(np.stack(rows), labels)


def from_formulas(formulas: list[str], n: int, rng: np.random.Generator) -> StartPoints:
    """The user's formulas, each once, then jittered copies (same elements, ratios scaled by
    exp(N(0, FORMULA_JITTER_SIGMA))) until there are n rows. Raises FormulaError on a bad formula."""
    if not formulas:
        raise ValueError("init mode 'formulas' needs at least one formula (CLI: --init FORMULA ...)")
    base = np.stack([to_vector(f) for f in formulas])
    k = len(formulas)
    n = max(n, k)
    idx = np.arange(n) % k
    x = base[idx].copy()
    labels = [formulas[i] for i in idx]
    if n > k:
        noise = np.exp(rng.normal(0.0, FORMULA_JITTER_SIGMA, size=(n - k, N_ELEMENTS)))
        jit = x[k:] * noise
        x[k:] = jit / jit.sum(1, keepdims=True)
        labels = labels[:k] + [f"{lab} (jittered)" for lab in labels[k:]]
    return StartPoints(x, labels)


def subsample(sp: StartPoints, n: int, rng: np.random.Generator) -> StartPoints:
    """At most n rows of sp, chosen at random (order kept)."""
    if n >= len(sp):
        return sp
    keep = np.sort(rng.choice(len(sp), size=n, replace=False))
    return StartPoints(sp.x[keep], [sp.label[i] for i in keep])


def _from_pool(
    mode: str, pool: StartPool, n: int, rng: np.random.Generator, partners: str, max_elements: int
) -> StartPoints:
    """n starts from the pool: entries ("dataset"), interpolations ("interpolate") or half each ("mixed")."""
    if mode == "dataset":
        return from_dataset(pool, n, rng)
    if mode == "interpolate":
        return interpolate(pool, n, rng, partners=partners, max_elements=max_elements)
    a = from_dataset(pool, (n + 1) // 2, rng)
    if n // 2 == 0:
        return a
    b = interpolate(pool, n // 2, rng, partners=partners, max_elements=max_elements)
    return StartPoints(np.concatenate([a.x, b.x]), a.label + b.label)


def start_points(
    mode: str,
    n: int,
    reference: ReferenceData,
    rng: np.random.Generator,
    *,
    usable_mask: np.ndarray,
    free_mask: np.ndarray,
    min_tc: float = 20.0,
    formulas: tuple[str, ...] | list[str] = (),
    h_fraction: float = 0.5,
    partners: str = "any",
    max_elements: int = 0,
    constraints: Constraints | None = None,
) -> StartPoints:
    """n start compositions for an init mode (one of INIT_MODES).

    partners, max_elements: how interpolations pick their second composition (see `interpolate`).
    usable_mask (118,): elements a start may contribute after exclusions (free or at-least pinned); a
    SuperCon start must hold one of them, else it says nothing about where to go. free_mask: the
    elements the hydride grid may combine with H at `h_fraction`. constraints: the run's (unseen elements
    included); a start formula holding an element they exclude is refused, never silently cut.
    """
    if mode in ("dataset", "interpolate", "mixed"):
        pool = StartPool.of(reference, min_tc, usable_mask)
        return _from_pool(mode, pool, n, rng, partners, max_elements)
    if mode == "hydride":
        return subsample(hydride_grid(free_mask, h_fraction=h_fraction), n, rng)
    if mode != "formulas":
        raise ValueError(f"init mode must be one of {INIT_MODES}, got {mode!r}")
    for formula in formulas if constraints is not None else ():
        check_start_formula(formula, constraints)
    sp = from_formulas(list(formulas), n, rng)
    for formula, row in zip(sp.label, sp.x, strict=True):
        if not (row[usable_mask] > 0).any():
            raise ValueError(f"start formula {formula!r} holds only excluded elements")
    return sp
