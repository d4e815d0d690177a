"""Shared fixtures: seeded torch, a tiny synthetic data folder, and a tiny trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gdmcd_core.chem.composition import reduced_key, to_vector

TINY_SC = [
    ("MgB2", 39.0, 2001),
    ("Nb3Sn", 18.0, 1954),
    ("NbTi", 9.5, 1962),
    ("YBa2Cu3O7", 92.0, 1987),
    ("La1.85Sr0.15CuO4", 38.0, 1986),
    ("Pb", 7.2, 1913),
    ("Nb", 9.2, 1930),
    ("HgBa2Ca2Cu3O8", 133.0, 1993),
    ("Bi2Sr2CaCu2O8", 85.0, 1988),
    ("LaFeAsO0.9F0.1", 26.0, 2008),
    ("FeSe", 8.0, 2008),
    ("K3C60", 19.0, 1991),
    ("LaH10", 250.0, 2019),
    ("H3S", 203.0, 2015),
    ("NbN", 16.0, 1941),
    ("V3Si", 17.0, 1953),
    ("Ba0.6K0.4Fe2As2", 38.0, 2008),
    ("CaC6", 11.5, 2005),
    ("Sn", 3.7, 1913),
    ("Al", 1.2, 1933),
    ("MgB1.9C0.1", 36.0, 2012),
    ("YNi2B2C", 15.0, 1994),
    ("Tl2Ba2CaCu2O8", 110.0, 1988),
    ("SmFeAsO0.8F0.2", 55.0, 2011),
]
TINY_COD = [
    "NaCl",
    "SiO2",
    "Al2O3",
    "CaCO3",
    "KBr",
    "MgO",
    "TiO2",
    "Fe2O3",
    "ZnS",
    "CuSO4",
    "BaTiO3",
    "LiF",
    "CaF2",
    "Na2SO4",
    "K2O",
    "SrTiO3",
    "ZrO2",
    "CeO2",
    "GaN",
    "AlN",
]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


def write_tiny_data(folder: Path) -> Path:
    """Write tiny SuperCon/COD files in the shared data schema into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    sc = pd.DataFrame(
        {
            "formula": [f for f, _, _ in TINY_SC],
            "tc_k": [t for _, t, _ in TINY_SC],
            "tc_k_mean": [t for _, t, _ in TINY_SC],
            "first_year": [y for _, _, y in TINY_SC],
            "comp_key": [reduced_key(to_vector(f)) for f, _, _ in TINY_SC],
        }
    )
    sc.to_csv(folder / "supercon_nims_unique.csv", index=False)
    cod = pd.DataFrame({"formula": TINY_COD, "tc_k": 0.0, "comp_key": [reduced_key(to_vector(f)) for f in TINY_COD]})
    cod.to_csv(folder / "cod_nonsc_inorganic_konno2009.csv", index=False)
    return folder


@pytest.fixture
def tiny_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = write_tiny_data(tmp_path / "data")
    monkeypatch.setenv("GDMCD_DATA_DIR", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return folder


@pytest.fixture
def tiny_checkpoint(tiny_data_dir: Path, tmp_path: Path) -> Path:
    """A 2-member ensemble of tiny models trained for 2 epochs on the tiny data."""
    from gdmcd_core.data.dataset import DataConfig
    from gdmcd_core.model.resnet import ModelConfig
    from gdmcd_core.training.loop import TrainConfig
    from gdmcd_core.training.run import RunSpec
    from gdmcd_core.training.tasks import TC, train

    spec = RunSpec(
        model=ModelConfig(width=4, layers=(1,)),
        train=TrainConfig(epochs=2, batch_size=16, device="cpu"),
        data=DataConfig(fractions=(0.6, 0.2, 0.2)),
        members=2,
    )
    out = tmp_path / "ckpt" / "tiny.pt"
    out.parent.mkdir()
    train(TC, spec, out, data_dir=str(tiny_data_dir), progress=False, log=lambda s: None)
    return out
