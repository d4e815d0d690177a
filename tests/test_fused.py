"""The fused ensemble equals its members, and the design loop's ensemble modes behave as documented."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.engine import DesignEngine
from gdmcd_core.design.loop.scoring import Scorer
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.fused import fuse_members
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from tests.design_helpers import one_thread, tiny_reference  # noqa: F401  (fixture)


def _members(k: int, config: ModelConfig, seed: int = 0) -> list[TcResNet]:
    """Members with non-trivial BatchNorm statistics, so that folding BN is really exercised."""
    torch.manual_seed(seed)
    out = []
    for _ in range(k):
        m = TcResNet(config)
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                n = mod.num_features
                mod.running_mean.copy_(torch.randn(n) * 0.3)
                mod.running_var.copy_(torch.rand(n) + 0.5)
                mod.weight.data.copy_(torch.rand(n) + 0.5)
                mod.bias.data.copy_(torch.randn(n) * 0.1)
        out.append(m.eval().requires_grad_(False))
    return out


def _compositions(b: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(b, 118, generator=g)
    x[x < 0.9] = 0
    x[:, 7] += 0.05  # every row has some oxygen
    return x / x.sum(1, keepdim=True)


@pytest.mark.parametrize(
    "config",
    [
        ModelConfig(width=4, layers=(1, 1), stem="stock"),
        ModelConfig(width=4, layers=(2, 1), stem="keep"),
        ModelConfig(width=4, layers=(1, 1), stem="stock", features=6),
    ],
    ids=["stock-stem", "keep-stem-2-blocks", "element-statistics-branch"],
)
def test_fused_equals_members(config: ModelConfig) -> None:
    members = _members(3, config)
    x = _compositions(17).requires_grad_(True)
    ref = torch.stack([m.forward_raw(x) for m in members])
    fused = fuse_members(members)
    got = fused(x)
    assert got.shape == (3, 17)
    assert torch.allclose(got, ref, atol=1e-4, rtol=1e-5)
    # gradients to the input agree too (the design loop's use)
    (g_ref,) = torch.autograd.grad(ref.sum(), x)
    (g_got,) = torch.autograd.grad(fused(x).sum(), x)
    assert torch.allclose(g_got, g_ref, atol=1e-4, rtol=1e-4)


def test_fuse_refuses_training_mode() -> None:
    m = TcResNet(ModelConfig(width=4, layers=(1,)))
    with pytest.raises(ValueError, match="eval-mode"):
        fuse_members([m.train()])


def test_scorer_mean_std_matches_ensemble() -> None:
    ens = TcEnsemble(_members(4, ModelConfig(width=4, layers=(1,), head_bias=30.0)), card={"sigma_scale": 2.5})
    x = _compositions(9)
    mean, std = Scorer(ens).mean_std(x)
    ref_mean, ref_std = ens.mean_std(x)
    assert torch.allclose(mean, ref_mean, atol=1e-4) and torch.allclose(std, ref_std, atol=1e-4)
    assert float(std.max()) > 0


def test_rotate_mode_uses_one_member_between_full_steps() -> None:
    members = _members(4, ModelConfig(width=4, layers=(1,), head_bias=30.0))
    ens = TcEnsemble(members)
    sc = Scorer(ens, objective="lcb", kappa=1.0, mode="rotate", full_every=3)
    x = _compositions(5)
    full_score, full_tc = sc.loop_score(x, 0)
    raw = torch.stack([m.forward_raw(x) for m in members])
    assert torch.allclose(full_score, raw.mean(0) - raw.std(0, unbiased=False), atol=1e-4)
    s1, tc1 = sc.loop_score(x, 1)  # member 0, sd of step 0 held
    assert torch.allclose(s1, raw[0] - raw.std(0, unbiased=False), atol=1e-4)
    assert torch.allclose(tc1, torch.relu(raw[0]), atol=1e-4)
    s2, _ = sc.loop_score(x, 2)  # member 1
    assert torch.allclose(s2, raw[1] - raw.std(0, unbiased=False), atol=1e-4)
    s3, _ = sc.loop_score(x, 3)  # a full step again
    assert torch.allclose(s3, full_score, atol=1e-4)


@pytest.mark.parametrize("mode", ["fused", "rotate"])
def test_design_runs_in_both_ensemble_modes(mode: str) -> None:
    ens = TcEnsemble(_members(3, ModelConfig(width=4, layers=(1,), head_bias=50.0)))
    cfg = DesignConfig(
        n_candidates=6, steps2=12, steps3=12, seed=3, ensemble_mode=mode, hull_columns=False, exclude_unseen=False
    )
    eng = DesignEngine(ens, cfg, reference=tiny_reference())
    st = eng.optimize(eng.start_points())
    assert st.steps_done == 24 and np.isfinite(st.x_final).all()
    assert np.allclose(st.x_final.sum(1), 1.0, atol=1e-5)
    assert len(st.integer.formulas) == 6


def test_bad_ensemble_mode_is_one_line_error() -> None:
    with pytest.raises(ValueError, match="ensemble_mode must be one of"):
        DesignConfig(ensemble_mode="sometimes")
