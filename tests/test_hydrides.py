"""Hydride mode (paper S5): which rows are hydrides, D_HSC1/D_HSC200 construction, search starts."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gdmcd_core.chem.composition import is_hydride, to_vectors
from gdmcd_core.chem.elements import index_of
from gdmcd_core.data.dataset import TEST, TRAIN, DataConfig
from gdmcd_core.training.hydrides import HydrideConfig, build_hydride_dataset, default_configs, hydride_share

CFG = DataConfig(fractions=(0.5, 0.1, 0.4), split_seed=1)


@pytest.fixture
def hydride_data(tiny_data_dir: Path) -> Path:
    pd.DataFrame(
        {"formula": ["La1H10", "Ca1H6", "P1H3", "P1H3"], "tc_k": [280.0, 245.0, 100.0, 90.0], "source": ["konno"] * 4}
    ).to_csv(tiny_data_dir / "hydrides_from_public_files.csv", index=False)
    pd.DataFrame({"formula": ["YH6"], "tc_k": [224.0], "source": ["manual_literature_recall_UNVERIFIED"]}).to_csv(
        tiny_data_dir / "hydrides_literature_manual.csv", index=False
    )
    return tiny_data_dir


def test_hydride_rule() -> None:
    x = to_vectors(["LaH10", "H3S", "PdH0.8", "BaReH9", "NbH0.05", "H", "LaBeH8", "YBa2Cu3O7", "H2O"])
    np.testing.assert_array_equal(is_hydride(x), [1, 1, 1, 1, 0, 1, 1, 0, 1])


def test_modes_share_the_non_hydride_split(hydride_data: Path) -> None:
    sets = {m: build_hydride_dataset(CFG, HydrideConfig(mode=m), hydride_data) for m in ("random", "hsc1", "hsc200")}
    n = len(sets["random"])
    for ds in sets.values():
        plain = ~ds.is_hydride[:n]
        np.testing.assert_array_equal(ds.split[:n][plain], sets["random"].split[plain])
        np.testing.assert_array_equal(ds.x[:n], sets["random"].x)


def test_hsc1_puts_every_hydride_in_train_and_adds_public_rows(hydride_data: Path) -> None:
    ds = build_hydride_dataset(CFG, HydrideConfig(mode="hsc1"), hydride_data)
    assert (ds.split[ds.is_hydride] == TRAIN).all()
    added = set(ds.formula[ds.is_hydride])
    assert {"LaH10", "H3S", "Ca1H6", "P1H3"} <= added
    assert "YH6" not in added  # the unverified manual file is never read
    assert list(ds.formula).count("La1H10") == 0  # LaH10 is in SuperCon: not added twice
    assert ds.tc_k[list(ds.formula).index("P1H3")] == pytest.approx(95.0)  # duplicates averaged
    assert ds.config.hydride_replicas == 0


def test_hsc200_is_half_hydrides_balanced_per_element_set(hydride_data: Path) -> None:
    ds = build_hydride_dataset(CFG, HydrideConfig(mode="hsc200", balance_negatives=False), hydride_data)
    assert ds.config.hydride_replicas > 1
    assert hydride_share(ds) == pytest.approx(0.5, abs=0.05)
    extra = ds.hydride_balanced_extra(ds.indices(TRAIN))
    per_set = collections.Counter(tuple(np.flatnonzero(ds.x[i] > 0)) for i in extra)
    assert len(set(per_set.values())) == 1  # every element combination gets the same number of copies
    assert len(per_set) == 4  # {H,La}, {H,S}, {H,Ca}, {H,P}
    assert not (ds.split[ds.is_hydride] == TEST).any()


def test_h_rich_non_superconductors_are_balanced_like_the_hydrides(hydride_data: Path) -> None:
    """H2, H2O, LiH ... (physical negatives) get as many copies per element set as LaH10 does, in train."""
    ds = build_hydride_dataset(CFG, HydrideConfig(mode="hsc200"), hydride_data)
    negatives = ds.is_hydride & ~ds.is_supercon
    assert {"H2", "H2O", "LiH", "CaH2"} <= set(ds.formula[negatives])
    assert (ds.split[negatives] == TRAIN).all() and (ds.tc_k[negatives] == 0).all()
    extra = ds.hydride_balanced_extra(ds.indices(TRAIN))
    per_set = collections.Counter(tuple(np.flatnonzero(ds.x[i] > 0)) for i in extra)
    h, la = index_of("H"), index_of("La")
    assert per_set[(h,)] == per_set[(h, la)] > 0  # pure H2 as often as LaH10's {H, La}
    plain = build_hydride_dataset(CFG, HydrideConfig(mode="hsc200", balance_negatives=False), hydride_data)
    assert not (plain.is_hydride & ~plain.is_supercon).any()


def test_hydride_task_trains_and_its_card_rebuilds_its_split(hydride_data: Path, tmp_path: Path) -> None:
    from gdmcd_core.model.checkpoint import load_checkpoint
    from gdmcd_core.model.resnet import ModelConfig
    from gdmcd_core.training.evaluate import dataset_for
    from gdmcd_core.training.loop import TrainConfig
    from gdmcd_core.training.run import RunSpec
    from gdmcd_core.training.tasks import hydride_task, train

    spec = RunSpec(ModelConfig(width=4, layers=(1,)), TrainConfig(epochs=1, batch_size=64, device="cpu"), CFG)
    out = tmp_path / "hyd.pt"
    card = train(hydride_task(HydrideConfig(mode="hsc1")), spec, out, str(hydride_data), False, lambda s: None)
    assert card["kind"] == "tc_regressor_hydride" and card["hydride_config"]["mode"] == "hsc1"
    assert card["hydride_config"]["min_h_fraction"] == 0.4 and "Ca1H6" in card["hydrides_in_train"]
    assert card["metrics_test"]["n_test_supercon_nonhydride"] > 0 and "supercon_test_mae_k" in card["metrics_test"]
    ens = load_checkpoint(out)
    ds = dataset_for(ens, str(hydride_data))
    assert not (ds.split[ds.is_hydride] == TEST).any() and "Ca1H6" in set(ds.formula)


def test_default_configs_leave_the_device_to_the_caller(tmp_path: Path) -> None:
    """The default card's device and threads describe the machine it trained on, not the hydride model."""
    train_config = {"device": "cpu", "threads": 1, "huber_delta_k": 3.0}
    card = {"sha256": "0" * 64, "model_config": {"width": 8}, "train_config": train_config}
    (tmp_path / "d.json").write_text(json.dumps(card))
    model, train, _, source = default_configs(tmp_path / "d.pt")
    assert model.width == 8 and (train.device, train.threads, train.huber_delta) == ("auto", 0, 3.0)
    assert source == "card d.json"


def test_search_preset_builds_a_design_config() -> None:
    design = pytest.importorskip("gdmcd_core.design.config.config")
    from gdmcd_core.design.config.presets import hydride_search_config

    cfg = hydride_search_config()
    assert isinstance(cfg, design.DesignConfig)
    assert cfg.init_mode == "hydride" and cfg.target_tc == 300.0 and cfg.ns == tuple(range(4, 25))
    (pin,) = cfg.pins
    assert pin.symbol == "H" and pin.fraction == 0.5 and pin.mode == "at-least"
    assert hydride_search_config(full=True).n_candidates > cfg.n_candidates
    assert hydride_search_config(steps2=5).steps2 == 5
