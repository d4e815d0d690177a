import numpy as np
import torch
from design_helpers import constant_ensemble

from gdmcd_core.training.sanity import (
    DEFAULT_FAMILIES,
    binary_hydride_grid,
    hydride_sanity,
    oxygen_response,
    oxygen_scan,
)

O_INDEX = 7  # index of oxygen in the 118-vector


def oxygen_loving(x):
    """Synthetic model: Tc = 300 K * (O fraction - 0.35), floored at 0; sigma 1."""
    return 300.0 * np.maximum(x[:, O_INDEX] - 0.35, 0.0), np.ones(len(x))


def oxygen_blind(x):
    """Synthetic model that ignores oxygen: Tc = 50 for everything."""
    return np.full(len(x), 50.0), np.zeros(len(x))


def test_oxygen_scan_is_tidy_and_covers_families():
    scan = oxygen_scan(oxygen_loving)
    assert list(scan.columns) == ["family", "formula", "o_amount", "o_fraction_of_nominal", "tc_mean", "tc_std"]
    assert set(scan["family"]) == set(DEFAULT_FAMILIES)
    ybco = scan[scan["family"] == "YBa2Cu3Ox"]
    assert ybco["o_amount"].min() == 0 and ybco["o_amount"].max() == 7
    assert ybco.loc[ybco["o_amount"] == 0, "tc_mean"].item() == 0
    assert ybco.loc[ybco["o_amount"] == 7, "formula"].item() == "Ba2YCu3O7"
    hg = scan[scan["family"] == "HgBa2Ca2Cu3Ox"]
    assert 8.0 in set(hg["o_amount"]) and hg["o_amount"].max() == 8.5  # nominal kept on the grid


def test_oxygen_response_separates_models():
    falls = oxygen_response(oxygen_scan(oxygen_loving)).set_index("family")["falls"]
    assert falls.all()
    blind = oxygen_response(oxygen_scan(oxygen_blind)).set_index("family")
    assert not blind["falls"].any() and (blind["tc_nominal"] == 50).all()


def test_hydride_sanity_and_grid():
    out = hydride_sanity(lambda x: (100.0 * x[:, 0], np.zeros(len(x))))
    assert {"H2O", "LiH", "CH4", "NaBH4"} <= set(out["formula"]) and "La2CuO4" not in set(out["formula"])
    lih = out.set_index("formula").loc["LiH", "tc_mean"]
    assert abs(lih - 50.0) < 1e-4
    formulas, x = binary_hydride_grid()
    assert "LaH10" in formulas and "BiH" in formulas and "HeH2" not in formulas and "XeH3" not in formulas
    assert not any(f.startswith("PoH") for f in formulas)
    assert x.shape == (len(formulas), 118) and np.allclose(x.sum(1), 1)
    assert len(formulas) == 10 * (82 - 5)  # Z = 2..83 minus He, Ne, Ar, Kr, Xe


def test_ensemble_sigma_uses_pre_activation_outputs():
    ens = constant_ensemble((-5.0, -1.0), layers=(1, 1, 1, 1))
    x = torch.zeros(3, 118)
    x[:, 0] = 1.0
    mean, std = ens.mean_std(x)
    assert torch.allclose(mean, torch.zeros(3))
    assert torch.allclose(std, torch.full((3,), 2.0), rtol=1e-2)  # sd of -5 and -1 (on the soft floor at -10 K)
    m2, s2 = ens.predict(x.numpy())
    assert np.all(m2 == 0) and np.all(s2 > 0)
