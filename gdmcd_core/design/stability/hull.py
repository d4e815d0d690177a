"""Thermodynamic stability of a candidate: energy above the convex hull of known compounds.

Reference energies are JARVIS-DFT formation energies (OptB88vdW, eV/atom) from
``raw/jarvis_dft_3d_subset.csv``: one entry per reduced formula (the lowest-energy polymorph), plus
every element at 0 eV/atom (the formation-energy reference state). `HullReference` indexes the
entries by chemical system (the set of elements). For a candidate with elements S, the hull is
built from every entry whose elements are a subset of S (so binaries and ternaries of S count), with
pymatgen's `PhaseDiagram`, once per S, and cached.

Energies are per atom throughout. `hull_distance` is signed: E_f(candidate) - E_hull(composition),
negative when the candidate would be a new stable phase below the known hull. `e_hull` is the energy
above the hull once the candidate itself is added, max(0, distance): 0 means on the hull.
Everything runs offline.
"""

from __future__ import annotations

import itertools
import math
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.core import Composition

from gdmcd_core.chem.composition import quiet_pauling
from gdmcd_core.chem.elements import symbols

# A compound within 0.1 eV/atom of the hull counts as (meta)stable, i.e. plausibly synthesizable:
# most known metastable inorganic crystals lie within ~0.07 eV/atom of the hull (Sun et al.,
# Sci. Adv. 2016, 90th percentile), and the rest of the margin absorbs DFT functional error.
STABLE_THRESHOLD_EV = 0.1
JARVIS_FORMATION_COLUMN = "formation_energy_per_atom"
JARVIS_EHULL_COLUMN = "ehull"
# Per-system PhaseDiagrams kept in memory (a 4-element system with its subsystems: ~0.1-1 MB each).
PD_CACHE_SIZE = 4096
# Subsets of a candidate's element set are enumerated up to this many elements (2^10 look-ups);
# larger sets scan the index instead.
SUBSET_ENUMERATION_MAX = 10
# Fractions are rounded to this many decimals to identify a reduced formula.
_KEY_DECIMALS = 6
# Plain formulas (JARVIS writes 'Ba2CuO3') are tokenized directly, ~10x faster than pymatgen.
_PLAIN_FORMULA = re.compile(r"(?:[A-Z][a-z]?(?:\d+(?:\.\d+)?)?)+")
_PLAIN_TOKEN = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d+)?)?")
_SYMBOLS = frozenset(symbols())


def _amounts(formula: str) -> dict[str, float]:
    """Formula -> {symbol: amount}; plain formulas by regex, anything else (brackets) by pymatgen."""
    if _PLAIN_FORMULA.fullmatch(formula):
        out: dict[str, float] = {}
        for sym, num in _PLAIN_TOKEN.findall(formula):
            out[sym] = out.get(sym, 0.0) + (float(num) if num else 1.0)
        if not set(out) <= _SYMBOLS:
            raise ValueError(f"formula {formula!r} has an unknown element symbol")
        return out
    return {str(el): float(a) for el, a in Composition(formula).get_el_amt_dict().items()}


def formula_key(amounts: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """{symbol: amount} -> hashable reduced composition ((symbol, fraction), ...) sorted by symbol."""
    total = float(sum(amounts.values()))
    if total <= 0:
        raise ValueError(f"composition {amounts!r} has no positive amount")
    return tuple(sorted((s, round(float(a) / total, _KEY_DECIMALS)) for s, a in amounts.items() if a > 0))


@dataclass(frozen=True)
class ReferenceEntry:
    """One reference compound: composition {symbol: amount}, formation energy (eV/atom), id."""

    amounts: dict[str, float]
    e_form: float
    name: str = ""

    @property
    def elements(self) -> frozenset[str]:
        return frozenset(s for s, a in self.amounts.items() if a > 0)

    def pd_entry(self) -> PDEntry:
        comp = Composition(self.amounts)
        with quiet_pauling():  # reduced_formula orders by electronegativity
            name = self.name or comp.reduced_formula
        return PDEntry(comp, self.e_form * comp.num_atoms, name=name)


def load_jarvis_entries(path: str | Path | None = None, data_dir: str | Path | None = None) -> pd.DataFrame:
    """JARVIS formation energies -> DataFrame (jid, formula, key, amounts, e_form, ehull), one row per formula.

    Reads `path` or ``raw/jarvis_dft_3d_subset.csv`` under `data_dir` (default:
    `gdmcd_core.data.find_data_dir`). Rows with a missing or unparsable formula or a missing
    formation energy are dropped; of the rows with the same reduced formula the lowest formation
    energy is kept. e_form and ehull are eV/atom; ehull is JARVIS's own (NaN where missing).
    """
    if path is None:
        from gdmcd_core.data.paths import JARVIS_FILE, find_data_dir

        base = Path(data_dir) if data_dir else find_data_dir(required=(JARVIS_FILE,), download=False)
        path = base / JARVIS_FILE
    df = pd.read_csv(path, na_values=["na", ""], keep_default_na=True)
    if JARVIS_EHULL_COLUMN not in df:
        df[JARVIS_EHULL_COLUMN] = np.nan
    df = df.dropna(subset=["formula", JARVIS_FORMATION_COLUMN])
    rows = []
    for jid, formula, e_form, ehull in zip(
        df.get("jid", pd.Series([""] * len(df), index=df.index)),
        df["formula"],
        df[JARVIS_FORMATION_COLUMN].astype(float),
        df[JARVIS_EHULL_COLUMN].astype(float),
        strict=True,
    ):
        try:
            amounts = _amounts(str(formula).strip())
        except Exception:  # pymatgen raises several types for malformed strings
            continue
        if not amounts or not math.isfinite(e_form) or any(a <= 0 for a in amounts.values()):
            continue
        rows.append((str(jid), str(formula), formula_key(amounts), amounts, float(e_form), float(ehull)))
    out = pd.DataFrame(rows, columns=["jid", "formula", "key", "amounts", "e_form", "ehull"])
    out = out.sort_values(["e_form", "jid"], kind="stable").drop_duplicates("key").reset_index(drop=True)
    return out


class HullReference:
    """Known compounds indexed by chemical system, with per-system convex hulls (eV/atom).

    Build once (`from_jarvis` or from `ReferenceEntry`s); then `e_hull` and friends take a
    candidate's {symbol: amount} and its formation energy. Elements always get a 0 eV/atom entry,
    so any element set has a hull, even elements absent from the reference data.
    """

    def __init__(self, entries: Iterable[ReferenceEntry], ehull: dict[tuple, float] | None = None) -> None:
        self.by_system: dict[frozenset[str], list[ReferenceEntry]] = {}
        self.by_key: dict[tuple, ReferenceEntry] = {}
        for e in entries:
            key = formula_key(e.amounts)
            old = self.by_key.get(key)
            if old is not None and old.e_form <= e.e_form:
                continue
            if old is not None:
                self.by_system[old.elements].remove(old)
            self.by_key[key] = e
            self.by_system.setdefault(e.elements, []).append(e)
        self.reference_ehull = dict(ehull or {})  # formula key -> the source's own e_hull (eV/atom)
        self._cache: OrderedDict[frozenset[str], PhaseDiagram] = OrderedDict()

    @classmethod
    def from_jarvis(cls, path: str | Path | None = None, data_dir: str | Path | None = None) -> HullReference:
        """Reference from the JARVIS CSV (see `load_jarvis_entries`)."""
        df = load_jarvis_entries(path, data_dir)
        entries = [ReferenceEntry(a, e, j) for a, e, j in zip(df["amounts"], df["e_form"], df["jid"], strict=True)]
        return cls(entries, dict(zip(df["key"], df["ehull"], strict=True)))

    def __len__(self) -> int:
        return len(self.by_key)

    # -- hull construction -----------------------------------------------------------------------

    def entries_in(self, elements: Iterable[str], exclude: tuple | None = None) -> list[ReferenceEntry]:
        """Reference entries whose elements are a subset of `elements`, plus 0 eV/atom elements.

        exclude: a formula key (see `formula_key`) to leave out (hold-out evaluation).
        """
        els = frozenset(elements)
        out: list[ReferenceEntry] = [ReferenceEntry({s: 1.0}, 0.0, f"{s} (reference)") for s in sorted(els)]
        if len(els) <= SUBSET_ENUMERATION_MAX:
            systems = (frozenset(c) for r in range(1, len(els) + 1) for c in itertools.combinations(sorted(els), r))
            found = (self.by_system.get(s, ()) for s in systems)
        else:
            found = (v for k, v in self.by_system.items() if k <= els)
        for group in found:
            out.extend(e for e in group if exclude is None or formula_key(e.amounts) != exclude)
        return out

    def phase_diagram(self, elements: Iterable[str]) -> PhaseDiagram:
        """The PhaseDiagram of one chemical system (all its subsystems included), cached."""
        els = frozenset(elements)
        pd_ = self._cache.get(els)
        if pd_ is not None:
            self._cache.move_to_end(els)
            return pd_
        with quiet_pauling():  # pymatgen sorts elements by electronegativity
            pd_ = PhaseDiagram([e.pd_entry() for e in self.entries_in(els)])
        self._cache[els] = pd_
        if len(self._cache) > PD_CACHE_SIZE:
            self._cache.popitem(last=False)
        return pd_

    # -- candidate energies ----------------------------------------------------------------------

    def hull_energy(self, amounts: dict[str, float], exclude: tuple | None = None) -> float:
        """Formation energy of the known hull at this composition (eV/atom, <= 0)."""
        amounts = {s: float(a) for s, a in amounts.items() if a > 0}
        if not amounts:
            raise ValueError("the composition has no element with a positive amount")
        if exclude is None:
            pd_ = self.phase_diagram(amounts)
        else:
            with quiet_pauling():
                pd_ = PhaseDiagram([e.pd_entry() for e in self.entries_in(amounts, exclude=exclude)])
        with quiet_pauling():
            return float(pd_.get_hull_energy_per_atom(Composition(amounts)))

    def hull_distance(self, amounts: dict[str, float], e_form_ev_atom: float) -> float:
        """Signed E_f - E_hull (eV/atom): > 0 above the known hull, < 0 a new stable phase."""
        return float(e_form_ev_atom) - self.hull_energy(amounts)

    def e_hull(self, amounts: dict[str, float], e_form_ev_atom: float) -> float:
        """Energy above the hull (eV/atom, >= 0) of the candidate's system, the candidate included."""
        return max(0.0, self.hull_distance(amounts, e_form_ev_atom))

    def e_hull_with_uncertainty(
        self, amounts: dict[str, float], e_form_ev_atom: float, e_form_sigma: float
    ) -> tuple[float, float]:
        """(e_hull, sigma) in eV/atom, propagating the formation-energy uncertainty sigma.

        e_hull = max(0, E_f - E_hull) is piecewise linear in E_f, so sigma is the half-range of
        e_hull over E_f +- sigma: equal to sigma when the candidate is well above the hull, 0 well
        below it, in between near it.
        """
        if e_form_sigma < 0 or not math.isfinite(e_form_sigma):
            raise ValueError(f"e_form_sigma must be finite and >= 0, got {e_form_sigma!r}")
        h = self.hull_energy(amounts)
        e = float(e_form_ev_atom)
        value = max(0.0, e - h)
        sigma = 0.5 * (max(0.0, e + e_form_sigma - h) - max(0.0, e - e_form_sigma - h))
        return value, sigma

    def e_hull_many(
        self,
        amounts: list[dict[str, float]],
        e_form: np.ndarray,
        e_form_sigma: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised `e_hull_with_uncertainty`: M compositions, (M,) energies -> ((M,), (M,)) eV/atom."""
        e_form = np.asarray(e_form, dtype=float)
        sig = np.zeros_like(e_form) if e_form_sigma is None else np.asarray(e_form_sigma, dtype=float)
        if not (len(amounts) == len(e_form) == len(sig)):
            raise ValueError("amounts, e_form and e_form_sigma must have the same length")
        out = np.array(
            [self.e_hull_with_uncertainty(a, e, s) for a, e, s in zip(amounts, e_form, sig, strict=True)]
        ).reshape(-1, 2)
        return out[:, 0], out[:, 1]


@dataclass(frozen=True)
class HullAccuracy:
    """Agreement of hold-out hull calls with the source's own e_hull column.

    n: compounds evaluated; accuracy: fraction where both say stable (< threshold) or both unstable;
    counts: true/false stable/unstable (prediction first); mae: mean |e_hull - source e_hull| (eV/atom).
    """

    n: int
    accuracy: float
    threshold: float
    both_stable: int
    both_unstable: int
    pred_stable_only: int
    source_stable_only: int
    mae: float


def hull_accuracy(
    n_holdout: int = 300,
    seed: int = 0,
    reference: HullReference | None = None,
    threshold: float = STABLE_THRESHOLD_EV,
    e_form_fn: Callable[[list[dict[str, float]]], np.ndarray] | None = None,
    keys: Iterable[tuple] | None = None,
) -> HullAccuracy:
    """Hold each of `n_holdout` random multi-element compounds out of the reference, recompute its
    energy above the hull from its own DFT formation energy, and compare the stable call
    (e_hull < threshold) with the source's e_hull column (JARVIS ``ehull``).

    reference: default `HullReference.from_jarvis()` (reads the data file).
    e_form_fn: optional surrogate, M compositions -> (M,) E_f (eV/atom); when given, the held-out
        compound's energy is the prediction instead of its DFT value (tests the surrogate + hull).
    keys: formula keys to draw from (e.g. the surrogate's test split); default all entries.
    """
    ref = reference if reference is not None else HullReference.from_jarvis()
    pool = ref.by_key if keys is None else [k for k in keys if k in ref.by_key]
    keys = [k for k in pool if len(ref.by_key[k].elements) >= 2 and math.isfinite(ref.reference_ehull.get(k, math.nan))]
    if not keys:
        raise ValueError("the reference has no multi-element entry with a source e_hull")
    rng = np.random.default_rng(seed)
    pick = [keys[int(i)] for i in rng.choice(len(keys), size=min(n_holdout, len(keys)), replace=False)]
    e_forms = [ref.by_key[k].e_form for k in pick]
    if e_form_fn is not None:
        e_forms = [float(v) for v in np.asarray(e_form_fn([ref.by_key[k].amounts for k in pick])).reshape(-1)]
    pred, true, err = [], [], []
    for key, e_form in zip(pick, e_forms, strict=True):
        entry = ref.by_key[key]
        e_hull = max(0.0, e_form - ref.hull_energy(entry.amounts, exclude=key))
        src = ref.reference_ehull[key]
        pred.append(e_hull < threshold)
        true.append(src < threshold)
        err.append(abs(e_hull - src))
    p, t = np.array(pred), np.array(true)
    return HullAccuracy(
        n=len(p),
        accuracy=float((p == t).mean()),
        threshold=threshold,
        both_stable=int((p & t).sum()),
        both_unstable=int((~p & ~t).sum()),
        pred_stable_only=int((p & ~t).sum()),
        source_stable_only=int((~p & t).sum()),
        mae=float(np.mean(err)),
    )


__all__ = [
    "STABLE_THRESHOLD_EV",
    "HullAccuracy",
    "HullReference",
    "ReferenceEntry",
    "formula_key",
    "hull_accuracy",
    "load_jarvis_entries",
]
