"""Strict formula parsing: hydrates, one formula per string, plain decimals, sane amounts."""

from __future__ import annotations

import pytest

from gdmcd_core.chem.composition import FRACTION_EPS, FormulaError, parse_formula, to_vector
from gdmcd_core.chem.formula_syntax import MAX_AMOUNT, parse_amounts

CUSO4_5H2O = {"Cu": 1.0, "S": 1.0, "O": 9.0, "H": 10.0}


def _approx(d: dict[str, float]) -> dict[str, object]:
    return {k: pytest.approx(v) for k, v in d.items()}


# -- hydrates ------------------------------------------------------------------------------------


@pytest.mark.parametrize("formula", ["CuSO4.5H2O", "CuSO4·5H2O", "CuSO4•5H2O", "CuSO4*5H2O", "CuSO4⋅5H2O"])
def test_hydrate_is_the_sum_of_its_parts(formula: str) -> None:
    assert parse_formula(formula) == CUSO4_5H2O


@pytest.mark.parametrize(
    "formula, expected",
    [
        ("CaCl2.2H2O", {"Ca": 1, "Cl": 2, "H": 4, "O": 2}),
        ("CaCl2.H2O", {"Ca": 1, "Cl": 2, "H": 2, "O": 1}),  # '.' before a symbol: multiplier 1
        ("KCl.MgCl2.6H2O", {"K": 1, "Cl": 3, "Mg": 1, "H": 12, "O": 6}),
        ("Na0.35CoO2·1.3H2O", {"Na": 0.35, "Co": 1, "O": 3.3, "H": 2.6}),  # decimal multiplier after '·'
        ("CuCl2·2NH3", {"Cu": 1, "Cl": 2, "N": 2, "H": 6}),
        ("CuSO4·(H2O)5", CUSO4_5H2O),
    ],
)
def test_more_hydrates_and_adducts(formula: str, expected: dict[str, float]) -> None:
    assert parse_formula(formula) == _approx(expected)


def test_hydrate_vector_matches_the_plain_formula() -> None:
    assert to_vector("CuSO4.5H2O") == pytest.approx(to_vector("CuSO9H10"))


@pytest.mark.parametrize(
    "formula, expected",
    [
        ("Ba0.5K0.5", {"Ba": 0.5, "K": 0.5}),
        ("La1.85Sr0.15CuO4", {"La": 1.85, "Sr": 0.15, "Cu": 1, "O": 4}),
        ("MgB1.9C0.1", {"Mg": 1, "B": 1.9, "C": 0.1}),  # '.9C' is a decimal, not 9 x C0.1
        ("Tl2Ba2Ca1.5Cu3O10", {"Tl": 2, "Ba": 2, "Ca": 1.5, "Cu": 3, "O": 10}),
        ("YBa2Cu3O6.5", {"Y": 1, "Ba": 2, "Cu": 3, "O": 6.5}),
        ("Ba0.5H2O", {"Ba": 0.5, "H": 2, "O": 1}),  # 'Ba0' cannot start a hydrate: a decimal
        ("Ca1.5H2O3", {"Ca": 1.5, "H": 2, "O": 3}),  # 'H2O3' is not water at the end
    ],
)
def test_decimals_keep_working(formula: str, expected: dict[str, float]) -> None:
    assert parse_formula(formula) == _approx(expected)


@pytest.mark.parametrize(
    "formula, match",
    [
        ("Na0.35CoO2.1.3H2O", r"ambiguous: '2\.1\.3' has two dots.*'·'"),
        ("Fe.5Se", r"ambiguous: '\.5' after a symbol.*'Fe0\.5Se'"),
        ("Ba.5K.5", r"'Ba\.5K\.5' is ambiguous"),
        ("(OH).5Ca", "ambiguous"),
    ],
)
def test_ambiguous_dots_are_refused(formula: str, match: str) -> None:
    with pytest.raises(FormulaError, match=match):
        parse_formula(formula)


# -- one formula per string ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "formula",
    ["MgB2 H3S", "MgB2\nH3S", "MgB2,H3S", "MgB2;H3S", "MgB2\tH3S", "MgB2, H3S", "Mg B2", "MgB2\u00a0H3S"],
)
def test_several_formulas_or_inner_spaces_are_refused(formula: str) -> None:
    with pytest.raises(FormulaError, match="one formula per line/cell"):
        parse_formula(formula)


def test_two_formulas_are_named_in_the_message() -> None:
    with pytest.raises(FormulaError, match=r"2 parts \['MgB2', 'H3S'\]"):
        parse_formula("MgB2\nH3S")


@pytest.mark.parametrize("formula", ["  MgB2  ", "MgB2\n", "\tMgB2"])
def test_surrounding_whitespace_is_fine(formula: str) -> None:
    assert parse_formula(formula) == {"Mg": 1.0, "B": 2.0}


# -- amounts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("formula", ["Fe1e-30O", "Fe1e5", "H2.5E3O", "Mg1E+2B"])
def test_exponent_notation_is_refused_as_such(formula: str) -> None:
    with pytest.raises(FormulaError, match="plain decimals") as info:
        parse_formula(formula)
    assert "negative" not in str(info.value)


@pytest.mark.parametrize("formula", ["Fe0.0000001O1", "Fe0.00001O99999", "Y0.0000005Ba2Cu3O7"])
def test_tiny_shares_are_refused(formula: str) -> None:
    with pytest.raises(FormulaError, match=r"of the atoms, below 1e-06.*leave"):
        parse_formula(formula)


def test_a_share_just_above_eps_is_kept() -> None:
    amounts = parse_formula("Fe1O100000")
    assert amounts["Fe"] / sum(amounts.values()) > FRACTION_EPS


@pytest.mark.parametrize("formula", ["Fe1000000", "(Fe100)2000", "CuSO4·100000H2O", "O200000"])
def test_huge_amounts_are_refused(formula: str) -> None:
    with pytest.raises(FormulaError, match=f"above the limit {MAX_AMOUNT:g}"):
        parse_formula(formula)


def test_the_largest_shared_data_formula_still_parses() -> None:
    assert parse_formula("Al12827.6Cu1244.05Ta9063")["Al"] == pytest.approx(12827.6)


@pytest.mark.parametrize(
    "formula, match",
    [
        ("Cu0O2", "zero amount"),
        ("Cu0.0O2", "zero amount"),
        ("CuSO4·0H2O", "zero amount"),
        ("Mg-1B2", "negative amount"),
        ("(MgB2)-1", "negative amount"),
    ],
)
def test_zero_and_negative_amounts(formula: str, match: str) -> None:
    with pytest.raises(FormulaError, match=match):
        parse_formula(formula)


# -- syntax --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "formula, match",
    [
        ("MgB2.", r"stray '\.' at position 5"),
        ("YBa2Cu3O7-x", r"unexpected character '-' at position 10"),
        ("5H2O", "starts with a number"),
        ("mgB2", "lowercase 'm'"),
        ("Mg)", r"unmatched '\)'"),
        ("(Mg", r"'\(' at position 1 is not closed"),
        ("CuSO4·", "empty part"),
        ("Ca(SO4·2H2O)", "inside brackets"),
        ("Mg2+", "unexpected character '\\+'"),
    ],
)
def test_syntax_errors_say_where(formula: str, match: str) -> None:
    with pytest.raises(FormulaError, match=match) as info:
        parse_formula(formula)
    msg = str(info.value)
    assert repr(formula) in msg and "\n" not in msg


def test_subscript_digits_read_as_digits() -> None:
    assert parse_formula("YBa₂Cu₃O₇") == parse_formula("YBa2Cu3O7")


def test_brackets_and_repeats_multiply_and_sum() -> None:
    assert parse_formula("Ca(OH)2") == {"Ca": 1, "O": 2, "H": 2}
    assert parse_formula("[Fe(CN)6]2K") == {"Fe": 2, "C": 12, "N": 12, "K": 1}
    assert parse_formula("CH3CH3") == {"C": 2, "H": 6}


def test_parse_amounts_limits_are_parameters() -> None:
    assert parse_amounts("Fe1O1000000", min_fraction=0.0, max_amount=1e7)["O"] == 1e6
    with pytest.raises(FormulaError, match="above the limit 10"):
        parse_amounts("Fe11", max_amount=10)
