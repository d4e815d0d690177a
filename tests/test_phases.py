"""Phase analysis of candidates: parent and edit, mixtures, known compounds, site fit, diversity, provenance.

The reference compounds are a small fixture of real, cited phases:

* HgBa2Ca(n-1)Cu(n)O(2n+2) series: Hg-1201 (Putilin et al., Nature 362, 226 (1993)), Hg-1223 as SuperCon
  writes it with its excess oxygen (HgBa2Ca2Cu3O8.3; Schilling et al., Nature 363, 56 (1993)), Hg-1234;
* YBa2Cu3O7-d as YBa2Cu3O6.93 (Wu et al., PRL 58, 908 (1987)); YBa2Cu4O8 (Karpinski et al., Nature 336,
  660 (1988)); La2CuO4+d as La2CuO4.03 (Bednorz & Mueller, Z. Phys. B 64, 189 (1986)); Bi2Sr2CuO6 and
  Bi2Sr2CaCu2O8 (Maeda et al., Jpn. J. Appl. Phys. 27, L209 (1988)); MgB2 (Nagamatsu et al., Nature 410,
  63 (2001));
* non-superconductors as COD lists them: the binary oxides MgO, BaO, CaO, SrO, CuO, Y2O3, and BaCuO2.

The mixtures are the ones the design issue found in the quick run's top 20: Ba2Ca3MgCu4HgO11 =
HgBa2Ca3Cu4O10 + MgO, Ba3Ca3Cu4HgO11 = Hg-1234 + BaO, Ba4YCu5O11 = YBa2Cu4O8 + 2 BaO + CuO.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gdmcd_core.chem.composition import format_vector, to_vector
from gdmcd_core.data.reference import ReferenceData
from gdmcd_core.design.evidence import diversity, edits, phases, site_fit
from gdmcd_core.design.evidence.candidates import CandidateContext, build_candidates, rank_rows
from gdmcd_core.design.evidence.known import KnownCompounds, known_compounds
from gdmcd_core.design.evidence.phases import phase_columns
from gdmcd_core.design.objective.integer_loss import Integerized

SUPERCON = [  # formula, Tc (K), first year
    ("HgBa2CuO4", 94.0, 1993),
    ("HgBa2Ca2Cu3O8.3", 133.0, 1993),
    ("HgBa2Ca3Cu4O10", 125.0, 1993),
    ("YBa2Cu3O6.93", 92.0, 1987),
    ("YBa2Cu4O8", 80.0, 1988),
    ("La2CuO4.03", 38.0, 1986),
    ("Bi2Sr2CuO6", 20.0, 1988),
    ("Bi2Sr2CaCu2O8", 85.0, 1988),
    ("MgB2", 39.0, 2001),
]
COD = ["MgO", "BaO", "CaO", "SrO", "CuO", "Y2O3", "BaCuO2"]
HG1234 = {"Hg": 1, "Ba": 2, "Ca": 3, "Cu": 4, "O": 10}


def _known(supercon=SUPERCON, cod=COD) -> KnownCompounds:
    sc = phases.known_from_formulas(
        [f for f, _, _ in supercon], [t for _, t, _ in supercon], [y for _, _, y in supercon]
    )
    other = phases.known_from_formulas(list(cod), source="cod")
    cat = lambda a, b: np.concatenate([a, b])  # noqa: E731
    parts = [cat(getattr(sc, k), getattr(other, k)) for k in ("x", "formula", "source", "tc_k", "year")]
    return KnownCompounds(*parts)


KNOWN = _known()


@pytest.mark.parametrize(
    ("formula", "mixture_of"),
    [
        ("Ba2Ca3MgCu4HgO11", "HgBa2Ca3Cu4O10 + MgO"),
        ("Ba3Ca3Cu4HgO11", "HgBa2Ca3Cu4O10 + BaO"),
        ("Ba4YCu5O11", "YBa2Cu4O8 + 2 BaO + CuO"),
        ("Ba4Y2Cu8O16MgO", "2 YBa2Cu4O8 + MgO"),  # a multiple of the parent plus a binary
    ],
)
def test_a_known_phase_plus_binaries_is_a_mixture(formula: str, mixture_of: str) -> None:
    a = phases.analyse(formula, KNOWN)
    assert a.is_mixture and a.mixture_of == mixture_of
    assert a.parent_formula == mixture_of.split(" + ")[0].split(" ")[-1] and a.parent_source == "supercon"
    assert a.edit.startswith("+ ") and not a.is_known


@pytest.mark.parametrize(
    "formula", ["YBa2Cu3O7", "HgBa2Ca2Cu3O8", "HgBa2Ca4Cu5O12", "YBa2Cu4O8", "La2CuO4", "Bi2Sr2CaCu2O8", "MgB2"]
)
def test_real_phases_are_not_mixtures(formula: str) -> None:
    assert not phases.analyse(formula, KNOWN).is_mixture


def test_homologous_series_members_are_phases_with_a_block_edit() -> None:
    """Hg-1245 and Bi-2223 are not in the fixture: each is its series' previous member plus a CaCuO2 block."""
    hg = phases.analyse("HgBa2Ca4Cu5O12", KNOWN)
    assert (hg.parent_formula, hg.edit, hg.is_mixture) == ("HgBa2Ca3Cu4O10", "+ CaCuO2 block", False)
    bi = phases.analyse("Bi2Sr2Ca2Cu3O10", KNOWN)
    assert (bi.parent_formula, bi.edit, bi.is_mixture) == ("Bi2Sr2CaCu2O8", "+ CaCuO2 block", False)
    hg12 = phases.analyse("HgBa2CaCu2O6", KNOWN)  # from Hg-1201: the block brings Ca
    assert hg12.edit == "+ CaCuO2 block"
    # a block needs its series: CaCuO2 on a cuprate, ABO3 on a parent holding A and B
    assert phases.block_parts({"Ca": 1, "Cu": 1, "O": 2}, {"Mg": 1, "B": 2}, 0.5) is None
    assert phases.block_parts({"Sr": 1, "Ru": 1, "O": 3}, {"Sr": 2, "Ru": 1, "O": 4}, 0.5) == ((1, "SrRuO3"),)


def test_no_mixture_without_a_known_multinary_main_phase() -> None:
    """La2CuO4 = La2O3 + CuO, but a binary is no main phase; an intermetallic has no binaries at all."""
    bare = _known(supercon=[("YBa2Cu3O6.93", 92.0, 1987)], cod=["La2O3", "CuO", "MgO"])
    assert not phases.analyse("La2CuO4", bare).is_mixture
    assert not phases.analyse("MgB2", bare).is_mixture
    assert phases.simple_parts({"H": 1, "F": 1}, "F", 0.5) is None  # HF is no solid impurity phase
    # a main phase holding too little of the cations is no "known phase plus an impurity"
    assert not phases.analyse("YBa2Cu3O7Mg5O5", bare).is_mixture


def test_known_superconductors_up_to_oxygen_stoichiometry() -> None:
    for formula, parent in [
        ("YBa2Cu3O7", "YBa2Cu3O6.93"),
        ("Ba4Y2Cu6O14", "YBa2Cu3O6.93"),  # a multiple of the formula unit
        ("HgBa2Ca2Cu3O8", "HgBa2Ca2Cu3O8.3"),
        ("La2CuO4", "La2CuO4.03"),
        ("MgB2", "MgB2"),
    ]:
        a = phases.analyse(formula, KNOWN)
        assert a.is_known and a.parent_formula == parent and a.parent_source == "supercon", formula
        assert not math.isnan(a.parent_tc_k) and a.parent_year >= 1986
    assert not phases.analyse("YBa2Cu3O6", KNOWN).is_known  # 0.93 O from the entry: another compound
    assert not phases.analyse("YBa2Cu3O7", _known(supercon=[], cod=["YBa2Cu3O7"])).is_known  # not a SuperCon entry


def test_edits_against_the_parents_formula_unit() -> None:
    assert edits.describe_edit({"Hg": 1, "Ba": 1, "Sr": 1, "Ca": 3, "Cu": 4, "O": 10}, HG1234)[0] == (
        "Sr for Ba (1 of 2)"
    )
    # La9SrCu5O20 is La1.8Sr0.2CuO4 in the units of La2CuO4: the number of cation sites is kept
    assert edits.describe_edit({"La": 9, "Sr": 1, "Cu": 5, "O": 20}, {"La": 2, "Cu": 1, "O": 4})[0] == (
        "Sr for La (0.2 of 2)"
    )
    assert edits.describe_edit({"Hg": 1, "Ba": 2, "Ca": 3, "Cu": 4, "O": 9}, HG1234)[0] == "-1 O"
    assert edits.describe_edit({"Hg": 1, "Ba": 2, "Ca": 2, "Cu": 4, "O": 10}, HG1234)[0] == "-1 Ca"  # a vacancy
    assert edits.describe_edit(HG1234, HG1234)[0] == "none (same composition)"
    assert edits.unsited_elements({"Cs": 1, **HG1234}, HG1234) == ("Cs",)
    assert edits.unsited_elements({"Hg": 1, "Ba": 1, "Sr": 1, "Ca": 3, "Cu": 4, "O": 10}, HG1234) == ()


def test_a_substitution_parent_and_its_site_fit() -> None:
    a = phases.analyse("HgBaSrCa3Cu4O10", KNOWN)
    assert (a.parent_formula, a.edit) == ("HgBa2Ca3Cu4O10", "Sr for Ba (1 of 2)")
    assert a.site_mismatch == pytest.approx(abs(1.26 - 1.42) / 1.42)  # Shannon VIII: Sr2+ 1.26, Ba2+ 1.42 A
    far = phases.analyse("Nb3Ge", KNOWN)  # nothing within PARENT_MAX_L1
    assert far.parent_formula == "" and math.isnan(far.site_mismatch) and "no known compound" in far.edit


def test_site_mismatch_uses_shannon_radii_at_the_sites_coordination() -> None:
    assert site_fit.SITE_MISMATCH_MAX == 0.15
    assert site_fit.site_coordination("Ca", HG1234) == 8 and site_fit.site_coordination("Cu", HG1234) == 6
    assert site_fit.radius_mismatch("Mg", "Ca", HG1234) == pytest.approx((1.12 - 0.89) / 1.12)  # Mg on Ca: 21 %
    assert site_fit.radius_mismatch("Be", "Ca", HG1234) == pytest.approx((1.12 - 0.45) / 1.12)  # Be2+ only to VI
    assert site_fit.radius_mismatch("Zn", "Cu", HG1234) < 0.05  # Zn2+ 0.74 vs Cu2+ 0.73 A at VI
    assert site_fit.ion_states("La", "Sr") == (3, 2) and site_fit.ion_states("Tl", "Hg") == (3, 2)
    mgb2 = {"Mg": 1, "B": 2}  # intermetallic: metallic radii (Al 1.43, Mg 1.60 A)
    assert site_fit.radius_mismatch("Al", "Mg", mgb2) == pytest.approx((1.60 - 1.43) / 1.60)
    assert math.isnan(site_fit.largest_mismatch([], HG1234))
    subs = [("Sr", "Ba", 1.0), ("Mg", "Ca", 1.0)]
    assert site_fit.largest_mismatch(subs, HG1234) == pytest.approx(site_fit.radius_mismatch("Mg", "Ca", HG1234))


def test_phase_columns_flag_misfits_and_families() -> None:
    cols = phase_columns(["HgBaSrCa3Cu4O10", "HgBa2Ca2MgCu4O10", "Ba2Ca3MgCu4HgO11", "CsHgBa2Ca3Cu4O12"], KNOWN)
    for name in ("parent_formula", "edit", "is_mixture", "is_known", "site_mismatch", "mixture_of", "family"):
        assert name in cols.columns
    assert cols["site_misfit"].tolist() == [False, False, False, True]  # Cs: a new cation without a site
    assert cols["family"].iloc[0] == "HgBa2Ca3Cu4Ox" and cols["is_mixture"].iloc[2]
    assert math.isnan(cols["site_mismatch"].iloc[2])  # a mixture has no substitution


def test_family_cap_and_summary() -> None:
    assert diversity.family_of("HgBa2Ca3Cu4O10.2", "Ba2SrCa3Cu4HgO10") == "HgBa2Ca3Cu4Ox"
    assert diversity.family_of("", "Nb3Ge") == "Ge-Nb"
    assert diversity.over_family_cap(list("AAABAA"), 3).tolist() == [False] * 4 + [True] * 2
    assert not diversity.over_family_cap(list("AAAA"), 0).any()
    t = pd.DataFrame(
        {"rank": [1, 2, 3], "family": ["A", "B", "A"], "integer_formula": ["x", "y", "z"], "integer_tc_k": [90, 95, 99]}
    )
    s = diversity.families_summary(t)
    assert s.to_dict("list") == {
        "family": ["A", "B"],
        "count": [2, 1],
        "best_tc_k": [99, 95],
        "best_formula": ["x", "y"],
        "best_rank": [1, 2],
    }


def _table(**cols) -> pd.DataFrame:
    n = len(cols["rank"])
    base = {"only_pinned_elements": [False] * n, "passes_chemistry_checks": [True] * n}
    return pd.DataFrame({**base, **cols})


def test_ranking_tiers_and_the_family_cap() -> None:
    t = _table(
        rank=[1, 2, 3, 4, 5, 6],
        integer_formula=["mix", "misfit", "known", "a1", "a2", "b"],
        is_mixture=[True, False, False, False, False, False],
        site_misfit=[False, True, False, False, False, False],
        is_known=[False, False, True, False, False, False],
        family=["F", "G", "H", "A", "A", "B"],
    )
    ranked = rank_rows(t, max_per_family=1, mixtures_last=True, misfits_last=True, known_last=True)
    assert ranked["integer_formula"].tolist() == ["a1", "b", "a2", "known", "misfit", "mix"]
    assert ranked["rank"].tolist() == [1, 2, 3, 4, 5, 6] and ranked["family_rank"].tolist() == [1, 1, 2, 1, 1, 1]
    assert rank_rows(t)["integer_formula"].tolist() == t["integer_formula"].tolist()  # all off: unchanged
    with pytest.raises(ValueError, match="unknown ranking flag"):
        rank_rows(t, mixture_last=True)


def test_refined_rows_report_the_start_they_come_from() -> None:
    """Row 1 repeated row 0's formula; the refinement gave it a neighbour of row 0's formula: its start, stage
    columns and path are row 0's, never its own."""
    formulas = ["YBa2Cu3O7", "YBa2Cu3O6", "MgB2"]
    x_int = np.stack([to_vector(f) for f in formulas])
    x_start = np.stack([to_vector(f) for f in ("YBa2Cu3O6.5", "LaH10", "MgB1.9")])
    ref = ReferenceData(
        sc_x=x_int[[0, 2]].astype(np.float32),
        sc_tc_k=np.array([92.0, 39.0]),
        sc_formula=np.array(["YBa2Cu3O7", "MgB2"]),
    )
    ctx = CandidateContext(
        predict=lambda x: (np.asarray(x)[:, 0] * 0 + np.arange(len(x), dtype=float), np.zeros(len(x))),
        reference=ref,
        allowed_ns=tuple(range(1, 25)),
        lower_frac=None,
        exact_frac=None,
        pinned_mask=np.zeros(118, bool),
        known=known_compounds(ref),
        steps2=20,
    )
    counts = x_int * np.array([13, 12, 3])[:, None]
    integ = Integerized(n_atoms=np.array([13, 12, 3]), amounts=counts, formulas=formulas, loss=np.zeros(3))
    labels = ["start 0", "start 1", "start 2"]
    table = build_candidates(ctx, x_start, labels, x_start, x_start, integ, np.array([30, 41, 20]), np.array([0, 0, 2]))
    row = table.set_index("integer_formula").loc["YBa2Cu3O6"]
    assert row["path"] == "refined from candidate 0" and row["candidate"] == 0 and row["source"] == "start 0"
    assert row["initial_formula"] == format_vector(x_start[0])
    own = table.set_index("integer_formula")
    assert own.loc["YBa2Cu3O7", "path"] == "stage 3, best integer (step 30)"
    assert own.loc["MgB2", "path"] == "end of stage 2, best integer (step 20)"
    assert own.loc["YBa2Cu3O7", "is_known"] and math.isnan(own.loc["MgB2", "parent_year"])  # no years given


def test_design_config_has_the_ranking_options_and_the_paper_switches_them_off() -> None:
    from gdmcd_core.design.config.config import DesignConfig, config_fields
    from gdmcd_core.design.config.presets import PAPER_SETTINGS

    cfg = DesignConfig()
    assert (cfg.mixtures_last, cfg.misfits_last, cfg.known_last, cfg.max_per_family) == (True, True, True, 3)
    names = {f.name for f in config_fields()}
    assert {"mixtures_last", "misfits_last", "known_last", "max_per_family"} <= names  # CLI options, form fields
    paper = DesignConfig(**PAPER_SETTINGS)
    assert not (paper.mixtures_last or paper.misfits_last or paper.known_last) and paper.max_per_family == 0
    with pytest.raises(ValueError, match="max_per_family"):
        DesignConfig(max_per_family=-1)


def test_the_docstring_examples_hold() -> None:
    import doctest

    for module in (phases, edits, site_fit, diversity):
        assert doctest.testmod(module).failed == 0, module.__name__


def test_the_quick_run_counts() -> None:
    from bench.quick_run_phases import counts

    top = pd.DataFrame(
        {
            "integer_formula": ["Ba2Ca3MgCu4HgO11", "HgBaSrCa3Cu4O10", "HgBa2Ca2MgCu3O8", "YBa2Cu3O7"],
            "initial_formula": ["HgBa2Ca3Cu4O10", "HgBa2Ca3Cu4O10", "HgBa2Ca3Cu4O10", "LaH10"],
            "is_mixture": [True, False, False, False],
            "is_known": [False, False, False, True],
            "site_mismatch": [np.nan, 0.113, 0.205, np.nan],
            "site_misfit": [False, False, True, False],
            "passes_chemistry_checks": [True, True, True, False],
        }
    )
    c = counts(top, 0.3)
    assert (c["mixtures"], c["known"], c["substitutions past the site-fit threshold"]) == (1, 1, 1)
    assert c["element sets"] == 3  # Ba2Ca3MgCu4HgO11 and HgBa2Ca2MgCu3O8 share theirs
    assert c["failing a chemistry check"] == 1 and c["start farther than the trust radius (0.3)"] == 1


def test_the_parent_is_the_one_whose_edit_fits_the_sites() -> None:
    """HgSr2Ca2Cu3O8.6 is one substitution from Hg-1223 (Sr for Ba, 11 %; +0.3 O is oxygen non-stoichiometry) and
    one from the B-1223 of SuperCon (BSr2Ca2Cu3O9, Hg on the boron site: far too big); the explanation a chemist
    gives is the first."""
    known = _known([*SUPERCON, ("BSr2Ca2Cu3O9", 75.0, 1995)])
    a = phases.analyse("HgSr2Ca2Cu3O8.6", known)
    assert a.parent_formula.startswith("HgBa2Ca2Cu3O") and "Sr for Ba" in a.edit
    assert a.site_mismatch < site_fit.SITE_MISMATCH_MAX
