import numpy as np
import pytest
import torch

from gdmcd_core.chem.elements import N_ELEMENTS, element_table, index_of, info, symbols
from gdmcd_core.chem.featurize import IMAGE_SHAPE, atom_tensor, atom_tensor_numpy, composition_image


def test_table_has_all_118_elements_in_z_order():
    table = element_table()
    assert len(table) == N_ELEMENTS == 118
    assert [e.z for e in table] == list(range(1, 119))
    assert symbols()[0] == "H" and symbols()[-1] == "Og"


def test_every_element_maps_to_exactly_one_distinct_cell():
    a = atom_tensor_numpy()
    assert a.shape == (118, *IMAGE_SHAPE)
    assert np.all(a.reshape(118, -1).sum(1) == 1)
    cells = {tuple(np.argwhere(a[i])[0]) for i in range(118)}
    assert len(cells) == 118  # no two elements share a cell


@pytest.mark.parametrize(
    "symbol, cell",
    [  # (block index s=0 p=1 d=2 f=3, period-1, column-1): paper S1 examples H (1,1,1), Cl (2,3,31) 1-based
        ("H", (0, 0, 0)),
        ("Cl", (1, 2, 30)),
        ("He", (0, 0, 31)),
        ("La", (3, 5, 2)),
        ("Lu", (2, 5, 16)),
        ("Cu", (2, 3, 10 + 14)),
        ("Og", (1, 6, 31)),
    ],
)
def test_known_cells(symbol, cell):
    assert tuple(np.argwhere(atom_tensor_numpy()[index_of(symbol)])[0]) == cell


def test_unknown_symbol_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown element symbol 'Xx'"):
        index_of("Xx")


def test_radioactive_flags():
    assert info("Th").radioactive and info("Tc").radioactive and not info("Pb").radioactive


def test_image_sums_to_one_and_is_differentiable():
    x = torch.rand(5, 118)
    x = (x / x.sum(1, keepdim=True)).requires_grad_(True)
    img = composition_image(x)
    assert img.shape == (5, *IMAGE_SHAPE)
    assert torch.allclose(img.sum((1, 2, 3)), torch.ones(5))
    (img * (1 + torch.arange(img[0].numel())).reshape(IMAGE_SHAPE)).sum().backward()
    assert x.grad is not None and torch.all(x.grad != 0)


def test_image_places_fractions():
    x = torch.zeros(1, 118)
    x[0, index_of("Mg")] = 1 / 3
    x[0, index_of("B")] = 2 / 3
    img = composition_image(x, atom_tensor())
    assert img[0, 0, 2, 1].item() == pytest.approx(1 / 3)  # Mg: s block, period 3, group 2
    assert img[0, 1, 1, 12 + 14].item() == pytest.approx(2 / 3)  # B: p block, period 2, group 13
