"""Oxidation-state feasibility of a composition: a differentiable penalty and numpy checks.

Every element i gets an interval [v_min,i, v_max,i] of oxidation states. A composition x (atomic
fractions) can be charge balanced with mixed valence exactly when the total charge interval
contains zero::

    lo = sum_i x_i v_min,i <= 0 <= sum_i x_i v_max,i = hi

(the charge sum is linear in each element's state, so every value in [lo, hi] is reached by some
assignment of states from the intervals). `valence_window_penalty` is relu(lo)^2 + relu(-hi)^2 in
(elementary charges per atom)^2: zero on the feasible set, smooth, and it pushes too-reduced
compositions (lo > 0: not enough anion) towards more anion and too-oxidized ones (hi < 0: more
anion than the cations can compensate) towards less.

Oxidation-state table (`oxidation_states`): pymatgen's ``common_oxidation_states`` united with its
``icsd_oxidation_states``. Why this and not SMACT's ICSD-2024 list (used by `validity`): SMACT lists
every state seen at least occasionally, e.g. O +2 (only in OF2), Fe -4, Y +1, so its [min, max]
interval contains 0 for nearly every oxide and the penalty would never act. pymatgen's common
list alone is too narrow for cuprates (Cu only +2, so YBa2Cu3O7, formally Cu +2.33, would fail);
adding the states pymatgen found in ICSD structures gives Cu +1..+3, Nb +2..+5, Bi +1..+5, Ti +2..+4,
which covers the mixed-valence superconductors. Overrides (`STATE_OVERRIDES`): O is -2..-1
(oxide to peroxide; positive O needs F) and F is -1. Elements with no listed state (He, Ne, Ar, Rn,
the superheavies) get [0, 0]: they carry no charge and do not move the window, so nothing is NaN.

Intermetallics: ionic charge counting only applies when an anion can form. A composition in which
no element of `ANION_FORMERS` is present (fraction > `PRESENCE_EPS`) gets zero penalty, as SMACT's
validity test passes all-metal alloys (Nb3Sn, NbTi). The anion formers are the halogens, the
chalcogens O, S, Se, Te and the pnictogens N, P, As. Not in the set, so compositions made only of
them and metals count as intermetallic/covalent:

* H: metal hydrides from PdH to the superhydrides (LaH10) are metallic; H is also amphoteric
  (-1..+1) in the table, so it rarely changes the window anyway.
* B, C, Si, Ge: borides, carbides and silicides (MgB2, YNi2B2C, V3Si) are metallic or covalent.
* Sb, Bi: SMACT counts them as metals; antimonides and bismuthides (NiSb, PtSb2) are mostly
  intermetallic.

The presence mask uses the forward values only (no gradient through it); inside the mask the
penalty is differentiable in x.

Cuprates: the window above allows O from -2 to -1 and Cu up to +3, so an over-oxidized cuprate (formal Cu
+3.8) still balances through peroxide oxygen. `cu_valence_window_penalty` is the tighter cuprate check: with
every other element at its `typical_valence`, the charge per atom that Cu must carry, c = -sum_{i != Cu}
x_i t_i, should lie in [lo x_Cu, hi x_Cu] (`CU_VALENCE_WINDOW`); the penalty is the excess, relu(c - hi x_Cu)
+ relu(lo x_Cu - c) in charge/atom (linear, so that integer formulas just outside the window, formal Cu
+2.7 at N <= 24, still pay), and zero wherever `cu_valence` is undefined.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
import torch
from pymatgen.core import Element

from gdmcd_core.chem.composition import FRACTION_EPS
from gdmcd_core.chem.elements import N_ELEMENTS, index_of, symbols

# An element counts as present above this fraction: the same threshold the formula formatter uses,
# so the intermetallic rule matches what the printed formula shows.
PRESENCE_EPS = FRACTION_EPS
# Elements that form anions with metals; a composition with none of them is treated as metallic.
ANION_FORMERS: tuple[str, ...] = ("N", "P", "As", "O", "S", "Se", "Te", "F", "Cl", "Br", "I", "At")
# Table corrections: O between oxide (-2) and peroxide (-1), never positive without F; F only -1.
STATE_OVERRIDES: dict[str, tuple[int, ...]] = {"O": (-2, -1), "F": (-1,)}

# Fixed typical valences of the other elements when the Cu valence of a cuprate is solved for.
# Lanthanides are +3 (Ce +4: it is the electron dopant of Nd2-xCexCuO4); Tl +3, Hg +2, Bi +3 and
# Pb +2 are the usual counts in the Tl/Hg/Bi cuprate families; C +4 and B +3 are carbonate/borate
# groups of oxycarbonate/oxyborate cuprates. H +1: the Cu valence is only solved for with an anion former
# present, where hydrogen is a proton (hydroxide, water of hydration), never the hydride of metal hydrides;
# left ambiguous (+/-1), any H would make the Cu valence undefined and exempt the formula. Elements not listed use pymatgen's common state when
# it is unique (Ba +2, Y +3, Sr +2, K +1, ...); otherwise the Cu valence is undefined.
TYPICAL_VALENCE: dict[str, float] = {
    "O": -2.0,
    "F": -1.0,
    "Cl": -1.0,
    "Br": -1.0,
    "I": -1.0,
    "S": -2.0,
    "Se": -2.0,
    "Te": -2.0,
    "Tl": 3.0,
    "Hg": 2.0,
    "Bi": 3.0,
    "Pb": 2.0,
    "C": 4.0,
    "B": 3.0,
    "Ce": 4.0,
    "H": 1.0,
    **{s: 3.0 for s in ("La", "Pr", "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu")},
}
# Formal Cu valence of superconducting cuprates: electron-doped ones sit at about +1.8..+1.9
# (Nd1.85Ce0.15CuO4: +1.85), hole-doped ones at +2.05..+2.3 in the CuO2 planes; the nominal formula
# overcounts where chains or excess oxygen hold holes (YBa2Cu3O7: +2.33), hence the upper margin.
# YBa2Cu3O6 (+1.67) is the undoped insulator and falls outside.
CU_VALENCE_WINDOW = (1.8, 2.6)


@cache
def oxidation_states(symbol: str) -> tuple[int, ...]:
    """Sorted oxidation states of an element used here (see the module docstring); () if none."""
    if symbol in STATE_OVERRIDES:
        return STATE_OVERRIDES[symbol]
    el = Element(symbol)
    return tuple(sorted(set(el.common_oxidation_states) | set(el.icsd_oxidation_states)))


@lru_cache(maxsize=1)
def _bounds_numpy() -> tuple[np.ndarray, np.ndarray]:
    v_min = np.zeros(N_ELEMENTS)
    v_max = np.zeros(N_ELEMENTS)
    for i, s in enumerate(symbols()):
        states = oxidation_states(s)
        if states:  # no states: [0, 0], the element carries no charge
            v_min[i], v_max[i] = min(states), max(states)
    v_min.setflags(write=False)
    v_max.setflags(write=False)
    return v_min, v_max


@lru_cache(maxsize=1)
def _anion_mask_numpy() -> np.ndarray:
    m = np.zeros(N_ELEMENTS, dtype=bool)
    m[[index_of(s) for s in ANION_FORMERS]] = True
    m.setflags(write=False)
    return m


def valence_bounds(
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(v_min, v_max): two (118,) tensors of the lowest/highest oxidation state per element (index Z-1)."""
    v_min, v_max = _bounds_numpy()
    return torch.tensor(v_min, dtype=dtype, device=device), torch.tensor(v_max, dtype=dtype, device=device)


@lru_cache(maxsize=1)
def _typical_numpy() -> tuple[np.ndarray, np.ndarray]:
    t = np.zeros(N_ELEMENTS)
    known = np.zeros(N_ELEMENTS, dtype=bool)
    for i, s in enumerate(symbols()):
        v = 0.0 if s == "Cu" else typical_valence(s)
        if v is not None:
            t[i], known[i] = v, True
    t.setflags(write=False)
    known.setflags(write=False)
    return t, known


def typical_valences(
    device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, torch.Tensor]:
    """(t, known): (118,) `typical_valence` per element (0 for Cu and where undefined) and (118,) bool,
    True where it is defined (and for Cu), for `cu_valence_window_penalty`."""
    t, known = _typical_numpy()
    return torch.tensor(t, dtype=dtype, device=device), torch.tensor(known, device=device)


def cu_window_excess(
    c: torch.Tensor, x_cu: torch.Tensor, window: tuple[float, float] = CU_VALENCE_WINDOW
) -> torch.Tensor:
    """(B,) relu(c - hi x_Cu) + relu(lo x_Cu - c): how far the charge per atom Cu must carry, c, lies outside
    window x x_Cu (`cu_valence_window_penalty` before its mask)."""
    return torch.relu(c - window[1] * x_cu) + torch.relu(window[0] * x_cu - c)


def window_penalty(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """(B,) relu(lo)^2 + relu(-hi)^2 of the reachable charge window [lo, hi] (`valence_window_penalty` before
    its intermetallic mask)."""
    return torch.relu(lo) ** 2 + torch.relu(-hi) ** 2


def cu_valence_window_penalty(
    x: torch.Tensor,
    typical: torch.Tensor,
    known: torch.Tensor,
    window: tuple[float, float] = CU_VALENCE_WINDOW,
) -> torch.Tensor:
    """(B,) excess of the charge per atom Cu must carry beyond `window` x x_Cu (see the module
    docstring), charge/atom. Zero without Cu, without an anion former, or with an element whose
    typical valence is undefined (the same cases where `cu_valence` is None); that mask has no gradient."""
    if x.ndim != 2 or x.shape[-1] != N_ELEMENTS:
        raise ValueError(f"x must have shape (B, {N_ELEMENTS}), got {tuple(x.shape)}")
    cu = index_of("Cu")
    x_cu = x[:, cu]
    c = -(x @ typical.to(device=x.device, dtype=x.dtype))
    penalty = cu_window_excess(c, x_cu, window)
    with torch.no_grad():
        present = x.detach() > PRESENCE_EPS
        applies = present[:, cu] & (present & anion_former_mask(x.device)).any(-1)
        applies &= ~(present & ~known.to(x.device)).any(-1)
    return penalty * applies.to(x.dtype)


def anion_former_mask(device: torch.device | str = "cpu") -> torch.Tensor:
    """(118,) bool tensor, True for the elements of `ANION_FORMERS`."""
    return torch.tensor(_anion_mask_numpy(), device=device)


def charge_window(x: torch.Tensor, v_min: torch.Tensor, v_max: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """x: (B, 118) fractions -> (lo, hi), each (B,): the reachable mean charge per atom."""
    v_min = v_min.to(device=x.device, dtype=x.dtype)
    v_max = v_max.to(device=x.device, dtype=x.dtype)
    return x @ v_min, x @ v_max


def valence_window_penalty(
    x: torch.Tensor,
    v_min: torch.Tensor,
    v_max: torch.Tensor,
    anion_mask: torch.Tensor | None = None,
) -> torch.Tensor:
    """Charge-balance penalty relu(lo)^2 + relu(-hi)^2 per composition, (charge/atom)^2.

    Args:
        x: (B, 118) atomic fractions (rows summing to 1); any float dtype and device.
        v_min, v_max: (118,) oxidation-state bounds, e.g. from `valence_bounds`.
        anion_mask: (118,) bool, elements that make charge counting apply; default `ANION_FORMERS`.

    Returns:
        (B,) penalty on x's device and dtype: 0 where a mixed-valence neutral assignment exists or
        no anion former is present (intermetallic), > 0 otherwise. Differentiable in x; the
        intermetallic mask is computed without gradient.
    """
    if x.ndim != 2 or x.shape[-1] != N_ELEMENTS:
        raise ValueError(f"x must have shape (B, {N_ELEMENTS}), got {tuple(x.shape)}")
    lo, hi = charge_window(x, v_min, v_max)
    penalty = window_penalty(lo, hi)
    mask = anion_former_mask(x.device) if anion_mask is None else anion_mask.to(x.device)
    with torch.no_grad():
        ionic = ((x.detach() > PRESENCE_EPS) & mask).any(dim=-1)
    return penalty * ionic.to(x.dtype)


# -- numpy helpers on {symbol: amount} -------------------------------------------------------------


def _check_amounts(amounts: dict[str, float]) -> dict[str, float]:
    out = {}
    for s, a in amounts.items():
        index_of(s)  # ValueError naming an unknown symbol
        if a < 0 or not np.isfinite(a):
            raise ValueError(f"amount of {s} is {a!r}; amounts must be finite and >= 0")
        if a > 0:
            out[s] = float(a)
    if not out:
        raise ValueError("the composition has no element with a positive amount")
    return out


def _has_anion_former(amounts: dict[str, float]) -> bool:
    total = sum(amounts.values())
    return any(s in ANION_FORMERS and a / total > PRESENCE_EPS for s, a in amounts.items())


def charge_window_amounts(amounts: dict[str, float]) -> tuple[float, float]:
    """{symbol: amount} -> (lo, hi) total charge range per formula unit (same units as the amounts)."""
    amounts = _check_amounts(amounts)
    lo = sum(a * min(oxidation_states(s), default=0) for s, a in amounts.items())
    hi = sum(a * max(oxidation_states(s), default=0) for s, a in amounts.items())
    return float(lo), float(hi)


def is_charge_balanceable(amounts: dict[str, float], allow_intermetallic: bool = True) -> bool:
    """True if some mixed-valence assignment from the state intervals makes the formula neutral.

    Same rule as `valence_window_penalty` == 0: with `allow_intermetallic`, a composition without
    an anion former passes. Amounts may be fractional ({'La': 1.85, 'Sr': 0.15, 'Cu': 1, 'O': 4}).
    """
    amounts = _check_amounts(amounts)
    if allow_intermetallic and not _has_anion_former(amounts):
        return True
    lo, hi = charge_window_amounts(amounts)
    tol = 1e-9 * sum(amounts.values())
    return lo <= tol and hi >= -tol


def typical_valence(symbol: str) -> float | None:
    """The fixed valence `cu_valence` assumes for an element, or None if it is ambiguous."""
    if symbol in TYPICAL_VALENCE:
        return TYPICAL_VALENCE[symbol]
    common = Element(symbol).common_oxidation_states
    return float(common[0]) if len(common) == 1 else None


def cu_valence(amounts: dict[str, float]) -> float | None:
    """Formal Cu oxidation state that makes the formula neutral, others at `typical_valence`.

    Returns None when there is no Cu, no anion former (an intermetallic: valence is meaningless) or
    an element whose typical valence is ambiguous (e.g. Fe: +2 or +3).

    >>> round(cu_valence({"Y": 1, "Ba": 2, "Cu": 3, "O": 7}), 3)
    2.333
    """
    amounts = _check_amounts(amounts)
    n_cu = amounts.get("Cu", 0.0)
    if n_cu <= 0 or not _has_anion_former(amounts):
        return None
    charge = 0.0
    for s, a in amounts.items():
        if s == "Cu":
            continue
        v = typical_valence(s)
        if v is None:
            return None
        charge += a * v
    return -charge / n_cu


def cu_valence_plausible(amounts: dict[str, float], window: tuple[float, float] = CU_VALENCE_WINDOW) -> bool | None:
    """True if the formal Cu valence lies in `window` (superconducting cuprates), None if undefined."""
    v = cu_valence(amounts)
    if v is None:
        return None
    return bool(window[0] <= v <= window[1])


__all__ = [
    "ANION_FORMERS",
    "CU_VALENCE_WINDOW",
    "PRESENCE_EPS",
    "STATE_OVERRIDES",
    "TYPICAL_VALENCE",
    "anion_former_mask",
    "charge_window",
    "charge_window_amounts",
    "cu_valence",
    "cu_valence_window_penalty",
    "cu_window_excess",
    "cu_valence_plausible",
    "is_charge_balanceable",
    "oxidation_states",
    "typical_valence",
    "typical_valences",
    "valence_bounds",
    "valence_window_penalty",
    "window_penalty",
]
