"""Data-repair rules for the SuperCon unique table (`supercon_nims_unique.csv`).

Every rule is a small named function that looks at the rows still kept and returns findings
(row label, action, reason, new formula). `repair_supercon` applies them in `RULES` order, so a
row dropped by an earlier rule is not counted again by a later one:

* `oxygen_deviation_symbol`  `...Cu3OY` is O_y (oxygen unknown), not yttrium: the row's oxygen is
  unknown, so it is dropped (removing the spurious Y would still leave O1).
* `oxygen_lost`              cuprates above 30 K whose anion fraction is far below any real cuprate.
* `implausible_element`      elements that cannot be in a bulk superconductor sample (Z > 95, noble gases),
  e.g. nobelium in `Ho1Ba2Cu2.85No0.15O7` (a typo for Nd or Ni).
* `tc_above_family`          Tc far above what the composition's family reaches (`CuCrO2` 132 K is a
  magnetic/structural transition), or a cuprate written without its Cu (`Nd1Ba1.9La0.1O6.86` 83.5 K).
* `high_pressure_hydride`    H-rich rows measured under pressure (no pressure column): flagged, never dropped.
* `coefficient_typo`         cuprates whose Cu or O fraction no cuprate has (`La1.85Sr0.15Cu98Ni0.02O4`).
* `cu_valence_too_low`       cuprates above 30 K whose formal Cu valence is below +1.5 (`Y1Ba2Cu3O4` 92 K: +0.33):
  an amount was lost in transcription (the measured phase is YBa2Cu3O~7). Flag only: the rows stay in the
  networks' data (the committed checkpoints' splits do not move); the superconductor classifier leaves them out of
  its fit (`Dataset.valence_suspect`; the Tc trees can, `TreeConfig.skip_valence_suspect`, off by default).

Actions are "drop", "change" (formula rewritten) and "flag" (kept, the rule's column in `FLAG_COLUMNS` set). The ledger
has one row per finding. Pure functions except `load_raw_formulas` and `write_ledger`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import parse_formula
from gdmcd_core.chem.elements import index_of
from gdmcd_core.chem.valence import PRESENCE_EPS, cu_valence
from gdmcd_core.chem.valence_features import CU_UNDEFINED, FEATURE_NAMES, valence_features
from gdmcd_core.data.cleaning import HIGH_PRESSURE_HYDRIDE_MIN_H_FRACTION, is_high_pressure_hydride
from gdmcd_core.util import atomic_write_csv

# --- element groups -------------------------------------------------------------------------------
ALKALI = frozenset({"Li", "Na", "K", "Rb", "Cs"})
ALKALINE_EARTH = frozenset({"Be", "Mg", "Ca", "Sr", "Ba"})
RARE_EARTH = frozenset(
    {"Sc", "Y", "La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu"}
)
CUPRATE_SPACER = frozenset({"Bi", "Tl", "Hg", "Pb"})  # charge-reservoir cations of the Bi/Tl/Hg/Pb cuprates
NOBLE_GASES = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn", "Og"})
PNICTOGEN_CHALCOGEN = frozenset({"As", "P", "Sb", "Se", "Te", "S"})  # anions of the Fe-based superconductors
ANIONS = frozenset({"O", "F", "Cl", "Br", "I"})  # counted together: Sr2CuO2F2 and Ca2CuO2Cl2 are real cuprates

# --- thresholds (each with the reason for its value) ----------------------------------------------
OXYGEN_LOST_MIN_TC_K = 30.0  # above 30 K a Cu-O compound is a doped cuprate, whose anion sublattice is intact
OXYGEN_LOST_MAX_ANION_FRACTION = 0.3  # real cuprates have O(+F,Cl) fractions 0.4-0.6 (YBa2Cu3O6: 0.5, Sr2CuO2F2: 0.57)
MAX_PLAUSIBLE_Z = 95  # Am (95) has real entries (Am metal, Am-Th-Si); heavier actinides exist only in microgram amounts
FAMILY_FREE_MAX_TC_K = 35.0  # outside the high-Tc families nothing exceeds ~30 K at ambient (Nb3Ge 23 K, MgB2 is a
# boride); the rows above 35 K in the file are Cu-less cuprate typos, WO3 surface claims and CuCrO2's 132 K transition
FULLERIDE_MIN_C_FRACTION = 0.5  # A3C60 and graphite intercalates are carbon-rich (K3C60: 0.95, CaC6: 0.86)
CUPRATE_MAX_CU_FRACTION = 0.4  # no cuprate has more Cu than 1/3 of its atoms (infinite-layer CaCuO2: 0.25)
CUPRATE_MAX_O_FRACTION = 0.7  # nor more than ~2/3 oxygen; higher values are a lost scale factor (`Sm0.33Ba0.67Cu1O7`)
# superconducting cuprates sit at formal Cu valences +1.8 (electron-doped) to +2.6 (chem/valence.py
# CU_VALENCE_WINDOW); +1.5 leaves room for the bookkeeping of carbonate, borate and mixed-valence spacers, and below it
# the composition is too reduced to be a doped cuprate (YBa2Cu3O6, the insulator, is +1.67)
CU_VALENCE_MIN_SC = 1.5
CU_VALENCE_TOL = 1e-3  # a valence within this of the bound is not below it (float32 fractions of x.5 formulas)

# --- rule names, in application order --------------------------------------------------------------
OXYGEN_DEVIATION_SYMBOL = "oxygen_deviation_symbol"
OXYGEN_LOST = "oxygen_lost"
IMPLAUSIBLE_ELEMENT = "implausible_element"
TC_ABOVE_FAMILY = "tc_above_family"
HIGH_PRESSURE_HYDRIDE = "high_pressure_hydride"
COEFFICIENT_TYPO = "coefficient_typo"
CU_VALENCE_TOO_LOW = "cu_valence_too_low"
LEDGER_COLUMNS = ("rule", "action", "formula_before", "formula_after", "tc_k", "reason", "comp_key")
HIGH_PRESSURE_COLUMN = "high_pressure"
VALENCE_SUSPECT_COLUMN = "valence_suspect"
FLAG_COLUMNS = {HIGH_PRESSURE_HYDRIDE: HIGH_PRESSURE_COLUMN, CU_VALENCE_TOO_LOW: VALENCE_SUSPECT_COLUMN}

# A raw SuperCon string whose oxygen amount is unknown: `...Cu3OY` (O_y, sometimes read as yttrium) or a
# trailing amount-less `O` (`Bi2Sr2Ca2Cu3O`), optionally followed by a deviation variable `-Z`.
_RAW_UNKNOWN_OXYGEN = re.compile(r"(?<![A-Z])O(?:Y)?(?:[+-][A-Za-z])?$")
# Without raw strings: the cleaned `...O1Y1` ending that `OY` produces when Y is read as yttrium.
_CLEAN_OY = re.compile(r"O1Y1$")


@dataclass(frozen=True)
class Finding:
    """One rule hit on one row. `label` is the DataFrame index label; `formula_after` only for "change"."""

    label: object
    action: str  # "drop", "change" or "flag"
    reason: str
    formula_after: str | None = None


Rule = Callable[[pd.DataFrame, Mapping[object, dict[str, float]], Mapping[str, Sequence[str]] | None], list[Finding]]


def fractions(amounts: Mapping[str, float]) -> dict[str, float]:
    """{symbol: amount} -> {symbol: atomic fraction}."""
    total = sum(amounts.values())
    return {s: a / total for s, a in amounts.items()}


def is_cuprate(amounts: Mapping[str, float]) -> bool:
    """Cu and O with an alkaline earth, rare earth (incl. Y, La, Sc) or Bi/Tl/Hg/Pb spacer cation."""
    return "Cu" in amounts and "O" in amounts and bool(set(amounts) & (ALKALINE_EARTH | RARE_EARTH | CUPRATE_SPACER))


def family_of(amounts: Mapping[str, float]) -> str | None:
    """The known high-Tc family of a composition, or None.

    Families: "cuprate", "iron_based" (Fe with As/P/Sb/S/Se/Te), "boride" (MgB2, borocarbides),
    "carbon" (fullerides, intercalated graphite), "bismuthate" (Bi-O without Cu: Ba-K-Bi-O, Ba-Pb-Bi-O),
    "nickelate" (Ni-O), "hydride" (H fraction >= 0.5).
    """
    f = fractions(amounts)
    els = set(amounts)
    if is_cuprate(amounts):
        return "cuprate"
    if "Fe" in els and els & PNICTOGEN_CHALCOGEN:
        return "iron_based"
    if "B" in els:
        return "boride"
    if f.get("C", 0.0) >= FULLERIDE_MIN_C_FRACTION:
        return "carbon"
    if "Bi" in els and "O" in els:
        return "bismuthate"
    if "Ni" in els and "O" in els:
        return "nickelate"
    if f.get("H", 0.0) >= HIGH_PRESSURE_HYDRIDE_MIN_H_FRACTION - 1e-9:
        return "hydride"
    return None


# --- the rules ------------------------------------------------------------------------------------

RowCheck = Callable[[object, Mapping[str, object]], str | None]


def _drops(df: pd.DataFrame, reason_of: RowCheck) -> list[Finding]:
    """A "drop" finding for every row whose `reason_of(label, row)` is a reason (row: column -> value)."""
    out = []
    for label, row in zip(df.index, df.to_dict("records"), strict=True):
        reason = reason_of(label, row)
        if reason:
            out.append(Finding(label, "drop", reason))
    return out


def rule_oxygen_deviation_symbol(
    df: pd.DataFrame, amounts: Mapping[object, dict[str, float]], raw: Mapping[str, Sequence[str]] | None
) -> list[Finding]:
    """Rows whose every raw spelling leaves the oxygen amount unknown (`OY`, bare trailing `O`): drop.

    With `raw` (comp_key -> raw strings) the raw strings decide; without it only the cleaned `...O1Y1`
    ending is recognised. A key with at least one well-formed spelling is kept.
    """

    def reason_of(label: object, row: Mapping[str, object]) -> str | None:
        if raw is not None:
            spellings = raw.get(str(row.get("comp_key", "")), ())
            bad = bool(spellings) and all(_RAW_UNKNOWN_OXYGEN.search(s.strip()) for s in spellings)
            shown = spellings[0] if spellings else ""
        else:
            bad = bool(_CLEAN_OY.search(str(row["formula"])))
            shown = ""
        if not bad:
            return None
        if not shown or re.search(r"OY(?:[+-][A-Za-z])?$", shown.strip()):
            what = "'OY' is O_y: Y is the oxygen-deviation variable, not yttrium"
        else:
            what = "O written without an amount"
        return f"oxygen amount unknown in raw {shown!r} ({what})"

    return _drops(df, reason_of)


def rule_oxygen_lost(
    df: pd.DataFrame, amounts: Mapping[object, dict[str, float]], raw: Mapping[str, Sequence[str]] | None = None
) -> list[Finding]:
    """Cuprates with Tc > 30 K whose O+F+Cl+Br+I fraction is < 0.3: the oxygen was lost in transcription."""

    def reason_of(label: object, row: Mapping[str, object]) -> str | None:
        a, tc = amounts[label], float(row["tc_k"])
        if not is_cuprate(a) or tc <= OXYGEN_LOST_MIN_TC_K:
            return None
        anion = sum(v for s, v in fractions(a).items() if s in ANIONS)
        return (
            f"cuprate at {tc:g} K with anion fraction {anion:.3f}" if anion < OXYGEN_LOST_MAX_ANION_FRACTION else None
        )

    return _drops(df, reason_of)


def rule_implausible_element(
    df: pd.DataFrame, amounts: Mapping[object, dict[str, float]], raw: Mapping[str, Sequence[str]] | None = None
) -> list[Finding]:
    """Rows with an element of Z > 95 or a noble gas: symbol typos (`No` for Nd/Ni), never real samples."""

    def reason_of(label: object, row: Mapping[str, object]) -> str | None:
        bad = sorted(s for s in amounts[label] if index_of(s) + 1 > MAX_PLAUSIBLE_Z or s in NOBLE_GASES)
        return f"implausible element(s) {', '.join(bad)} (symbol typo)" if bad else None

    return _drops(df, reason_of)


def rule_tc_above_family(
    df: pd.DataFrame, amounts: Mapping[object, dict[str, float]], raw: Mapping[str, Sequence[str]] | None = None
) -> list[Finding]:
    """Tc > 35 K outside the high-Tc families (`family_of`): a non-superconducting transition or a lost element."""

    def reason_of(label: object, row: Mapping[str, object]) -> str | None:
        tc = float(row["tc_k"])
        if tc > FAMILY_FREE_MAX_TC_K and family_of(amounts[label]) is None:
            return f"Tc {tc:g} K > {FAMILY_FREE_MAX_TC_K:g} K outside every high-Tc family"
        return None

    return _drops(df, reason_of)


def rule_high_pressure_hydride(
    df: pd.DataFrame, amounts: Mapping[object, dict[str, float]], raw: Mapping[str, Sequence[str]] | None = None
) -> list[Finding]:
    """H fraction >= 0.5 and <= 3 elements: measured under pressure that the table does not record. Flag only."""
    return [
        Finding(label, "flag", "high-pressure hydride: Tc needs a pressure the table does not record")
        for label in df.index
        if is_high_pressure_hydride(amounts[label])
    ]


def rule_coefficient_typo(
    df: pd.DataFrame, amounts: Mapping[object, dict[str, float]], raw: Mapping[str, Sequence[str]] | None = None
) -> list[Finding]:
    """Cuprates with Cu fraction > 0.4 or O fraction > 0.7: a lost decimal point or scale factor."""

    def reason_of(label: object, row: Mapping[str, object]) -> str | None:
        a = amounts[label]
        if not is_cuprate(a):
            return None
        f = fractions(a)
        if f["Cu"] > CUPRATE_MAX_CU_FRACTION or f["O"] > CUPRATE_MAX_O_FRACTION:
            return f"cuprate with Cu fraction {f['Cu']:.3f}, O fraction {f['O']:.3f}"
        return None

    return _drops(df, reason_of)


def is_cu_valence_too_low(amounts: Mapping[str, float], tc_k: float) -> float | None:
    """The formal Cu valence (chem/valence.py `cu_valence`) of a cuprate above OXYGEN_LOST_MIN_TC_K when it is below
    CU_VALENCE_MIN_SC, else None."""
    if tc_k <= OXYGEN_LOST_MIN_TC_K or not is_cuprate(amounts):
        return None
    v = cu_valence(amounts)
    return v if v is not None and v < CU_VALENCE_MIN_SC - CU_VALENCE_TOL else None


def cu_valence_too_low_rows(x: np.ndarray, tc_k: np.ndarray) -> np.ndarray:
    """(N,) bool: `is_cu_valence_too_low` over (N, 118) fractions and their Tc (K), vectorized (the Dataset's mask)."""
    x = np.asarray(x, np.float64)
    present = x > PRESENCE_EPS
    spacers = [index_of(s) for s in sorted(ALKALINE_EARTH | RARE_EARTH | CUPRATE_SPACER)]
    cuprate = present[:, index_of("Cu")] & present[:, index_of("O")] & present[:, spacers].any(1)
    v = valence_features(x)[:, FEATURE_NAMES.index("cu_valence")]
    return (
        (np.asarray(tc_k) > OXYGEN_LOST_MIN_TC_K)
        & cuprate
        & (v != CU_UNDEFINED)
        & (v < CU_VALENCE_MIN_SC - CU_VALENCE_TOL)
    )


def rule_cu_valence_too_low(
    df: pd.DataFrame, amounts: Mapping[object, dict[str, float]], raw: Mapping[str, Sequence[str]] | None = None
) -> list[Finding]:
    """Cuprates with Tc > 30 K and a formal Cu valence below +1.5: an amount was lost in transcription. Flag only."""
    out = []
    for label, row in df.iterrows():
        v = is_cu_valence_too_low(amounts[label], float(row["tc_k"]))
        if v is not None:
            reason = f"cuprate at {float(row['tc_k']):g} K with formal Cu valence {v:+.2f} < +{CU_VALENCE_MIN_SC:g}"
            out.append(Finding(label, "flag", reason))
    return out


RULES: tuple[tuple[str, Rule], ...] = (
    (OXYGEN_DEVIATION_SYMBOL, rule_oxygen_deviation_symbol),
    (OXYGEN_LOST, rule_oxygen_lost),
    (IMPLAUSIBLE_ELEMENT, rule_implausible_element),
    (TC_ABOVE_FAMILY, rule_tc_above_family),
    (HIGH_PRESSURE_HYDRIDE, rule_high_pressure_hydride),
    (COEFFICIENT_TYPO, rule_coefficient_typo),
    (CU_VALENCE_TOO_LOW, rule_cu_valence_too_low),
)


def repair_supercon(
    df: pd.DataFrame,
    raw_by_key: Mapping[str, Sequence[str]] | None = None,
    rules: Sequence[tuple[str, Rule]] = RULES,
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, int]]:
    """Apply `rules` in order to a SuperCon table (columns `formula`, `tc_k`, optional `comp_key`).

    Args:
        df: (N rows) the unique table as loaded; its index labels are kept in the output.
        raw_by_key: comp_key -> raw source strings (`raw_formulas_by_key`); rule a falls back to the
            cleaned formula when None.
    Returns:
        (repaired table (M <= N rows, dropped rows removed, changed formulas rewritten, a bool column per flag
        rule added: `FLAG_COLUMNS`), ledger (one row per finding, `LEDGER_COLUMNS`), {rule name: findings}).
    """
    work = df.copy()
    amounts = {label: parse_formula(str(f)) for label, f in work["formula"].items()}
    flagged: dict[str, set[object]] = {column: set() for column in FLAG_COLUMNS.values()}
    ledger: list[dict[str, object]] = []
    counts: dict[str, int] = {}
    for name, rule in rules:
        findings = rule(work, amounts, raw_by_key)
        counts[name] = len(findings)
        drop = []
        for fd in findings:
            row = work.loc[fd.label]
            ledger.append(
                {
                    "rule": name,
                    "action": fd.action,
                    "formula_before": row["formula"],
                    "formula_after": fd.formula_after
                    if fd.action == "change"
                    else ("" if fd.action == "drop" else row["formula"]),
                    "tc_k": float(row["tc_k"]),
                    "reason": fd.reason,
                    "comp_key": row.get("comp_key", ""),
                }
            )
            if fd.action == "drop":
                drop.append(fd.label)
            elif fd.action == "change":
                work.loc[fd.label, "formula"] = fd.formula_after
                amounts[fd.label] = parse_formula(str(fd.formula_after))
            elif fd.action == "flag":
                flagged[FLAG_COLUMNS[name]].add(fd.label)
        work = work.drop(index=drop)
    for column, labels in flagged.items():
        work[column] = [label in labels for label in work.index]
    return work, pd.DataFrame(ledger, columns=list(LEDGER_COLUMNS)), counts


# --- I/O helpers ----------------------------------------------------------------------------------


def raw_formulas_by_key(primary: pd.DataFrame) -> dict[str, list[str]]:
    """Row table with `comp_key` and `formula_raw` (supercon_nims_primary_clean.csv) -> comp_key -> raw strings."""
    out: dict[str, list[str]] = {}
    for key, raw in zip(primary["comp_key"].astype(str), primary["formula_raw"].astype(str), strict=True):
        out.setdefault(key, []).append(raw)
    return out


def load_raw_formulas(path: str | Path) -> dict[str, list[str]]:
    """Read supercon_nims_primary_clean.csv and map comp_key -> raw strings."""
    return raw_formulas_by_key(pd.read_csv(path, usecols=["comp_key", "formula_raw"]))


def write_ledger(ledger: pd.DataFrame, path: str | Path) -> None:
    """Write the ledger CSV atomically."""
    atomic_write_csv(path, ledger)
