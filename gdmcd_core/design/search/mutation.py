"""The search space and random moves shared by the non-gradient search methods (baselines.py, methods.py).

`SearchSpace` holds the conditions every method honours: `allowed` (118,) bool (excluded elements are
False and always exactly 0), `pins` {element index: fraction} and `max_elements` (distinct elements
per composition, pins included; 0 = no cap). A pin is exact (x = f) unless its index is in `atleast`
(x >= f: the engine's "at-least" pins, e.g. H >= 0.5 in the hydride search). As in the gradient engine
(objective/constraints.py) a composition is x = x_opt + x_pin: x_pin the pinned fractions, x_opt the moving part of
total `budget` = 1 - sum of pins over the `free` elements (allowed, not exactly pinned; an at-least
pinned element is free and its excess lives in x_opt without counting against the cap).

`mutate` applies random moves (log-normal jitter, element swap, addition, removal) and `repair` maps
anything back into the space. Randomness comes only from the `rng` argument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from gdmcd_core.chem.elements import N_ELEMENTS, index_of
from gdmcd_core.design.objective.constraints import Constraints

# Fractions below this are dropped after every move: finer dopant levels are below what the search
# should propose (a 0.1 at.% change is within synthesis error) and keep the element count honest.
MIN_FRACTION = 1e-3
# Log-normal jitter of each present fraction: sigma 0.3 changes a fraction by about +-30%.
JITTER_SIGMA = 0.3
# Probability that a mutation substitutes one present element by another allowed element.
SWAP_PROB = 0.3
# Probabilities that an evolution mutation adds / removes an element (within the cap).
ADD_PROB = 0.15
REMOVE_PROB = 0.15
# A newly added element takes this share of the free budget (uniform in the range).
ADD_FRACTION_RANGE = (0.02, 0.2)


@dataclass(frozen=True)
class SearchSpace:
    """Allowed elements, pins and the element cap shared by all search methods.

    allowed: (118,) bool, True for elements a composition may contain (pinned ones must be allowed).
    pins: {element index (Z-1): fraction in (0, 1]}; fractions sum to <= 1.
    max_elements: at most this many distinct elements (pins included); 0 = no cap.
    atleast: indices of `pins` that are lower bounds (x >= f); the other pins are exact (x = f).
    """

    allowed: np.ndarray
    pins: dict[int, float] = field(default_factory=dict)
    max_elements: int = 0
    atleast: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        allowed = np.asarray(self.allowed, dtype=bool)
        if allowed.shape != (N_ELEMENTS,):
            raise ValueError(f"allowed must have shape ({N_ELEMENTS},), got {allowed.shape}")
        pins = {int(k): float(v) for k, v in self.pins.items()}
        atleast = frozenset(int(k) for k in self.atleast)
        for k, v in pins.items():
            if not 0 <= k < N_ELEMENTS:
                raise ValueError(f"pin index {k} is outside 0..{N_ELEMENTS - 1}")
            if not 0.0 < v <= 1.0:
                raise ValueError(f"pin of element index {k}: fraction {v} must be in (0, 1]")
            if not allowed[k]:
                raise ValueError(f"element index {k} is pinned but not allowed")
        if not atleast <= set(pins):
            raise ValueError(f"atleast indices {sorted(atleast - set(pins))} are not pinned")
        if sum(pins.values()) > 1.0 + 1e-9:
            raise ValueError(f"pinned fractions sum to {sum(pins.values()):g} > 1")
        allowed.setflags(write=False)
        object.__setattr__(self, "allowed", allowed)
        object.__setattr__(self, "pins", pins)
        object.__setattr__(self, "atleast", atleast)
        room = len(pins) + (self.budget > 0 and not atleast)  # at-least pins can take the rest themselves
        if self.max_elements < 0 or (self.max_elements and self.max_elements < room):
            raise ValueError(f"max_elements={self.max_elements} leaves no room besides the {len(pins)} pins")
        if self.budget > 0 and not self.free.any():
            raise ValueError("the pins leave a fraction to fill but no other element is allowed")

    @classmethod
    def from_constraints(cls, c: Constraints) -> SearchSpace:
        """The space of a design run's validated constraints (pins with their modes, exclusions, cap)."""
        pins = {index_of(p.symbol): p.fraction for p in c.pins}
        atleast = frozenset(index_of(p.symbol) for p in c.pins if p.mode == "at-least")
        return cls(~c.excluded_mask, pins, c.max_elements, atleast)

    @property
    def budget(self) -> float:
        """Fraction left for x_opt: 1 - sum of pins."""
        return max(0.0, 1.0 - sum(self.pins.values()))

    @property
    def x_pin(self) -> np.ndarray:
        """(118,) pinned fractions, 0 elsewhere."""
        v = np.zeros(N_ELEMENTS)
        for k, f in self.pins.items():
            v[k] = f
        return v

    @property
    def free(self) -> np.ndarray:
        """(118,) bool: elements the search may move (allowed and not exactly pinned)."""
        m = self.allowed.copy()
        m[[k for k in self.pins if k not in self.atleast]] = False
        return m

    @property
    def capped(self) -> np.ndarray:
        """(118,) bool: free elements that count against the cap (not pinned at all)."""
        m = self.free
        m[list(self.atleast)] = False
        return m

    @property
    def k_free(self) -> int | None:
        """How many non-pinned elements a composition may hold; None = no cap."""
        return self.max_elements - len(self.pins) if self.max_elements else None

    def free_part(self, x: np.ndarray) -> np.ndarray:
        """x_opt of full compositions x (B, 118): the free entries minus the at-least pins, clipped at 0."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        lower = np.where(np.isin(np.arange(N_ELEMENTS), list(self.atleast)), self.x_pin, 0.0)
        return np.where(self.free, np.clip(np.nan_to_num(x) - lower, 0.0, None), 0.0)

    def repair(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Map any (B, 118) non-negative array of full compositions into the space (float64)."""
        return self.finish(self.free_part(x), rng)

    def finish(self, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """x_opt-like (B, 118) values -> compositions in the space.

        Keeps the k_free largest capped fractions (at-least pinned ones are always kept), drops
        fractions below MIN_FRACTION, rescales the rest to `budget` and adds the pins. A row with
        nothing left gets one random free element (an at-least pinned one when the cap is full).
        """
        y = np.where(self.free, np.clip(np.nan_to_num(np.atleast_2d(y)), 0.0, None), 0.0)
        if self.budget <= 0:
            return np.broadcast_to(self.x_pin, y.shape).copy()
        k = self.k_free
        if k is not None and k < N_ELEMENTS:
            capped = self.capped
            order = np.argsort(-np.where(capped, y, -1.0), axis=1, kind="stable")
            keep = np.zeros_like(y, dtype=bool)
            np.put_along_axis(keep, order[:, :k], True, axis=1)  # the k largest capped entries per row
            y = np.where((keep & capped) | ~capped, y, 0.0)
        for _ in range(2):  # dropping small entries can make others fall below after rescaling
            s = y.sum(1, keepdims=True)
            y = np.where(s > 0, y / np.where(s > 0, s, 1.0), 0.0) * self.budget
            y[y < MIN_FRACTION] = 0.0
        empty = y.sum(1) <= 0
        if empty.any():
            pool = np.flatnonzero(self.free if k != 0 or not self.atleast else ~self.capped & self.free)
            y[np.flatnonzero(empty), rng.choice(pool, size=int(empty.sum()))] = 1.0
        y = y / y.sum(1, keepdims=True) * self.budget
        return y + self.x_pin

    def violation(self, x: np.ndarray) -> np.ndarray:
        """(B,) worst violation of simplex, exclusions, pins and cap (0 = all hold; cap counts 1)."""
        x = np.atleast_2d(np.asarray(x, dtype=np.float64))
        v = np.abs(x.sum(1) - 1.0)
        v = np.maximum(v, np.clip(-x, 0, None).max(1))
        if (~self.allowed).any():
            v = np.maximum(v, np.abs(x[:, ~self.allowed]).max(1))
        for k, f in self.pins.items():
            v = np.maximum(v, np.clip(f - x[:, k], 0, None) if k in self.atleast else np.abs(x[:, k] - f))
        if self.max_elements:
            v = np.maximum(v, ((x > 0).sum(1) > self.max_elements).astype(float))
        return v


def mutate(
    x: np.ndarray,
    space: SearchSpace,
    rng: np.random.Generator,
    sigma: float = JITTER_SIGMA,
    p_swap: float = SWAP_PROB,
    p_add: float = 0.0,
    p_remove: float = 0.0,
) -> np.ndarray:
    """Random moves of (B, 118) compositions -> (B, 118) compositions in `space`.

    Each row: log-normal jitter (sigma) of its free fractions; with probability p_swap one present
    free element hands its fraction to an absent allowed one; with p_add an absent allowed element
    is added (ADD_FRACTION_RANGE of the free budget) if the cap allows; with p_remove one free
    element is dropped if another remains. Pins and exclusions are restored by `space.finish`.
    """
    y = space.free_part(x)
    free_idx = np.flatnonzero(space.free)
    capped = space.capped
    y *= rng.lognormal(0.0, sigma, size=y.shape)
    k = space.k_free
    for row in y:
        present = np.flatnonzero(row > 0)
        absent = np.setdiff1d(free_idx, present, assume_unique=True)
        if len(present) and len(absent) and rng.random() < p_swap:
            src, dst = rng.choice(present), rng.choice(absent)
            row[dst], row[src] = row[src], 0.0
            present = np.flatnonzero(row > 0)
            absent = np.setdiff1d(free_idx, present, assume_unique=True)
        n_capped = int(capped[present].sum())
        if len(absent) and (k is None or n_capped < k) and rng.random() < p_add:
            share = rng.uniform(*ADD_FRACTION_RANGE)
            total = row.sum()
            row[rng.choice(absent)] = share * total / (1.0 - share) if total > 0 else 1.0
        elif len(present) > 1 and rng.random() < p_remove:
            row[rng.choice(present)] = 0.0
    return space.finish(y, rng)


__all__ = ["SearchSpace", "mutate"]
