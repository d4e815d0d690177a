"""Cleaning rules of the data README on small hand-made examples (never reads shared/data)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from gdmcd_core.chem.composition import composition_key, reduced_key, to_vector
from gdmcd_core.data.clean_files import clean_cod, clean_nims_primary, clean_stanev, nims_unique
from gdmcd_core.data.cleaning import (
    MAX_SUPERCON_AMOUNT,
    SHARED_2025,
    RejectedFormula,
    Rules,
    clean_formula,
    journal_year,
    key_elements,
)


def test_trailing_oxygen_deviation_is_stripped_once() -> None:
    c = clean_formula("YBa2Cu3O7-Y")
    assert c.formula == "Y1Ba2Cu3O7"
    assert c.flags == ("delta_stripped",)
    assert dict(c.amounts) == {"Y": 1.0, "Ba": 2.0, "Cu": 3.0, "O": 7.0}
    assert clean_formula("La1.85Sr0.15Cu1O4+z").formula == "La1.85Sr0.15Cu1O4"
    assert clean_formula("Ba2Ca2Cu3F1O7.0+d").formula == "Ba2Ca2Cu3F1O7"
    with pytest.raises(RejectedFormula):  # only ONE trailing variable is removed
        clean_formula("Cu1O4-Y-Z")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("Y1Ba2Cu3Oz", "variable"),
        ("Ba2Cu3OX", "placeholder"),  # X is not an element
        ("Ba2Cu3Oy", "variable"),
        ("Y1M1Ni2B2", "placeholder"),
        ("R1Ba2Cu3O7", "placeholder"),
        ("Nb3Sn0", "zero_amount"),
        ("Nb3Sn0.0", "zero_amount"),
        ("Nb3Sn!", "malformed"),
        ("Nb3 Sn", "malformed"),
        ("Rf1Nb1", "placeholder"),  # Z = 104 > 103
        ("", "empty"),
    ],
)
def test_bad_rows_are_dropped_with_a_reason(raw: str, reason: str) -> None:
    with pytest.raises(RejectedFormula, match="dropped") as info:
        clean_formula(raw, max_amount=MAX_SUPERCON_AMOUNT, supercon=True)
    assert info.value.reason == reason


def test_supercon_amount_over_150_is_a_lost_decimal_point_but_cod_keeps_it() -> None:
    with pytest.raises(RejectedFormula) as info:
        clean_formula("Y1Ba2Cu285O7", max_amount=MAX_SUPERCON_AMOUNT)
    assert info.value.reason == "amount_over_150"
    assert clean_formula("Al12827.56Cu1244.05Ta9063").formula == "Al12827.56Cu1244.05Ta9063"  # COD unit cell


def test_deuterium_becomes_hydrogen_but_dy_stays() -> None:
    c = clean_formula("D2S1")
    assert c.formula == "H2S1" and c.flags == ("D_as_H",)
    assert clean_formula("Dy1Ni2B2C1").formula == "Dy1Ni2B2C1"
    assert clean_formula("Dy1Ni2B2C1").flags == ()
    merged = clean_formula("D0.11Nb1D0.13Nb1")  # repeated elements are summed, first position kept
    assert merged.formula == "H0.24Nb2"


def test_oxygen_written_oy_is_a_variable_in_supercon_but_yttrium_in_cod() -> None:
    with pytest.raises(RejectedFormula) as info:
        clean_formula("Y1Ba2Cu3OY", supercon=True)  # would otherwise read as Y2Ba2Cu3O1
    assert info.value.reason == "variable"
    assert clean_formula("ClOY").formula == "Cl1O1Y1"  # YOCl in COD's Hill order


def test_shared_2025_rules_reproduce_the_shared_files_reading() -> None:
    # The shared folder read a final `OY` as yttrium and wrote amounts with 6 significant digits.
    assert clean_formula("Y1Ba2Cu3OY", supercon=True, rules=SHARED_2025).formula == "Y2Ba2Cu3O1"
    assert clean_formula("Pd50.99745Cr0.00255Sb49", rules=SHARED_2025).formula == "Pd50.9975Cr0.00255Sb49"
    assert Rules(amount_digits=6).format_amount(0.00001234567) == "0.0000123457"  # never '1.23457e-05'
    with pytest.raises(RejectedFormula):  # every other rule is the same
        clean_formula("Y1Ba2Cu3Oz", supercon=True, rules=SHARED_2025)


def test_amounts_are_written_in_canonical_form() -> None:
    assert clean_formula("ClH9IO13Sm").formula == "Cl1H9I1O13Sm1"
    assert clean_formula("Hg.61SZn.39").formula == "Hg0.61S1Zn0.39"
    assert clean_formula("La1Fe1As1O1.0").formula == "La1Fe1As1O1"
    assert clean_formula("Ga1Sr2Ca3Cu4O11.").formula == "Ga1Sr2Ca3Cu4O11"
    assert clean_formula("Pd50.99745Cr0.00255Sb49").formula == "Pd50.99745Cr0.00255Sb49"  # no precision lost


@pytest.mark.parametrize("raw", ["Ba0.2La1.8Cu1O4-Y", "ClH9IO13Sm", "Hg.61SZn.39", "D2S1", "Nb3Sn", "MgB2"])
def test_cleaned_formula_parses_and_key_agrees_with_the_app(raw: str) -> None:
    c = clean_formula(raw)
    x = to_vector(c.formula)  # the app's own parser accepts every kept formula
    assert math.isclose(x.sum(), 1.0)
    assert c.key == reduced_key(x)


def test_composition_key_merges_scaled_copies_and_keeps_tiny_elements() -> None:
    assert composition_key({"H": 2, "C": 2}) == composition_key({"H": 4, "C": 4}) == "C0.5000 H0.5000"
    assert composition_key({"Pd": 50.99745, "Cr": 0.00255, "Sb": 49}) == "Cr0.0000 Pd0.5100 Sb0.4900"
    assert key_elements("Cr0.0000 Pd0.5100 Sb0.4900") == frozenset({"Cr", "Pd", "Sb"})
    with pytest.raises(ValueError, match="no positive amount"):
        composition_key({})


@pytest.mark.parametrize(
    ("journal", "year"),
    [
        ("Jpn.J.Appl.Phys., 26(1987)L223", 1987),
        ("Physica C, 388-389(2003)571", 2003),
        ("cond-mat/1412.0460", 2014),
        ("ccond-mat/0109050", 2001),
        ("cond-mat/9912001", 1999),
        ("Plenum Press, 1976, p137-160", 1976),
        ("Physics Procedia, 27(2012300, ISS2011", 2011),
    ],
)
def test_journal_year(journal: str, year: int) -> None:
    assert journal_year(journal) == year


@pytest.mark.parametrize("journal", ["unpublished", "Phys.Lett.A,38()323", "J.Phys.Soc.Jpn, 64(2995)1471", None])
def test_journal_without_year_is_nan(journal: str | None) -> None:
    assert math.isnan(journal_year(journal))


def _nims_raw(rows: list[tuple[str, float, str]]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "num": [str(i) for i in range(len(rows))],
            "name": "x",
            "element": [r[0] for r in rows],
            "str3": "T",
            "utc": "K",
            "tc": [str(r[1]) for r in rows],
            "journal": [r[2] for r in rows],
        }
    )


def test_nims_rows_and_unique_file() -> None:
    raw = _nims_raw(
        [
            ("Y1Ba2Cu3O7-Y", 90.0, "Nature, 1(1988)1"),
            ("Y2Ba4Cu6O14", 94.0, "Nature, 1(1987)1"),  # scaled copy of the first -> same comp_key
            ("Y1Ba2Cu3O7", 80.0, "Nature, 1(1990)1"),
            ("Y1Ba2Cu3Oz", 91.0, "Nature, 1(1987)1"),  # variable oxygen: dropped
            ("Er1Ba2Cu3O7-X", 275.0, "J.PHYS.C,20(1987)673"),  # suspect: row kept, excluded from unique
            ("D2S1", 203.0, "Nature, 525(2015)73"),
            ("Nb3Sn1", 18.0, "unpublished"),
        ]
    )
    rows, report = clean_nims_primary(raw)
    assert report.n_raw == 7 and report.n_kept == 6 and report.dropped["variable"] == 1
    assert list(rows["formula"]) == ["Y1Ba2Cu3O7", "Y2Ba4Cu6O14", "Y1Ba2Cu3O7", "Er1Ba2Cu3O7", "H2S1", "Nb3Sn1"]
    assert rows.loc[3, "suspect"].startswith("suspect_tc")
    assert rows["high_pressure_hydride"].tolist() == [False, False, False, False, True, False]
    unique = nims_unique(rows)
    assert len(unique) == 3  # YBCO, H2S, Nb3Sn; Er row (suspect) excluded
    assert list(unique["comp_key"]) == sorted(unique["comp_key"])
    ybco = unique[unique["comp_key"] == clean_formula("YBa2Cu3O7").key].iloc[0]
    assert ybco["formula"] == "Y1Ba2Cu3O7"  # first-listed spelling
    assert ybco["tc_k"] == 90.0 and ybco["tc_k_mean"] == pytest.approx(88.0)
    assert (ybco["tc_k_min"], ybco["tc_k_max"], ybco["n_entries"], ybco["first_year"]) == (80.0, 94.0, 3, 1987.0)
    assert np.isnan(unique[unique["formula"] == "Nb3Sn1"]["first_year"].iloc[0])


def test_stanev_marks_nims_overlap() -> None:
    raw = pd.DataFrame({"name": ["Nb3Sn", "MgB2", "Y1Ba2Cu3OY", "Nb3Sn"], "Tc": ["18", "39", "90", "17.5"]})
    df, report = clean_stanev(raw, {clean_formula("Nb3Sn").key})
    assert report.dropped["variable"] == 1
    assert df["formula"].tolist() == ["Nb3Sn1", "Mg1B2", "Nb3Sn1"]  # duplicates kept
    assert df["in_nims_primary"].tolist() == [True, False, True]


def test_cod_drops_organics_duplicates_and_supercon_compositions() -> None:
    raw = [
        "NaCl ",
        "C40H32N8O52Si24",  # organic (C and H): dropped
        "CaCO3",  # carbon without hydrogen: inorganic, kept
        "D2O",  # D -> H, kept (no carbon)
        "Na2Cl2",  # same composition as NaCl: dropped
        "Mg1B2",  # a known superconductor: dropped
        "Mg2Si1",
        "Fe0S",  # zero amount: dropped
    ]
    sc_keys = {clean_formula("MgB2").key}
    sc_elemsets = {frozenset({"Mg", "Si"})}
    df, report = clean_cod(raw, sc_keys, sc_elemsets)
    assert df["formula"].tolist() == ["Na1Cl1", "Ca1C1O3", "H2O1", "Mg2Si1"]
    assert df["formula_raw"].tolist() == ["NaCl", "CaCO3", "D2O", "Mg2Si1"]
    assert (df["tc_k"] == 0).all()
    assert df["elemset_in_supercon"].tolist() == [False, False, False, True]
    assert df["parse_flags"].tolist() == ["", "", "D_as_H", ""]
    assert report.dropped == {"organic": 1, "duplicate": 1, "in_supercon": 1, "zero_amount": 1}
    assert not df["comp_key"].duplicated().any()
