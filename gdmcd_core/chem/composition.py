"""Formula parsing and formatting: strings <-> 118-element fraction vectors.

Parsing follows the strict grammar of `formula_syntax` (one formula per string, plain decimal
amounts, hydrates as 'CuSO4·5H2O'); formatting orders elements by pymatgen's Pauling electronegativity. Errors
are `FormulaError` (a ValueError) whose message quotes the bad formula and says what is accepted.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from fractions import Fraction
from functools import cache

import numpy as np
from pymatgen.core import Element

from gdmcd_core.chem.elements import N_ELEMENTS, index_of, symbols
from gdmcd_core.chem.formula_syntax import FormulaError as FormulaError  # re-exported: callers import it from here
from gdmcd_core.chem.formula_syntax import parse_amounts

# Fractions below this are treated as absent when formatting (float32 noise after projection).
FRACTION_EPS = 1e-6
# pymatgen warns for every element without a Pauling electronegativity (He, Ne, Ar, ...) each time its
# `X` is read; formatting falls back to putting such elements last, so the warning is noise on stderr.
PAULING_WARNING = "No Pauling electronegativity"


def parse_formula(formula: str) -> dict[str, float]:
    """Parse a formula into {symbol: amount}, amounts > 0, in the formula's element order.

    >>> parse_formula("Ba0.2La1.8CuO4")
    {'Ba': 0.2, 'La': 1.8, 'Cu': 1.0, 'O': 4.0}

    Hydrates read as their sum ('CuSO4·5H2O' and 'CuSO4.5H2O' -> Cu1 S1 O9 H10). Refused with a
    FormulaError: several formulas in one string, exponent notation, zero, negative, tiny (an
    element below FRACTION_EPS of the atoms) or huge (> formula_syntax.MAX_AMOUNT) amounts, and
    ambiguous dots; see formula_syntax for the grammar.
    """
    return parse_amounts(formula, min_fraction=FRACTION_EPS)


def to_vector(formula: str) -> np.ndarray:
    """Formula -> (118,) float64 fractions summing to 1."""
    amounts = parse_formula(formula)
    vec = np.zeros(N_ELEMENTS, dtype=np.float64)
    for sym, amt in amounts.items():
        vec[index_of(sym)] += amt
    return vec / vec.sum()


def to_vectors(formulas: list[str]) -> np.ndarray:
    """Many formulas -> (B, 118) fractions. Raises FormulaError on the first bad one."""
    return np.stack([to_vector(f) for f in formulas]) if formulas else np.zeros((0, N_ELEMENTS))


def amounts_from_vector(x: np.ndarray, scale: float = 1.0, eps: float = FRACTION_EPS) -> dict[str, float]:
    """(118,) fractions -> {symbol: fraction * scale} for elements present (> eps), in Z order."""
    syms = symbols()
    return {syms[i]: float(x[i]) * scale for i in np.flatnonzero(np.asarray(x) > eps)}


def format_amounts(amounts: dict[str, float], decimals: int = 3) -> str:
    """{symbol: amount} -> formula string ordered by electronegativity (pymatgen's convention).

    Integer amounts print without decimals and 1 is omitted: {'Mg': 1, 'B': 2} -> 'MgB2'.
    """
    if not amounts:
        return ""
    parts = []
    for sym, amt in sorted(((k, float(v)) for k, v in amounts.items() if v > 0), key=lambda kv: _order_key(kv[0])):
        rounded = round(amt, decimals)
        if abs(rounded - round(rounded)) < 10 ** (-decimals) / 2:
            n = int(round(rounded))
            parts.append(sym if n == 1 else f"{sym}{n}")
        else:
            parts.append(f"{sym}{rounded:.{decimals}f}".rstrip("0").rstrip("."))
    return "".join(parts)


@contextmanager
def quiet_pauling() -> Iterator[None]:
    """Silence pymatgen's 'No Pauling electronegativity for He…' warning (and only it) inside the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=PAULING_WARNING)
        yield


@cache
def _order_key(symbol: str) -> tuple[float, str]:
    """Sort key of an element symbol in formulas: Pauling electronegativity (99 where none), then symbol.
    Raises ValueError for an unknown symbol."""
    with quiet_pauling():
        x = Element(symbol).X
    return (x if not math.isnan(x) else 99.0, symbol)


def reduced_formula(formula: str, max_denominator: int = 1000) -> str:
    """The formula divided by the greatest common divisor of its amounts, in `format_amounts` order.

    'Mg2B2' -> 'MgB2', 'Ba4Y2Cu6O14' -> 'YBa2Cu3O7', 'H6Ca1' -> 'CaH6'. Fractional amounts are divided
    by their rational gcd (denominators up to `max_denominator`): 'La1.5Sr0.5Cu1O4' -> 'La3SrCu2O8'.
    Raises FormulaError for a formula that does not parse.
    """
    amounts = parse_formula(formula)
    fr = {s: Fraction(a).limit_denominator(max_denominator) for s, a in amounts.items()}
    g = Fraction(0)
    for f in fr.values():
        g = Fraction(math.gcd(g.numerator * f.denominator, f.numerator * g.denominator), g.denominator * f.denominator)
    return format_amounts({s: float(f / g) for s, f in fr.items()}) if g > 0 else format_amounts(amounts)


def format_vector(x: np.ndarray, scale: float = 1.0, decimals: int = 3) -> str:
    """(118,) fractions -> formula. With scale=N the amounts are atoms per N-atom cell."""
    return format_amounts(amounts_from_vector(x, scale), decimals)


KEY_DECIMALS = 4  # the data files' comp_key rounds atomic fractions to this many decimals


def composition_key(amounts: dict[str, float], decimals: int = KEY_DECIMALS) -> str:
    """The one composition key: elements alphabetical, atomic fractions rounded (the data files' `comp_key`).

    Scaled copies share a key: {'H': 2, 'C': 2} and {'H': 4, 'C': 4} -> 'C0.5000 H0.5000'. Every element
    present is listed, even one whose fraction rounds to 0 ('Cr0.0000'), as in the shared data files.
    """
    total = sum(amounts.values())
    if not total > 0:
        raise ValueError(f"composition {amounts!r} has no positive amount")
    return " ".join(f"{s}{amounts[s] / total:.{decimals}f}" for s in sorted(amounts))


def reduced_key(x: np.ndarray, decimals: int = KEY_DECIMALS) -> str:
    """`composition_key` of a (118,) fraction vector (elements above FRACTION_EPS, i.e. not float noise)."""
    return composition_key(amounts_from_vector(x), decimals)


# The one hydride rule: hydrogen-rich binaries and ternaries (LaH10, H3S, BaReH9, PdH0.8), not dilute
# interstitial H (NbH0.05). PdH0.77 (a hydride superconductor at ambient pressure) has an H fraction of 0.435.
HYDRIDE_MIN_H_FRACTION = 0.4
HYDRIDE_MAX_ELEMENTS = 3


def is_hydride(x: np.ndarray) -> np.ndarray:
    """x: (N, 118) fractions -> (N,) bool: H fraction >= HYDRIDE_MIN_H_FRACTION and <= HYDRIDE_MAX_ELEMENTS elements."""
    x = np.atleast_2d(np.asarray(x))
    return (x[:, 0] >= HYDRIDE_MIN_H_FRACTION - 1e-9) & ((x > FRACTION_EPS).sum(1) <= HYDRIDE_MAX_ELEMENTS)
