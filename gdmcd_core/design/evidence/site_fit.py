"""Site fit of a substitution: how much the ion put on a site differs in size from the ion it replaces.

`radius_mismatch(new, old, parent)` is |r_new - r_old| / r_old, with both radii taken at the coordination of
the replaced ion's site in the parent compound. Radii are Shannon's effective ionic radii (Shannon, Acta
Cryst. A32, 751 (1976), via pymatgen's `Species.get_shannon_radius`), oxidation states from the project's
valence rules (chem/valence.py):

* the replaced ion: `typical_valence` of its element (Ba +2, Y +3, Cu +2, Hg +2, Tl +3, Bi +3, La +3, ...),
  else its lowest positive listed state;
* the new ion: its common state (pymatgen's `common_oxidation_states`; all listed states when it has no
  common one) nearest to the replaced ion's, isovalent when it can be (Sr +2 for Ba +2; La +3 for Sr +2
  when it cannot); ties go to its `typical_valence` (Tl +3 for Hg +2), then to the smaller charge.
  A transition-metal ion listed with two spin states is taken high-spin, as in most oxides.

Coordination (`site_coordination`): the crystal structure of a candidate is unknown, so each site gets the
coordination it has in the common oxide structures: CN VIII for the large A-site cations (alkali metals
Na-Cs, alkaline earths Ca-Ba, Y and the lanthanides: the A site between the CuO2 planes of the layered
cuprates and of the perovskites), CN VI (octahedral) for every other cation and for anions. When the
species has no Shannon radius at that CN, the radius at the nearest listed CN is used (Be2+ is listed for
III, IV and VI only, so it is compared at VI); with no radius for the state at all, the metallic radius.

In an intermetallic parent (no anion former, chem/valence.ANION_FORMERS: MgB2, Nb3Sn) ionic radii do not
apply and both radii are metallic radii (pymatgen `Element.metallic_radius`, else `atomic_radius`), as in
Hume-Rothery's rule for substitutional alloys.

`SITE_MISMATCH_MAX` = 0.15: Goldschmidt's rule for the isomorphous substitution of ions (V. M. Goldschmidt,
Geochemische Verteilungsgesetze der Elemente VII, 1926) and Hume-Rothery's size-factor rule for solid
solutions of metals (W. Hume-Rothery, The Structure of Metals and Alloys, 1934) both allow radii that differ
by up to about 15 %. Past it a substitution is unlikely to keep the parent's structure.

>>> round(radius_mismatch("Sr", "Ba", {"Hg": 1, "Ba": 2, "Ca": 3, "Cu": 4, "O": 10}), 3)  # 1.26 vs 1.42 A
0.113
>>> round(radius_mismatch("Mg", "Ca", {"Hg": 1, "Ba": 2, "Ca": 3, "Cu": 4, "O": 10}), 3)  # 0.89 vs 1.12 A
0.205
"""

from __future__ import annotations

import warnings
from functools import cache

from pymatgen.core import Element, Species

from gdmcd_core.chem.valence import ANION_FORMERS, oxidation_states, typical_valence

SITE_MISMATCH_MAX = 0.15  # relative radius difference; see the module docstring (Goldschmidt, Hume-Rothery)
# Large cations that sit on A sites (CN VIII) in the layered cuprates and perovskites.
A_SITE = frozenset(
    ("Na", "K", "Rb", "Cs", "Ca", "Sr", "Ba", "Y")
    + ("La", "Ce", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")
)
_ROMAN = {"I": 1, "II": 2, "III": 3, "IV": 4, "V": 5, "VI": 6, "VII": 7, "VIII": 8, "IX": 9, "X": 10}
_ROMAN.update({"XI": 11, "XII": 12, "XIV": 14})


def is_ionic(parent: dict[str, float]) -> bool:
    """True when the parent holds an anion former (an oxide, halide, chalcogenide, pnictide)."""
    return any(s in ANION_FORMERS for s in parent)


def site_coordination(old: str, parent: dict[str, float]) -> int:
    """The coordination number assumed for the site of element `old` in `parent` (module docstring).

    >>> site_coordination("Ca", {"Hg": 1, "Ba": 2, "Ca": 2, "Cu": 3, "O": 8}), site_coordination("Cu", {"Cu": 1, "O": 1})
    (8, 6)
    """
    return 8 if old in A_SITE and is_ionic(parent) else 6


def _state_of_replaced(symbol: str) -> int | None:
    v = typical_valence(symbol)
    if v is not None:
        return int(round(v))
    positive = [s for s in oxidation_states(symbol) if s > 0]
    return min(positive) if positive else None


def ion_states(new: str, old: str) -> tuple[int | None, int | None]:
    """(state of the new ion, state of the replaced ion), see the module docstring; None where there is none.

    >>> ion_states("Sr", "Ba"), ion_states("La", "Sr")
    ((2, 2), (3, 2))
    """
    old_state = _state_of_replaced(old)
    if old_state is None:
        return None, None
    sign = 1 if old_state > 0 else -1
    common = [s for s in Element(new).common_oxidation_states if s * sign > 0]
    states = common or [s for s in oxidation_states(new) if s * sign > 0]
    if not states:
        return None, old_state
    typical = typical_valence(new)
    return min(states, key=lambda s: (abs(s - old_state), s != typical, abs(s))), old_state


def _cn_number(cn: str) -> int:
    return _ROMAN.get(cn.rstrip("SQPY"), 0)


@cache
def shannon_radius(symbol: str, state: int, cn: int) -> float | None:
    """Shannon's ionic radius in A at coordination cn, else at the nearest listed coordination; None if unlisted."""
    table = Element(symbol).data.get("Shannon radii", {}).get(str(state), {})
    listed = [c for c in table if _cn_number(c)]
    if not listed:
        return None
    best = min(listed, key=lambda c: (abs(_cn_number(c) - cn), c != "IV" and _cn_number(c) == 4))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(Species(symbol, state).get_shannon_radius(best))
        except (KeyError, ValueError, TypeError):  # spin-resolved entries need a spin: high spin first
            return _spin_radius(table[best])


def _spin_radius(entry: dict) -> float | None:
    """The ionic radius of a Shannon table entry {spin: {"ionic_radius": r, ...}}, high spin preferred."""
    spins = sorted(entry, key=lambda k: k != "High Spin") if isinstance(entry, dict) else []
    for spin in spins:
        value = entry[spin].get("ionic_radius") if isinstance(entry[spin], dict) else None
        if value is not None:
            return float(value)
    return None


@cache
def metallic_radius(symbol: str) -> float | None:
    """pymatgen's metallic radius in A, else its atomic radius; None if neither is known."""
    el = Element(symbol)
    with warnings.catch_warnings():  # pymatgen warns where it has no metallic radius (B, C)
        warnings.simplefilter("ignore")
        for r in (el.metallic_radius, el.atomic_radius):
            if r is not None and float(r) > 0:
                return float(r)
    return None


def site_radii(new: str, old: str, parent: dict[str, float]) -> tuple[float | None, float | None]:
    """(r_new, r_old) in A for `new` on the site of `old` in `parent` (module docstring for the choices)."""
    if not is_ionic(parent):
        return metallic_radius(new), metallic_radius(old)
    s_new, s_old = ion_states(new, old)
    cn = site_coordination(old, parent)
    r_old = shannon_radius(old, s_old, cn) if s_old is not None else None
    r_new = shannon_radius(new, s_new, cn) if s_new is not None else None
    if r_old is None or r_new is None:  # no ionic radius for one of them: compare metallic radii
        return metallic_radius(new), metallic_radius(old)
    return r_new, r_old


def radius_mismatch(new: str, old: str, parent: dict[str, float]) -> float:
    """|r_new - r_old| / r_old for `new` on the site of `old` in `parent`; NaN when a radius is unknown."""
    r_new, r_old = site_radii(new, old, parent)
    if r_new is None or r_old is None or r_old <= 0:
        return float("nan")
    return abs(r_new - r_old) / r_old


def largest_mismatch(substitutions: list[tuple[str, str, float]], parent: dict[str, float]) -> float:
    """The largest `radius_mismatch` over (new, old, amount) substitutions; NaN when there is none."""
    values = [radius_mismatch(new, old, parent) for new, old, _ in substitutions]
    values = [v for v in values if v == v]
    return max(values) if values else float("nan")


__all__ = [
    "A_SITE",
    "SITE_MISMATCH_MAX",
    "ion_states",
    "largest_mismatch",
    "radius_mismatch",
    "shannon_radius",
    "site_coordination",
    "site_radii",
]
