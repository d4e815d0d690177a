"""Validity and novelty flags: known chemistry and exact distances."""

from __future__ import annotations

import numpy as np
import pytest

from gdmcd_core.chem.composition import FormulaError, to_vectors
from gdmcd_core.design.evidence.validity import COLUMNS, candidate_flags, integer_counts

TRAIN = ["NaCl", "MgB2", "YBa2Cu3O7", "La1.8Sr0.2CuO4", "Nb3Sn"]


@pytest.fixture(scope="module")
def train_x() -> np.ndarray:
    return to_vectors(TRAIN).astype(np.float32)


def flags(formulas: list[str], train_x: np.ndarray):
    return candidate_flags(formulas, train_x).set_index("formula")


def test_columns_and_order(train_x: np.ndarray) -> None:
    df = candidate_flags(["ThO2", "NaCl", "MgB2"], train_x)
    assert tuple(df.columns) == COLUMNS
    assert list(df["formula"]) == ["ThO2", "NaCl", "MgB2"]
    assert candidate_flags([], train_x).empty


def test_charge_neutrality(train_x: np.ndarray) -> None:
    df = flags(["NaCl", "NaCl2", "Na2O", "Na3Cl", "CaSrBi"], train_x)
    assert df.loc["NaCl", "charge_neutral"] and df.loc["NaCl", "electronegativity_ok"]
    assert df.loc["Na2O", "charge_neutral"]
    for bad in ("NaCl2", "Na3Cl"):
        assert not df.loc[bad, "charge_neutral"] and not df.loc[bad, "electronegativity_ok"]
    # An all-metal composition passes as an alloy and says so.
    assert df.loc["CaSrBi", "all_metal"] and df.loc["CaSrBi", "charge_neutral"]
    assert not df.loc["NaCl", "all_metal"]


def test_electronegativity_implies_neutral(train_x: np.ndarray) -> None:
    df = candidate_flags(["NaCl", "NaCl2", "H3S", "LaH10", "SrTiO3", "Fe3O4", "ClNa"], train_x)
    assert not (df["electronegativity_ok"] & ~df["charge_neutral"]).any()


def test_fractional_formula_is_scaled_to_whole_atoms() -> None:
    assert integer_counts({"Ba": 0.2, "La": 1.8, "Cu": 1.0, "O": 4.0}) == {"Ba": 1, "La": 9, "Cu": 5, "O": 20}
    assert integer_counts({"Na": 0.5, "Cl": 0.5}) == {"Na": 1, "Cl": 1}
    assert integer_counts({"Mg": 2.0, "B": 4.0}) == {"Mg": 1, "B": 2}


def test_radioactive_and_toxic(train_x: np.ndarray) -> None:
    df = flags(["ThO2", "HgBa2CuO4", "NaCl", "TcO2", "Tl2Ba2CuO6"], train_x)
    assert df.loc["ThO2", "radioactive"] and not df.loc["ThO2", "toxic"]
    assert df.loc["TcO2", "radioactive"]
    assert df.loc["HgBa2CuO4", "toxic"] and not df.loc["HgBa2CuO4", "radioactive"]
    assert df.loc["HgBa2CuO4", "flagged_elements"] == "Hg"
    assert df.loc["Tl2Ba2CuO6", "toxic"]
    assert not df.loc["NaCl", "radioactive"] and not df.loc["NaCl", "toxic"]


def test_distance_to_training_rows(train_x: np.ndarray) -> None:
    df = candidate_flags(TRAIN + ["Na2Cl2", "Na3Cl", "He"], train_x)
    np.testing.assert_allclose(df["nearest_training_distance"][:5], 0.0, atol=1e-6)
    assert list(df["nearest_training_index"][:5]) == list(range(5))
    assert df["nearest_training_distance"][5] == pytest.approx(0.0, abs=1e-6)  # scaled copy of NaCl
    assert df["nearest_training_distance"][6] == pytest.approx(0.5, abs=1e-6)  # |0.75-0.5| + |0.25-0.5|
    assert df["nearest_training_distance"][7] == pytest.approx(2.0, abs=1e-6)  # no shared element


def test_distance_matches_brute_force(train_x: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    big = rng.dirichlet(np.ones(6), size=300).astype(np.float32)
    cols = rng.choice(118, size=(300, 6))
    tx = np.zeros((300, 118), np.float32)
    np.add.at(tx, (np.arange(300)[:, None], cols), big)
    cands = ["NaCl3", "MgB2", "YBa2Cu3O6", "Nb2Sn", "KCl", "La2CuO4"]
    df = candidate_flags(cands, tx)
    cx = to_vectors(cands).astype(np.float32)
    brute = np.abs(cx[:, None, :] - tx[None]).sum(2)
    np.testing.assert_allclose(df["nearest_training_distance"], brute.min(1), atol=1e-5)
    np.testing.assert_array_equal(df["nearest_training_index"], brute.argmin(1))


def test_new_element_set(train_x: np.ndarray) -> None:
    df = flags(["Na2Cl2", "Mg2B", "KCl", "LaSrCuO4", "LaCuO4"], train_x)
    assert not df.loc["Na2Cl2", "new_element_set"]
    assert not df.loc["Mg2B", "new_element_set"]  # other ratio, same elements
    assert not df.loc["LaSrCuO4", "new_element_set"]
    assert df.loc["KCl", "new_element_set"]
    assert df.loc["LaCuO4", "new_element_set"]  # a subset of a training set is still new


def test_bad_formula_raises(train_x: np.ndarray) -> None:
    with pytest.raises(FormulaError, match="Xx"):
        candidate_flags(["NaCl", "Xx2O"], train_x)


AGREEMENT_FORMULAS = """
    NaCl NaCl2 ONa2 O3Fe2 Fe3O4 YBa2Cu3O7 La9SrCu5O20 H3S LaH10 SrTiO3 KrF2 XeF4 HeNaCl MgB2C CaCO3 Li3N NaBH4
    BaFe2As2 LaFeAsO CuSO4H10O5 K3C60 Bi2Sr2CaCu2O8 HgBa2Ca2Cu3O8 SmFeAsO4F Ca2SrFe2Cu5Bi3O7 Tl2Ba2CaCu2O8 NbSe2 MoS2
""".split()


def test_dynamic_programme_agrees_with_smact() -> None:
    from smact.screening import smact_validity

    from gdmcd_core.chem.composition import parse_formula
    from gdmcd_core.design.evidence.validity import _flags_by_dp, _smact_data

    ox, metals = _smact_data()
    checked = 0
    for f in AGREEMENT_FORMULAS:
        counts = integer_counts(parse_formula(f))
        syms = list(counts)
        states = [ox.get(s) for s in syms]
        if len(syms) == 1 or all(s in metals for s in syms) or any(not st for st in states):
            continue
        text = "".join(f"{s}{n}" for s, n in counts.items())
        expected = (smact_validity(text, use_pauling_test=False), smact_validity(text))
        assert _flags_by_dp(list(counts.values()), syms, states) == expected, f
        checked += 1
    assert checked >= 20


def test_many_element_formula_is_fast(train_x: np.ndarray) -> None:
    import time

    t0 = time.perf_counter()
    df = candidate_flags(["CsK2Ba3RaNa3Li2Ca3YLuThScBeFe4O30", "CsKRbBa2LiCa4ThMgCu6HgBi2PbO20F"], train_x)
    assert time.perf_counter() - t0 < 5.0
    assert df["charge_neutral"].dtype == bool and df["electronegativity_ok"].dtype == bool
