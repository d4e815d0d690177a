"""Element statistics: hand-computed values for simple compositions, shapes, no NaN."""

from __future__ import annotations

import numpy as np
import pytest

from gdmcd_core.chem.composition import to_vector
from gdmcd_core.chem.element_features import (
    PROPERTIES,
    STATISTICS,
    element_statistics,
    feature_matrix,
    feature_names,
    property_table,
)


def _stat(row: np.ndarray, stat: str, prop: str) -> float:
    names = feature_names(include_fractions=False)
    return float(row[names.index(f"{stat}_{prop}")])


def test_property_table_is_complete_and_uses_the_element_table() -> None:
    t = property_table()
    assert t.shape == (118, len(PROPERTIES)) and np.isfinite(t).all()
    assert t[0, PROPERTIES.index("z")] == 1 and t[117, PROPERTIES.index("z")] == 118
    assert t[56, PROPERTIES.index("period")] == 6  # La
    assert t[25, PROPERTIES.index("group")] == 8  # Fe


def test_valence_electrons_follow_the_matthias_convention() -> None:
    v = property_table()[:, PROPERTIES.index("valence_electrons")]
    counts = {s: v[to_vector(s).argmax()] for s in ("Nb", "Cu", "O", "La", "Ce", "He", "Al", "Hf")}
    assert counts == {"Nb": 5, "Cu": 11, "O": 6, "La": 3, "Ce": 3, "He": 2, "Al": 3, "Hf": 4}


def test_pure_element_has_zero_spread() -> None:
    row = element_statistics(to_vector("Nb")[None])[0]
    for prop in PROPERTIES:
        values = [_stat(row, s, prop) for s in STATISTICS]
        assert values[1] == pytest.approx(0.0, abs=1e-3)
        assert values[0] == pytest.approx(values[2]) == pytest.approx(values[3])
    assert _stat(row, "mean", "z") == pytest.approx(41)


def test_binary_statistics_by_hand() -> None:
    row = element_statistics(to_vector("NaCl")[None])[0]  # Z = 11 and 17, half each
    assert _stat(row, "mean", "z") == pytest.approx(14.0)
    assert _stat(row, "std", "z") == pytest.approx(3.0)
    assert (_stat(row, "min", "z"), _stat(row, "max", "z")) == (11.0, 17.0)
    row = element_statistics(to_vector("MgB2")[None])[0]  # Z = 12 (1/3) and 5 (2/3)
    assert _stat(row, "mean", "z") == pytest.approx((12 + 2 * 5) / 3, rel=1e-5)


def test_feature_matrix_shape_and_names() -> None:
    x = np.stack([to_vector(f) for f in ["MgB2", "YBa2Cu3O7", "LaH10"]])
    f = feature_matrix(x, batch=2)
    assert f.shape == (3, 118 + len(PROPERTIES) * len(STATISTICS)) == (3, len(feature_names()))
    assert f.dtype == np.float32 and np.isfinite(f).all()
    np.testing.assert_allclose(f[:, :118], x, atol=1e-7)
    assert feature_matrix(x[:0]).shape == (0, f.shape[1])


def test_bad_shape_is_refused() -> None:
    with pytest.raises(ValueError, match=r"shape \(N, 118\)"):
        element_statistics(np.ones((2, 100)))


def test_model_branch_statistics_match_the_table_and_have_finite_gradients() -> None:
    import torch

    from gdmcd_core.model.element_branch import STD_EPS, standardized_properties
    from gdmcd_core.model.element_branch import element_statistics as torch_statistics

    props = standardized_properties()
    assert torch.allclose(props.mean(0), torch.zeros(len(PROPERTIES)), atol=1e-5)
    x = torch.tensor(
        np.stack([to_vector(f) for f in ["NaCl", "Nb", "YBa2Cu3O7"]]), dtype=torch.float32, requires_grad=True
    )
    got = torch_statistics(x, props)
    stats = got.detach()
    assert got.shape == (3, 2 * len(PROPERTIES))
    # NaCl: Z standardised; the mean is the average of the two, the std half their difference
    z = props[:, PROPERTIES.index("z")]
    assert float(stats[0, 0]) == pytest.approx(float(z[10] + z[16]) / 2, abs=1e-5)
    assert float(stats[0, len(PROPERTIES)]) == pytest.approx(float(z[16] - z[10]) / 2, abs=1e-3)
    assert float(stats[1, len(PROPERTIES)]) == pytest.approx(STD_EPS**0.5, rel=1e-3)  # a pure element: no spread
    (g,) = torch.autograd.grad(got.sum(), x)
    assert torch.isfinite(g).all()


def test_extended_properties_add_magpie_like_columns() -> None:
    from pymatgen.core import Element

    from gdmcd_core.chem.element_features import EXTRA_PROPERTIES, extended_property_table, valence_subshells

    t = extended_property_table()
    assert t.shape == (118, len(PROPERTIES) + len(EXTRA_PROPERTIES)) and np.isfinite(t).all()
    np.testing.assert_array_equal(t[:, : len(PROPERTIES)], property_table())  # the basic columns, unchanged
    assert valence_subshells(Element("Cu")) == [1.0, 0.0, 10.0, 0.0, 1.0]  # [Ar] 3d10 4s1
    assert valence_subshells(Element("O")) == [2.0, 4.0, 0.0, 0.0, 2.0]  # [He] 2s2 2p4
    assert valence_subshells(Element("Pd")) == [0.0, 0.0, 10.0, 0.0, 0.0]  # [Kr] 4d10: no s electron
    cu = EXTRA_PROPERTIES.index("mendeleev_number") + len(PROPERTIES)
    assert t[28, cu] == 72  # Cu's Mendeleev number
    x = np.stack([to_vector("YBa2Cu3O7"), to_vector("MgB2")])
    f = feature_matrix(x, extended=True)
    assert f.shape == (2, len(feature_names(extended=True))) == (2, 118 + 4 * 18)
    np.testing.assert_array_equal(f[:, : 118 + 4 * len(PROPERTIES)], feature_matrix(x))
