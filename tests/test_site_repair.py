"""Site repair: a misfit ion swapped for one that fits its site, and clean variants of known superconductors.

Radii are Shannon's (pymatgen), at the site's coordination (site_fit.py): Ca2+ on the A site of Hg-1234 (CN VIII)
is 1.12 A; Mg2+ (0.89 A) misses it by 21 %, Sr2+ (1.26 A) fits within 15 %, Cd2+ (1.10 A) too. The reference
compounds are the cited fixture of tests/test_phases.py.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.data.reference import ReferenceData
from gdmcd_core.design.evidence import site_repair
from gdmcd_core.design.evidence.candidates import CandidateContext, build_candidates
from gdmcd_core.design.evidence.phases import analyse
from gdmcd_core.design.evidence.site_fit import SITE_MISMATCH_MAX
from gdmcd_core.design.objective.integer_loss import Integerized
from tests.test_phases import HG1234, KNOWN

ALLOWED = ["Li", "Na", "Mg", "Ca", "Sr", "Ba", "Cd", "Zn", "La", "Y", "Cu", "Hg", "O", "F", "Be", "Eu"]


def _score_by(element: str):
    """A model that likes `element`: the score is its fraction (then a tiny preference for fewer elements)."""
    from gdmcd_core.chem.elements import index_of

    i = index_of(element)
    return lambda x: np.asarray(x)[:, i] - 1e-3 * (np.asarray(x) > 0).sum(1)


def test_replacements_keep_the_charge_and_fit_the_site() -> None:
    got = site_repair.replacements("Mg", "Ca", HG1234, ALLOWED)
    # Eu2+ (1.25 A) and Hg2+ (1.14 A) fit too; La3+ has the wrong charge, Zn2+ (0.90 A) is too small
    assert set(got) == {"Sr", "Cd", "Eu", "Hg"}
    assert all(site_fit_ok("Mg", alt) for alt in got)
    assert site_repair.replacements("Mg", "Ca", HG1234, ["O", "F"]) == []  # never an anion on a cation site


def site_fit_ok(new: str, alt: str) -> bool:
    from gdmcd_core.design.evidence.site_fit import radius_mismatch

    return radius_mismatch(alt, "Ca", HG1234) <= SITE_MISMATCH_MAX < radius_mismatch(new, "Ca", HG1234)


def test_a_misfit_row_is_repaired_into_a_clean_phase() -> None:
    """HgBa2CaMgCu3O8 is Hg-1223 with Mg on a Ca site (21 % too small): the repair puts Sr there."""
    misfit = "Ba2CaMgCu3HgO8"
    assert analyse(misfit, KNOWN).site_mismatch > SITE_MISMATCH_MAX
    table = pd.DataFrame({"integer_formula": [misfit], "candidate": [7], "site_mismatch": [0.205], "is_known": [False]})
    found = site_repair.site_repairs(table, KNOWN, _score_by("Sr"), ALLOWED)
    assert found and found[0].formula == site_repair.swap(misfit, "Mg", "Sr") and found[0].candidate == 7
    assert found[0].path == "site repair of candidate 7 (Sr for Mg)"
    assert all(site_repair.clean(analyse(r.formula, KNOWN)) for r in found)
    assert all(parse_formula(r.formula)["Ca"] == 1 for r in found)  # only the misfit ion moved
    # a pinned ion stays, whatever its fit
    assert site_repair.site_repairs(table, KNOWN, _score_by("Sr"), ALLOWED, pinned=["Mg"]) == []
    # nothing in the allowed list fits: no row
    assert site_repair.site_repairs(table, KNOWN, _score_by("Sr"), ["Zn", "La"]) == []


def test_variants_of_a_known_superconductor_are_not_known() -> None:
    """Hg-1234 is known; its variants swap one cation for one that fits, and none is a known compound."""
    table = pd.DataFrame(
        {"integer_formula": ["Ba2Ca3Cu4HgO10"], "candidate": [3], "site_mismatch": [np.nan], "is_known": [True]}
    )
    found = site_repair.site_repairs(table, KNOWN, _score_by("Sr"), ALLOWED, allowed_ns=range(4, 25))
    assert 0 < len(found) <= site_repair.REPAIRS_PER_ROW
    assert found[0].formula in {"Ba2Ca2SrCu4HgO10", "BaSrCa3Cu4HgO10"} and found[0].path.startswith("site variant")
    for r in found:
        a = analyse(r.formula, KNOWN)
        assert site_repair.clean(a) and sum(parse_formula(r.formula).values()) == 20  # one atom swapped, same cell
    # without a cell-size limit the doubled cell (Hg once per formula unit: half of it substituted) comes in too
    doubled = site_repair.site_repairs(table, KNOWN, _score_by("Sr"), ALLOWED, per_row=30)
    assert any(sum(parse_formula(r.formula).values()) == 40 for r in doubled)


def test_a_swap_that_loses_the_predicted_tc_is_not_kept() -> None:
    """A variant whose predicted Tc falls below MIN_TC_SHARE of its source's is dropped, whatever its fit."""
    table = pd.DataFrame(
        {"integer_formula": ["Ba2Ca3Cu4HgO10"], "candidate": [3], "site_mismatch": [np.nan], "is_known": [True]}
    )
    from gdmcd_core.chem.elements import index_of

    sr, ba = index_of("Sr"), index_of("Ba")
    tc = lambda x: 100 * np.asarray(x)[:, ba] / 0.1 - 90 * (np.asarray(x)[:, sr] > 0)  # noqa: E731  Sr kills Tc
    found = site_repair.site_repairs(table, KNOWN, _score_by("Sr"), ALLOWED, allowed_ns=range(4, 25), tc=tc)
    assert found and all("Sr" not in parse_formula(r.formula) for r in found)


def test_build_candidates_adds_repaired_rows_with_their_sources_lineage() -> None:
    formulas = ["Ba2CaMgCu3HgO8", "MgB2"]
    x = np.stack([to_vector(f) for f in formulas])
    ref = ReferenceData(sc_x=x[[1]].astype(np.float32), sc_tc_k=np.array([39.0]), sc_formula=np.array(["MgB2"]))
    score = _score_by("Sr")
    ctx = CandidateContext(
        predict=lambda v: (score(v) * 100, np.zeros(len(v))),
        reference=ref,
        allowed_ns=tuple(range(1, 25)),
        lower_frac=None,
        exact_frac=None,
        pinned_mask=np.zeros(118, bool),
        known=KNOWN,
        steps2=20,
        site_repair=True,
        allowed=tuple(ALLOWED),
    )
    integ = Integerized(
        n_atoms=np.array([20, 3]), amounts=x * np.array([[20], [3]]), formulas=formulas, loss=np.zeros(2)
    )
    table = build_candidates(ctx, x, ["s0", "s1"], x, x, integ, np.array([30, 30]))
    by = table.set_index("integer_formula")
    repaired = by.loc["Ba2SrCaCu3HgO8"]
    assert repaired["path"] == "site repair of candidate 0 (Sr for Mg)" and repaired["source"] == "s0"
    assert repaired["candidate"] == 0 and not repaired["site_misfit"] and np.isnan(repaired["integer_loss"])
    assert by.loc["Ba2SrCaCu3HgO8", "rank"] < by.loc["Ba2CaMgCu3HgO8", "rank"]  # fits rank before misfits
    off = build_candidates(CandidateContext(**{**ctx.__dict__, "site_repair": False}), x, ["s0", "s1"], x, x, integ)
    assert len(off) == 2  # the switch turns it off


def test_the_docstring_examples_hold() -> None:
    import doctest

    assert doctest.testmod(site_repair).failed == 0
