"""Formation-energy surrogate (the formation_energy task): end-to-end training on a tiny file, and the real
checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gdmcd_core.chem.composition import to_vectors
from gdmcd_core.data.dataset import VAL
from gdmcd_core.model.checkpoint import read_card
from gdmcd_core.model.formation_energy import (
    FORMATION_ENERGY_CHECKPOINT,
    load_formation_energy_model,
    predict_formation_energy,
)
from gdmcd_core.training.formation_energy import DATA_CONFIG, MODEL_CONFIG, TRAIN_CONFIG, build_formation_dataset
from gdmcd_core.training.loop import TrainConfig
from gdmcd_core.training.run import RunSpec
from gdmcd_core.training.tasks import FORMATION_ENERGY, train

# Synthetic "DFT" energies: 1:1 salts are most stable; every extra atom of the majority element costs.
CATIONS, ANIONS = ("Li", "Na", "K", "Rb"), ("F", "Cl", "Br", "I")


def synthetic_energy(n_cation: int, n_anion: int) -> float:
    return -2.0 + 2.0 * abs(n_cation - n_anion) / (n_cation + n_anion)


def write_tiny_jarvis(folder: Path) -> Path:
    rows = []
    for c in CATIONS:
        for a in ANIONS:
            for nc, na in ((1, 1), (2, 1), (3, 1), (1, 2), (1, 3), (2, 2)):  # (2, 2) duplicates (1, 1): deduped
                rows.append(
                    {
                        "jid": f"J-{c}{nc}{a}{na}",
                        "formula": f"{c}{nc}{a}{na}",
                        "formation_energy_per_atom": synthetic_energy(nc, na),
                        "ehull": 0.1 * (nc == 2 and na == 2),
                    }
                )
    rows.append({"jid": "J-blank", "formula": "", "formation_energy_per_atom": 0.0, "ehull": 0.0})
    (folder / "raw").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(folder / "raw" / "jarvis_dft_3d_subset.csv", index=False)
    return folder


def test_dataset_dedupes_and_splits(tmp_path: Path) -> None:
    config = replace(DATA_CONFIG, split_seed=3)
    ds = build_formation_dataset(config, data_dir=write_tiny_jarvis(tmp_path / "data"))
    assert len(ds.energy) == len(CATIONS) * len(ANIONS) * 5  # blank row dropped, (2, 2) merged into (1, 1)
    rows = ds.rows()
    np.testing.assert_array_equal(rows.val, np.flatnonzero(ds.split == VAL))  # early stopping on every val row
    assert rows.y is ds.energy and sorted(np.unique(ds.split)) == [0, 1, 2]
    again = build_formation_dataset(config, data_dir=tmp_path / "data")
    np.testing.assert_array_equal(ds.split, again.split)


@pytest.mark.parametrize("change", [{"split": "time"}, {"include_cod": True}, {"repair": False}])
def test_dataset_refuses_data_options_that_do_not_apply(tmp_path: Path, change: dict) -> None:
    with pytest.raises(ValueError, match="split-seed"):
        build_formation_dataset(replace(DATA_CONFIG, **change), data_dir=write_tiny_jarvis(tmp_path / "data"))


def test_tiny_model_learns_stable_salts(tmp_path: Path) -> None:
    data = write_tiny_jarvis(tmp_path / "data")
    out = tmp_path / "fe.pt"
    cfg = replace(TRAIN_CONFIG, epochs=60, batch_size=16, lr=0.01, patience=60, huber_delta=1.0, device="cpu")
    spec = RunSpec(model=replace(MODEL_CONFIG, width=8), train=cfg, data=DATA_CONFIG)
    card = train(FORMATION_ENERGY, spec, out, data_dir=str(data), progress=False, log=lambda s: None)
    assert card["kind"] == "formation_energy" and card["units"] == "eV/atom" and card["split_seed"] == 0
    assert card["data_checksums"] and card["train_config"]["huber_delta"] == 1.0
    assert {"test_mae_ev_atom", "baseline_train_mean_test_mae_ev_atom", "best_val_mae_ev_atom"} <= set(card["metrics"])
    assert sum(card["n_rows"].values()) == len(CATIONS) * len(ANIONS) * 5
    model = load_formation_energy_model(out)
    assert model is not None and not model.config.output_relu
    e = predict_formation_energy(model, to_vectors(["NaCl", "Na3Cl", "KBr", "K3Br", "LiF", "LiF3"]))
    assert e[0] < e[1] and e[2] < e[3] and e[4] < e[5]
    assert e.min() < 0  # a signed output: negative energies are reachable


def test_absent_checkpoint_is_none(tmp_path: Path) -> None:
    assert load_formation_energy_model(tmp_path / "missing.pt") is None


@pytest.mark.skipif(not FORMATION_ENERGY_CHECKPOINT.is_file(), reason="no committed formation-energy checkpoint")
def test_committed_checkpoint_ranks_salts() -> None:
    model = load_formation_energy_model()
    e = dict(
        zip(
            ["NaCl", "Na3Cl", "MgO", "Mg3O"],
            predict_formation_energy(model, to_vectors(["NaCl", "Na3Cl", "MgO", "Mg3O"])),
            strict=True,
        )
    )
    assert e["NaCl"] < e["Na3Cl"] and e["MgO"] < e["Mg3O"]
    assert e["NaCl"] < -1.0  # DFT: about -1.9 eV/atom
    assert model.card["metrics"]["test_mae_ev_atom"] < model.card["metrics"]["baseline_train_mean_test_mae_ev_atom"]


@pytest.mark.skipif(not FORMATION_ENERGY_CHECKPOINT.is_file(), reason="no committed formation-energy checkpoint")
def test_committed_card_reads_its_loss_scale_under_the_old_name() -> None:
    train_config = read_card(FORMATION_ENERGY_CHECKPOINT)["train_config"]
    assert "huber_delta_k" in train_config  # written before the loss scale lost its Tc name
    assert TrainConfig.from_dict(train_config).huber_delta == 0.1
