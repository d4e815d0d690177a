"""The cleaned CSVs of the data folder, built from the raw public files with the rules of `cleaning`.

* `clean_nims_primary`  NIMS SuperCon primary.tsv      -> supercon_nims_primary_clean.csv (one row per entry)
* `nims_unique`         those rows, one per comp_key    -> supercon_nims_unique.csv (median/mean Tc, first_year)
* `clean_stanev`        Stanev 2018 SuperCon copy       -> supercon_stanev2018_clean.csv
* `clean_cod`           Konno's 2009 COD formula list   -> cod_nonsc_inorganic_konno2009.csv (inorganic, not in SuperCon)
* `public_hydrides`     Konno hydride.csv + NIMS hydrides -> hydrides_from_public_files.csv

`build_clean_files(raw_dir, out_dir)` runs them all on the raw copies named in `RAW_NAMES`; with its
default `rules=SHARED_2025` it reproduces the shared data folder byte for byte (see `cleaning.Rules`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from gdmcd_core.data.cleaning import (
    CLEAN_NAMES,
    COD_SOURCE,
    KONNO_HYDRIDE_SOURCE,
    MAX_COD_ELEMENTS,
    MAX_SUPERCON_AMOUNT,
    NIMS_SOURCE,
    RAW_NAMES,
    SHARED_2025,
    STANEV_SOURCE,
    STRICT,
    SUSPECT_ENTRIES,
    CleanFormula,
    CleaningReport,
    RejectedFormula,
    Rules,
    clean_formula,
    is_high_pressure_hydride,
    journal_year,
    key_elements,
)
from gdmcd_core.util import atomic_write_csv


def _clean_rows(
    raw_formulas: Iterable[str], report: CleaningReport, max_amount: float | None, supercon: bool, rules: Rules
) -> list[CleanFormula | None]:
    out: list[CleanFormula | None] = []
    for f in raw_formulas:
        report.n_raw += 1
        try:
            out.append(clean_formula(f, max_amount=max_amount, supercon=supercon, rules=rules))
            report.n_kept += 1
        except RejectedFormula as exc:
            report.dropped[exc.reason] += 1
            out.append(None)
    return out


def _base_columns(cleaned: list[CleanFormula]) -> dict[str, list]:
    return {
        "formula": [c.formula for c in cleaned],
        "n_elements": [c.n_elements for c in cleaned],
        "comp_key": [c.key for c in cleaned],
        "parse_flags": [";".join(c.flags) for c in cleaned],
    }


def read_nims_primary(path: str | Path) -> pd.DataFrame:
    """The NIMS primary.tsv: 3 header rows (numbers, long names, short names), tab separated."""
    return pd.read_csv(path, sep="\t", skiprows=2, dtype=str, keep_default_na=False)


def clean_nims_primary(raw: pd.DataFrame, rules: Rules = STRICT) -> tuple[pd.DataFrame, CleaningReport]:
    """NIMS primary rows -> cleaned row table (one row per database entry, suspect rows marked)."""
    report = CleaningReport(CLEAN_NAMES["nims_rows"])
    tc = pd.to_numeric(raw["tc"], errors="coerce").to_numpy(float)
    cleaned = _clean_rows(raw["element"], report, MAX_SUPERCON_AMOUNT, supercon=True, rules=rules)
    ok = np.array([c is not None for c in cleaned]) & np.isfinite(tc)
    report.dropped["no_tc"] += int(np.sum(np.array([c is not None for c in cleaned]) & ~np.isfinite(tc)))
    report.n_kept = int(ok.sum())
    kept = [c for c, k in zip(cleaned, ok, strict=True) if k]
    sub = raw[ok].reset_index(drop=True)
    df = pd.DataFrame(_base_columns(kept))
    df.insert(1, "tc_k", tc[ok])
    df.insert(2, "source", NIMS_SOURCE)
    df.insert(3, "formula_raw", sub["element"].str.strip())
    df.insert(4, "common_name", sub["name"])
    df.insert(5, "structure", sub["str3"])
    df.insert(6, "year", [journal_year(j) for j in sub["journal"]])
    df.insert(7, "journal", sub["journal"])
    df["suspect"] = [SUSPECT_ENTRIES.get((r, t), "") for r, t in zip(df["formula_raw"], df["tc_k"], strict=True)]
    df["high_pressure_hydride"] = [is_high_pressure_hydride(dict(c.amounts)) for c in kept]
    report.notes["suspect"] = int((df["suspect"] != "").sum())
    report.notes["delta_stripped"] = int(df["parse_flags"].str.contains("delta_stripped").sum())
    report.notes["D_as_H"] = int(df["parse_flags"].str.contains("D_as_H").sum())
    return df, report


def nims_unique(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per comp_key (suspect rows excluded), sorted by comp_key.

    tc_k is the median over the entries, tc_k_mean the mean (as the GDMCD code uses), first_year
    the earliest parsed year; formula is the first-listed spelling.
    """
    ok = rows[rows["suspect"].fillna("") == ""]
    g = ok.groupby("comp_key", sort=True)
    out = g.agg(
        formula=("formula", "first"),
        tc_k=("tc_k", "median"),
        source=("source", "first"),
        tc_k_mean=("tc_k", "mean"),
        tc_k_min=("tc_k", "min"),
        tc_k_max=("tc_k", "max"),
        n_entries=("tc_k", "size"),
        first_year=("year", "min"),
        n_elements=("n_elements", "first"),
        high_pressure_hydride=("high_pressure_hydride", "first"),
    ).reset_index()
    return out[[c for c in out.columns if c != "comp_key"] + ["comp_key"]]


def clean_stanev(raw: pd.DataFrame, nims_keys: set[str], rules: Rules = STRICT) -> tuple[pd.DataFrame, CleaningReport]:
    """Stanev 2018 `name,Tc` -> cleaned rows (duplicates kept) with `in_nims_primary`."""
    report = CleaningReport(CLEAN_NAMES["stanev"])
    tc = pd.to_numeric(raw["Tc"], errors="coerce").to_numpy(float)
    cleaned = _clean_rows(raw["name"].astype(str), report, MAX_SUPERCON_AMOUNT, supercon=True, rules=rules)
    ok = np.array([c is not None for c in cleaned]) & np.isfinite(tc)
    report.n_kept = int(ok.sum())
    kept = [c for c, k in zip(cleaned, ok, strict=True) if k]
    base = _base_columns(kept)
    df = pd.DataFrame(
        {
            "formula": base["formula"],
            "tc_k": tc[ok],
            "source": STANEV_SOURCE,
            "formula_raw": raw["name"].astype(str).str.strip()[ok].to_numpy(),
            "n_elements": base["n_elements"],
            "comp_key": base["comp_key"],
            "parse_flags": base["parse_flags"],
        }
    )
    df["in_nims_primary"] = df["comp_key"].isin(nims_keys)
    return df, report


def read_cod_list(path: str | Path) -> list[str]:
    """Konno's COD list: a header line `matter` then one `_chemical_formula_sum` per line."""
    lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    return [ln for ln in lines[1:] if ln.strip()] if lines else []


def clean_cod(
    raw_formulas: list[str], supercon_keys: set[str], supercon_elemsets: set[frozenset[str]], rules: Rules = STRICT
) -> tuple[pd.DataFrame, CleaningReport]:
    """COD formulas -> inorganic non-superconductors, one row per composition.

    Drops organics (C and H both present, Konno's rule), keeps the first row of each comp_key,
    drops compositions found in SuperCon (`supercon_keys`) and ones with more than
    `MAX_COD_ELEMENTS` elements. `elemset_in_supercon` marks element sets that occur in SuperCon.
    """
    report = CleaningReport(CLEAN_NAMES["cod"])
    cleaned = _clean_rows(raw_formulas, report, None, supercon=False, rules=rules)
    seen: set[str] = set()
    rows: list[tuple[str, CleanFormula]] = []
    for raw, c in zip(raw_formulas, cleaned, strict=True):
        if c is None:
            continue
        if {"C", "H"} <= c.elements:
            report.dropped["organic"] += 1
            continue
        key = c.key
        if key in seen:
            report.dropped["duplicate"] += 1
            continue
        seen.add(key)
        if key in supercon_keys:
            report.dropped["in_supercon"] += 1
            continue
        if c.n_elements > MAX_COD_ELEMENTS:
            report.dropped["over_10_elements"] += 1
            continue
        rows.append((raw.strip(), c))
    report.n_kept = len(rows)
    kept = [c for _, c in rows]
    base = _base_columns(kept)
    df = pd.DataFrame(
        {
            "formula": base["formula"],
            "tc_k": 0.0,
            "source": COD_SOURCE,
            "formula_raw": [r for r, _ in rows],
            "n_elements": base["n_elements"],
            "comp_key": base["comp_key"],
            "elemset_in_supercon": [c.elements in supercon_elemsets for c in kept],
            "parse_flags": base["parse_flags"],
        }
    )
    return df, report


def public_hydrides(konno_hydride: pd.DataFrame, nims_rows: pd.DataFrame, rules: Rules = STRICT) -> pd.DataFrame:
    """Konno's hydride.csv (no pressure, no reference) plus the NIMS rows flagged `high_pressure_hydride`."""
    konno = konno_hydride.rename(columns=lambda c: str(c).strip().lstrip("\ufeff"))
    rows = []
    for raw, tc in zip(konno["element"], konno["Tc"], strict=True):
        c = clean_formula(str(raw), rules=rules)
        ref = "Konno et al. repo 2018/hydride.csv (no reference/pressure given)"
        rows.append((c.formula, float(tc), KONNO_HYDRIDE_SOURCE, math.nan, ref, str(raw).strip(), ""))
    hyd = nims_rows[nims_rows["high_pressure_hydride"].astype(bool) & (nims_rows["suspect"].fillna("") == "")]
    for r in hyd.itertuples():
        rows.append((r.formula, float(r.tc_k), NIMS_SOURCE, math.nan, r.journal, r.formula_raw, r.parse_flags))
    cols = ["formula", "tc_k", "source", "pressure_gpa", "reference", "formula_raw", "note"]
    return pd.DataFrame(rows, columns=cols)


def build_clean_files(
    raw_dir: str | Path, out_dir: str | Path, rules: Rules = SHARED_2025, log: Callable[[str], None] = print
) -> dict[str, CleaningReport]:
    """Clean the raw files in `raw_dir` (names as in `RAW_NAMES`) into `out_dir` (names as in `CLEAN_NAMES`).

    With the default `rules=SHARED_2025` the output is byte for byte the shared data folder, so data
    checksums recorded in checkpoint cards match; `rules=STRICT` also drops the SuperCon `...OY`
    (variable oxygen) rows that the shared files read as yttrium, and keeps every digit of the amounts.
    The two files `data.find_data_dir` looks for (SuperCon unique, COD) are written last, so a
    folder holding them holds the full set.
    """
    raw_dir, out_dir = Path(raw_dir), Path(out_dir)
    missing = [n for n in RAW_NAMES.values() if not (raw_dir / n).is_file()]
    if missing:
        raise FileNotFoundError(f"raw files missing in {raw_dir}: {', '.join(missing)}")
    nims_rows, rep_nims = clean_nims_primary(read_nims_primary(raw_dir / RAW_NAMES["nims"]), rules)
    unique = nims_unique(nims_rows)
    stanev_raw = pd.read_csv(raw_dir / RAW_NAMES["stanev"], dtype=str)
    stanev, rep_stanev = clean_stanev(stanev_raw, set(nims_rows["comp_key"]), rules)
    sc_keys = set(nims_rows["comp_key"]) | set(stanev["comp_key"])
    sc_elemsets = {key_elements(k) for k in sc_keys}
    cod, rep_cod = clean_cod(read_cod_list(raw_dir / RAW_NAMES["cod"]), sc_keys, sc_elemsets, rules)
    hydrides = public_hydrides(pd.read_csv(raw_dir / RAW_NAMES["konno_hydride"], dtype=str), nims_rows, rules)
    rep_unique = CleaningReport(CLEAN_NAMES["nims_unique"], n_raw=len(nims_rows), n_kept=len(unique))
    rep_unique.dropped["suspect"] = int((nims_rows["suspect"] != "").sum())
    atomic_write_csv(out_dir / CLEAN_NAMES["nims_rows"], nims_rows)
    atomic_write_csv(out_dir / CLEAN_NAMES["stanev"], stanev)
    atomic_write_csv(out_dir / CLEAN_NAMES["hydrides"], hydrides)
    atomic_write_csv(out_dir / CLEAN_NAMES["cod"], cod)
    atomic_write_csv(out_dir / CLEAN_NAMES["nims_unique"], unique)
    reports = {"nims_rows": rep_nims, "nims_unique": rep_unique, "stanev": rep_stanev, "cod": rep_cod}
    for r in reports.values():
        log(r.line())
    return reports
