"""The ranking of the candidate table: phase tiers (mixtures, site misfits, failed checks, known superconductors
last) and the per-family cap, over the score order (evidence/candidates.py builds the table)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from gdmcd_core.design.evidence.diversity import over_family_cap

# (rank_rows flag, column, ascending): with the flag on, the rows ranked first on the column come first.
RANK_TIERS = (
    ("mixtures_last", "is_mixture", True),
    ("misfits_last", "site_misfit", True),
    ("credible_first", "passes_chemistry_checks", False),
    ("known_last", "is_known", True),
)


def rank_rows(table: pd.DataFrame, max_per_family: int = 0, **flags: bool) -> pd.DataFrame:
    """Re-rank: formulas of pinned elements alone last; then, for each flag of RANK_TIERS that is on, in this
    order of precedence: mixtures after every other row, site misfits after every row that fits, rows failing
    a chemistry check (credible_first) after those that pass, known superconductors after the new candidates,
    each within the tiers before it; then rows past `max_per_family` of their family (counted in that order;
    0 = no cap) after the others of their tier; then by the previous rank. Adds family_rank (1 = the family's best row in this order) where
    the table has a family column."""
    unknown = set(flags) - {flag for flag, _, _ in RANK_TIERS}
    if unknown:
        raise ValueError(f"unknown ranking flag(s) {sorted(unknown)}")
    tiers = [("only_pinned_elements", True)]
    tiers += [(col, asc) for flag, col, asc in RANK_TIERS if flags.get(flag) and col in table.columns]
    cols, asc = [c for c, _ in tiers], [a for _, a in tiers]
    table = table.sort_values([*cols, "rank"], ascending=[*asc, True], kind="stable").reset_index(drop=True)
    if "family" in table.columns:
        table["family_rank"] = table.groupby("family", sort=False).cumcount().to_numpy() + 1
        if max_per_family > 0:
            table = table.assign(_past=over_family_cap(list(table["family"]), max_per_family))
            table = table.sort_values([*cols, "_past", "rank"], ascending=[*asc, True, True], kind="stable")
            table = table.drop(columns="_past").reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table


def ranking_of(ctx: Any) -> dict:
    """The `rank_rows` arguments a context asks for."""
    return {"max_per_family": ctx.max_per_family, **{flag: getattr(ctx, flag) for flag, _, _ in RANK_TIERS}}


__all__ = ["RANK_TIERS", "rank_rows", "ranking_of"]
