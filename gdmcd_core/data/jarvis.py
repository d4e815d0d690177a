"""The JARVIS-Leaderboard `supercon_chem` split (data README section 7), read as training rows.

The file `jarvis_supercon_chem_split.csv` lists every row of Stanev's 2018 SuperCon copy with its
leaderboard assignment (`train` 13,131 / `test` 3,283). Its formulas are raw (`formula_raw`), so
they go through the data folder's own cleaning rules (`cleaning.clean_formula`, SuperCon
conventions, amounts <= 150); the few that do not parse (about 23 of 16,414, 4 of them test rows)
are kept with `parsed = False` and a zero vector: a leaderboard entry must still predict them, with
a fallback value (bench/model_card.py uses the training median).

No repair rule and no deduplication is applied: the leaderboard scores the rows as published,
duplicates and Stanev's Tc = 0 rows ("no Tc reported") included.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import FormulaError, composition_key, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS
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
    parsed: np.ndarray  # (N,) bool

    def __len__(self) -> int:
        return len(self.tc_k)


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
    parsed = np.zeros(n, bool)
    for i, raw in enumerate(df["formula_raw"].astype(str)):
        try:
            c = clean_formula(raw, max_amount=MAX_SUPERCON_AMOUNT, supercon=True)
            x[i] = to_vector(c.formula)
        except (RejectedFormula, FormulaError):
            continue
        formula[i], key[i], parsed[i] = c.formula, composition_key(dict(c.amounts)), True
    return JarvisRows(
        jarvis_id=df["jarvis_id"].to_numpy(int),
        formula_raw=df["formula_raw"].astype(str).to_numpy(str),
        formula=formula.astype(str),
        key=key.astype(str),
        x=x,
        tc_k=df["tc_k"].to_numpy(np.float32),
        is_test=(df["split"].astype(str) == JARVIS_TEST).to_numpy(),
        parsed=parsed,
    )


def load_jarvis_rows(path: str | Path) -> JarvisRows:
    """Every row of a JARVIS split file (cached per file content)."""
    path = Path(path)
    return _load(str(path), sha256_file(path))


__all__ = ["JARVIS_TEST", "JARVIS_TRAIN", "JarvisRows", "load_jarvis_rows"]
