import pandas as pd
import pytest

from gdmcd_core.data.repair import (
    COEFFICIENT_TYPO,
    CU_VALENCE_TOO_LOW,
    HIGH_PRESSURE_HYDRIDE,
    IMPLAUSIBLE_ELEMENT,
    OXYGEN_DEVIATION_SYMBOL,
    OXYGEN_LOST,
    TC_ABOVE_FAMILY,
    cu_valence_too_low_rows,
    family_of,
    raw_formulas_by_key,
    repair_supercon,
    write_ledger,
)

ROWS = [  # formula, Tc (K), comp_key (unique per row; only rule a reads it)
    ("Hg1Ba2Ca3Cu4O1", 130.0, "k_hg_o1"),
    ("Cu1Cr1O2", 132.0, "k_cucro2"),
    ("Mg1B2", 39.0, "k_mgb2"),
    ("Y1Ba2Cu3O7", 92.0, "k_ybco"),
    ("Ho1Ba2Cu2.85No0.15O7", 85.0, "k_no"),
    ("La1H10", 250.0, "k_lah10"),
    ("Y2Ba2Cu3O1", 91.9, "k_oy"),
    ("La1.85Sr0.15Cu98Ni0.02O4", 21.96, "k_cu98"),
    ("Sr2Cu1F2O2", 46.0, "k_oxyfluoride"),
    ("Nb3Ge1", 23.0, "k_nb3ge"),
    ("Y1Ba2Cu3O4", 92.0, "k_ybco_o4"),
]
RAW = {"k_oy": ["Y1Ba2Cu3OY"], "k_ybco": ["Y1Ba2Cu3O7-Z", "Y1Ba2Cu3O7"]}


@pytest.fixture
def table() -> pd.DataFrame:
    return pd.DataFrame(
        {"formula": [r[0] for r in ROWS], "tc_k": [r[1] for r in ROWS], "comp_key": [r[2] for r in ROWS]}
    )


def test_each_rule_hits_its_row(table):
    repaired, ledger, counts = repair_supercon(table, RAW)
    by = {r["formula_before"]: r for r in ledger.to_dict("records")}
    assert by["Y2Ba2Cu3O1"]["rule"] == OXYGEN_DEVIATION_SYMBOL
    assert by["Hg1Ba2Ca3Cu4O1"]["rule"] == OXYGEN_LOST
    assert by["Ho1Ba2Cu2.85No0.15O7"]["rule"] == IMPLAUSIBLE_ELEMENT
    assert by["Cu1Cr1O2"]["rule"] == TC_ABOVE_FAMILY
    assert by["La1.85Sr0.15Cu98Ni0.02O4"]["rule"] == COEFFICIENT_TYPO
    assert by["La1H10"]["rule"] == HIGH_PRESSURE_HYDRIDE and by["La1H10"]["action"] == "flag"
    assert by["Y1Ba2Cu3O4"]["rule"] == CU_VALENCE_TOO_LOW and by["Y1Ba2Cu3O4"]["action"] == "flag"
    assert "+0.33" in by["Y1Ba2Cu3O4"]["reason"]
    kept = set(repaired["formula"])
    assert kept == {"Mg1B2", "Y1Ba2Cu3O7", "La1H10", "Sr2Cu1F2O2", "Nb3Ge1", "Y1Ba2Cu3O4"}
    flags = repaired.set_index("formula")[["high_pressure", "valence_suspect"]]
    assert flags["high_pressure"].to_dict() == {
        "Mg1B2": False,
        "Y1Ba2Cu3O7": False,
        "La1H10": True,
        "Sr2Cu1F2O2": False,
        "Nb3Ge1": False,
        "Y1Ba2Cu3O4": False,
    }
    assert set(flags.index[flags["valence_suspect"]]) == {"Y1Ba2Cu3O4"}
    assert counts == {
        OXYGEN_DEVIATION_SYMBOL: 1,
        OXYGEN_LOST: 1,
        IMPLAUSIBLE_ELEMENT: 1,
        TC_ABOVE_FAMILY: 1,
        HIGH_PRESSURE_HYDRIDE: 1,
        COEFFICIENT_TYPO: 1,
        CU_VALENCE_TOO_LOW: 1,
    }
    assert set(ledger.loc[ledger["action"] == "drop", "formula_before"]) == set(table["formula"]) - kept
    assert list(repaired.index) == [2, 3, 5, 8, 9, 10]  # original labels are kept


def test_too_reduced_cuprates_are_flagged_alike_row_by_row_and_vectorized():
    from gdmcd_core.chem.composition import to_vectors

    rows = {  # formula, Tc (K): flagged?
        ("Y1Ba2Cu3O4", 92.0): True,  # Cu +0.33
        ("Y1Ba2Cu3O4.86", 93.2): True,  # Cu +0.91
        ("Y1Ba2Cu3O7", 92.0): False,  # +2.33
        ("Nd1.85Ce0.15Cu1O4", 24.0): False,  # electron-doped, and below 30 K
        ("Y1Ba2Cu3O4", 20.0): False,  # too reduced, but not above 30 K: could be a real minority phase
        ("Fe1Se1", 37.0): False,  # no Cu
        ("Tl2Ba2Ca1Cu2O7", 108.0): True,  # Cu +1.0: Tl-2212 is O8
    }
    table = pd.DataFrame({"formula": [f for f, _ in rows], "tc_k": [t for _, t in rows]})
    repaired, _, _ = repair_supercon(table)
    assert repaired["valence_suspect"].tolist() == list(rows.values())
    mask = cu_valence_too_low_rows(to_vectors(table["formula"].tolist()), table["tc_k"].to_numpy())
    assert mask.tolist() == list(rows.values())


def test_oy_rule_needs_every_spelling_bad_and_falls_back_without_raw(table):
    mixed = {"k_oy": ["Y1Ba2Cu3OY", "Y2Ba2Cu3O1"]}  # one well-formed spelling: keep
    repaired, _, counts = repair_supercon(table, mixed)
    assert counts[OXYGEN_DEVIATION_SYMBOL] == 0
    t = pd.DataFrame({"formula": ["Bi1Sr1Cu1O1Y1", "Bi2Sr2Ca1Cu2O8"], "tc_k": [6.5, 85.0]})
    repaired, ledger, counts = repair_supercon(t)  # no raw strings: the cleaned `O1Y1` ending decides
    assert counts[OXYGEN_DEVIATION_SYMBOL] == 1 and list(repaired["formula"]) == ["Bi2Sr2Ca1Cu2O8"]


def test_low_tc_oxygen_poor_cuprate_and_family_tc_are_kept():
    t = pd.DataFrame(
        {"formula": ["Hg1Ba2Ca3Cu4O1", "Ba0.6K0.4Bi1O3", "Fe1Se1", "Nb3Sn1"], "tc_k": [20.0, 30.0, 8.0, 18.0]}
    )
    repaired, ledger, _ = repair_supercon(t)
    assert len(repaired) == 4 and ledger.empty


def test_family_of():
    assert family_of({"Y": 1, "Ba": 2, "Cu": 3, "O": 7}) == "cuprate"
    assert family_of({"Cu": 1, "Cr": 1, "O": 2}) is None  # no spacer cation: not a cuprate
    assert family_of({"La": 1, "O": 1, "Fe": 1, "As": 1}) == "iron_based"
    assert family_of({"K": 3, "C": 60}) == "carbon"


def test_raw_map_and_atomic_ledger(tmp_path, table):
    raw = raw_formulas_by_key(pd.DataFrame({"comp_key": ["a", "a", "b"], "formula_raw": ["X1OY", "X1O2", "Z1"]}))
    assert raw == {"a": ["X1OY", "X1O2"], "b": ["Z1"]}
    _, ledger, _ = repair_supercon(table, RAW)
    path = tmp_path / "out" / "ledger.csv"
    write_ledger(ledger, path)
    back = pd.read_csv(path)
    assert len(back) == len(ledger) and list(back.columns[:6]) == [
        "rule",
        "action",
        "formula_before",
        "formula_after",
        "tc_k",
        "reason",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["ledger.csv"]  # no temporary file left behind


def test_gdmcd_ledger_writes_every_finding(tiny_data_dir, tmp_path, capsys):
    """`gdmcd ledger` applies the rules to the data folder's SuperCon file and writes one ledger row per finding."""
    import pandas as pd

    from gdmcd_core.cli.main import main
    from gdmcd_core.data.paths import SUPERCON_FILE

    sc = pd.read_csv(tiny_data_dir / SUPERCON_FILE)
    bad = sc.iloc[[0]].assign(formula="Hg1Ba2Ca3Cu4O1", tc_k=130.0, tc_k_mean=130.0, comp_key="bad-oxygen")
    pd.concat([sc, bad]).to_csv(tiny_data_dir / SUPERCON_FILE, index=False)
    out = tmp_path / "ledger.csv"
    assert main(["ledger", "--out", str(out), "--data-dir", str(tiny_data_dir)]) == 0
    ledger = pd.read_csv(out)
    assert "Hg1Ba2Ca3Cu4O1" in set(ledger.loc[ledger["rule"] == "oxygen_lost", "formula_before"])
    assert "| oxygen_lost |" in capsys.readouterr().out


def test_a_valence_on_the_bound_is_not_below_it_either_way():
    from gdmcd_core.chem.composition import to_vectors

    formula = "Hg0.67Bi0.33Sr2Y0.67Ca0.33Cu2O6"  # Cu +1.50 exactly; float32 fractions land a hair below
    repaired, _, _ = repair_supercon(pd.DataFrame({"formula": [formula], "tc_k": [77.5]}))
    assert not repaired["valence_suspect"].iloc[0]
    assert not cu_valence_too_low_rows(to_vectors([formula]), [77.5])[0]
