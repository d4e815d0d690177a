"""Integer losses (paper eqs. 5-8) and turning a composition into an integer formula.

For an N-atom cell the fractions that give whole atoms are the grid c_n^N = n / N, n = 0..N
(eq. 5). The distance of a fraction x_i to that grid is |N x_i - round(N x_i)| / N.

* `int_loss` — L_int^N (eq. 6): the sum of those distances over the 118 elements.
* `int_es_loss` — L_int,ES^N (eq. 7): the same sum with the two elements of largest distance
  left out (the min over the exempt pair a, b is reached by exempting the two largest terms),
  so two elements may stay fractional: element substitution / doping.
* `integer_loss` — L_integer,{N} (eq. 8): the min over a set of cell sizes N of either loss.

Worked example (paper Fig. 3): Ca0.23 Sr0.27 O0.50 with N = 4 has distances 0.02, 0.02, 0, so
L_int^4 = 0.04 (-> Ca0.25Sr0.25O0.5 = CaSrO2) and L_int,ES^4 = 0 (Ca, Sr exempt ->
Ca0.92Sr1.08O2).

`integer_amounts` turns fractions into atom counts for a chosen N with bounds (pins), such that
the counts sum to exactly N; `integerize` picks N by eq. 8 and returns counts and formulas;
`round_baseline` is the rule-based rounding the paper compares against.

Loss functions are pure torch functions (device and dtype follow x); the amount functions work
on numpy arrays (they run once per candidate at the end of a run, not in the loop).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from gdmcd_core.chem.composition import FRACTION_EPS, format_amounts
from gdmcd_core.chem.elements import symbols

IntegerLossKind = Literal["int", "es"]
INTEGER_LOSS_KINDS = ("int", "es")
# Two values of L_integer this close count as a tie; the smaller N wins (float32 noise).
N_TIE_TOL = 1e-6
# Exempt (fractional) amounts in ES formulas are written with this many decimals, and rounded
# so that the written amounts still sum to exactly N.
ES_DECIMALS = 3
# integerize works on at most this many rows at a time (its float64 work arrays are rows x |N| x 118).
INTEGERIZE_CHUNK = 1024


def _ns_tensor(ns: torch.Tensor | list[int] | tuple[int, ...], like: torch.Tensor) -> torch.Tensor:
    n = torch.as_tensor(ns, device=like.device, dtype=like.dtype).reshape(-1)
    if n.numel() == 0 or bool((n < 1).any()):
        raise ValueError(f"cell sizes N must be a non-empty set of integers >= 1, got {ns}")
    return n


def grid_distance(x: torch.Tensor, ns: torch.Tensor | list[int] | tuple[int, ...]) -> torch.Tensor:
    """min_n |x_i - n/N| for every candidate, cell size and element.

    Args:
        x: (B, D) fractions (the full composition x = x_opt + x_c).
        ns: (M,) cell sizes N.

    Returns:
        (B, M, D) distances in fraction units, differentiable in x (gradient sign(x - c)).
    """
    n = _ns_tensor(ns, x).reshape(1, -1, 1)  # (1, M, 1)
    t = x.unsqueeze(1) * n  # (B, M, D): atoms per N-cell
    return (t - torch.round(t).detach()).abs() / n


def int_loss(x: torch.Tensor, ns: torch.Tensor | list[int] | tuple[int, ...]) -> torch.Tensor:
    """L_int^N (eq. 6). x: (B, D) -> (B, M), one column per N in ns."""
    return grid_distance(x, ns).sum(-1)


def int_es_loss(x: torch.Tensor, ns: torch.Tensor | list[int] | tuple[int, ...]) -> torch.Tensor:
    """L_int,ES^N (eq. 7): L_int^N without its two largest terms. x: (B, D) -> (B, M)."""
    d = grid_distance(x, ns)  # (B, M, D)
    return d.sum(-1) - d.topk(2, dim=-1).values.sum(-1)


def per_n_loss(
    x: torch.Tensor, ns: torch.Tensor | list[int] | tuple[int, ...], kind: IntegerLossKind = "int"
) -> torch.Tensor:
    """L_int^N or L_int,ES^N for every N: (B, D) -> (B, M).

    Only the columns that hold an element count: an absent element (x_i = 0 exactly) is on every grid
    and has zero gradient, so the loss is computed on each row's k largest fractions, k the most elements
    any row holds (at least 2, for ES). Designed compositions hold a handful of the 118 elements.
    """
    k = max(int((x != 0).sum(1).max()) if x.numel() else 0, 2)
    if k < x.shape[-1]:
        x = x.gather(1, x.detach().abs().topk(k, dim=1).indices)
    if kind == "int":
        return int_loss(x, ns)
    if kind == "es":
        return int_es_loss(x, ns)
    raise ValueError(f"integer loss kind must be one of {INTEGER_LOSS_KINDS}, got {kind!r}")


def integer_loss(
    x: torch.Tensor, ns: torch.Tensor | list[int] | tuple[int, ...], kind: IntegerLossKind = "int"
) -> tuple[torch.Tensor, torch.Tensor]:
    """L_integer,{N} (eq. 8): min over N of the chosen loss.

    Args:
        x: (B, D) fractions.
        ns: (M,) allowed cell sizes, ascending (ties go to the first, i.e. the smallest N).
        kind: "int" (eq. 6) or "es" (eq. 7).

    Returns:
        loss (B,), differentiable in x; and the index into ns of the minimizing N (B,) long.
    """
    per_n = per_n_loss(x, ns, kind)  # (B, M)
    best = per_n.min(1).values
    # first N within N_TIE_TOL of the minimum: float noise must not pick a multiple of the right N
    idx = (per_n.detach() <= best.detach().unsqueeze(1) + N_TIE_TOL).float().argmax(1)
    return best, idx


@torch.no_grad()
def integer_loss_grad(
    x: torch.Tensor, ns: torch.Tensor | list[int] | tuple[int, ...], kind: IntegerLossKind = "int", k: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`integer_loss(x, ns, kind)[0]` (B,) and its gradient with respect to x (B, D), without autograd.

    d/dx_i |N x_i - round(N x_i)| / N = sign(N x_i - round(N x_i)), taken at each row's minimizing N;
    the ES loss's two exempt terms get 0. The design loop calls this at every stage-3 step: a handful
    of operations on each row's occupied columns instead of a recorded graph (equal to autograd of
    `integer_loss` where the minimizing N is unique; tests/test_integer_loss.py). k: at least the most non-zero
    entries any row holds, when the caller knows it (the loop's element cap); None counts them. ns may be given
    as a checked (1, M, 1) tensor (the loop, every step)."""
    if kind not in INTEGER_LOSS_KINDS:
        raise ValueError(f"integer loss kind must be one of {INTEGER_LOSS_KINDS}, got {kind!r}")
    B, D = x.shape
    n = ns if isinstance(ns, torch.Tensor) and ns.ndim == 3 else _ns_tensor(ns, x).reshape(1, -1, 1)  # (1, M, 1)
    if k is None:
        k = int((x != 0).sum(1).max()) if x.numel() else 0
    k = min(max(k, 2), D)
    idx = x.abs().topk(k, dim=1).indices  # the occupied columns (see per_n_loss)
    t = x.gather(1, idx).unsqueeze(1) * n  # (B, M, k)
    dev = t - torch.round(t)
    d = dev.abs() / n
    per_n = d.sum(-1)
    if kind == "es":
        exempt = d.topk(2, dim=-1)
        per_n = per_n - exempt.values.sum(-1)
    best, arg = per_n.min(1)
    pick = arg.reshape(B, 1, 1)
    sign = dev.gather(1, pick.expand(B, 1, k)).squeeze(1).sign()  # (B, k)
    if kind == "es":
        sign.scatter_(1, exempt.indices.gather(1, pick.expand(B, 1, 2)).squeeze(1), 0.0)
    return best, torch.zeros_like(x).scatter_(1, idx, sign)


# ---------------------------------------------------------------------------------------------
# Atom counts (numpy, once per candidate at the end)


def integer_amounts(
    x: np.ndarray,
    n: int | np.ndarray,
    lower: np.ndarray | None = None,
    fixed: np.ndarray | None = None,
    exempt: np.ndarray | None = None,
) -> np.ndarray:
    """Atom counts for an n-atom cell that sum to exactly n, nearest to n * x.

    Largest-remainder rounding with bounds: counts start at round(n x) (fixed entries at their
    value, others at least `lower`), then atoms are added where n x - count is largest, or taken
    where it is smallest (never below `lower`), one at a time, until the row sums to n. New
    elements are never introduced: an entry with x = 0 only gets atoms if it has a lower bound.

    With `exempt` (ES formulas, eq. 7) the exempt entries (at most two per row) are not rounded:
    they share what the others leave, in proportion to x (rounded to ES_DECIMALS decimals so
    that the written formula still sums to n).

    Args:
        x: (B, D) fractions.
        n: cell size, int or (B,) ints.
        lower: (B, D) or (D,) minimum counts (at-least pins: ceil(f n)); None = 0.
        fixed: (B, D) or (D,) float, NaN where free, else the exact count (exact pins: f n).
        exempt: (B, D) bool, entries allowed to stay fractional.

    Returns:
        (B, D) float64 counts, each row summing to n (integers except exempt entries).
    """
    x = np.asarray(x, dtype=np.float64)
    B, D = x.shape
    nn = np.broadcast_to(np.asarray(n, dtype=np.float64), (B,)).reshape(B, 1)
    t = x * nn  # (B, D) target amounts
    lo = np.zeros((B, D)) if lower is None else np.broadcast_to(np.asarray(lower, np.float64), (B, D)).copy()
    fx = np.full((B, D), np.nan) if fixed is None else np.broadcast_to(np.asarray(fixed, np.float64), (B, D))
    is_fixed = ~np.isnan(fx)
    ex = np.zeros((B, D), bool) if exempt is None else np.broadcast_to(np.asarray(exempt, bool), (B, D)) & ~is_fixed
    lo = np.where(is_fixed, fx, lo)
    present = (x > FRACTION_EPS) | (lo > 0)
    a = np.where(is_fixed, fx, np.maximum(np.round(t), lo))
    a = np.where(present, a, 0.0)
    a = np.where(ex, 0.0, a)
    need_ex = ex.any(1, keepdims=True)  # (B, 1)
    # Exempt rows must leave the exempt entries at least their lower bounds (and > 0 if present).
    ex_floor = np.where(ex, np.maximum(lo, np.where(x > FRACTION_EPS, 10.0**-ES_DECIMALS, 0.0)), 0.0).sum(
        1, keepdims=True
    )
    target = nn - np.where(need_ex, ex_floor, 0.0)  # integer part the rounded entries may take
    adjustable_up = present & ~is_fixed & ~ex
    for _ in range(2 * D + int(np.max(nn)) + 2):
        total = a.sum(1, keepdims=True)
        # rows with exempt entries only need total <= target; others need total == target
        deficit = np.where(need_ex, 0.0, target - total)
        excess = total - target
        grow = deficit[:, 0] > 0.5
        shrink = excess[:, 0] > 1e-9
        if not (grow.any() or shrink.any()):
            break
        resid = t - a
        if grow.any():
            score = np.where(adjustable_up, resid, -np.inf)
            j = score.argmax(1)
            rows = np.flatnonzero(grow & np.isfinite(score.max(1)))
            a[rows, j[rows]] += 1
        if shrink.any():
            can = adjustable_up & (a - 1 >= lo - 1e-9) & (a >= 1)
            score = np.where(can, resid, np.inf)
            j = score.argmin(1)
            rows = np.flatnonzero(shrink & np.isfinite(score.min(1)))
            a[rows, j[rows]] -= 1
    if ex.any():
        rest = nn - a.sum(1, keepdims=True)  # (B, 1) left for the exempt entries
        w = np.where(ex, np.maximum(t, 0.0), 0.0)
        wsum = w.sum(1, keepdims=True)
        share = np.where(wsum > 0, w / np.where(wsum > 0, wsum, 1.0), ex / np.maximum(ex.sum(1, keepdims=True), 1))
        amt = np.round(np.maximum(share * rest, np.where(ex, lo, 0.0)), ES_DECIMALS)
        # the last exempt entry of each row takes the remainder so the written amounts sum to n
        last = np.where(ex, np.arange(D), -1).argmax(1)
        has = ex.any(1)
        amt[has, last[has]] = 0.0
        amt[has, last[has]] = np.round(rest[has, 0] - amt[has].sum(1), ES_DECIMALS)
        a = np.where(ex, amt, a)
    return a


def exempt_pair(x: np.ndarray, n: int | np.ndarray, allowed: np.ndarray | None = None) -> np.ndarray:
    """(B, D) bool: the two present elements farthest from the n-grid (the a, b of eq. 7).

    `allowed` (D,) or (B, D) bool limits which entries may be exempt (exact pins may not).
    """
    x = np.asarray(x, np.float64)
    B, D = x.shape
    nn = np.broadcast_to(np.asarray(n, np.float64), (B,)).reshape(B, 1)
    t = x * nn
    d = np.abs(t - np.round(t))
    ok = x > FRACTION_EPS
    if allowed is not None:
        ok &= np.broadcast_to(np.asarray(allowed, bool), (B, D))
    d = np.where(ok, d, -1.0)
    top2 = np.argsort(-d, axis=1, kind="stable")[:, :2]
    ex = np.zeros((B, D), bool)
    np.put_along_axis(ex, top2, True, axis=1)
    return ex & ok


def formulas_from_amounts(amounts: np.ndarray) -> list[str]:
    """(B, D) atom counts -> formula strings (integers written without decimals)."""
    syms = symbols()
    out = []
    for row in np.asarray(amounts, np.float64):
        nz = np.flatnonzero(row > 10.0 ** -(ES_DECIMALS + 1))
        out.append(format_amounts({syms[i]: float(row[i]) for i in nz}, decimals=ES_DECIMALS))
    return out


@dataclass(frozen=True)
class Integerized:
    """Integer formulas for B candidates.

    n_atoms: (B,) the chosen cell size N; amounts: (B, D) counts summing to N; formulas: B strings;
    loss: (B,) L_integer of the composition at the chosen N (0 = already on the grid).
    """

    n_atoms: np.ndarray
    amounts: np.ndarray
    formulas: list[str]
    loss: np.ndarray

    @property
    def fractions(self) -> np.ndarray:
        """(B, D) amounts / N."""
        return self.amounts / self.n_atoms[:, None]


def choose_n(
    x: np.ndarray, ns: list[int] | tuple[int, ...], kind: IntegerLossKind = "int"
) -> tuple[np.ndarray, np.ndarray]:
    """Eq. 8 on numpy: (B,) chosen N (smallest within N_TIE_TOL of the min) and (B,) its loss."""
    xt = torch.as_tensor(np.asarray(x, np.float64))
    loss, idx = integer_loss(xt, list(ns), kind)
    return np.asarray(ns)[idx.numpy()], loss.numpy()


def integerize(
    x: np.ndarray,
    ns: list[int] | tuple[int, ...] | np.ndarray,
    kind: IntegerLossKind = "int",
    lower_frac: np.ndarray | None = None,
    exact_frac: np.ndarray | None = None,
    n_choice: np.ndarray | None = None,
    with_formulas: bool = True,
) -> Integerized:
    """Integer formula of each candidate: N by eq. 8 (or `n_choice`), counts by `integer_amounts`.

    Args:
        x: (B, D) fractions.
        ns: allowed cell sizes (ascending). With pins, pass only the sizes where the pins are
            representable (see constraints.Constraints.feasible_ns).
        kind: "int": every count an integer; "es": the two elements of eq. 7 stay fractional.
        lower_frac: (D,) at-least pins as fractions (count >= ceil(f N)); None = none.
        exact_frac: (D,) exact pins as fractions, NaN where free (count = f N); None = none.
        n_choice: (B,) cell sizes to use instead of choosing by eq. 8.
        with_formulas: False skips writing the formula strings (formulas is then empty; use
            formulas_from_amounts later) — formatting is the slow part.

    Returns:
        Integerized (N, counts, formulas, loss at N).
    """
    x = np.asarray(x, np.float64)
    B, D = x.shape
    ns = list(int(v) for v in ns)
    if B > INTEGERIZE_CHUNK:  # bound the (rows, |N|, 118) float64 work arrays
        parts = [
            integerize(
                x[i : i + INTEGERIZE_CHUNK],
                ns,
                kind,
                lower_frac,
                exact_frac,
                None if n_choice is None else np.broadcast_to(np.asarray(n_choice), (B,))[i : i + INTEGERIZE_CHUNK],
                with_formulas,
            )
            for i in range(0, B, INTEGERIZE_CHUNK)
        ]
        return Integerized(
            n_atoms=np.concatenate([q.n_atoms for q in parts]),
            amounts=np.concatenate([q.amounts for q in parts]),
            formulas=[f for q in parts for f in q.formulas],
            loss=np.concatenate([q.loss for q in parts]),
        )
    # losses for every N once, on the columns some row uses (absent elements add 0; keep >= 2 for ES)
    cols = np.flatnonzero((x > 0).any(0))
    if len(cols) < 2:
        cols = np.arange(2)
    per = per_n_loss(torch.as_tensor(x[:, cols]), ns, kind).numpy()  # (B, M)
    if n_choice is None:
        first = per <= per.min(1, keepdims=True) + N_TIE_TOL  # smallest N within tolerance (eq. 8)
        n_atoms = np.asarray(ns, dtype=np.int64)[first.argmax(1)]
    else:
        n_atoms = np.broadcast_to(np.asarray(n_choice), (B,)).astype(np.int64)
    nf = n_atoms.astype(np.float64)[:, None]
    lower = None if lower_frac is None else np.ceil(np.asarray(lower_frac)[None, :] * nf - 1e-6)
    fixed = None if exact_frac is None else np.round(np.asarray(exact_frac)[None, :] * nf)
    exempt = None
    if kind == "es":
        allowed = None if exact_frac is None else np.isnan(np.asarray(exact_frac))
        exempt = exempt_pair(x, n_atoms, allowed)
    amounts = integer_amounts(x, n_atoms, lower=lower, fixed=fixed, exempt=exempt)
    col = np.searchsorted(np.asarray(ns), n_atoms).clip(0, len(ns) - 1)
    loss = per[np.arange(B), col]
    formulas = formulas_from_amounts(amounts) if with_formulas else []
    return Integerized(n_atoms=n_atoms, amounts=amounts, formulas=formulas, loss=loss)


def round_baseline(
    x: np.ndarray,
    ns: list[int] | tuple[int, ...] | np.ndarray,
    lower_frac: np.ndarray | None = None,
    exact_frac: np.ndarray | None = None,
    n_choice: np.ndarray | None = None,
) -> Integerized:
    """Rule-based rounding baseline: no stage 3, the composition is rounded directly.

    N is the allowed cell size closest to the grid by eq. 8 (or `n_choice`), and the counts are
    round(N x) corrected to sum to N by largest remainder, honouring pins. This is the same
    rounding that produces the final integer formula after stage 3; the difference between the
    two is exactly what the integer loss buys.
    """
    return integerize(x, ns, "int", lower_frac, exact_frac, n_choice)
