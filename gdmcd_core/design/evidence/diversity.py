"""Diversity of a ranking: candidates grouped into families, each family capped near the top.

A design run tends to collapse into one basin of the model (every method's top 20 a variation of Hg-1223 or
Hg-1234). A chemist's shortlist should span families. The family of a candidate is its parent phase
(phases.py), written with its cations and the names of its anions ('HgBa2Ca3Cu4Ox': oxygen variants of one
phase are one family), or, without a parent, its element set ('Ba-Ca-Cu-Hg-O').

`over_family_cap(families, cap)` marks, walking down a ranking, every row after the first `cap` of its family
(a per-family rule in the spirit of maximal marginal relevance, Carbonell & Goldstein, SIGIR 1998): the
candidate table moves those rows below the others of their tier, so that with `DesignConfig.max_per_family`
= 3 the top 20 holds at most 3 candidates of one family whenever the tier has enough other families.
`families_summary(table)` is the overview shown above the results table: family, count and best Tc.

>>> family_of("HgBa2Ca3Cu4O10.2", "Ba2Ca3Cu4HgO10"), family_of("", "Nb3Ge")
('HgBa2Ca3Cu4Ox', 'Ge-Nb')
>>> over_family_cap(["A", "A", "B", "A", "A"], 2).tolist()
[False, False, False, True, True]
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import parse_formula
from gdmcd_core.design.evidence.edits import ANIONS, display_formula, element_set, split_ions


def family_of(parent_formula: str, formula: str) -> str:
    """The family of a candidate: its parent's cations plus 'x' for each anion, else its element set."""
    if not parent_formula:
        return element_set(formula)
    cations, anions = split_ions(parse_formula(parent_formula))
    if not cations:
        return display_formula(parse_formula(parent_formula))
    return display_formula(cations) + "".join(f"{a}x" for a in sorted(anions, key=list(ANIONS).index))


def over_family_cap(families: list[str] | pd.Series, cap: int) -> np.ndarray:
    """(M,) bool, in the given (ranked) order: the row comes after `cap` earlier rows of its family. cap 0: none."""
    seen: dict[str, int] = {}
    out = np.zeros(len(families), dtype=bool)
    if cap <= 0:
        return out
    for i, f in enumerate(families):
        seen[f] = seen.get(f, 0) + 1
        out[i] = seen[f] > cap
    return out


def families_summary(table: pd.DataFrame, tc_column: str = "integer_tc_k") -> pd.DataFrame:
    """One row per family of a ranked candidate table (columns family, rank, integer_formula and `tc_column`):
    family, count, best Tc (K), the best-ranked formula and its rank, families in order of that rank."""
    columns = ["family", "count", "best_tc_k", "best_formula", "best_rank"]
    need = {"family", "rank", "integer_formula", tc_column}
    if not need <= set(table.columns) or not len(table):
        return pd.DataFrame({c: [] for c in columns})
    agg = (
        table.sort_values("rank", kind="stable")
        .groupby("family", sort=False)
        .agg(
            count=("family", "size"),
            best_tc_k=(tc_column, "max"),
            best_formula=("integer_formula", "first"),
            best_rank=("rank", "min"),
        )
        .reset_index()
    )
    return agg.sort_values("best_rank", kind="stable").reset_index(drop=True)[columns]


__all__ = ["families_summary", "family_of", "over_family_cap"]
