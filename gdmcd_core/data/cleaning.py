"""Raw public files -> the cleaned CSVs of the data folder (rules of `shared/data/README.md`).

One formula rule set for every source (`clean_formula`), then one function per file:

* `clean_nims_primary`  NIMS SuperCon primary.tsv      -> supercon_nims_primary_clean.csv (one row per entry)
* `nims_unique`         those rows, one per comp_key    -> supercon_nims_unique.csv (median/mean Tc, first_year)
* `clean_stanev`        Stanev 2018 SuperCon copy       -> supercon_stanev2018_clean.csv
* `clean_cod`           Konno's 2009 COD formula list   -> cod_nonsc_inorganic_konno2009.csv (inorganic, not in SuperCon)
* `public_hydrides`     Konno hydride.csv + NIMS hydrides -> hydrides_from_public_files.csv

`build_clean_files(raw_dir, out_dir)` runs them all on the raw copies named in `RAW_NAMES`; with its
default `rules=SHARED_2025` it reproduces the shared data folder byte for byte (see `Rules`).
Formulas: `Ba0.2La1.8Cu1O4-Y` -> `Ba0.2La1.8Cu1O4` (flag `delta_stripped`); `D2S1` -> `H2S1`
(flag `D_as_H`); rows with a variable (`Cu3Oz`, `OX`), a placeholder symbol (`M`, `R`, `T`), a
zero amount, leftover characters or (SuperCon only) an amount over 150 are dropped.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from gdmcd_core.chem.composition import KEY_DECIMALS, composition_key  # noqa: F401 (re-exported)
from gdmcd_core.chem.elements import symbols

MAX_Z = 103  # the README's tokenizer accepts real elements up to Lr
MAX_SUPERCON_AMOUNT = 150.0  # larger SuperCon amounts are lost decimal points (`Cu285`, `O6050`)
# The data README's `high_pressure_hydride` flag: H fraction >= this and at most this many elements. Narrower than
# the hydride rule of training and evaluation (chem.composition.HYDRIDE_MIN_H_FRACTION, 0.4: PdH0.77 counts there).
HIGH_PRESSURE_HYDRIDE_MIN_H_FRACTION = 0.5
HIGH_PRESSURE_HYDRIDE_MAX_ELEMENTS = 3
MAX_COD_ELEMENTS = 10  # the cleaned COD list holds compositions of at most this many elements

NIMS_SOURCE = "NIMS_SuperCon_primary"
STANEV_SOURCE = "Stanev2018_SuperCon_via_3DSC"
COD_SOURCE = "COD_via_Konno2021_2009list"
KONNO_HYDRIDE_SOURCE = "Konno2021_repo_hydride.csv"

# Raw file names inside `<data>/raw/` (as in the shared data folder).
RAW_NAMES = {
    "nims": "nims_supercon_primary.tsv",
    "stanev": "Supercon_data_by_2018_Stanev.csv",
    "cod": "konno2009_cod_chemical_formula_sum_overlap_removed_2.csv",
    "konno_hydride": "konno2018_hydride.csv",
}
CLEAN_NAMES = {
    "nims_rows": "supercon_nims_primary_clean.csv",
    "nims_unique": "supercon_nims_unique.csv",
    "stanev": "supercon_stanev2018_clean.csv",
    "cod": "cod_nonsc_inorganic_konno2009.csv",
    "hydrides": "hydrides_from_public_files.csv",
}

# Entries kept in the row file but excluded from the unique file: (raw formula, Tc in K) -> reason.
SUSPECT_ENTRIES: dict[tuple[str, float], str] = {
    ("Pb2C1Ag2O6", 323.0): "suspect_tc:PbCO3.2PbO+Ag2O 323K",
    ("Er1Ba2Cu3O7-X", 275.0): "suspect_tc:ErBa2Cu3O7 275K",
    ("Cs1Eu1Fe4As4", 287.0): "suspect_tc:CsEuFe4As4 reported ~35K",
    ("C1S1", 287.7): "retracted:C-S-H Nature 586(2020)373 retracted 2022",
}

_DELTA = re.compile(r"[+-][A-Za-z]$")  # one trailing oxygen-deviation variable: `O7-Y`, `O6+z`, `O4-d`
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d*)?|\.\d+)?")  # amount: `2`, `0.5`, `.5`, `11.`
_VARIABLE_LETTERS = set("xyzdwnXYZDW")  # lower-case or placeholder letters seen as amounts (`Oz`, `Ox`)
# SuperCon writes every amount, so an amount-less `O` followed by a final amount-less `Y` is `O_y`, not yttrium
# (`Y1Ba2Cu3OY` would otherwise read as Y2Ba2Cu3O). COD uses Hill order, where `...OY` is real (YOCl: `ClOY`).
_SUPERCON_OXYGEN_Y = re.compile(r"(?<![a-z])O(?=Y$)")
_YEAR_PAREN = re.compile(r"\((1[89]\d\d|20\d\d)\)")
_YEAR_ARXIV = re.compile(r"cond-mat/(\d\d)(\d\d)", re.IGNORECASE)
_YEAR_ANY = re.compile(r"(?<!\d)(19\d\d|20[0-2]\d)(?!\d)")


class RejectedFormula(ValueError):
    """A raw formula the cleaning drops. `reason` is one of `REJECT_REASONS`."""

    def __init__(self, raw: str, reason: str, detail: str) -> None:
        super().__init__(f"formula {raw!r} dropped ({reason}): {detail}")
        self.raw = raw
        self.reason = reason


REJECT_REASONS = ("empty", "variable", "placeholder", "zero_amount", "amount_over_150", "malformed")


@dataclass(frozen=True)
class Rules:
    """The two choices where the shared files (cleaned 2025-11-24) and the stricter reading differ."""

    oy_is_variable: bool = True  # SuperCon `...Cu3OY` is O_y (row dropped); False reads Y as yttrium (-> Y2Ba2Cu3O1)
    amount_digits: int | None = None  # significant digits of amounts in `formula`; None keeps them all

    def format_amount(self, value: float) -> str:
        """Amount as text: 1.0 -> '1', .5 -> '0.5'; never in exponent notation."""
        if self.amount_digits is None:
            return f"{round(value, 9):.9f}".rstrip("0").rstrip(".")
        text = f"{value:.{self.amount_digits}g}"
        if "e" in text:
            text = np.format_float_positional(value, precision=self.amount_digits, fractional=False, trim="-")
        return text


STRICT = Rules()  # README rules applied literally, amounts kept exactly
SHARED_2025 = Rules(oy_is_variable=False, amount_digits=6)  # reproduces the shared data folder byte for byte


@dataclass(frozen=True)
class CleanFormula:
    """A cleaned formula: `amounts` in source order (repeated elements merged), amounts > 0."""

    formula: str  # e.g. "Ba0.2La1.8Cu1O4": source order, every amount written in canonical form
    amounts: tuple[tuple[str, float], ...]
    flags: tuple[str, ...] = ()  # "delta_stripped", "D_as_H"

    @property
    def key(self) -> str:
        return composition_key(dict(self.amounts))

    @property
    def elements(self) -> frozenset[str]:
        return frozenset(s for s, _ in self.amounts)

    @property
    def n_elements(self) -> int:
        return len(self.amounts)

    def fraction(self, symbol: str) -> float:
        total = sum(a for _, a in self.amounts)
        return dict(self.amounts).get(symbol, 0.0) / total


def _allowed_symbols() -> frozenset[str]:
    return frozenset(symbols()[:MAX_Z])


_ALLOWED = _allowed_symbols()


def clean_formula(
    raw: str, max_amount: float | None = None, supercon: bool = False, rules: Rules = STRICT
) -> CleanFormula:
    """Apply the README's formula rules to one raw string.

    Args:
        raw: the formula as in the source, e.g. "Y1Ba2Cu3O7-Y", "ClH9IO13Sm".
        max_amount: drop the formula if any amount exceeds this (SuperCon files: `MAX_SUPERCON_AMOUNT`).
        supercon: SuperCon conventions (every amount written), so a final amount-less `OY` is `O_y`.
        rules: `STRICT` (default) or `SHARED_2025` (the shared folder's reading of `OY` and amounts).

    Returns:
        The cleaned formula. Raises `RejectedFormula` (a ValueError naming the formula and the reason).

    >>> clean_formula("Y1Ba2Cu3O7-Y").formula
    'Y1Ba2Cu3O7'
    >>> clean_formula("D2S1").formula, clean_formula("D2S1").flags
    ('H2S1', ('D_as_H',))
    """
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        raise RejectedFormula(str(raw), "empty", "no formula")
    flags: list[str] = []
    stripped = _DELTA.sub("", text)
    if stripped != text:
        text = stripped
        flags.append("delta_stripped")
    if supercon and rules.oy_is_variable and _SUPERCON_OXYGEN_Y.search(text):
        raise RejectedFormula(raw, "variable", "oxygen amount written as the variable Y ('OY')")
    amounts = _read_tokens(raw, text, max_amount, flags)
    formula = "".join(f"{s}{rules.format_amount(a)}" for s, a in amounts.items())
    return CleanFormula(formula=formula, amounts=tuple(amounts.items()), flags=tuple(flags))


def _read_tokens(raw: str, text: str, max_amount: float | None, flags: list[str]) -> dict[str, float]:
    """Element[amount] tokens of `text` summed per element; appends "D_as_H" to `flags` when D is read as H."""
    amounts: dict[str, float] = {}
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() != pos:
            break
        symbol, number = m.group(1), m.group(2)
        if symbol == "D":
            symbol = "H"
            if "D_as_H" not in flags:
                flags.append("D_as_H")
        amount = _token_amount(raw, symbol, number, max_amount)
        amounts[symbol] = amounts.get(symbol, 0.0) + amount
        pos = m.end()
    if pos != len(text) or not amounts:
        rest = text[pos:]
        reason = "variable" if rest[:1] in _VARIABLE_LETTERS else "malformed"
        raise RejectedFormula(raw, reason, f"cannot read {rest!r} as Element[amount]")
    return amounts


def _token_amount(raw: str, symbol: str, number: str, max_amount: float | None) -> float:
    """The amount of one token, after checking its symbol is an element and its amount is allowed."""
    if symbol not in _ALLOWED:
        reason = "variable" if len(symbol) == 2 and symbol[1] in _VARIABLE_LETTERS else "placeholder"
        raise RejectedFormula(raw, reason, f"{symbol!r} is not an element (Z <= {MAX_Z})")
    amount = float(number) if number else 1.0
    if amount == 0:
        raise RejectedFormula(raw, "zero_amount", f"amount of {symbol} is 0")
    if max_amount is not None and amount > max_amount:
        raise RejectedFormula(raw, "amount_over_150", f"amount {number} of {symbol} exceeds {max_amount:g}")
    return amount


def key_elements(key: str) -> frozenset[str]:
    """Element set of a comp_key: 'Cu0.1429 La0.2571 O0.5714' -> {'Cu', 'La', 'O'}."""
    return frozenset(part.rstrip("0123456789.") for part in key.split())


def is_high_pressure_hydride(amounts: Mapping[str, float]) -> bool:
    """The data README's rule: H atomic fraction >= 0.5 and at most 3 elements (e.g. La1H10, H2S1).

    `amounts`: {symbol: amount} (a `CleanFormula`'s `dict(c.amounts)` or a parsed formula).
    """
    h = amounts.get("H", 0.0) / sum(amounts.values())
    return len(amounts) <= HIGH_PRESSURE_HYDRIDE_MAX_ELEMENTS and h >= HIGH_PRESSURE_HYDRIDE_MIN_H_FRACTION - 1e-9


def journal_year(journal: str) -> float:
    """Publication year from a SuperCon journal string, best effort; NaN when there is none.

    Tried in order: a year in parentheses ('Jpn.J.Appl.Phys., 26(1987)L223' -> 1987), an arXiv id
    ('cond-mat/1412.0460' -> 2014), then the first free-standing 4-digit year ('Plenum Press, 1976, p137').
    """
    if not isinstance(journal, str):
        return math.nan
    if m := _YEAR_PAREN.search(journal):
        return float(m.group(1))
    if m := _YEAR_ARXIV.search(journal):
        yy = int(m.group(1))
        return float(1900 + yy if yy >= 90 else 2000 + yy)
    if m := _YEAR_ANY.search(journal):
        return float(m.group(1))
    return math.nan


@dataclass
class CleaningReport:
    """Counts of one file's cleaning: rows read, kept, and dropped per reason."""

    name: str
    n_raw: int = 0
    n_kept: int = 0
    dropped: Counter = field(default_factory=Counter)
    notes: dict[str, int] = field(default_factory=dict)

    def line(self) -> str:
        drops = ", ".join(f"{k} {v}" for k, v in sorted(self.dropped.items()) if v) or "none"
        notes = "".join(f"; {k} {v}" for k, v in self.notes.items())
        return f"{self.name}: {self.n_kept} / {self.n_raw} kept (dropped: {drops}){notes}"
