"""The one element table: symbol <-> Z <-> (block, period, column) for H..Og.

Built once from pymatgen's element data (not typed by hand). The layout is the 32-column
long-form periodic table used by the composition image (paper S1): lanthanides La..Yb and
actinides Ac..No are spread out in columns 3..16, so group g >= 3 sits at column g + 14.
Columns and periods here are 1-based, as a chemist reads them; tensor indices are 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from pymatgen.core import Element as _PmgElement

N_ELEMENTS = 118
BLOCKS = ("s", "p", "d", "f")
N_PERIODS = 7
N_COLUMNS = 32
_PERIOD_ENDS = (2, 10, 18, 36, 54, 86, 118)  # Z of the noble gas closing each period

RADIOACTIVE_MIN_Z = 84  # Po and beyond have no stable isotope (Tc and Pm are handled below)
RADIOACTIVE_EXTRA = ("Tc", "Pm")
TOXIC = ("Hg", "Tl", "Cd", "As", "Pb", "Be")


@dataclass(frozen=True)
class ElementInfo:
    """One element. `column` is 1..32 in the long-form table, `period` 1..7."""

    z: int
    symbol: str
    name: str
    block: str  # block of the outermost electron: "s", "p", "d" or "f"
    period: int
    column: int
    group: int  # IUPAC group 1..18 (3 for lanthanides/actinides)

    @property
    def radioactive(self) -> bool:
        return self.z >= RADIOACTIVE_MIN_Z or self.symbol in RADIOACTIVE_EXTRA


def _period(z: int) -> int:
    return next(i + 1 for i, end in enumerate(_PERIOD_ENDS) if z <= end)


def _column(z: int, group: int) -> int:
    if 57 <= z <= 70:  # La..Yb
        return 3 + (z - 57)
    if 89 <= z <= 102:  # Ac..No
        return 3 + (z - 89)
    return group if group <= 2 else group + 14


def _block(el: _PmgElement) -> str:
    # pymatgen assigns He to the p block by its column; its outermost electrons are 1s.
    return "s" if el.symbol == "He" else el.block


@lru_cache(maxsize=1)
def element_table() -> tuple[ElementInfo, ...]:
    """All 118 elements ordered by Z (index i holds Z = i + 1)."""
    out = []
    for z in range(1, N_ELEMENTS + 1):
        el = _PmgElement.from_Z(z)
        out.append(
            ElementInfo(
                z=z,
                symbol=el.symbol,
                name=el.long_name,
                block=_block(el),
                period=_period(z),
                column=_column(z, el.group),
                group=el.group,
            )
        )
    return tuple(out)


@lru_cache(maxsize=1)
def symbols() -> tuple[str, ...]:
    """Element symbols H..Og; position i is the index of that element in a composition vector."""
    return tuple(e.symbol for e in element_table())


@lru_cache(maxsize=1)
def _symbol_index() -> dict[str, int]:
    return {s: i for i, s in enumerate(symbols())}


def index_of(symbol: str) -> int:
    """0-based index of an element symbol in the 118-vector. Raises ValueError for unknown symbols."""
    try:
        return _symbol_index()[symbol]
    except KeyError:
        raise ValueError(f"unknown element symbol {symbol!r} (expected one of H..Og, case-sensitive)") from None


def info(symbol: str) -> ElementInfo:
    return element_table()[index_of(symbol)]


def radioactive_symbols() -> tuple[str, ...]:
    return tuple(e.symbol for e in element_table() if e.radioactive)


def noble_gas_symbols() -> tuple[str, ...]:
    """The group-18 elements He, Ne, Ar, Kr, Xe, Rn, Og."""
    return tuple(e.symbol for e in element_table() if e.group == 18)


def implausible_symbols() -> tuple[str, ...]:
    """Elements a superconductor search leaves out by default (Z order): the noble gases (no
    compounds under ordinary conditions) and the radioactive elements (no stable isotope)."""
    return tuple(e.symbol for e in element_table() if e.group == 18 or e.radioactive)
