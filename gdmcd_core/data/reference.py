"""Reference compositions a design run starts from and is compared to.

`ReferenceData` holds SuperCon (x, Tc, formula: start points above a Tc threshold, the
"in SuperCon" and "nearest SuperCon composition" columns) and the element sets of every
training composition (SuperCon + COD non-superconductors: which elements the model has seen,
whether a candidate's element combination is new). Tests and benchmarks build one from arrays;
`load_reference()` builds it from the data files once per process; `training_reference()` builds the
one of a checkpoint (only its TRAIN split), cached on disk, for distances and unseen elements at predict time.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from gdmcd_core.chem.composition import reduced_key
from gdmcd_core.chem.distance import nearest_l1, unseen_elements
from gdmcd_core.chem.elements import N_ELEMENTS, symbols
from gdmcd_core.data import paths
from gdmcd_core.data.dataset import TRAIN, DataConfig, Dataset, build_dataset
from gdmcd_core.util import atomic_write_bytes, sha256_file

REFERENCE_CACHE_VERSION = 1  # bump when what training_reference() stores changes


@dataclass(frozen=True)
class ReferenceData:
    """sc_x: (N, 118) SuperCon fractions; sc_tc_k: (N,) Tc in K; sc_formula: (N,) str.

    train_x: (M, 118) every training composition (SuperCon + non-superconductors); defaults to
    sc_x when not given. sc_year: (N,) first year each SuperCon composition was reported (NaN where
    unknown); train_formula: (M,) the formulas of train_x. Both optional (None: not known).
    """

    sc_x: np.ndarray
    sc_tc_k: np.ndarray
    sc_formula: np.ndarray
    train_x: np.ndarray | None = None
    sc_year: np.ndarray | None = None
    train_formula: np.ndarray | None = None
    _cache: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.sc_x.ndim != 2 or self.sc_x.shape[1] != N_ELEMENTS:
            raise ValueError(f"sc_x must be (N, {N_ELEMENTS}), got {self.sc_x.shape}")
        if not (len(self.sc_x) == len(self.sc_tc_k) == len(self.sc_formula)):
            raise ValueError("sc_x, sc_tc_k and sc_formula must have the same length")

    @property
    def all_x(self) -> np.ndarray:
        """(M, 118) all training compositions (train_x, or SuperCon alone)."""
        return self.sc_x if self.train_x is None else self.train_x

    def seen_mask(self) -> np.ndarray:
        """(118,) bool: element occurs in at least one training composition."""
        if "seen" not in self._cache:
            self._cache["seen"] = (np.asarray(self.all_x) > 0).any(0)
        return self._cache["seen"]

    def unseen_symbols(self) -> tuple[str, ...]:
        """Elements in no training composition (on the full data: At, Rn, Fr, Es-Lr, Z >= 104)."""
        syms = symbols()
        return tuple(syms[i] for i in np.flatnonzero(~self.seen_mask()))

    def element_sets(self) -> frozenset[frozenset[int]]:
        """The element combinations (sets of indices) of all training compositions."""
        if "sets" not in self._cache:
            nz = np.asarray(self.all_x) > 0
            self._cache["sets"] = frozenset(frozenset(np.flatnonzero(r).tolist()) for r in nz)
        return self._cache["sets"]

    def unseen_elements(self, x: np.ndarray) -> list[str]:
        """Symbols of the composition x (118,) that occur in no training composition, in Z order."""
        return unseen_elements(x, self.seen_mask())

    def supercon_distance(self, x: np.ndarray) -> np.ndarray:
        """(B,) L1 distance (fractions, 0..2) from each row of x (B, 118) to its nearest SuperCon composition."""
        return self.supercon_neighbors(x)[0]

    def supercon_neighbors(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(distance (B,) in L1 fractions, Tc (B,) in K) of each row's nearest SuperCon composition (NaN: none)."""
        j, d = nearest_l1(x, self.sc_x)
        tc = np.where(j >= 0, np.asarray(self.sc_tc_k, np.float64)[j.clip(0)] if len(self.sc_x) else np.nan, np.nan)
        return d, tc

    def supercon_keys(self) -> dict[str, int]:
        """reduced_key of each SuperCon composition -> its row (first occurrence)."""
        if "keys" not in self._cache:
            keys: dict[str, int] = {}
            for i, row in enumerate(np.asarray(self.sc_x)):
                keys.setdefault(reduced_key(row), i)
            self._cache["keys"] = keys
        return self._cache["keys"]


@lru_cache(maxsize=2)
def load_reference(data_dir: str | None = None) -> ReferenceData:
    """Repaired SuperCon + COD from the data files (see data.paths.find_data_dir), cached per process.

    The synthetic physical negatives are left out: they are training labels, not known compounds.
    """
    ds = build_dataset(DataConfig(include_cod=True, physical_negatives=False), Path(data_dir) if data_dir else None)
    sc = ds.is_supercon
    return ReferenceData(
        sc_x=ds.x[sc],
        sc_tc_k=ds.tc_k[sc],
        sc_formula=ds.formula[sc],
        train_x=ds.x,
        sc_year=ds.first_year[sc],
        train_formula=ds.formula,
    )


def reference_from_dataset(ds: Dataset) -> ReferenceData:
    """The TRAIN split of a dataset as reference: SuperCon rows as sc_*, every training row as train_x."""
    tr = ds.indices(TRAIN)
    sc = tr[ds.is_supercon[tr]]
    return ReferenceData(
        sc_x=ds.x[sc],
        sc_tc_k=ds.tc_k[sc],
        sc_formula=ds.formula[sc],
        train_x=ds.x[tr],
        sc_year=ds.first_year[sc],
        train_formula=ds.formula[tr],
    )


def _cache_key(config: DataConfig, data_dir: Path) -> str:
    files = (paths.SUPERCON_FILE, paths.COD_FILE, paths.SUPERCON_ROWS_FILE, paths.JARVIS_SPLIT_FILE)
    sums = {f: sha256_file(data_dir / f) for f in files if (data_dir / f).is_file()}
    blob = json.dumps({"v": REFERENCE_CACHE_VERSION, "config": config.to_dict(), "files": sums}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def training_reference(config: DataConfig, data_dir: str | Path | None = None, download: bool = False) -> ReferenceData:
    """The training compositions of a checkpoint trained with `config` (its card's data_config).

    Building the dataset takes ~10 s on the full data, so the arrays are cached under the user cache
    folder, keyed by the config and the data files' SHA-256. Raises data.paths.DataNotFoundError when
    the data files are missing (no download unless `download`).
    """
    folder = Path(data_dir) if data_dir else paths.find_data_dir(download=download)
    cache = paths.user_cache_dir().parent / "reference" / f"train-{_cache_key(config, folder)}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return ReferenceData(sc_x=z["sc_x"], sc_tc_k=z["sc_tc_k"], sc_formula=z["sc_formula"], train_x=z["train_x"])
    ref = reference_from_dataset(build_dataset(config, folder))
    buf = io.BytesIO()
    np.savez_compressed(  # sparse fractions: ~10x smaller
        buf, sc_x=ref.sc_x, sc_tc_k=ref.sc_tc_k, sc_formula=ref.sc_formula.astype(str), train_x=np.asarray(ref.all_x)
    )
    atomic_write_bytes(cache, buf.getvalue())
    return ref
