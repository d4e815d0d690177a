"""Candidate filters: named checks a chemist applies to a candidate table (CLI --filter, the app's checkboxes)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

CANDIDATE_FILTERS: dict[str, tuple[str, str, Any]] = {
    "charge_neutral": ("charge-neutral (SMACT)", "charge_neutral", True),
    "electronegativity_ok": ("passes the electronegativity test", "electronegativity_ok", True),
    "not_radioactive": ("no radioactive elements", "radioactive", False),
    "not_toxic": ("no toxic elements", "toxic", False),
    "known_element_set": ("element set seen in training", "elements_seen_in_training", True),
    "stable": ("predicted stable (E_f < 0)", "formation_energy_ev_atom", None),
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
        if want is None:  # numeric: E_f < 0
            out = out[pd.to_numeric(out[col], errors="coerce") < 0]
        else:
            out = out[_truthy(out[col]) == want]
    return out
