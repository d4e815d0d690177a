import json

import numpy as np
import pytest
import torch
from design_helpers import constant_ensemble

from gdmcd_core.data.dataset import TEST, TRAIN, VAL, DataConfig, build_dataset
from gdmcd_core.model.checkpoint import CheckpointError, load_checkpoint
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.training.loop import tc_loss


def test_dataset_split_is_disjoint_and_seeded(tiny_data_dir):
    ds = build_dataset(DataConfig(fractions=(0.6, 0.2, 0.2)))
    keys = [tuple(np.round(x, 6)) for x in ds.x]
    assert len(set(keys)) == len(keys)  # one row per composition, so no composition is in two parts
    assert set(np.unique(ds.split)) <= {TRAIN, VAL, TEST}
    again = build_dataset(DataConfig(fractions=(0.6, 0.2, 0.2)))
    assert np.array_equal(ds.split, again.split)
    other = build_dataset(DataConfig(fractions=(0.6, 0.2, 0.2), split_seed=1))
    assert not np.array_equal(ds.split, other.split)
    assert ds.tc_k[~ds.is_supercon].max() == 0
    assert np.allclose(ds.x.sum(1), 1, atol=1e-6)


def test_supercon_replicated_in_train_only(tiny_data_dir):
    ds = build_dataset(DataConfig(fractions=(0.6, 0.2, 0.2), supercon_replicas=3))
    tr = ds.indices(TRAIN)
    n_sc, n_non = int(ds.is_supercon[tr].sum()), int((~ds.is_supercon[tr]).sum())
    idx = ds.train_indices()
    assert len(idx) == 3 * n_sc + n_non
    assert np.all(ds.split[idx] == TRAIN)


def test_cod_rows_matching_supercon_are_dropped(tiny_data_dir):
    import pandas as pd

    cod = pd.read_csv(tiny_data_dir / "cod_nonsc_inorganic_konno2009.csv")
    sc = pd.read_csv(tiny_data_dir / "supercon_nims_unique.csv")
    pd.concat([cod, sc.iloc[:1][["formula", "comp_key"]].assign(tc_k=0.0)]).to_csv(
        tiny_data_dir / "cod_nonsc_inorganic_konno2009.csv", index=False
    )
    ds = build_dataset(DataConfig(physical_negatives=False))
    assert ds.is_supercon.sum() == len(sc) and (~ds.is_supercon).sum() == len(cod)


def test_time_split_puts_recent_supercon_in_test(tiny_data_dir):
    ds = build_dataset(DataConfig(split="time"))
    sc = ds.is_supercon
    assert np.all(ds.split[sc & (ds.first_year >= 2010)] == TEST)
    assert not np.any(ds.split[sc & (ds.first_year < 2010)] == TEST)


def test_bad_data_config_is_rejected():
    with pytest.raises(ValueError, match="split must be"):
        DataConfig(split="weekly")
    with pytest.raises(ValueError, match="sum to 1"):
        DataConfig(fractions=(0.5, 0.1, 0.1))


def test_model_output_is_nonnegative_and_differentiable_in_x():
    m = TcResNet(ModelConfig(width=4, layers=(1, 1))).eval()
    x = torch.softmax(torch.randn(8, 118), 1).requires_grad_(True)
    y = m(x)
    assert y.shape == (8,) and torch.all(y >= 0)
    m.forward_raw(x).sum().backward()
    assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("stem", ["keep", "stock"])
def test_both_stems_run(stem):
    m = TcResNet(ModelConfig(width=4, layers=(1, 1), stem=stem)).eval()
    assert m(torch.softmax(torch.randn(3, 118), 1)).shape == (3,)


def test_loss_never_leaves_a_superconductor_without_gradient():
    raw = torch.tensor([-5.0, -5.0, 3.0], requires_grad=True)  # all below the ReLU kink or not
    tc = torch.tensor([20.0, 0.0, 0.0])
    tc_loss(raw, tc, delta=2.0).backward()
    assert raw.grad[0] < 0  # the superconductor predicted negative is pushed up
    assert raw.grad[1] == 0  # a non-superconductor already at <= 0 is fine
    assert raw.grad[2] > 0  # a non-superconductor predicted positive is pushed down


def test_ensemble_sigma_zero_for_identical_members_and_positive_otherwise():
    a = TcResNet(ModelConfig(width=4, layers=(1,)))
    b = TcResNet(ModelConfig(width=4, layers=(1,)))
    b.load_state_dict(a.state_dict())
    x = torch.softmax(torch.randn(6, 118), 1)
    same = TcEnsemble([a, b]).eval()
    assert torch.all(same.mean_std(x)[1] == 0)
    with torch.no_grad():
        b.head.bias += 5.0
    assert torch.all(same.mean_std(x)[1] > 0)


def test_train_save_load_round_trip(tiny_checkpoint):
    ens = load_checkpoint(tiny_checkpoint)
    card = json.loads(tiny_checkpoint.with_suffix(".json").read_text())
    assert ens.n_members == 2 and ens.sha256 == card["sha256"]
    assert not any(p.requires_grad for p in ens.parameters())
    assert card["data_config"]["split_seed"] == 0 and "supercon_nims_unique.csv" in card["data_checksums"]
    assert {"supercon_test_mae_k", "supercon_test_r2", "test_precision"} <= set(card["metrics_test"])
    mean, std = ens.predict(np.eye(118, dtype=np.float32)[:3])
    assert mean.shape == (3,) and np.all(mean >= 0) and np.all(std >= 0)


def test_tampered_checkpoint_is_refused(tiny_checkpoint):
    with open(tiny_checkpoint, "ab") as fh:
        fh.write(b"x")
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_checkpoint(tiny_checkpoint)


def test_missing_card_is_refused(tiny_checkpoint):
    tiny_checkpoint.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="card"):
        load_checkpoint(tiny_checkpoint)


def test_sigma_scale_calibrates_validation_coverage():
    from gdmcd_core.data.dataset import Dataset
    from gdmcd_core.training.calibration import ONE_SIGMA_COVERAGE
    from gdmcd_core.training.evaluate import fit_sigma_scale

    rng = np.random.default_rng(0)
    n = 200
    x = rng.random((n, 118)).astype(np.float32) ** 8
    x /= x.sum(1, keepdims=True)
    ds = Dataset(
        x=x,
        tc_k=rng.uniform(1, 50, n).astype(np.float32),
        is_supercon=np.ones(n, bool),
        split=np.full(n, VAL, np.int8),
        formula=np.array(["X"] * n),
        first_year=np.full(n, np.nan),
        is_hydride=np.zeros(n, bool),
        config=DataConfig(),
    )
    members = [TcResNet(ModelConfig(width=4, layers=(1,))) for _ in range(3)]
    for k, m in enumerate(members):
        with torch.no_grad():
            m.head.bias += 3.0 * k  # members disagree, so the raw spread is > 0
    ens = TcEnsemble(members).eval()
    ens.sigma_scale = fit_sigma_scale(ens, ds)
    mean, std = ens.predict(ds.x)
    inside = np.mean(np.abs(mean - ds.tc_k) <= std * (1 + 1e-5))
    assert ens.sigma_scale > 0
    assert abs(inside - ONE_SIGMA_COVERAGE) <= 1.5 / n


def test_negative_margin_pushes_non_superconductors_below_zero():
    tc = torch.zeros(3)
    raw = torch.tensor([-3.0, -1.0, 0.5])  # all read as 0 K after the ReLU, the last one as 0.5 K
    assert tc_loss(raw[:2], tc[:2], delta=2.0).item() == 0.0  # no margin: anything <= 0 is fine
    with_margin = torch.stack(
        [tc_loss(r.view(1), t.view(1), delta=2.0, margin=2.0) for r, t in zip(raw, tc, strict=True)]
    )
    assert with_margin[0] == 0.0 and 0.0 < with_margin[1] < with_margin[2]
    sc = torch.tensor([5.0])  # a superconductor's loss does not depend on the margin
    assert tc_loss(torch.tensor([3.0]), sc, 2.0, margin=2.0) == tc_loss(torch.tensor([3.0]), sc, 2.0)


def test_ensemble_tc_is_the_relu_of_the_members_mean_raw_output():
    ens = constant_ensemble((-4.0, 1.0))  # member Tc 0 and 1 K; mean raw -1.5 K
    x = torch.zeros(2, 118)
    x[:, 7] = 1.0
    with torch.no_grad():
        assert torch.equal(ens(x), torch.zeros(2))  # not 0.5 K: one member above 0 K does not make a superconductor
        assert torch.equal(ens.member_predictions(x).mean(0), torch.full((2,), 0.5))
        mean, std = ens.mean_std(x)
    assert torch.equal(mean, ens(x)) and bool((std > 0).all())
