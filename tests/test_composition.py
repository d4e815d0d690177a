import numpy as np
import pytest

from gdmcd_core.chem.composition import FormulaError, format_vector, parse_formula, reduced_key, to_vector
from gdmcd_core.chem.elements import index_of


@pytest.mark.parametrize(
    "bad, match",
    [
        ("", "empty formula"),
        ("Xx2O", "unknown element 'Xx'"),
        ("Cu0O2", "zero amount"),
        ("Mg-1B2", "negative amount"),
        ("((", "does not parse"),
        ("Ab3", "unknown element 'Ab'"),
    ],
)
def test_bad_formulas_raise_clear_errors(bad, match):
    with pytest.raises(FormulaError, match=match):
        parse_formula(bad)


def test_vector_is_a_composition():
    x = to_vector("YBa2Cu3O7")
    assert x.shape == (118,)
    assert x.sum() == pytest.approx(1.0)
    assert x[index_of("O")] == pytest.approx(7 / 13)


@pytest.mark.parametrize("formula", ["MgB2", "YBa2Cu3O7", "La1.85Sr0.15CuO4", "LaH10", "Nb3Sn", "HgBa2Ca2Cu3O8"])
def test_round_trip_through_pymatgen(formula):
    amounts = parse_formula(formula)
    n = sum(amounts.values())
    again = format_vector(to_vector(formula), scale=n)
    np.testing.assert_allclose(to_vector(again), to_vector(formula), atol=1e-6)


def test_integer_amounts_print_without_decimals():
    assert format_vector(to_vector("MgB2"), scale=3) == "MgB2"


def test_scaled_copies_share_a_key():
    assert reduced_key(to_vector("H2C2")) == reduced_key(to_vector("H4C4"))
