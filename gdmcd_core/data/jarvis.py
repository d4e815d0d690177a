"""The JARVIS-Leaderboard `supercon_chem` split (data README section 7), read as training rows.

The file `jarvis_supercon_chem_split.csv` lists every row of Stanev's 2018 SuperCon copy with its
leaderboard assignment (`train` 13,131 / `test` 3,283). Its formulas are raw (`formula_raw`), so
they go through the data folder's own cleaning rules (`cleaning.clean_formula`, SuperCon
conventions, amounts <= 150). The rows that do not parse (16 of the 3,283 test rows) are kept with
`parsed = False`, so no model trains on them, but a leaderboard entry must still predict them.
`estimated_reading` reads them as a chemist would, where it can: an element written with amount 0
is left out, an oxygen-deviation suffix (`O10=z`, `O7-d`) is dropped, and an unknown oxygen amount
(`...CuOY`, where Y is the variable) is set by charge neutrality with the other elements at their
typical valence (`chem.valence.typical_valence`; no estimate if one of them has none). Such rows
have `estimated = True` and their fractions in `x`; the others keep a zero vector and take a fallback
value (bench/model_card.py uses the training median).

No repair rule and no deduplication is applied: the leaderboard scores the rows as published,
duplicates and Stanev's Tc = 0 rows ("no Tc reported") included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import FormulaError, composition_key, parse_formula, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS
from gdmcd_core.chem.valence import typical_valence
from gdmcd_core.data.cleaning import MAX_SUPERCON_AMOUNT, RejectedFormula, clean_formula
from gdmcd_core.util import sha256_file

JARVIS_TRAIN, JARVIS_TEST = "train", "test"  # values of the file's `split` column


@dataclass(frozen=True)
class JarvisRows:
    """All rows of the split file, in file order. x: (N, 118) float32 fractions (zeros where not parsed)."""

    jarvis_id: np.ndarray  # (N,) int: row number in Stanev's file
    formula_raw: np.ndarray  # (N,) str, as published
    formula: np.ndarray  # (N,) str, cleaned ("" where not parsed)
    key: np.ndarray  # (N,) str composition key (cleaning.composition_key; "" where not parsed)
    x: np.ndarray
    tc_k: np.ndarray  # (N,) float32, K
    is_test: np.ndarray  # (N,) bool: leaderboard test row
    parsed: np.ndarray  # (N,) bool: read as published (the rows a model may train on)
    estimated: np.ndarray  # (N,) bool: not parsed as published, read by `estimated_reading` (x filled)

    def __len__(self) -> int:
        return len(self.tc_k)


_ZERO_AMOUNT = re.compile(r"[A-Z][a-z]?0(?![.\d])")  # "Sr0" in La2Sr0Cu0.8Zn0.2O4
_DEVIATION_SUFFIX = re.compile(r"(?<=\d)[=+-][a-z]$")  # "O10=z", "O7-d": the deviation itself is unknown
_UNKNOWN_OXYGEN = re.compile(r"OY$")  # "...Cu2OY": oxygen amount y unknown (not yttrium)


def _clean(formula: str) -> tuple[str, dict[str, float]]:
    c = clean_formula(formula, max_amount=MAX_SUPERCON_AMOUNT, supercon=True)
    return c.formula, dict(c.amounts)


def estimated_reading(raw: str) -> str | None:
    """A cleaned formula for a raw SuperCon string the cleaning rules reject, or None (module docstring)."""
    reading = _estimate(raw)
    return None if reading is None else reading[0]


def _estimate(raw: str) -> tuple[str, dict[str, float]] | None:
    """estimated_reading's (cleaned formula, amounts), or None."""
    text = _DEVIATION_SUFFIX.sub("", _ZERO_AMOUNT.sub("", raw.strip()))
    unknown_oxygen = bool(_UNKNOWN_OXYGEN.search(text))
    if unknown_oxygen:
        try:
            cations = parse_formula(text[:-2])
        except (FormulaError, ValueError):
            return None
        valences = [typical_valence(el) for el in cations]
        if not cations or any(v is None or v <= 0 for v in valences):
            return None
        charge = sum(v * n for v, n in zip(valences, cations.values(), strict=True))
        text = text[:-2] + f"O{round(charge / 2, 3):g}"
    if text == raw.strip():
        return None
    try:
        return _clean(text)
    except (RejectedFormula, FormulaError):
        return None


@lru_cache(maxsize=2)
def _load(path: str, digest: str) -> JarvisRows:
    df = pd.read_csv(path)
    missing = {"jarvis_id", "formula_raw", "tc_k", "split"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing columns {sorted(missing)}")
    bad_split = set(df["split"].astype(str)) - {JARVIS_TRAIN, JARVIS_TEST}
    if bad_split:
        raise ValueError(f"{path}: split must be 'train' or 'test', found {sorted(bad_split)}")
    n = len(df)
    x = np.zeros((n, N_ELEMENTS), np.float32)
    formula = np.full(n, "", dtype=object)
    key = np.full(n, "", dtype=object)
    parsed, estimated = np.zeros(n, bool), np.zeros(n, bool)
    for i, raw in enumerate(df["formula_raw"].astype(str)):
        try:
            formula[i], amounts = _clean(raw)
            parsed[i] = True
        except (RejectedFormula, FormulaError):
            reading = _estimate(raw)
            if reading is None:
                continue
            (formula[i], amounts), estimated[i] = reading, True
        x[i], key[i] = to_vector(formula[i]), composition_key(amounts)
    return JarvisRows(
        jarvis_id=df["jarvis_id"].to_numpy(int),
        formula_raw=df["formula_raw"].astype(str).to_numpy(str),
        formula=formula.astype(str),
        key=key.astype(str),
        x=x,
        tc_k=df["tc_k"].to_numpy(np.float32),
        is_test=(df["split"].astype(str) == JARVIS_TEST).to_numpy(),
        parsed=parsed,
        estimated=estimated,
    )


def load_jarvis_rows(path: str | Path) -> JarvisRows:
    """Every row of a JARVIS split file (cached per file content)."""
    path = Path(path)
    return _load(str(path), sha256_file(path))


__all__ = ["JARVIS_TEST", "JARVIS_TRAIN", "JarvisRows", "estimated_reading", "load_jarvis_rows"]
