"""Element embeddings shipped inside the `elementembeddings` wheel, as composition features for the trees.

`elementembeddings` (Onwuli et al., Digital Discovery 2023; MIT licence) ships its element vectors as data
files inside its PyPI wheel: Magpie (22 properties), Oliynyk (44), mat2vec and MatScholar (200, word2vec on
abstracts), SkipAtom (200, from crystal-structure contexts), MEGNet (16, learned on formation energies), and
more. They are read here straight from the installed package's data folder (importlib.resources): nothing is
fetched at run time, and none of the package's plotting and dimension-reduction dependencies is imported, so
the project installs it with `--no-deps` (requirements-nodeps.txt).

For an embedding with vectors e_i (standardised per dimension over the elements it covers; an element it
does not cover gets the mean vector, 0) and fractions x, the statistics are

    mean = Σ_i x_i e_i,   std = sqrt(Σ_i x_i (e_i − mean)²),   min / max over the elements present,

the same four `chem.element_features` takes of the hand-picked properties. Which embedding (if any) the
trees use is chosen on validation rows (docs/model-card.md).
"""

from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from importlib import resources

import numpy as np

from gdmcd_core.chem.elements import N_ELEMENTS, symbols

# name -> file in elementembeddings/data/element_representations
EMBEDDING_FILES = {
    "magpie": "magpie_sc.json",
    "oliynyk": "oliynyk_sc.json",
    "megnet16": "megnet16.json",
    "mat2vec": "mat2vec.csv",
    "matscholar": "matscholar-embedding.json",
    "skipatom": "skipatom_20201009_induced.csv",
    "cgnf": "cgnf.json",
}
EMBEDDINGS = tuple(EMBEDDING_FILES)
STATISTICS = ("mean", "std", "min", "max")
PRESENT_EPS = 1e-9


class EmbeddingUnavailableError(RuntimeError):
    """The elementembeddings package (its data files) is not installed."""


def _read(name: str) -> dict[str, list[float]]:
    if name not in EMBEDDING_FILES:
        raise ValueError(f"embedding must be one of {', '.join(EMBEDDINGS)}, got {name!r}")
    try:
        folder = resources.files("elementembeddings") / "data" / "element_representations"
        text = (folder / EMBEDDING_FILES[name]).read_text()
    except (ModuleNotFoundError, FileNotFoundError) as exc:
        raise EmbeddingUnavailableError(
            f"element embedding {name!r} needs the elementembeddings package: "
            "pip install --no-deps -r requirements-nodeps.txt"
        ) from exc
    if EMBEDDING_FILES[name].endswith(".json"):
        return {k: [float(v) for v in vec] for k, vec in json.loads(text).items() if isinstance(vec, list)}
    rows = list(csv.reader(io.StringIO(text)))
    return {r[0]: [float(v) if v else np.nan for v in r[1:]] for r in rows[1:] if r}


@lru_cache(maxsize=8)
def embedding_table(name: str) -> np.ndarray:
    """(118, D) float64 vectors of embedding `name`, row i = element Z = i + 1; each dimension standardised over the
    elements the embedding covers; uncovered elements and missing values are 0 (the mean). Read-only."""
    vectors = _read(name)
    dim = max(len(v) for v in vectors.values())
    table = np.full((N_ELEMENTS, dim), np.nan)
    for i, sym in enumerate(symbols()):
        if sym in vectors and len(vectors[sym]) == dim:
            table[i] = vectors[sym]
    mean, std = np.nanmean(table, 0), np.nanstd(table, 0)
    table = (table - mean) / np.where(std > 0, std, 1.0)
    table = np.nan_to_num(table, nan=0.0)
    table.setflags(write=False)
    return table


def feature_names(name: str) -> list[str]:
    """Column names of `embedding_features`: `{name}{d}_{stat}`."""
    dim = embedding_table(name).shape[1]
    return [f"{name}{d}_{s}" for d in range(dim) for s in STATISTICS]


def _statistics(x: np.ndarray, e: np.ndarray) -> np.ndarray:
    mean = x @ e
    std = np.sqrt(np.clip(x @ e**2 - mean**2, 0.0, None))
    present = x > PRESENT_EPS
    lo = np.where(present[:, :, None], e[None], np.inf).min(1)
    hi = np.where(present[:, :, None], e[None], -np.inf).max(1)
    empty = ~present.any(1)
    lo[empty], hi[empty] = 0.0, 0.0
    return np.stack([mean, std, lo, hi], 2).reshape(len(x), -1)


def embedding_features(x: np.ndarray, name: str, batch: int = 1024) -> np.ndarray:
    """(N, 118) fractions -> (N, 4 D) float32 statistics of embedding `name` (dimension-major, as feature_names)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != N_ELEMENTS:
        raise ValueError(f"x must have shape (N, {N_ELEMENTS}), got {x.shape}")
    e = embedding_table(name)
    parts = [_statistics(x[i : i + batch], e) for i in range(0, len(x), batch)]
    out = np.concatenate(parts) if parts else np.zeros((0, 4 * e.shape[1]))
    return out.astype(np.float32)


__all__ = [
    "EMBEDDINGS",
    "EmbeddingUnavailableError",
    "embedding_features",
    "embedding_table",
    "feature_names",
]
