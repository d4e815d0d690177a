"""A candidate written as a known parent plus its edit: substitutions, excess, deficit.

`describe_edit(candidate, parent)` scales the candidate to the parent's formula unit (the factor that makes the
two differ in the fewest elements; among equals the one that keeps the parent's number of cation sites) and
lists what differs: each added element takes the place of removed ones of its kind (cation for cation, anion
for anion) as a substitution ("Sr for Ba (1 of 2)"); what is left is excess ("+1 O") or deficit, vacancies
included ("-1 Ca"). Amounts are atoms per parent formula unit. Elements are visited in alphabetical order, so
the same pair gives the same text in every process.
"""

from __future__ import annotations

from gdmcd_core.chem.composition import format_amounts, parse_formula

# Anions of the simple compounds (phases.py), with their charge; every other element counts as a cation here.
ANIONS: dict[str, int] = {"O": -2, "S": -2, "Se": -2, "Te": -2, "F": -1, "Cl": -1, "Br": -1, "I": -1}
# Amounts closer than this (atoms per formula unit) are equal.
AMOUNT_TOL = 1e-3


def amount_text(v: float) -> str:
    """An amount as written in a formula: 2, 0.5, 1.333."""
    return f"{round(v, 3):g}"


def display_formula(amounts: dict[str, float]) -> str:
    """A known compound's formula as its source writes it, without 1s ('Hg1Ba2Ca3Cu4O10' -> 'HgBa2Ca3Cu4O10');
    a formula written in alphabetical order (COD's 'O7Ru2Sr3') in the usual order instead ('Sr3Ru2O7').

    >>> display_formula({"Hg": 1, "Ba": 2, "Ca": 3, "Cu": 4, "O": 10}), display_formula({"B": 2, "Mg": 1})
    ('HgBa2Ca3Cu4O10', 'MgB2')
    """
    names = list(amounts)
    if len(names) > 1 and names == sorted(names):
        return format_amounts(amounts)
    return "".join(s + ("" if abs(a - 1) < AMOUNT_TOL else amount_text(a)) for s, a in amounts.items())


def split_ions(amounts: dict[str, float]) -> tuple[dict[str, float], dict[str, float]]:
    """({cation: n}, {anion: n}): anions are ANIONS; every other element counts as a cation."""
    cations = {s: a for s, a in amounts.items() if s not in ANIONS}
    return cations, {s: a for s, a in amounts.items() if s in ANIONS}


def _best_scale(cand: dict[str, float], parent: dict[str, float]) -> float:
    """The factor s that makes s * cand differ from parent in the fewest elements; among equals the one that keeps
    the parent's number of cations (a substitution keeps the sites: La1.8Sr0.2CuO4 against La2CuO4), then the
    one with the least total difference."""
    (cat_c, _), (cat_p, _) = split_ions(cand), split_ions(parent)
    keep_sites = (
        sum(cat_p.values()) / sum(cat_c.values()) if cat_c and cat_p else sum(parent.values()) / sum(cand.values())
    )
    scales = [keep_sites] + [parent[s] / cand[s] for s in cand if s in parent]

    def cost(i: int) -> tuple[int, int, float]:
        d = [abs(scales[i] * cand.get(e, 0.0) - parent.get(e, 0.0)) for e in sorted(set(cand) | set(parent))]
        return sum(v >= AMOUNT_TOL for v in d), int(i > 0), sum(d)

    return scales[min(range(len(scales)), key=cost)]


def _pair(added: dict[str, float], removed: dict[str, float]) -> list[tuple[str, str, float]]:
    """Substitutions (new, old, amount): each added element takes the place of removed ones of its kind (cation
    or anion), the largest first. Mutates both dicts to what is left."""
    subs = []
    for new in sorted(added, key=lambda s: (-added[s], s)):
        for old in sorted((s for s in removed if (s in ANIONS) == (new in ANIONS)), key=lambda s: (-removed[s], s)):
            amt = min(added[new], removed[old])
            if amt < AMOUNT_TOL:
                continue
            subs.append((new, old, amt))
            added[new] -= amt
            removed[old] -= amt
    return subs


def edit_terms(cand: dict[str, float], parent: dict[str, float]) -> tuple[list[str], list[tuple[str, str, float]]]:
    """The edit's terms ("Sr for Ba (1 of 2)", "+1 O", "-1 Ca") and the substitutions (new, old, amount)."""
    words, subs, _ = _edit(cand, parent)
    return words, subs


def unsited_elements(cand: dict[str, float], parent: dict[str, float]) -> tuple[str, ...]:
    """New cations (elements the parent lacks, not anions) that the edit adds without a site to take: added in
    excess rather than substituted ('+1 Cs' on Ba4YCu3O8.5). The parent's structure has no place for them.

    >>> unsited_elements({"Cs": 1, "Ba": 4, "Y": 1, "Cu": 3, "O": 9}, {"Ba": 4, "Y": 1, "Cu": 3, "O": 9})
    ('Cs',)
    """
    _, _, left = _edit(cand, parent)
    return tuple(sorted(e for e, v in left.items() if v >= AMOUNT_TOL and e not in parent and e not in ANIONS))


def _edit(cand: dict[str, float], parent: dict[str, float]) -> tuple[list[str], list, dict[str, float]]:
    """(terms, substitutions, what the substitutions leave added): see `edit_terms`."""
    s = _best_scale(cand, parent)
    diff = {e: s * cand.get(e, 0.0) - parent.get(e, 0.0) for e in sorted(set(cand) | set(parent))}
    added = {e: v for e, v in diff.items() if v >= AMOUNT_TOL}
    removed = {e: -v for e, v in diff.items() if v <= -AMOUNT_TOL}
    subs = _pair(added, removed)
    words = [
        f"{new} for {old}"
        + ("" if abs(a - parent[old]) < AMOUNT_TOL else f" ({amount_text(a)} of {amount_text(parent[old])})")
        for new, old, a in subs
    ]
    words += [f"+{amount_text(v)} {e}" for e, v in sorted(added.items()) if v >= AMOUNT_TOL]
    words += [f"-{amount_text(v)} {e}" for e, v in sorted(removed.items()) if v >= AMOUNT_TOL]
    return words, subs, added


def describe_edit(cand: dict[str, float], parent: dict[str, float]) -> tuple[str, list[tuple[str, str, float]]]:
    """The candidate, scaled to the parent's formula unit, as the parent plus its edit; and its substitutions.

    >>> describe_edit({"Hg": 1, "Ba": 1, "Sr": 1, "Ca": 3, "Cu": 4, "O": 10}, {"Hg": 1, "Ba": 2, "Ca": 3, "Cu": 4, "O": 10})
    ('Sr for Ba (1 of 2)', [('Sr', 'Ba', 1.0)])
    >>> describe_edit({"La": 9, "Sr": 1, "Cu": 5, "O": 19}, {"La": 2, "Cu": 1, "O": 4})[0]
    'Sr for La (0.2 of 2), -0.2 O'
    """
    words, subs = edit_terms(cand, parent)
    return (", ".join(words) or "none (same composition)"), subs


def element_set(formula: str) -> str:
    """The element set of a formula, alphabetical: 'HgBa2Ca3Cu4O10' -> 'Ba-Ca-Cu-Hg-O'."""
    return "-".join(sorted(parse_formula(formula)))


__all__ = [
    "AMOUNT_TOL",
    "ANIONS",
    "amount_text",
    "describe_edit",
    "display_formula",
    "edit_terms",
    "element_set",
    "split_ions",
    "unsited_elements",
]
