"""The two-part (hurdle) answer: P(superconductor), Tc if superconducting, and the expected Tc, each with its
uncertainty; and the one way σ is printed.

Inputs per composition: the ensemble's Tc and σ (K; σ unknown for a one-member checkpoint, which has no spread
to calibrate), the Tc of the trees beside the checkpoint (model/trees.py, fitted on superconductors only, so a Tc
*given* superconductivity) when there are trees, and P(SC) from the classifier beside it (model/sc_classifier.py)
when there is one.

* tc_if_sc (K), the Tc if the composition superconducts: w · Tc_ens + (1 − w) · Tc_trees where the ensemble
  says Tc > 0 (the consensus of model/trees.py, w the ResNet's weight fitted on the checkpoint's validation
  superconductors, training/consensus_weight.py); the trees' Tc where the ensemble says 0 K (its zero says
  *whether*, not *how high*); without trees the ensemble's Tc where it is > 0, unknown where it is 0.
* σ_if_sc (K): sqrt(σ_ens² + (|Tc_ens − Tc_trees| / 2)²), the ensemble's σ widened by half the gap between the
  two models (the sd of an even choice between them); the ensemble's σ without trees.
* tc (K), the expected Tc: p · tc_if_sc, with the σ of the mixture of "no superconductivity" (weight 1 − p) and
  tc_if_sc ± σ_if_sc (weight p): σ² = p · σ_if_sc² + p (1 − p) · tc_if_sc². Without a classifier, or where
  tc_if_sc is unknown: the ensemble's Tc and σ.
* call: "superconductor" or "not a superconductor" where the parts agree, else "uncertain": P(SC) between
  1 − P_SURE and P_SURE (less than 90 % sure either way), or the classifier and the ensemble calling it
  differently (P(SC) >= 0.5 against Tc > 0 K). None without a classifier (the ensemble alone is one part). On the
  random split's validation rows (tc_default's classifier) 8.7 % of the rows are uncertain, 0.3 % of the
  confident "not a superconductor" calls fall on superconductors and 4.5 % of the confident "superconductor" calls
  on non-superconductors (P_SURE 0.8: 5.8 %, 0.3 %, 5.7 %). The trees' Tc is not used for the call: fitted on
  superconductors only, it is a Tc *if* superconducting: for 31 % of the validation non-superconductors the
  ensemble says 0 K and the trees 20 K or more (NaCl: 28 K).
* interval (K): [low, high] = [max(0, tc_if_sc − 2 σ_if_sc), tc_if_sc + 2 σ_if_sc] for a superconductor; from
  0 K for an uncertain call (so it covers both the ensemble's zero and the trees' Tc); [0, tc + 2σ] for a
  non-superconductor; tc ± 2σ (from 0 K at least) without a classifier. Unknown where σ is.

Unknown values are NaN here and null in JSON; σ is never reported as 0 where it is unknown (`plus_minus`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdmcd_core.model.trees import EVEN_WEIGHT, tc_if_superconducting

P_SURE = 0.9  # P(SC) >= this (or <= 1 - this) is a confident call
SC, NOT_SC, UNCERTAIN = "superconductor", "not a superconductor", "uncertain"


@dataclass
class TwoPart:
    """Per composition (N,): NaN where unknown; p_superconductor is None without a classifier."""

    p_superconductor: np.ndarray | None
    tc_if_sc_k: np.ndarray
    tc_if_sc_std_k: np.ndarray
    tc_k: np.ndarray
    tc_std_k: np.ndarray
    tc_low_k: np.ndarray
    tc_high_k: np.ndarray
    call: list[str | None]


def conditional_tc(
    tc_net: np.ndarray, std_net: np.ndarray, tc_trees: np.ndarray | None, weight: float = EVEN_WEIGHT
) -> tuple[np.ndarray, np.ndarray]:
    """(tc_if_sc, σ_if_sc) in K from the ensemble's Tc and σ (NaN: unknown), the trees' Tc and the ResNet's weight
    in their consensus (module docstring)."""
    tc_net, std_net = np.asarray(tc_net, np.float64), np.asarray(std_net, np.float64)
    if tc_trees is None:
        positive = tc_net > 0
        return np.where(positive, tc_net, np.nan), np.where(positive, std_net, np.nan)
    tc_trees = np.asarray(tc_trees, np.float64)
    mu = tc_if_superconducting(tc_net, tc_trees, weight)
    return mu, np.sqrt(std_net**2 + (0.5 * np.abs(tc_net - tc_trees)) ** 2)


def expected_tc(p: np.ndarray, mu: np.ndarray, sigma: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(expected Tc, its σ) in K of the hurdle mixture: 0 K with weight 1 − p, mu ± sigma with weight p."""
    p, mu, sigma = (np.asarray(v, np.float64) for v in (p, mu, sigma))
    return p * mu, np.sqrt(p * sigma**2 + p * (1 - p) * mu**2)


def calls(tc_net: np.ndarray, p: np.ndarray | None) -> list[str | None]:
    """The call per composition from the ensemble's Tc (K) and P(SC) (module docstring); None for every
    composition without a classifier (p None)."""
    net_sc = np.asarray(tc_net) > 0
    if p is None:
        return [None] * len(net_sc)
    p = np.asarray(p)
    unsure = ((p > 1 - P_SURE) & (p < P_SURE)) | ((p >= 0.5) != net_sc)
    return [UNCERTAIN if u else (SC if s else NOT_SC) for u, s in zip(unsure, net_sc, strict=True)]


def two_part(
    tc_net: np.ndarray,
    std_net: np.ndarray | None,
    tc_trees: np.ndarray | None = None,
    p_sc: np.ndarray | None = None,
    weight: float = EVEN_WEIGHT,
) -> TwoPart:
    """The two-part answer from the ensemble's Tc (N,) and σ (N,) in K (std_net None: a one-member ensemble, σ
    unknown), the trees' Tc (N,) or None, P(SC) (N,) or None, and the ResNet's weight in the consensus."""
    tc_net = np.asarray(tc_net, np.float64)
    std = np.full(len(tc_net), np.nan) if std_net is None else np.asarray(std_net, np.float64)
    mu, sigma = conditional_tc(tc_net, std, tc_trees, weight)
    tc, tc_std = tc_net.copy(), std.copy()
    if p_sc is not None:
        known = np.isfinite(mu)
        e, s = expected_tc(np.asarray(p_sc, np.float64), np.nan_to_num(mu), np.nan_to_num(sigma, nan=np.inf))
        tc[known], tc_std[known] = e[known], s[known]
        tc_std[~np.isfinite(tc_std)] = np.nan
    call = calls(tc_net, p_sc)
    low, high = _interval(call, mu, sigma, tc, tc_std)
    p = None if p_sc is None else np.asarray(p_sc, np.float64)
    return TwoPart(p, mu, sigma, tc, tc_std, low, high, call)


def _interval(
    call: list[str | None], mu: np.ndarray, sigma: np.ndarray, tc: np.ndarray, tc_std: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """[low, high] in K per composition (module docstring); NaN where σ is unknown."""
    c = np.asarray(call, dtype=object)
    plain = np.array([v is None for v in call], bool)  # no classifier: the ensemble's Tc ± 2σ
    low = np.where(c == SC, np.maximum(0.0, mu - 2 * sigma), 0.0)
    low = np.where(plain, np.maximum(0.0, tc - 2 * tc_std), low)
    high = np.where((c == NOT_SC) | plain, tc + 2 * tc_std, mu + 2 * sigma)
    high = np.where(np.isnan(high) & np.isfinite(tc_std), tc + 2 * tc_std, high)  # tc_if_sc unknown
    unknown = ~np.isfinite(high) | ~np.isfinite(low)
    return np.where(unknown, np.nan, low), np.where(unknown, np.nan, high)


def with_two_part(
    table: Any, has_uncertainty: bool, probability: Callable[[np.ndarray], np.ndarray], weight: float = EVEN_WEIGHT
) -> Any:
    """A predictions DataFrame (formula, tc_k, tc_std_k, [tc_trees_k], error: "" where the formula parsed) with the
    columns of `gdmcd predict`: p_superconductor, tc_if_sc_k, tc_k (the expected Tc) and tc_std_k (its σ; NaN
    where unknown), call; the ensemble's own Tc and σ move to tc_ensemble_k and tc_ensemble_std_k.
    probability: x (N, 118) -> P(SC) (N,) (sc_classifier.ScClassifier.probability); weight: the ResNet's in the
    consensus with the trees (TreeModel.consensus_weight)."""
    from gdmcd_core.chem.composition import to_vector

    ok = (table["error"] == "").to_numpy()
    out = table.rename(columns={"tc_k": "tc_ensemble_k", "tc_std_k": "tc_ensemble_std_k"})
    cols = {k: np.full(len(table), np.nan) for k in ("p_superconductor", "tc_if_sc_k", "tc_k", "tc_std_k")}
    call = np.full(len(table), "", dtype=object)
    if ok.any():
        x = np.stack([to_vector(f) for f in table["formula"][ok]]).astype(np.float32)
        trees = table["tc_trees_k"].to_numpy()[ok] if "tc_trees_k" in table else None
        std = table["tc_std_k"].to_numpy()[ok] if has_uncertainty else None
        parts = two_part(table["tc_k"].to_numpy()[ok], std, trees, probability(x), weight)
        for k in cols:
            cols[k][ok] = getattr(parts, k)
        call[ok] = parts.call
    at = out.columns.get_loc("tc_ensemble_k")
    for offset, (k, v) in enumerate([*cols.items(), ("call", call)]):
        out.insert(at + offset, k, v)
    return out


def plus_minus(value: float | None, sigma: float | None, digits: int = 1, unit: str = " K") -> str:
    """'23.1 ± 4.0 K'; σ unknown (None, NaN) or exactly 0 (a one-member ensemble has no spread): '23.1 ± n/a K';
    a σ that rounds to 0 at `digits` keeps one significant digit ('0.0 ± 0.0004 K'), so '± 0.0' is never printed.
    A value that is None or NaN: 'n/a'."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    text = f"{float(value):.{digits}f}"
    if sigma is None or not math.isfinite(float(sigma)) or float(sigma) <= 0:
        return f"{text} ± n/a{unit}"
    s = float(sigma)
    shown = f"{s:.{digits}f}" if round(s, digits) > 0 else f"{s:.1g}"
    return f"{text} ± {shown}{unit}"


def json_number(v: float | None, digits: int = 3, sigma: bool = False) -> float | None:
    """A finite number rounded to `digits` decimals for JSON (one significant digit kept where that would round a
    non-zero value to 0), None for NaN/None: unknown is null, never 0.0. sigma=True: a σ of 0 is unknown too."""
    if v is None or not math.isfinite(float(v)) or (sigma and float(v) <= 0):
        return None
    v = float(v)
    return round(v, digits) if round(v, digits) != 0 or v == 0 else float(f"{v:.1g}")


__all__ = [
    "NOT_SC",
    "P_SURE",
    "SC",
    "UNCERTAIN",
    "TwoPart",
    "calls",
    "conditional_tc",
    "expected_tc",
    "json_number",
    "plus_minus",
    "two_part",
    "with_two_part",
]
