"""Element embeddings read from the elementembeddings wheel: aligned to Z, standardised, statistics as defined."""

from __future__ import annotations

import numpy as np
import pytest

from gdmcd_core.chem.elements import symbols
from gdmcd_core.chem.embeddings import EMBEDDINGS, embedding_features, embedding_table, feature_names


@pytest.mark.parametrize("name", EMBEDDINGS)
def test_every_embedding_is_aligned_to_z_and_standardised(name: str) -> None:
    t = embedding_table(name)
    assert t.shape[0] == 118 and np.isfinite(t).all()
    covered = np.abs(t).sum(1) > 0
    assert covered[symbols().index("Cu")] and covered[symbols().index("O")]
    assert np.allclose(t[covered].mean(0), 0.0, atol=0.25)  # standardised over the covered elements (0 filled)
    assert not t.flags.writeable


def test_statistics_are_the_weighted_mean_std_min_and_max() -> None:
    e = embedding_table("magpie")
    cu, o = symbols().index("Cu"), symbols().index("O")
    x = np.zeros((1, 118))
    x[0, cu], x[0, o] = 0.25, 0.75
    f = embedding_features(x, "magpie").reshape(-1, 4)  # (D, mean/std/min/max)
    mean = 0.25 * e[cu] + 0.75 * e[o]
    std = np.sqrt(0.25 * (e[cu] - mean) ** 2 + 0.75 * (e[o] - mean) ** 2)
    np.testing.assert_allclose(f[:, 0], mean, atol=1e-5)
    np.testing.assert_allclose(f[:, 1], std, atol=1e-4)
    np.testing.assert_allclose(f[:, 2], np.minimum(e[cu], e[o]), atol=1e-6)
    np.testing.assert_allclose(f[:, 3], np.maximum(e[cu], e[o]), atol=1e-6)
    assert len(feature_names("magpie")) == 4 * e.shape[1]


def test_bad_input_is_refused_in_one_line() -> None:
    with pytest.raises(ValueError, match="embedding must be one of"):
        embedding_table("word2vec")
    with pytest.raises(ValueError, match="shape"):
        embedding_features(np.zeros((2, 5)), "magpie")
