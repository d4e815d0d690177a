"""split="jarvis": rows are assigned as the leaderboard file says; validation comes out of its train rows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gdmcd_core.data.dataset import TEST, TRAIN, VAL, DataConfig, build_dataset
from gdmcd_core.data.jarvis import estimated_reading, load_jarvis_rows

ROWS = [
    ("Ba0.4K0.6Fe2As2", 31.2, "train"),
    ("Mo0.39Ru0.61", 6.9, "train"),
    ("Tm4Os6Sn19", 1.1, "train"),
    ("Nb3Sn", 18.0, "train"),
    ("MgB2", 39.0, "train"),
    ("V3Si", 17.0, "train"),
    ("Y1Ba2Cu3O7-X", 92.0, "test"),
    ("NbN", 16.0, "test"),
    ("Pd1T0.81", 5.0, "test"),  # placeholder symbol T: does not parse
    ("La2Cu1O4", 0.0, "test"),
    ("Pb1", 7.2, "train"),
    ("Sn1", 3.7, "train"),
]


@pytest.fixture
def jarvis_dir(tiny_data_dir: Path) -> Path:
    df = pd.DataFrame(ROWS, columns=["formula_raw", "tc_k", "split"])
    df.insert(0, "jarvis_id", np.arange(len(df)))
    df.to_csv(tiny_data_dir / "jarvis_supercon_chem_split.csv", index=False)
    return tiny_data_dir


def test_rows_parse_and_keep_file_assignment(jarvis_dir: Path):
    rows = load_jarvis_rows(jarvis_dir / "jarvis_supercon_chem_split.csv")
    assert len(rows) == len(ROWS)
    assert rows.is_test.tolist() == [s == "test" for _, _, s in ROWS]
    assert rows.parsed.tolist() == [f != "Pd1T0.81" for f, _, _ in ROWS]
    assert rows.formula[6] == "Y1Ba2Cu3O7"  # trailing oxygen variable stripped, as in the data README
    assert not rows.estimated.any()  # the only unparsed row has an unknown symbol: no estimate


@pytest.mark.parametrize(
    ("raw", "reading"),
    [
        ("Bi2Sr2Ca1Cu2OY", "Bi2Sr2Ca1Cu2O8"),  # O by charge neutrality: (6 + 4 + 2 + 4) / 2
        ("Ba0.6K0.4Bi1OY", "Ba0.6K0.4Bi1O2.3"),  # (1.2 + 0.4 + 3) / 2
        ("La2Sr0Cu0.8Zn0.2O4", "La2Cu0.8Zn0.2O4"),  # an element at amount 0 is left out
        ("Sr2Cu2Nb1O10=z", "Sr2Cu2Nb1O10"),  # the deviation suffix is dropped
        ("Bi2Sr2Cu2Mo1OY", None),  # Mo has no single typical valence: no estimate
        ("Pd1T0.81", None),
        ("MgB2", None),  # parses as published: nothing to estimate
    ],
)
def test_estimated_reading_of_rows_the_cleaning_rejects(raw: str, reading: str | None):
    assert estimated_reading(raw) == reading


def test_estimated_rows_are_predicted_but_never_trained_on(tiny_data_dir: Path):
    rows = [
        ("MgB2", 39.0, "train"),
        ("Nb3Sn", 18.0, "train"),
        ("Bi2Sr2Ca1Cu2OY", 85.0, "test"),
        ("Bi2Sr2Ca1Cu2OY", 80.0, "train"),
        ("NbN", 16.0, "test"),
    ]
    df = pd.DataFrame(rows, columns=["formula_raw", "tc_k", "split"])
    df.insert(0, "jarvis_id", np.arange(len(df)))
    df.to_csv(tiny_data_dir / "jarvis_supercon_chem_split.csv", index=False)
    got = load_jarvis_rows(tiny_data_dir / "jarvis_supercon_chem_split.csv")
    assert got.estimated.tolist() == [False, False, True, True, False] and not (got.parsed & got.estimated).any()
    assert got.formula[2] == "Bi2Sr2Ca1Cu2O8" and got.x[2].sum() == pytest.approx(1.0)
    ds = build_dataset(DataConfig(split="jarvis", include_cod=False, physical_negatives=False), tiny_data_dir)
    assert "Bi2Sr2Ca1Cu2O8" not in set(ds.formula)


@pytest.mark.parametrize("include_cod", [True, False])
def test_jarvis_split_assigns_rows_as_the_file_says(jarvis_dir: Path, include_cod: bool):
    cfg = DataConfig(split="jarvis", split_seed=3, fractions=(0.6, 0.2, 0.2), include_cod=include_cod)
    ds = build_dataset(cfg, jarvis_dir)
    sc = np.flatnonzero(ds.is_supercon)
    parsed = [(f, t, s) for f, t, s in ROWS if f != "Pd1T0.81"]
    assert len(sc) == len(parsed)
    want_test = np.array([s == "test" for _, _, s in parsed])
    assert np.array_equal(ds.split[sc] == TEST, want_test)
    assert set(ds.split[sc][~want_test]) <= {TRAIN, VAL} and (ds.split[sc] == VAL).any()
    assert np.allclose(ds.tc_k[sc], [t for _, t, _ in parsed])
    assert not (ds.split[~ds.is_supercon] == TEST).any()  # COD rows and negatives never enter the test split
    if include_cod:
        assert {"NaCl", "SiO2"} & set(ds.formula[~ds.is_supercon])
    again = build_dataset(cfg, jarvis_dir)
    assert np.array_equal(again.split, ds.split)  # seeded validation carve-out


def test_unknown_split_is_refused():
    with pytest.raises(ValueError, match="split must be one of"):
        DataConfig(split="leaderboard")
