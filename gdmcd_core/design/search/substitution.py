"""Data-mined ionic substitution of known superconductors: the proposals of the "substitution" search method.

Hautier, Fischer, Ehrlacher, Jain and Ceder (Inorg. Chem. 50, 656 (2011)) mined the ICSD for which ions replace
which in compounds of the same structure type. pymatgen ships the fitted weights, the lambda table
(pymatgen/core/structure_prediction/data/lambda.json), with `SubstitutionProbability`; from it

    p(t | s) = SubstitutionProbability.cond_prob(t, s) = exp(lambda(s, t)) / sum_u exp(lambda(s, u))

is the probability that ion s of a known compound is found replaced by ion t (summed over t it is 1; t = s, the
ion kept, included). `lambda_table()` holds it as a matrix over the table's 231 ions.

A proposal takes a parent, a known superconductor, gives its elements oxidation states (`assign_species`) and
replaces one or two of its ions, every amount kept (Ca2+ -> Sr2+ in HgBa2Ca2Cu3O8 gives HgBa2Sr2Cu3O8):

* each replacement s -> t has p(t | s) >= MIN_PROBABILITY; t is another element (a valence change of one element
  is no substitution), not in the parent already (Hautier's predictor keeps the species of a product distinct),
  allowed by the run and not pinned; a pinned element is never replaced;
* the total charge is kept, as Hautier's predictor keeps only charge-balanced products: a single replacement is
  isovalent; a double one may be aliovalent when the two charge changes cancel,
  n1 (q(t1) - q(s1)) + n2 (q(t2) - q(s2)) = 0 (n: amounts);
* its probability is the product of its p(t | s). `proposals` lists the singles, then the doubles, each by
  decreasing probability: the order in which the search scores them until its budget is spent.

`uniform_proposals` is the baseline without the table: any element of the parent replaced by any allowed element,
in random order.

Oxidation states (`assign_species`). The table knows cations and the anions O2-, S2-, Se2-, N3- and the halides:

* in a compound holding an anion former (chem.valence.ANION_FORMERS: O, S, Se, Te, N, P, As, halogens) those
  elements are anions at their most negative state; As3-, P3- and Te2- are not in the table and stay as they are;
* every other element is a cation at one of its common states (pymatgen `common_oxidation_states`; all its table
  states when none of those is in the table); of all assignments the one with total charge closest to 0 is
  taken, ties to the ions seen most often in the mined data (the table's marginal weight). YBa2Cu3O7 gets Y3+
  Ba2+ Cu2+ O2-: the mixed valence stays in the balance (-1), since only charge *changes* enter the rule above;
* an intermetallic (no anion former) has no ionic valences: each element takes its ion seen most often in the
  mined data (Nb5+, Sn4+, Mg2+, B3+), so that for metals the table acts as a similarity of atoms (Nb3Sn ->
  Nb3Ge through Sn4+ -> Ge4+), not as charge counting;
* an element without an ion in the table stays unchanged.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import cache

import numpy as np
import torch
from pymatgen.core import Element

from gdmcd_core.chem.distance import NEAREST_CHUNK
from gdmcd_core.chem.elements import N_ELEMENTS, index_of, symbols
from gdmcd_core.chem.valence import ANION_FORMERS, oxidation_states
from gdmcd_core.design.search.mutation import SearchSpace

# A replacement s -> t is proposed when p(t | s) >= this. The table's ions keep their own identity with
# p(s | s) of about 0.1 (Ca2+ 0.13, Y3+ 0.09, Fe2+ 0.10, Nb5+ 0.19): the threshold admits the replacements at
# least a tenth as likely as keeping the ion (Ca2+ -> Sr2+ 0.097, Y3+ -> Gd3+ 0.028, Cu2+ -> Zn2+ 0.060,
# O2- -> S2- 0.027) and drops the tail of rarely or never co-occurring pairs. Chosen from the table alone.
MIN_PROBABILITY = 0.01
# Two charge changes cancel when |n1 dq1 + n2 dq2| is below this (charges x atomic fractions).
CHARGE_TOL = 1e-6
# A parent's cations get at most this many assignments tried (the product of their options: 6 cations with 4
# common states each); beyond it the first option of each is taken.
MAX_ASSIGNMENTS = 4096
MAX_EDITS = 2  # single and double substitutions
# Parents: the starts' nearest known superconductors, then (while the budget lasts) their 2nd, 3rd, ... nearest,
# up to this many per start.
PARENT_TIERS = 16


@dataclass(frozen=True)
class IonTable:
    """The lambda table as arrays: names (S,) ("Ca2+"), element (S,) index Z-1, charge (S,) oxidation state,
    p (S, S) with p[s, t] = p(t | s) (rows sum to 1), weight (S,) the ion's marginal weight in the mined data."""

    names: tuple[str, ...]
    element: np.ndarray
    charge: np.ndarray
    p: np.ndarray
    weight: np.ndarray

    def ions_of(self, symbol: str) -> np.ndarray:
        """Indices of the table's ions of an element, by increasing charge."""
        return np.flatnonzero(self.element == index_of(symbol))


@cache
def lambda_table() -> IonTable:
    """pymatgen's lambda table (Hautier et al. 2011) through `SubstitutionProbability`, loaded once per process."""
    # imported here: the module is only needed by a substitution search, and takes about a second to load
    from pymatgen.analysis.structure_prediction.substitution_probability import SubstitutionProbability

    sp = SubstitutionProbability()
    ions = sorted(sp.species, key=lambda s: (s.Z, s.oxi_state))
    arrays = {
        "element": np.array([s.Z - 1 for s in ions], np.int64),
        "charge": np.array([float(s.oxi_state) for s in ions]),
        "p": np.array([[sp.cond_prob(t, s) for t in ions] for s in ions], dtype=np.float64),
        "weight": np.array([sp.get_px(s) for s in ions]),
    }
    for a in arrays.values():
        a.setflags(write=False)
    return IonTable(names=tuple(str(s) for s in ions), **arrays)


def assign_species(amounts: dict[str, float], table: IonTable | None = None) -> dict[str, int]:
    """{symbol: index of its ion in the table} for the elements of a composition that get one (see the module
    docstring); elements without an ion in the table are left out. amounts: {symbol: amount > 0}."""
    table = table or lambda_table()
    ionic = any(s in ANION_FORMERS for s in amounts)
    out: dict[str, int] = {}
    cations: list[str] = []
    for s in amounts:
        ions = table.ions_of(s)
        if not ionic:
            if len(ions):
                out[s] = int(ions[np.argmax(table.weight[ions])])
        elif s in ANION_FORMERS:
            q = min(oxidation_states(s), default=0)
            match = ions[table.charge[ions] == q] if q < 0 else ions[:0]
            if len(match):
                out[s] = int(match[0])
        elif len(ions[table.charge[ions] > 0]):
            cations.append(s)
    fixed = sum(amounts[s] * _charge_of(s, out, table) for s in amounts if s not in cations)
    out.update(_balance_cations({s: amounts[s] for s in cations}, fixed, table))
    return out


def _charge_of(symbol: str, assigned: dict[str, int], table: IonTable) -> float:
    """The charge counted for an element outside the cation choice: its ion's, else its most negative state
    if it is an anion former (As3-, Te2-), else 0."""
    if symbol in assigned:
        return float(table.charge[assigned[symbol]])
    return float(min(oxidation_states(symbol), default=0)) if symbol in ANION_FORMERS else 0.0


def _cation_options(symbol: str, table: IonTable) -> np.ndarray:
    """The ions a cation may take: its common states in the table, else all its positive table ions."""
    ions = table.ions_of(symbol)
    ions = ions[table.charge[ions] > 0]
    common = set(Element(symbol).common_oxidation_states)
    preferred = ions[np.isin(table.charge[ions], sorted(common))]
    return preferred if len(preferred) else ions


def _balance_cations(cations: dict[str, float], fixed_charge: float, table: IonTable) -> dict[str, int]:
    """The cation assignment with total charge closest to 0 (ties: the largest summed log weight)."""
    if not cations:
        return {}
    options = [_cation_options(s, table) for s in cations]
    if math.prod(len(o) for o in options) > MAX_ASSIGNMENTS:
        return {s: int(o[0]) for s, o in zip(cations, options, strict=True)}
    combos = np.array(list(itertools.product(*options)), np.int64)  # (C, n_cations)
    amounts = np.array(list(cations.values()))
    imbalance = np.abs(fixed_charge + (table.charge[combos] * amounts).sum(1))
    prior = np.log(table.weight[combos]).sum(1)
    best = np.lexsort((-prior, np.round(imbalance, 9)))[0]
    return {s: int(i) for s, i in zip(cations, combos[best], strict=True)}


@dataclass(frozen=True)
class Proposals:
    """Edits of parents, in the order they are to be scored.

    parent (M,): index into the parents; src, dst (M, MAX_EDITS): indices into `names` of the replaced and the new
    ion (-1: no second edit); probability (M,): product of p(t | s) (uniform: 1 / choices); names (S,) and
    element (S,): what an index stands for and its element index (Z-1).
    """

    parent: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    probability: np.ndarray
    names: tuple[str, ...]
    element: np.ndarray

    def __len__(self) -> int:
        return len(self.parent)

    @property
    def n_edits(self) -> np.ndarray:
        """(M,) 1 for a single, 2 for a double substitution."""
        return (self.src >= 0).sum(1)

    def edit(self, i: int) -> str:
        """What proposal i does, e.g. 'Sr2+ for Ca2+' or 'Sr2+ for Ca2+, Y3+ for La3+'."""
        pairs = [(d, s) for s, d in zip(self.src[i], self.dst[i], strict=True) if s >= 0]
        return ", ".join(f"{self.names[d]} for {self.names[s]}" for d, s in pairs)

    def compositions(self, parents_x: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """(len(rows), 118) the parents of proposals `rows` with their edits applied (amounts moved, not changed)."""
        x = np.array(parents_x[self.parent[rows]], np.float64)
        r = np.arange(len(rows))
        for k in range(self.src.shape[1]):
            s, d = self.src[rows, k], self.dst[rows, k]
            on = s >= 0
            es, ed = self.element[s[on]], self.element[d[on]]
            moved = x[r[on], es]
            x[r[on], es] = 0.0
            x[r[on], ed] += moved
        return x


def _empty(names: tuple[str, ...], element: np.ndarray) -> Proposals:
    z = np.zeros(0, np.int64)
    return Proposals(
        z, np.zeros((0, MAX_EDITS), np.int64), np.zeros((0, MAX_EDITS), np.int64), np.zeros(0), names, element
    )


def _concat(parts: list[Proposals], names: tuple[str, ...], element: np.ndarray) -> Proposals:
    if not parts:
        return _empty(names, element)
    cat = np.concatenate
    return Proposals(
        cat([p.parent for p in parts]),
        cat([p.src for p in parts]),
        cat([p.dst for p in parts]),
        cat([p.probability for p in parts]),
        names,
        element,
    )


def _ranked(p: Proposals) -> Proposals:
    """Singles before doubles, each by decreasing probability (ties: the order generated)."""
    order = np.lexsort((-p.probability, p.n_edits))
    return Proposals(p.parent[order], p.src[order], p.dst[order], p.probability[order], p.names, p.element)


def _targets(space: SearchSpace) -> np.ndarray:
    """(118,) bool: elements an edit may bring in (allowed, not pinned)."""
    return space.capped.copy()


def _sources(space: SearchSpace) -> np.ndarray:
    """(118,) bool: elements an edit may replace (any element but a pinned one; an excluded one must go)."""
    m = np.ones(N_ELEMENTS, bool)
    m[list(space.pins)] = False
    return m


def _ion_options(s: int, present: np.ndarray, targets: np.ndarray, t: IonTable, min_p: float) -> np.ndarray:
    """Ions that may replace ion s in a parent whose elements are `present` (118,) bool."""
    ok = (t.p[s] >= min_p) & (t.element != t.element[s]) & ~present[t.element] & targets[t.element]
    return np.flatnonzero(ok)


def _parent_edits(
    x: np.ndarray, ions: dict[str, int], space: SearchSpace, table: IonTable, min_p: float, doubles: bool
) -> tuple[list[tuple[int, int, int, int, float]], int]:
    """(src1, dst1, src2, dst2, probability) of one parent x (118,) with its ions; -1 = no second edit.
    Also returns how many doubles failed the charge balance."""
    present, targets, sources = x > 0, _targets(space), _sources(space)
    sites = [(i, x[table.element[i]]) for i in ions.values() if sources[table.element[i]]]
    opts = {i: _ion_options(i, present, targets, table, min_p) for i, _ in sites}
    out: list[tuple[int, int, int, int, float]] = []
    for i, _ in sites:
        iso = opts[i][table.charge[opts[i]] == table.charge[i]]
        out += [(i, int(d), -1, -1, float(table.p[i, d])) for d in iso]
    unbalanced = 0
    if not doubles:
        return out, unbalanced
    for (i, ni), (j, nj) in itertools.combinations(sites, 2):
        a, b = opts[i], opts[j]
        dq = ni * (table.charge[a] - table.charge[i])[:, None] + nj * (table.charge[b] - table.charge[j])[None, :]
        ok = (np.abs(dq) <= CHARGE_TOL) & (table.element[a][:, None] != table.element[b][None, :])
        unbalanced += int((np.abs(dq) > CHARGE_TOL).sum())
        ia, ib = np.nonzero(ok)
        prob = table.p[i, a[ia]] * table.p[j, b[ib]]
        out += [(i, int(a[u]), j, int(b[v]), float(q)) for u, v, q in zip(ia, ib, prob, strict=True)]
    return out, unbalanced


@dataclass(frozen=True)
class ParentIons:
    """The oxidation-state assignment of each parent: ions (P,) of {symbol: ion index}, and counts."""

    ions: list[dict[str, int]]
    n_intermetallic: int
    n_without_ion: int  # parents none of whose elements has an ion in the table


def parent_ions(parents_x: np.ndarray, table: IonTable | None = None) -> ParentIons:
    """`assign_species` for every parent (P, 118) fractions."""
    table = table or lambda_table()
    syms = symbols()
    out, n_metal, n_none = [], 0, 0
    for x in np.asarray(parents_x, np.float64):
        amounts = {syms[k]: float(x[k]) for k in np.flatnonzero(x > 0)}
        ions = assign_species(amounts, table)
        n_metal += not any(s in ANION_FORMERS for s in amounts)
        n_none += not ions
        out.append(ions)
    return ParentIons(out, n_metal, n_none)


def proposals(
    parents_x: np.ndarray,
    space: SearchSpace,
    *,
    table: IonTable | None = None,
    min_probability: float = MIN_PROBABILITY,
    doubles: bool = True,
    ions: ParentIons | None = None,
) -> tuple[Proposals, dict[str, int]]:
    """Lambda-table substitutions of parents (P, 118) within `space`, ranked (see the module docstring), and counts.

    Proposals that would break the element cap or keep an excluded element are left to the caller's check
    (`admissible`): an excluded element of a parent can only be replaced, never kept.
    """
    table = table or lambda_table()
    ions = ions or parent_ions(parents_x, table)
    rows: list[tuple[int, int, int, int, int, float]] = []
    unbalanced = 0
    for k, (x, ion) in enumerate(zip(np.asarray(parents_x, np.float64), ions.ions, strict=True)):
        edits, n_bad = _parent_edits(x, ion, space, table, min_probability, doubles)
        rows += [(k, *e) for e in edits]
        unbalanced += n_bad
    if not rows:
        return _empty(table.names, table.element), _counts(ions, rows, unbalanced)
    a = np.array([r[:5] for r in rows], np.int64)
    prob = np.array([r[5] for r in rows])
    p = Proposals(a[:, 0], a[:, [1, 3]], a[:, [2, 4]], prob, table.names, table.element)
    return _ranked(p), _counts(ions, rows, unbalanced)


def _counts(ions: ParentIons, rows: list, unbalanced: int) -> dict[str, int]:
    n_double = sum(r[3] >= 0 for r in rows)
    return {
        "n_parents": len(ions.ions),
        "n_parents_intermetallic": ions.n_intermetallic,
        "n_parents_without_table_ion": ions.n_without_ion,
        "n_single": len(rows) - n_double,
        "n_double": n_double,
        "n_double_charge_unbalanced": unbalanced,
    }


def uniform_proposals(parents_x: np.ndarray, space: SearchSpace, rng: np.random.Generator) -> Proposals:
    """Every single substitution of a parent element (not pinned) by an allowed, unpinned element it does not hold,
    in random order, probability 1 / (its parent's number of such substitutions): the baseline without the table."""
    names, element = tuple(symbols()), np.arange(N_ELEMENTS)
    targets, sources = _targets(space), _sources(space)
    parts = []
    for k, x in enumerate(np.asarray(parents_x, np.float64)):
        src = np.flatnonzero((x > 0) & sources)
        dst = np.flatnonzero(targets & ~(x > 0))
        s, d = np.repeat(src, len(dst)), np.tile(dst, len(src))
        n = len(s)
        if n == 0:
            continue
        none = np.full(n, -1)
        parts.append(
            Proposals(
                np.full(n, k), np.stack([s, none], 1), np.stack([d, none], 1), np.full(n, 1.0 / n), names, element
            )
        )
    p = _concat(parts, names, element)
    order = rng.permutation(len(p))
    return Proposals(p.parent[order], p.src[order], p.dst[order], p.probability[order], names, element)


def admissible(x: np.ndarray, space: SearchSpace) -> np.ndarray:
    """(M,) bool: compositions x (M, 118) with no excluded element, within the element cap, holding every pinned
    element (its fraction is then set by `space.repair`, as the database method sets a pin)."""
    present = x > 0
    ok = ~present[:, ~space.allowed].any(1)
    if space.max_elements:
        ok &= present.sum(1) <= space.max_elements
    for k in space.pins:
        ok &= present[:, k]
    return ok


def parent_tiers(
    start_x: np.ndarray, sc_x: np.ndarray, sc_tc_k: np.ndarray, tiers: int = PARENT_TIERS
) -> list[np.ndarray]:
    """The parents of a search, tier by tier: tier r holds the (r + 1)-th nearest known superconductors (Tc > 0 K,
    L1 in fractions) of the starts (B, 118), as indices into sc_x, distinct and in no earlier tier, in the order of
    the starts. Tier 0 are the starts' nearest known superconductors; empty tiers are left out."""
    sc = np.flatnonzero(np.asarray(sc_tc_k) > 0)
    if len(sc) == 0 or len(start_x) == 0:
        return []
    ref = torch.as_tensor(np.asarray(sc_x, np.float32)[sc])
    k = min(tiers, len(sc))
    with torch.no_grad():
        near = [
            torch.cdist(torch.as_tensor(np.asarray(start_x[i : i + NEAREST_CHUNK], np.float32)), ref, p=1)
            .topk(k, dim=1, largest=False)
            .indices.numpy()
            for i in range(0, len(start_x), NEAREST_CHUNK)
        ]
    order = np.concatenate(near)  # (B, k) nearest first
    out, seen = [], set()
    for r in range(k):
        _, first = np.unique(order[:, r], return_index=True)
        tier = [int(j) for j in order[np.sort(first), r] if int(j) not in seen]
        seen.update(tier)
        if tier:
            out.append(sc[np.asarray(tier, np.int64)])
    return out


__all__ = [
    "MIN_PROBABILITY",
    "IonTable",
    "ParentIons",
    "Proposals",
    "admissible",
    "assign_species",
    "lambda_table",
    "parent_tiers",
    "parent_ions",
    "proposals",
    "uniform_proposals",
]
