"""Candidate filters: named checks a chemist applies to a candidate table (CLI --filter, the app's checkboxes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from gdmcd_core.design.stability.hull import STABLE_THRESHOLD_EV

CANDIDATE_FILTERS: dict[str, tuple[str, str, Any]] = {
    "charge_neutral": ("charge-neutral (SMACT)", "charge_neutral", True),
    "electronegativity_ok": ("passes the electronegativity test", "electronegativity_ok", True),
    "not_radioactive": ("no radioactive elements", "radioactive", False),
    "not_toxic": ("no toxic elements", "toxic", False),
    "known_element_set": ("element set seen in training", "elements_seen_in_training", True),
    "stable": (f"within {STABLE_THRESHOLD_EV:g} eV/atom of the convex hull", "e_hull_ev_atom", None),
    "cu_valence_plausible": ("Cu valence in the cuprate window (or no Cu)", "cu_valence_plausible", None),
    "not_known": ("not a known superconductor", "is_known", False),
    "not_mixture": ("not a mixture (known compound + binaries)", "is_mixture", False),
    "site_fit": ("substitutions fit their sites (radius within 15 %)", "site_misfit", False),
}


def available_filters(table: pd.DataFrame) -> dict[str, str]:
    """{filter key: label} for the filters whose column the table has."""
    return {k: label for k, (label, col, _) in CANDIDATE_FILTERS.items() if col in table.columns}


def _truthy(s: pd.Series) -> pd.Series:
    return s.astype(str).str.strip().str.lower().isin(("true", "1", "yes"))


def filter_candidates(table: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """Rows passing every chosen filter (unknown keys and missing columns are ignored)."""
    out = table
    for k in keys:
        if k not in CANDIDATE_FILTERS:
            continue
        _, col, want = CANDIDATE_FILTERS[k]
        if col not in out.columns:
            continue
        if k == "stable":  # e_hull <= threshold; an empty e_hull (not computed) fails
            out = out[pd.to_numeric(out[col], errors="coerce") <= STABLE_THRESHOLD_EV]
        elif k == "cu_valence_plausible":  # empty = no Cu, or undefined: passes
            s = out[col].astype(str).str.strip().str.lower()
            out = out[~s.isin(("false", "0", "no"))]
        else:
            out = out[_truthy(out[col]) == want]
    return out
