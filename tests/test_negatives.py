import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import parse_formula, reduced_key, to_vector
from gdmcd_core.chem.valence import cu_valence_plausible
from gdmcd_core.data.dataset import DataConfig, build_dataset
from gdmcd_core.data.negatives import (
    REASON_CU_VALENCE,
    REASON_OXIDE_SCALED,
    known_negatives,
    oxide_variants,
    oxygen_stripped_negatives,
)
from gdmcd_core.data.negatives import _fixed_cu_valence as cu_valence  # the generator's private helper


def test_cu_valence_from_fixed_valences():
    assert abs(cu_valence({"Y": 1, "Ba": 2, "Cu": 3, "O": 7}) - 7 / 3) < 1e-9
    assert abs(cu_valence({"Nd": 1.85, "Ce": 0.15, "Cu": 1, "O": 4}) - 1.85) < 1e-9
    assert cu_valence({"Mg": 1, "B": 2}) is None  # no Cu
    assert cu_valence({"Cu": 1, "Os": 1, "O": 3}) is None  # Os has no fixed valence
    assert cu_valence_plausible({"Y": 1, "Ba": 2, "Cu": 3, "O": 7}) is True  # chem.valence, the shared one
    assert cu_valence_plausible({"Y": 1, "Ba": 2, "Cu": 3, "O": 6}) is False


def test_ybco_gives_o6_with_insulating_cu_valence():
    neg = oxygen_stripped_negatives(["YBa2Cu3O7", "MgB2"], [92.0, 39.0])
    assert set(neg.parent) == {0}  # MgB2 has no oxygen: no variants
    reduced = [f for f, r in zip(neg.formula, neg.reason, strict=True) if r == REASON_CU_VALENCE]
    assert len(reduced) == 1 and parse_formula(reduced[0]) == {"Y": 1, "Ba": 2, "Cu": 3, "O": 6}
    assert cu_valence(parse_formula(reduced[0])) < 1.9
    o = sorted(parse_formula(f).get("O", 0.0) for f in neg.formula)
    assert o == [0.0, 1.75, 3.5, 6.0]  # x0, x0.25, x0.5 and the reduced variant
    assert np.allclose(neg.x.sum(1), 1) and neg.x.shape == (4, 118)


def test_non_cuprate_oxide_and_parents_without_tc():
    v = oxide_variants({"Ba": 0.6, "K": 0.4, "Bi": 1, "O": 3})
    assert [(a.get("O", 0.0), r) for a, r in v] == [(0.0, REASON_OXIDE_SCALED), (0.75, REASON_OXIDE_SCALED)]
    assert len(oxygen_stripped_negatives(["YBa2Cu3O7"], [0.0])) == 0  # a Tc = 0 row is no parent


def test_known_negatives_are_the_curated_list():
    k = known_negatives()
    assert {"YBa2Cu3O6", "La2CuO4", "H2O", "LiH", "NaBH4"} <= set(k.formula)
    assert np.all(k.parent == -1)


def _write(folder, sc_rows, cod):
    folder.mkdir()
    pd.DataFrame(
        {
            "formula": [f for f, _ in sc_rows],
            "tc_k": [t for _, t in sc_rows],
            "tc_k_mean": [t for _, t in sc_rows],
            "first_year": 2000.0,
            "comp_key": [reduced_key(to_vector(f)) for f, _ in sc_rows],
        }
    ).to_csv(folder / "supercon_nims_unique.csv", index=False)
    pd.DataFrame({"formula": cod, "tc_k": 0.0, "comp_key": [reduced_key(to_vector(f)) for f in cod]}).to_csv(
        folder / "cod_nonsc_inorganic_konno2009.csv", index=False
    )


def test_dataset_negatives_inherit_parent_split_and_repair_drops(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    sc = [("YBa2Cu3O7", 92.0), ("HgBa2Ca2Cu3O8", 133.0), ("La1.85Sr0.15CuO4", 38.0), ("MgB2", 39.0), ("CuCrO2", 132.0)]
    sc += [(f"Nb{i}Sn", 10.0 + i) for i in range(1, 9)]
    _write(tmp_path / "d", sc, ["NaCl", "SiO2", "Al2O3", "KBr"])
    ds = build_dataset(DataConfig(fractions=(0.4, 0.2, 0.4)), tmp_path / "d")
    assert "CuCrO2" not in set(ds.formula[ds.is_supercon])  # repaired away
    assert int(ds.is_supercon.sum()) == len(sc) - 1
    o6 = np.flatnonzero(np.all(np.isclose(ds.x, to_vector("YBa2Cu3O6")), axis=1))
    assert len(o6) == 1 and not ds.is_supercon[o6[0]] and ds.tc_k[o6[0]] == 0 and np.isnan(ds.first_year[o6[0]])
    for parent in ("YBa2Cu3O7", "HgBa2Ca2Cu3O8", "La1.85Sr0.15CuO4"):
        p = int(np.flatnonzero(ds.formula == parent)[0])
        children = [
            i
            for i in np.flatnonzero(~ds.is_supercon)
            if set(np.flatnonzero(ds.x[i] > 0)) <= set(np.flatnonzero(ds.x[p] > 0)) | {7}
            and ds.x[i, 7] < ds.x[p, 7]
            and np.allclose(
                np.delete(ds.x[i], 7) / np.delete(ds.x[i], 7).sum(), np.delete(ds.x[p], 7) / np.delete(ds.x[p], 7).sum()
            )
        ]
        assert len(children) >= 3 and all(ds.split[i] == ds.split[p] for i in children)
    keys = {tuple(np.round(x, 6)) for x in ds.x}
    assert len(keys) == len(ds)  # negatives never duplicate a composition
    old = build_dataset(DataConfig.from_dict({"split": "random", "fractions": [0.4, 0.2, 0.4]}), tmp_path / "d")
    assert "CuCrO2" in set(old.formula) and int((~old.is_supercon).sum()) == 4  # old cards: no repair, no negatives


def test_config_round_trip_keeps_new_flags():
    cfg = DataConfig(repair=False, physical_negatives=True)
    assert DataConfig.from_dict(cfg.to_dict()) == cfg
    legacy = DataConfig.from_dict({"split": "time"})
    assert legacy.repair is False and legacy.physical_negatives is False
