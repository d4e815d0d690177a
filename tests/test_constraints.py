"""Pins, exclusions and the element cap: validation messages and exactness."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from design_helpers import one_thread, tiny_reference  # noqa: F401  (autouse fixture)

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.elements import index_of
from gdmcd_core.design.config.config import DesignConfig
from gdmcd_core.design.objective.constraint_tensors import apply_projection, apply_relu, compose
from gdmcd_core.design.objective.constraints import Constraints, Pin

TOL = 1e-6
H, OX, CU, HG = (index_of(s) for s in ("H", "O", "Cu", "Hg"))


def test_pin_parsing() -> None:
    assert Pin.parse("H=0.5") == Pin("H", 0.5, None)
    assert Pin.parse("H>=0.5", "exact") == Pin("H", 0.5, "at-least")
    assert Pin.parse(" Cu = .2 ", "exact").resolved("at-least") == Pin("Cu", 0.2, "exact")
    for bad in ["H", "H=", "h=0.5", "=0.5", "H=abc", "H=-0.1"]:
        with pytest.raises(ValueError, match="EL=FRAC"):
            Pin.parse(bad)
    for bad, msg in [(("Xx", 0.5), "unknown element"), (("H", 0.0), r"\(0, 1\]"), (("H", 1.5), r"\(0, 1\]")]:
        with pytest.raises(ValueError, match=msg):
            Pin(*bad)
    with pytest.raises(ValueError, match="mode"):
        Pin("H", 0.5, "most")


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"pins": ["H=0.7", "O=0.5"]}, "sum to 1.2 > 1"),
        ({"pins": ["H=0.5", "H=0.2"]}, "pinned twice"),
        ({"pins": ["H=0.5"], "exclude": ["H"]}, "both pinned and excluded"),
        ({"exclude": ["Xq"]}, "not an element symbol"),
        ({"pins": ["Rn=0.1"], "unseen": ["Rn"]}, "occurs in no training composition"),
        ({"pins": ["H=0.5", "O=0.2"], "max_elements": 1}, "less than the 2 pinned"),
        ({"pins": ["O=0.5"], "exclude": [s for s in ("radioactive",)], "max_elements": -1}, ">= 0"),
    ],
)
def test_build_rejects_with_clear_message(kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        Constraints.build(**kwargs)


def test_everything_excluded_is_rejected() -> None:
    from gdmcd_core.chem.elements import symbols

    with pytest.raises(ValueError, match="every other element is excluded"):
        Constraints.build(["H=0.5"], [s for s in symbols() if s != "H"], pin_mode="exact")


@pytest.mark.parametrize(
    "kwargs, msg",
    [
        ({"n_min": 24, "n_max": 4}, "empty N range"),
        ({"pins": ["Cu=0.13"], "pin_mode": "exact"}, "no cell size N"),
        ({"integer_loss": "foo"}, "integer_loss"),
        ({"init_mode": "formulas"}, "needs at least one formula"),
        ({"init_mode": "formulas", "init_formulas": ["YBa2Cu3O7", "Qz2"]}, "Qz2"),
        ({"objective": "max"}, "objective"),
        ({"constraint_method": "clip"}, "constraint_method"),
        ({"pins": ["H=0.6", "O=0.6"]}, "> 1"),
    ],
)
def test_design_config_rejects(kwargs: dict, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        DesignConfig(**kwargs)


def test_vectors_and_feasible_ns() -> None:
    c = Constraints.build(["H=0.5", "Cu=0.25"], ["Hg", "toxic"], pin_mode="at-least")
    assert c.budget == pytest.approx(0.25)
    assert c.x_c[H] == 0.5 and c.x_c[CU] == 0.25
    assert c.free_mask[H] and not c.free_mask[HG] and c.excluded_mask[index_of("Pb")]
    e = Constraints.build([Pin("O", 0.25, "exact")])
    assert not e.free_mask[OX] and e.exact_mask[OX]
    assert e.feasible_ns(range(4, 13)) == [4, 8, 12]
    # at-least pins need ceil(f N) atoms each: N = 3 would need 2 + 2 > 3
    assert Constraints.build(["H=0.4", "O=0.4"]).feasible_ns([2, 3, 4, 5]) == [2, 4, 5]
    assert "Hg" in c.describe() or "excluded" in c.describe()


def _check(x: torch.Tensor, c: Constraints) -> None:
    assert c.violation(x.detach().double().numpy()).max() < TOL


@pytest.mark.parametrize("mode", ["at-least", "exact"])
@pytest.mark.parametrize("method", ["project", "relu"])
def test_pins_and_exclusions_hold_for_random_raw_values(mode: str, method: str) -> None:
    c = Constraints.build(["H=0.5", "O=0.125"], ["Hg", "Cu", "radioactive"], pin_mode=mode, max_elements=5)
    ct = c.tensors("cpu")
    g = torch.Generator().manual_seed(0)
    for scale in (0.01, 1.0, 100.0):
        v = torch.randn(64, 118, generator=g) * scale
        x_opt = apply_projection(v, ct) if method == "project" else apply_relu(v, ct)
        x = compose(x_opt, ct)
        _check(x, c)
        assert bool((x[:, HG] == 0).all()) and bool((x[:, CU] == 0).all())
        assert ((x > 1e-6).sum(1) <= 5).all()
        if mode == "exact":
            assert torch.allclose(x[:, H], torch.tensor(0.5), atol=TOL)
        else:
            assert bool((x[:, H] >= 0.5 - TOL).all())


def test_start_x_opt_keeps_ratios_and_satisfies_pins() -> None:
    c = Constraints.build(["H=0.5"], ["Hg"])
    ybco = to_vector("YBa2Cu3O7")
    x = c.start_x_opt(ybco[None]) + c.x_c
    _check(torch.tensor(x), c)
    assert np.allclose(x[0] * 2 - np.eye(118)[H], ybco)  # YBCO halved plus H 0.5
    # a start already above the pin keeps its H: H3La -> H 0.75, La 0.25
    x = c.start_x_opt(to_vector("H3La")[None]) + c.x_c
    assert x[0, H] == pytest.approx(0.75)
    # an excluded element is dropped and the rest rescaled
    x = c.start_x_opt(to_vector("HgBa2CuO4")[None]) + c.x_c
    assert x[0, HG] == 0 and abs(x.sum() - 1) < 1e-12


def test_unseen_elements_come_from_the_data() -> None:
    ref = tiny_reference()
    unseen = ref.unseen_symbols()
    assert "Rn" in unseen and "Cu" not in unseen and "H" in ref.sc_formula[8]
    c = DesignConfig().constraints(unseen)
    assert c.excluded_mask[index_of("Rn")] and not c.excluded_mask[CU]
    no_defaults = DesignConfig(exclude_unseen=False, exclude_implausible=False)  # Rn is also a default exclusion
    assert not no_defaults.constraints(unseen).excluded_mask[index_of("Rn")]
