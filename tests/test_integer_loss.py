"""Integer losses (eqs. 6-8) and integer formulas."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gdmcd_core.chem.composition import parse_formula, to_vector
from gdmcd_core.chem.elements import index_of
from gdmcd_core.design.objective.integer_loss import (
    int_es_loss,
    int_loss,
    integer_loss,
    integer_loss_grad,
    integerize,
    round_baseline,
)


def _x(formula: str) -> torch.Tensor:
    return torch.tensor(to_vector(formula))[None]


def test_paper_example_ca_sr_o() -> None:
    x = _x("Ca0.23Sr0.27O0.50")
    assert int_loss(x, [4]).item() == pytest.approx(0.04, abs=1e-12)
    assert int_es_loss(x, [4]).item() == pytest.approx(0.0, abs=1e-12)
    r = integerize(x.numpy(), [4], "int")
    assert parse_formula(r.formulas[0]) == {"Sr": 1, "Ca": 1, "O": 2}
    r = integerize(x.numpy(), [4], "es")
    amounts = parse_formula(r.formulas[0])
    assert amounts == pytest.approx({"Ca": 0.92, "Sr": 1.08, "O": 2.0})


@pytest.mark.parametrize("n", [1, 4, 7, 12, 24, 40])
def test_zero_exactly_on_grid(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        counts = rng.multinomial(n, rng.dirichlet(np.ones(5)))
        x = np.zeros(118)
        x[rng.choice(118, 5, replace=False)] = counts
        xt = torch.tensor(x / n)[None]
        assert int_loss(xt, [n]).item() < 1e-12
        assert int_loss(xt, [2 * n]).item() < 1e-12  # multiples of N are on the grid too
        assert int_es_loss(xt, [n]).item() < 1e-12


def test_es_is_int_without_two_largest_terms() -> None:
    torch.manual_seed(0)
    x = torch.softmax(torch.randn(32, 118) * 3, 1).double()
    ns = [4, 8, 12]
    li, le = int_loss(x, ns), int_es_loss(x, ns)
    assert bool((le <= li + 1e-15).all())
    t = x.unsqueeze(1) * torch.tensor(ns, dtype=x.dtype).reshape(1, -1, 1)
    d = (t - t.round()).abs() / torch.tensor(ns, dtype=x.dtype).reshape(1, -1, 1)
    top2 = d.sort(-1, descending=True).values[..., :2].sum(-1)
    assert torch.allclose(le, li - top2)


def test_min_over_n_and_smallest_n_on_ties() -> None:
    x = _x("CaSrO2")  # on the 1/4 grid: N = 4, 8, 12 all give 0
    loss, idx = integer_loss(x, [4, 8, 12])
    assert loss.item() < 1e-12 and idx.item() == 0
    x = torch.softmax(torch.randn(16, 118), 1).double()
    ns = list(range(4, 25))
    loss, idx = integer_loss(x, ns)
    assert torch.allclose(loss, int_loss(x, ns).min(1).values)


def test_gradient_points_towards_the_grid() -> None:
    x = _x("Ca0.23Sr0.27O0.50").requires_grad_(True)
    int_loss(x, [4]).sum().backward()
    g = x.grad[0]
    assert g[index_of("Ca")] < 0 and g[index_of("Sr")] > 0  # Ca up to 0.25, Sr down to 0.25


@pytest.mark.parametrize("kind", ["int", "es"])
def test_integerize_atom_count_is_allowed_and_reproduces_fractions(kind: str) -> None:
    torch.manual_seed(1)
    x = torch.softmax(torch.randn(64, 118) * 4, 1).double().numpy()
    x[x < 0.02] = 0
    x[:, 94:] = 0  # keep to elements with tabulated electronegativities (formula ordering)
    x[:, [1, 9, 17, 35, 53, 85]] = 0  # noble gases have none either
    x[:, 0] += 0.05
    x /= x.sum(1, keepdims=True)
    ns = [4, 6, 8, 12, 24]
    r = integerize(x, ns, kind)
    assert set(r.n_atoms.tolist()) <= set(ns)
    assert np.allclose(r.amounts.sum(1), r.n_atoms)
    if kind == "int":
        assert np.allclose(r.amounts, np.round(r.amounts))
    else:
        assert ((np.abs(r.amounts - np.round(r.amounts)) > 1e-9).sum(1) <= 2).all()
    for f, a, n in zip(r.formulas, r.amounts, r.n_atoms, strict=True):
        assert np.allclose(to_vector(f), a / n, atol=1e-9)  # the formula text reproduces its fractions
    # never introduces an element that was absent
    assert not ((r.amounts > 0) & (x == 0)).any()


def test_integerize_honours_pins() -> None:
    rng = np.random.default_rng(3)
    x = rng.dirichlet(np.ones(6) * 0.5, size=40)
    full = np.zeros((40, 118))
    cols = [index_of(s) for s in ("H", "La", "Y", "Ca", "Cu", "O")]
    full[:, cols] = x * 0.5
    full[:, index_of("H")] += 0.5  # H >= 0.5
    lower = np.zeros(118)
    lower[index_of("H")] = 0.5
    ns = list(range(4, 25))
    for kind in ("int", "es"):
        r = integerize(full, ns, kind, lower_frac=lower)
        assert (r.fractions[:, index_of("H")] >= 0.5 - 1e-9).all()
    exact = np.full(118, np.nan)
    exact[index_of("O")] = 0.25
    full2 = full.copy()
    full2[:, index_of("O")] = 0.25
    full2 /= full2.sum(1, keepdims=True)
    r = integerize(full2, [4, 8, 12], "int", exact_frac=exact)
    assert np.allclose(r.fractions[:, index_of("O")], 0.25)


def test_round_baseline_sums_to_n() -> None:
    x = _x("Ca0.23Sr0.27O0.50").numpy()
    r = round_baseline(x, [5], n_choice=np.array([5]))
    assert r.n_atoms[0] == 5 and r.amounts.sum() == 5


@pytest.mark.parametrize("kind", ["int", "es"])
def test_loss_and_gradient_by_hand_equal_autograd(kind: str) -> None:
    """The loop's integer_loss_grad equals integer_loss and its autograd gradient (sparse compositions, N = 4..24)."""
    g = torch.Generator().manual_seed(3)
    x = torch.zeros(40, 118)
    for row in x:
        cols = torch.randperm(118, generator=g)[: int(torch.randint(1, 7, (1,), generator=g))]
        row[cols] = torch.rand(len(cols), generator=g) + 0.05
    x = x / x.sum(1, keepdim=True)
    ns = list(range(4, 25))
    xg = x.clone().requires_grad_(True)
    loss, _ = integer_loss(xg, ns, kind)
    (want,) = torch.autograd.grad(loss.sum(), xg)
    got_loss, got = integer_loss_grad(x, ns, kind)
    assert torch.allclose(got_loss, loss.detach(), atol=1e-6)
    assert torch.equal(got, want)
    assert bool((got[x == 0] == 0).all())
