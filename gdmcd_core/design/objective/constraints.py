"""Conditioning a design run: pinned elements, excluded elements, a cap on distinct elements.

A candidate is x = x_opt + x_c (paper eqs. 13, 18). x_c is fixed: the pinned fractions. x_opt is
what the optimizer moves; it lives on the simplex of total `budget` = 1 - sum of pinned fractions,
restricted to the `free` elements:

* a pin "at-least" (the paper's hydride search, H >= 0.5) puts f in x_c and leaves the element
  free in x_opt, so x_H = 0.5 + x_opt,H >= 0.5;
* a pin "exact" puts f in x_c and removes the element from x_opt, so x_el = f exactly;
* an excluded element is removed from x_opt (and may not be pinned), so it stays exactly 0;
* with `exclude_implausible`, the noble gases and the radioactive elements are excluded too, except
  those the user pins (a pin says the user wants the element; an explicit exclusion cannot be pinned);
* `max_elements` caps the number of distinct elements: after the simplex projection, only the
  largest (max_elements - number of pins) non-pinned entries of x_opt are kept and re-projected
  (the Euclidean projection onto the sparse simplex, Kyrillidis et al. 2013).

With both constraint methods of the design loop (projection, or relu reparameterization) these
hold exactly at every step: sum x = 1 and pins/exclusions to PIN_TOL (float32 rounding only).

`Constraints.build` validates the user's request and raises ValueError with a message that names
the bad value. `Constraints.tensors` gives the device tensors (constraint_tensors.py) that the loop's
projections use.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch

from gdmcd_core.chem import elements
from gdmcd_core.chem.composition import FRACTION_EPS
from gdmcd_core.chem.elements import N_ELEMENTS, index_of, symbols
from gdmcd_core.design.objective.constraint_tensors import ConstraintTensors, apply_projection

PinMode = Literal["at-least", "exact"]
PIN_MODES: tuple[str, ...] = ("at-least", "exact")
# Pins and exclusions must hold to this in every step and every output (float32 has ~6e-8).
PIN_TOL = 1e-6
# Slack when checking that pins sum to at most 1 (user-typed decimals such as 0.3 + 0.7).
SUM_TOL = 1e-9
# Words accepted in an exclude list besides element symbols, and the elements they stand for.
GROUP_SYMBOLS = {
    "radioactive": elements.radioactive_symbols,
    "toxic": lambda: elements.TOXIC,
    "noble": elements.noble_gas_symbols,
}
EXCLUDE_GROUPS = tuple(GROUP_SYMBOLS)

_PIN_RE = re.compile(r"^\s*([A-Z][a-z]?)\s*(>=|=)\s*([0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)\s*$")


@dataclass(frozen=True)
class Pin:
    """A pinned element: `symbol` with fraction `fraction` (0 < f <= 1, atoms per atom).

    mode: "at-least" (x >= f), "exact" (x == f), or None to take the run's `pin_mode`.
    """

    symbol: str
    fraction: float
    mode: str | None = None

    def __post_init__(self) -> None:
        index_of(self.symbol)  # ValueError naming the unknown symbol
        f = float(self.fraction)
        if not (0.0 < f <= 1.0):
            raise ValueError(f"pin {self.symbol}={self.fraction}: the fraction must be in (0, 1]")
        object.__setattr__(self, "fraction", f)
        if self.mode is not None and self.mode not in PIN_MODES:
            raise ValueError(f"pin {self.symbol}: mode must be one of {PIN_MODES}, got {self.mode!r}")

    @classmethod
    def parse(cls, text: str, mode: str | None = None) -> Pin:
        """'H=0.5' (mode from the argument) or 'H>=0.5' (at-least). Raises ValueError."""
        m = _PIN_RE.match(text or "")
        if not m:
            raise ValueError(f"pin {text!r} is not EL=FRAC (e.g. H=0.5 or H>=0.5)")
        sym, op, val = m.groups()
        return cls(sym, float(val), "at-least" if op == ">=" else mode)

    @classmethod
    def coerce(cls, obj: Any) -> Pin:
        """A Pin from a Pin, 'H=0.5', {'symbol': 'H', 'fraction': 0.5, 'mode': ...} or ('H', 0.5[, mode])."""
        if isinstance(obj, Pin):
            return obj
        if isinstance(obj, str):
            return cls.parse(obj)
        if isinstance(obj, dict):
            return cls(str(obj["symbol"]), float(obj["fraction"]), obj.get("mode"))
        if isinstance(obj, (list, tuple)) and len(obj) in (2, 3):
            return cls(str(obj[0]), float(obj[1]), obj[2] if len(obj) == 3 else None)
        raise ValueError(f"cannot read a pin from {obj!r}; write 'H=0.5' or {{symbol, fraction, mode}}")

    def resolved(self, default_mode: str) -> Pin:
        if default_mode not in PIN_MODES:
            raise ValueError(f"pin mode must be one of {PIN_MODES}, got {default_mode!r}")
        return Pin(self.symbol, self.fraction, self.mode or default_mode)

    def to_dict(self) -> dict[str, Any]:
        return {"symbol": self.symbol, "fraction": self.fraction, "mode": self.mode}

    def __str__(self) -> str:
        op = ">=" if self.mode == "at-least" else "="
        return f"{self.symbol}{op}{self.fraction:g}"


def expand_exclude(items: Iterable[str]) -> tuple[str, ...]:
    """Symbols and group words ('radioactive', 'toxic', 'noble') -> validated symbols, Z order, no repeats."""
    out: set[str] = set()
    for item in items:
        for tok in str(item).replace(",", " ").split():
            if tok.lower() in GROUP_SYMBOLS:
                out.update(GROUP_SYMBOLS[tok.lower()]())
            else:
                try:
                    index_of(tok)
                except ValueError:
                    raise ValueError(
                        f"cannot exclude {tok!r}: not an element symbol (H..Og, case-sensitive) "
                        f"or one of {EXCLUDE_GROUPS}"
                    ) from None
                out.add(tok)
    return tuple(sorted(out, key=index_of))


@dataclass(frozen=True)
class Constraints:
    """Validated conditions. Build with `Constraints.build(...)`; every pin has a concrete mode."""

    pins: tuple[Pin, ...] = ()
    excluded: tuple[str, ...] = ()  # user exclusions + unseen elements + implausible elements
    max_elements: int = 0  # 0 = no cap
    unseen: tuple[str, ...] = ()  # the part of `excluded` that comes from exclude_unseen
    implausible: tuple[str, ...] = ()  # the part of `excluded` that comes from exclude_implausible

    @classmethod
    def build(
        cls,
        pins: Sequence[Pin | str | dict | tuple] = (),
        exclude: Iterable[str] = (),
        *,
        pin_mode: str = "at-least",
        exclude_unseen: bool = True,
        unseen: Iterable[str] = (),
        max_elements: int = 0,
        exclude_implausible: bool = False,
    ) -> Constraints:
        """Validate and combine. Raises ValueError naming the offending pin or element.

        Args:
            pins: pins; a pin without a mode takes `pin_mode`.
            exclude: element symbols or group words ('radioactive', 'toxic').
            exclude_unseen: also exclude `unseen` (elements in no training composition).
            unseen: those elements (from ReferenceData.unseen_symbols()).
            max_elements: cap on distinct elements in a candidate (pins included); 0 = none.
            exclude_implausible: also exclude the noble gases and radioactive elements
                (`implausible_symbols`) that are not pinned.
        """
        if pin_mode not in PIN_MODES:
            raise ValueError(f"pin mode must be one of {PIN_MODES}, got {pin_mode!r}")
        resolved = _resolve_pins(pins, pin_mode)
        user_ex = expand_exclude(exclude)
        unseen_t = expand_exclude(unseen) if exclude_unseen else ()
        _check_pins_allowed(resolved, user_ex, unseen_t)
        pinned = {p.symbol for p in resolved}
        implausible = tuple(s for s in elements.implausible_symbols() if s not in pinned) if exclude_implausible else ()
        excluded = tuple(sorted(set(user_ex) | set(unseen_t) | set(implausible), key=index_of))
        if max_elements < 0:
            raise ValueError(f"max_elements must be >= 0 (0 = no cap), got {max_elements}")
        out = cls(resolved, excluded, int(max_elements), unseen_t, implausible)
        out._check_feasible()
        return out

    def _check_feasible(self) -> None:
        """ValueError when the element cap or the exclusions leave no composition that honours the pins."""
        cap, n_pins = self.max_elements, len(self.pins)
        if cap and cap < n_pins:
            raise ValueError(f"max_elements={cap} is less than the {n_pins} pinned elements")
        if self.budget <= SUM_TOL:
            return
        if not self.free_mask.any():
            raise ValueError(
                f"pins leave a fraction of {self.budget:g} but every other element is excluded; "
                "exclude fewer elements or pin an element at-least"
            )
        if cap and cap == n_pins and not self.atleast_mask.any():
            raise ValueError(
                f"max_elements={cap} equals the number of exact pins, which leave {self.budget:g} unassigned"
            )

    # -- vectors over the 118 elements ---------------------------------------------------------

    @property
    def x_c(self) -> np.ndarray:
        """(118,) the fixed conditional vector: pinned fractions, 0 elsewhere."""
        v = np.zeros(N_ELEMENTS)
        for p in self.pins:
            v[index_of(p.symbol)] = p.fraction
        return v

    @property
    def budget(self) -> float:
        """Sum of x_opt: 1 - sum of pinned fractions (>= 0)."""
        return max(0.0, 1.0 - sum(p.fraction for p in self.pins))

    @property
    def excluded_mask(self) -> np.ndarray:
        m = np.zeros(N_ELEMENTS, bool)
        for s in self.excluded:
            m[index_of(s)] = True
        return m

    def _pin_mask(self, mode: str) -> np.ndarray:
        """(118,) the elements pinned with `mode`."""
        m = np.zeros(N_ELEMENTS, bool)
        for p in self.pins:
            if p.mode == mode:
                m[index_of(p.symbol)] = True
        return m

    @property
    def exact_mask(self) -> np.ndarray:
        return self._pin_mask("exact")

    @property
    def atleast_mask(self) -> np.ndarray:
        return self._pin_mask("at-least")

    @property
    def free_mask(self) -> np.ndarray:
        """(118,) elements x_opt may hold: not excluded and not exact-pinned."""
        return ~self.excluded_mask & ~self.exact_mask

    @property
    def lower_frac(self) -> np.ndarray:
        """(118,) lower bounds of x from at-least pins (0 elsewhere)."""
        return np.where(self.atleast_mask, self.x_c, 0.0)

    @property
    def exact_frac(self) -> np.ndarray:
        """(118,) exact pins, NaN where not exact-pinned."""
        return np.where(self.exact_mask, self.x_c, np.nan)

    def feasible_ns(self, ns: Iterable[int]) -> list[int]:
        """The cell sizes N whose integer formula can honour the pins.

        Exact pins need f N to be an integer; all pins together need at most N atoms.
        """
        out = []
        for n in ns:
            ok = True
            atoms = 0.0
            for p in self.pins:
                t = p.fraction * n
                if p.mode == "exact":
                    if abs(t - round(t)) > PIN_TOL * n:
                        ok = False
                        break
                    atoms += round(t)
                else:
                    atoms += np.ceil(t - PIN_TOL * n)
            if ok and atoms <= n:
                out.append(int(n))
        return out

    def describe(self) -> str:
        parts = [f"pins: {', '.join(str(p) for p in self.pins) or 'none'}"]
        auto = set(self.unseen) | set(self.implausible)
        user = [s for s in self.excluded if s not in auto]
        parts.append(f"excluded: {', '.join(user) or 'none'}")
        if self.unseen:
            parts.append(f"+{len(self.unseen)} never-seen elements excluded")
        extra = [s for s in self.implausible if s not in self.unseen]
        if extra:
            parts.append(f"+{len(extra)} noble-gas/radioactive elements excluded")
        if self.max_elements:
            parts.append(f"at most {self.max_elements} elements")
        return "; ".join(parts)

    # -- checks and start points ---------------------------------------------------------------

    def violation(self, x: np.ndarray) -> np.ndarray:
        """(B,) worst violation of simplex, pins and exclusions per row (0 = all hold)."""
        x = np.atleast_2d(np.asarray(x, np.float64))
        v = np.abs(x.sum(1) - 1.0)
        v = np.maximum(v, np.clip(-x, 0, None).max(1))
        if self.excluded:
            v = np.maximum(v, np.abs(x[:, self.excluded_mask]).max(1))
        ex, lo = self.exact_mask, self.atleast_mask
        if ex.any():
            v = np.maximum(v, np.abs(x[:, ex] - self.x_c[ex]).max(1))
        if lo.any():
            v = np.maximum(v, np.clip(self.x_c[lo] - x[:, lo], 0, None).max(1))
        if self.max_elements:
            v = np.maximum(v, ((x > FRACTION_EPS).sum(1) > self.max_elements).astype(float))
        return v

    def start_x_opt(self, x_init: np.ndarray) -> np.ndarray:
        """Map start compositions (B, 118) to x_opt (B, 118) so that x_opt + x_c satisfies the pins.

        Excluded and exact-pinned elements are dropped, at-least pinned amounts already present
        count towards the pin (x_opt = x - x_c, clipped at 0), and the rest is rescaled to the
        budget, keeping the ratios of the start composition. A row with nothing left becomes
        uniform over the free elements (the caller should avoid that; see loop/starts.py).
        """
        x = np.atleast_2d(np.asarray(x_init, np.float64))
        free = self.free_mask
        y = np.where(free, x, 0.0)
        y = np.clip(y - np.where(self.atleast_mask, self.x_c, 0.0), 0.0, None)
        s = y.sum(1, keepdims=True)
        uniform = np.broadcast_to(free / max(free.sum(), 1), y.shape)
        y = np.where(s > FRACTION_EPS, y / np.where(s > 0, s, 1.0), uniform) * self.budget
        if self.max_elements:
            y = project_numpy(y, self)
        return y

    def tensors(self, device: torch.device | str, dtype: torch.dtype = torch.float32) -> ConstraintTensors:
        k_free = self.max_elements - len(self.pins) if self.max_elements else -1
        return ConstraintTensors(
            x_c=torch.tensor(self.x_c, dtype=dtype, device=device),
            free=torch.tensor(self.free_mask, device=device),
            keep=torch.tensor(self.atleast_mask, device=device),
            budget=self.budget,
            k_free=k_free,
            any_keep=bool(self.atleast_mask.any()),
        )


def _resolve_pins(pins: Sequence[Pin | str | dict | tuple], pin_mode: str) -> tuple[Pin, ...]:
    """The pins read (Pin.coerce) with concrete modes; ValueError for an element pinned twice or pinned fractions
    that sum to more than 1."""
    resolved = tuple(Pin.coerce(p).resolved(pin_mode) for p in pins)
    seen: set[str] = set()
    for p in resolved:
        if p.symbol in seen:
            raise ValueError(f"element {p.symbol} is pinned twice; give one pin per element")
        seen.add(p.symbol)
    total = sum(p.fraction for p in resolved)
    if total > 1.0 + SUM_TOL:
        listed = ", ".join(str(p) for p in resolved)
        raise ValueError(f"pinned fractions sum to {total:g} > 1 ({listed}); they must sum to at most 1")
    return resolved


def _check_pins_allowed(pins: tuple[Pin, ...], excluded: tuple[str, ...], unseen: tuple[str, ...]) -> None:
    """ValueError for a pinned element that the user excludes, or that is excluded as never seen in training."""
    for p in pins:
        if p.symbol in excluded:
            raise ValueError(f"element {p.symbol} is both pinned and excluded; remove one of the two")
        if p.symbol in unseen:
            raise ValueError(
                f"element {p.symbol} is pinned but occurs in no training composition, so it is excluded "
                "by default; turn off exclude_unseen (CLI: --include-unseen) to pin it"
            )


def project_numpy(y: np.ndarray, c: Constraints) -> np.ndarray:
    """`apply_projection` on numpy arrays (for start points), float64."""
    ct = c.tensors("cpu", torch.float64)
    return apply_projection(torch.as_tensor(np.asarray(y, np.float64)), ct).numpy()


def element_symbols_of(x: np.ndarray) -> list[str]:
    """Symbols present (> FRACTION_EPS) in a (118,) composition."""
    syms = symbols()
    return [syms[i] for i in np.flatnonzero(np.asarray(x) > FRACTION_EPS)]
