"""Projection and reparameterization invariants under random inputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdmcd_core.design.objective.simplex import (
    TopKProjection,
    project_capped_simplex,
    project_simplex,
    relu_normalize,
    simplex_violation,
    top_k_mask,
)

TOL = 1e-6
SEEDS = range(12)


def _random(seed: int, B: int = 16, D: int = 118, dtype=torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    scale = [0.01, 0.3, 1.0, 10.0][seed % 4]
    return (torch.randn(B, D, generator=g) * scale).to(dtype)


@pytest.mark.parametrize("seed", SEEDS)
def test_projection_lands_on_simplex_and_satisfies_kkt(seed: int) -> None:
    v = _random(seed, dtype=torch.float64)
    total = [1.0, 0.5, 0.25][seed % 3]
    x = project_simplex(v, total)
    assert simplex_violation(x, total).max() < 1e-12
    # KKT: x = max(v - tau, 0) with one tau per row
    tau = torch.where(x > 0, v - x, torch.nan)
    tau_row = torch.nanmean(tau, 1, keepdim=True)
    assert torch.nanmean((tau - tau_row).abs()) < 1e-9
    assert bool(((x == 0) <= (v <= tau_row + 1e-9)).all())


@pytest.mark.parametrize("seed", SEEDS)
def test_projection_is_idempotent_and_float32_sum_holds(seed: int) -> None:
    v = _random(seed)
    x = project_simplex(v)
    assert x.dtype == torch.float32
    assert simplex_violation(x).max() < TOL
    assert torch.allclose(project_simplex(x), x, atol=1e-7)


@pytest.mark.parametrize("seed", SEEDS)
def test_masked_entries_are_exactly_zero(seed: int) -> None:
    v = _random(seed)
    g = torch.Generator().manual_seed(100 + seed)
    mask = torch.rand(118, generator=g) > 0.5
    mask[0] = True
    x = project_simplex(v, 0.7, mask)
    assert bool((x[:, ~mask] == 0).all())
    assert simplex_violation(x, 0.7).max() < TOL


def test_projection_matches_brute_force_on_small_cases() -> None:
    rng = np.random.default_rng(0)
    for _ in range(50):
        v = rng.normal(size=(1, 3))
        x = project_simplex(torch.tensor(v)).numpy()[0]
        # brute force on a fine grid of the 2-simplex
        g = np.linspace(0, 1, 401)
        a, b = np.meshgrid(g, g)
        ok = a + b <= 1
        pts = np.stack([a[ok], b[ok], 1 - a[ok] - b[ok]], 1)
        best = pts[((pts - v) ** 2).sum(1).argmin()]
        assert np.abs(best - x).max() < 5e-3


def test_zero_total_gives_zeros() -> None:
    x = project_simplex(_random(1), 0.0)
    assert bool((x == 0).all())


@pytest.mark.parametrize("seed", SEEDS)
def test_capped_projection_respects_caps_and_matches_uncapped(seed: int) -> None:
    v = _random(seed, dtype=torch.float64)
    # caps of 1 are inactive for total <= 1: same as the plain projection
    assert torch.allclose(project_capped_simplex(v, 1.0, 1.0), project_simplex(v, 1.0), atol=1e-12)
    g = torch.Generator().manual_seed(seed)
    upper = torch.rand(118, generator=g, dtype=torch.float64) * 0.05 + 0.01
    x = project_capped_simplex(v, upper, 0.8)
    assert bool((x <= upper + 1e-12).all()) and bool((x >= 0).all())
    assert (x.sum(1) - 0.8).abs().max() < 1e-9
    # KKT: free entries (strictly inside the box) share one tau
    tau = torch.where((x > 1e-12) & (x < upper - 1e-12), v - x, torch.nan)
    spread = torch.nan_to_num(tau - torch.nanmean(tau, 1, keepdim=True)).abs().max()
    assert spread < 1e-9


@pytest.mark.parametrize("seed", SEEDS)
def test_relu_normalize_on_simplex_with_exact_zeros(seed: int) -> None:
    p = _random(seed).requires_grad_(True)
    x = relu_normalize(p, 0.5)
    assert simplex_violation(x, 0.5).max() < TOL
    assert bool((x[p.detach() <= 0] == 0).all())
    x[:, 0].sum().backward()
    assert p.grad is not None and torch.isfinite(p.grad).all()


def test_relu_normalize_empty_row_becomes_uniform_over_mask() -> None:
    p = -torch.ones(2, 118)
    mask = torch.zeros(118, dtype=torch.bool)
    mask[[0, 5]] = True
    x = relu_normalize(p, 1.0, mask)
    assert torch.allclose(x[:, [0, 5]], torch.full((2, 2), 0.5))
    assert x.sum() == pytest.approx(2.0)


def test_top_k_mask_keeps_k_plus_forced() -> None:
    x = torch.arange(10.0).expand(3, 10)
    keep = torch.zeros(10, dtype=torch.bool)
    keep[0] = True
    m = top_k_mask(x, 2, keep)
    assert m.sum(1).tolist() == [3, 3, 3]
    assert bool(m[:, [0, 8, 9]].all())


@pytest.mark.parametrize("seed", SEEDS)
def test_one_top_k_projection_equals_mask_then_project(seed: int) -> None:
    """The loop's capped projection (one top-k) equals top_k_mask followed by project_simplex, per-row k included."""
    v = _random(seed)
    g = torch.Generator().manual_seed(200 + seed)
    mask = torch.rand(118, generator=g) > 0.3
    k = torch.randint(0, 8, (v.shape[0],), generator=g)
    k[0] = 118  # more than the mask holds
    want = project_simplex(v, 0.8, top_k_mask(v.masked_fill(~mask, -torch.inf), k) & mask)
    want[k == 0] = 0.0  # an empty support projects to zeros
    got = TopKProjection(k, 0.8, mask, tuple(v.shape), v.device)(v)
    assert torch.equal(got, want)
    assert bool(((got > 0).sum(1) <= k).all())
    assert simplex_violation(got[k > 0], 0.8).max() < TOL
