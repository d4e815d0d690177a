"""Training data: SuperCon superconductors + COD non-superconductors (Tc = 0), paper S2.

The data directory is found, in order, from `$GDMCD_DATA_DIR`, from `../shared/data` next to
the repository (or the working directory), or from a per-user cache filled by
`gdmcd_core.data.download` from the original public files (SHA-256 checked). Data files are never
part of the repository.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from gdmcd_core.chem.composition import FormulaError, composition_key, is_hydride, parse_formula, to_vector
from gdmcd_core.chem.elements import N_ELEMENTS
from gdmcd_core.data.jarvis import load_jarvis_rows
from gdmcd_core.data.negatives import Negatives, physical_negatives
from gdmcd_core.data.paths import (
    COD_FILE,
    JARVIS_SPLIT_FILE,
    SUPERCON_FILE,
    SUPERCON_ROWS_FILE,
    DataFileError,
    find_data_dir,
    user_cache_dir,
)
from gdmcd_core.data.repair import cu_valence_too_low_rows, load_raw_formulas, repair_supercon
from gdmcd_core.util import atomic_write_bytes, sha256_file

SPLIT_NAMES = ("train", "val", "test")
TRAIN, VAL, TEST = 0, 1, 2
TIME_SPLIT_YEAR = 2010  # time split: SuperCon entries first reported from this year on are the test set
SPLITS = ("random", "time", "jarvis")


def _vectors(formulas: pd.Series) -> np.ndarray:
    return np.stack([to_vector(f) for f in formulas]).astype(np.float32)


@lru_cache(maxsize=8)
def _load_vectors_cached(path: str, digest: str, column: str = "formula") -> np.ndarray:
    cache = user_cache_dir().parent / "vectors" / f"{Path(path).stem}-{digest[:16]}.npy"
    if cache.is_file():
        return np.load(cache)
    vec = _vectors(pd.read_csv(path)[column])
    buf = io.BytesIO()
    np.save(buf, vec)
    atomic_write_bytes(cache, buf.getvalue())
    return vec


def data_mismatch(card: dict, checksums: dict, consequence: str = "metrics will not match the card") -> str:
    """'' or one line naming the data files whose SHA-256 (`checksums`, {file name: hex}) differs from the one
    the checkpoint card's data_checksums records, ending with `consequence` (what it means for the caller)."""
    recorded = card.get("data_checksums") or {}
    if not isinstance(recorded, dict):
        return ""
    bad = [f for f, h in checksums.items() if f in recorded and recorded[f] != h]
    if not bad:
        return ""
    return (
        f"data file(s) {', '.join(bad)} differ from the ones this checkpoint was trained and evaluated on "
        f"(SHA-256 in its card); {consequence}"
    )


def folder_mismatch(card: dict, folder: Path, consequence: str) -> str:
    """`data_mismatch` of the files in `folder` that the card records (plain file names only)."""
    recorded = card.get("data_checksums") or {}
    if not isinstance(recorded, dict):
        return ""
    names = [n for n in recorded if isinstance(n, str) and n and Path(n).name == n and (folder / n).is_file()]
    return data_mismatch(card, {n: sha256_file(folder / n) for n in names}, consequence)


def load_table(path: str | Path, required: tuple[str, ...] = ("formula",)) -> tuple[pd.DataFrame, np.ndarray]:
    """A cleaned CSV with a `formula` column -> (table, (N, 118) float32 fractions).

    Raises DataFileError (one line naming the file) when a `required` column is missing or a formula does
    not parse."""
    path = Path(path)
    table = pd.read_csv(path)
    missing = [c for c in required if c not in table.columns]
    if missing:
        header = ", ".join(map(str, table.columns))
        header = header if len(header) <= 200 else f"{header[:200]}…"
        raise DataFileError(f"data file {path}: no {missing[0]!r} column (its header: {header})")
    try:
        return table, _load_vectors_cached(str(path), sha256_file(path))
    except FormulaError as exc:
        raise DataFileError(f"data file {path}: {exc}") from None


@dataclass(frozen=True)
class DataConfig:
    # "random" (paper S2), "time" (SuperCon first_year >= 2010 is the test set) or "jarvis" (JARVIS-Leaderboard
    # supercon_chem: its train/test rows replace SuperCon, validation is a seeded share of its train rows; see
    # data/jarvis.py and build_dataset)
    split: str = "random"
    split_seed: int = 0  # seed of the random split
    fractions: tuple[float, float, float] = (0.80, 0.05, 0.15)  # train / val / test
    include_cod: bool = True  # add COD non-superconductors with Tc = 0 (paper S3)
    supercon_replicas: int = 3  # SuperCon rows repeated in the training split only (paper S2)
    tc_column: str = "tc_k_mean"  # the paper averages Tc over duplicate entries
    hydride_replicas: int = 0  # > 0: hydride-balanced training set (paper S5, D_HSC); see hydride_weights()
    repair: bool = True  # apply gdmcd_core.data.repair rules to SuperCon before dedupe
    physical_negatives: bool = True  # add gdmcd_core.data.negatives Tc = 0 rows
    # split "time": SuperCon rows first reported in this year or later are the test set. 2010 is the project's time
    # split; an earlier year (2005) trains the inner model whose errors on the years in between calibrate σ
    # (training/time_calibration.py), so nothing the time-split model uses has seen a row from 2010 on
    time_split_year: int = TIME_SPLIT_YEAR

    def __post_init__(self) -> None:
        if self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if not 1900 <= self.time_split_year <= 2100:
            raise ValueError(f"time_split_year must be in 1900..2100, got {self.time_split_year}")
        if abs(sum(self.fractions) - 1) > 1e-9 or min(self.fractions) < 0:
            raise ValueError(f"split fractions must be >= 0 and sum to 1, got {self.fractions}")

    def to_dict(self) -> dict:
        d = asdict(self)
        d["fractions"] = list(self.fractions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DataConfig:
        d = dict(d)
        if "fractions" in d:
            d["fractions"] = tuple(d["fractions"])
        # Older cards (before data repair and physical negatives existed) lack these keys: their data had neither repair nor negatives.
        d.setdefault("repair", False)
        d.setdefault("physical_negatives", False)
        return cls(**d)


@dataclass
class Dataset:
    """All rows with their split. x: (N, 118) float32 fractions; tc_k: (N,) K; split: (N,) in {0,1,2}."""

    x: np.ndarray
    tc_k: np.ndarray
    is_supercon: np.ndarray
    split: np.ndarray
    formula: np.ndarray
    first_year: np.ndarray
    is_hydride: np.ndarray
    config: DataConfig
    checksums: dict[str, str] = field(default_factory=dict)
    # (N,) pressure in GPa at which a row's Tc was measured, where a data file records it (NaN where not); None
    # where no file read has a pressure column. Recorded only: no model takes pressure as an input. SuperCon and
    # COD have no pressure column (data README); the hydride files have one (training/hydrides.py)
    pressure_gpa: np.ndarray | None = None
    # (N,) bool: superconductor rows the repair rule `cu_valence_too_low` flags (a cuprate above 30 K too reduced to
    # be one: an amount lost in transcription). Kept in the networks' rows; the classifier skips them (the trees can:
    # TreeConfig.skip_valence_suspect)
    valence_suspect: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.tc_k)

    def indices(self, part: int) -> np.ndarray:
        return np.flatnonzero(self.split == part)

    def train_indices(self) -> np.ndarray:
        """Training rows with SuperCon replicated `supercon_replicas` times (and hydrides balanced if asked)."""
        idx = self.indices(TRAIN)
        sc = idx[self.is_supercon[idx]]
        parts = [idx] + [sc] * (self.config.supercon_replicas - 1)
        if self.config.hydride_replicas > 0:
            parts.append(self.hydride_balanced_extra(idx))
        return np.concatenate(parts)

    def hydride_balanced_extra(self, idx: np.ndarray) -> np.ndarray:
        """Extra copies of training hydrides, balanced per element set (paper S5, D_HSC200).

        Each element combination (e.g. {H, Pd}, {H, La}) gets the same number of copies,
        hydride_replicas * (number of hydride rows) / (number of combinations) in all, so that
        a combination with one composition is not drowned by one with ten.
        """
        hyd = idx[self.is_hydride[idx]]
        if len(hyd) == 0:
            return np.zeros(0, dtype=np.int64)
        keys = [tuple(np.flatnonzero(self.x[i] > 0)) for i in hyd]  # a list: np.array would stack equal-length tuples
        groups: dict[tuple, list[int]] = {}
        for i, k in zip(hyd, keys, strict=True):
            groups.setdefault(k, []).append(int(i))
        per_group = max(1, round(self.config.hydride_replicas * len(hyd) / len(groups)))
        return np.concatenate([np.resize(np.array(g), per_group) for g in groups.values()])

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for p, name in enumerate(SPLIT_NAMES):
            m = self.split == p
            out[f"{name}_supercon"] = int((m & self.is_supercon).sum())
            out[f"{name}_nonsc"] = int((m & ~self.is_supercon).sum())
        out["train_rows_after_replication"] = int(len(self.train_indices()))
        return out


def assign_split(n: int, fractions: tuple[float, float, float], rng: np.random.Generator) -> np.ndarray:
    """Random split of n rows into parts 0/1/2 with the given fractions (exact counts, shuffled)."""
    n_train = int(round(fractions[0] * n))
    n_val = int(round(fractions[1] * n))
    split = np.full(n, TEST, dtype=np.int8)
    split[:n_train] = TRAIN
    split[n_train : n_train + n_val] = VAL
    rng.shuffle(split)
    return split


def _supercon_part(config: DataConfig, data_dir: Path) -> tuple[dict[str, np.ndarray], np.ndarray, dict[str, str]]:
    """SuperCon rows: ({x, tc, formula, year, file_test}, composition keys, checksums).

    random/time: the NIMS unique file (repaired if asked), one row per composition, Tc averaged.
    jarvis: the leaderboard file's parsed rows as published (no repair, no dedupe); file_test marks its test rows.
    """
    if config.split == "jarvis":
        path = data_dir / JARVIS_SPLIT_FILE
        rows = load_jarvis_rows(path)
        ok = rows.parsed
        part = {"x": rows.x[ok], "tc": rows.tc_k[ok], "formula": rows.formula[ok], "file_test": rows.is_test[ok]}
        part["year"] = np.full(int(ok.sum()), np.nan)
        return part, rows.key[ok], {JARVIS_SPLIT_FILE: sha256_file(path)}
    sc_path = data_dir / SUPERCON_FILE
    sc, x_sc = load_table(sc_path)
    checksums = {SUPERCON_FILE: sha256_file(sc_path)}
    if config.repair:
        sc, x_sc, checksums = _repaired(sc, x_sc, data_dir, checksums)
    tc_col = config.tc_column if config.tc_column in sc.columns else "tc_k"
    if tc_col not in sc.columns:
        raise DataFileError(f"data file {sc_path}: neither a {config.tc_column!r} nor a 'tc_k' column")
    # Dedupe identical compositions (the unique file is one row per comp_key already; scaled copies merge).
    key_sc = sc["comp_key"].astype(str).to_numpy() if "comp_key" in sc else np.array([str(v) for v in x_sc.round(4)])
    sc_df = pd.DataFrame({"key": key_sc, "tc": sc[tc_col].to_numpy(float), "row": np.arange(len(sc))})
    agg = sc_df.groupby("key", sort=False).agg(tc=("tc", "mean"), row=("row", "first"))
    rows_sc = agg["row"].to_numpy()
    years = sc["first_year"].to_numpy(float) if "first_year" in sc else np.full(len(sc), np.nan)
    part = {
        "x": x_sc[rows_sc],
        "tc": agg["tc"].to_numpy(np.float32),
        "formula": sc["formula"].to_numpy(str)[rows_sc],
        "year": years[rows_sc],
        "file_test": np.zeros(len(rows_sc), bool),
    }
    return part, key_sc, checksums


def build_dataset(config: DataConfig = DataConfig(), data_dir: str | Path | None = None) -> Dataset:
    """SuperCon (+ COD) with one row per composition and a seeded split (paper S2).

    split="jarvis": the SuperCon rows are those of the JARVIS-Leaderboard file; its test rows are the
    test split, exactly; validation is a seeded share (fractions[1] / (fractions[0] + fractions[1])) of
    its train rows; COD rows and physical negatives are allowed but never enter the test split
    (negatives of test rows are dropped), so the test split is the leaderboard's (parsed) rows.
    """
    if data_dir:
        data_dir = Path(data_dir)
    else:
        need = (JARVIS_SPLIT_FILE,) + ((COD_FILE,) if config.include_cod else ())
        data_dir = find_data_dir(need) if config.split == "jarvis" else find_data_dir()
    part, key_sc, checksums = _supercon_part(config, data_dir)
    file_test = part["file_test"]
    parts = [{**part, "sc": np.ones(len(part["tc"]), bool)}]
    known_keys = set(key_sc)
    if config.include_cod:
        cod_part, key_cod = _cod_part(data_dir / COD_FILE, known_keys, checksums)
        parts.append(cod_part)
        known_keys |= set(key_cod)
    n_base = sum(len(p["x"]) for p in parts)
    neg = None
    if config.physical_negatives:
        neg = _negatives(part["formula"], part["tc"], known_keys)
        if file_test.any():  # no fabricated rows next to a held-out test row
            keep = (neg.parent < 0) | ~file_test[np.maximum(neg.parent, 0)]
            neg = Negatives(x=neg.x[keep], formula=neg.formula[keep], reason=neg.reason[keep], parent=neg.parent[keep])
        parts.append(_zero_part(neg.x, neg.formula))
    x, tc, is_sc, year, formula = (np.concatenate([p[k] for p in parts]) for k in ("x", "tc", "sc", "year", "formula"))
    split = _assign_splits(config, is_sc, year, file_test, n_base, neg)
    return Dataset(
        x=x,
        tc_k=tc,
        is_supercon=is_sc,
        split=split,
        formula=formula,
        first_year=year,
        is_hydride=is_sc & is_hydride(x),
        config=config,
        checksums=checksums,
        valence_suspect=is_sc & cu_valence_too_low_rows(x, tc) if config.repair else np.zeros(len(tc), bool),
    )


def _zero_part(x: np.ndarray, formula: np.ndarray) -> dict[str, np.ndarray]:
    """Rows that are not superconductors: Tc 0 K, no year."""
    n = len(x)
    return {
        "x": x,
        "tc": np.zeros(n, np.float32),
        "formula": formula,
        "year": np.full(n, np.nan),
        "sc": np.zeros(n, bool),
    }


def _cod_part(cod_path: Path, key_sc: set[str], checksums: dict[str, str]) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """COD rows (first of each composition, none matching SuperCon) and every COD comp_key; adds the checksum."""
    cod, x_cod = load_table(cod_path, required=("formula", "comp_key"))
    checksums[COD_FILE] = sha256_file(cod_path)
    key_cod = cod["comp_key"].astype(str).to_numpy()
    keep = ~pd.Series(key_cod).isin(key_sc).to_numpy()  # drop COD rows matching SuperCon
    keep &= ~pd.Series(key_cod).duplicated().to_numpy()
    return _zero_part(x_cod[keep], cod["formula"].to_numpy(str)[keep]), key_cod


def _assign_splits(
    config: DataConfig,
    is_sc: np.ndarray,
    year: np.ndarray,
    file_test: np.ndarray,
    n_base: int,
    neg: Negatives | None,
) -> np.ndarray:
    """The split of every row (TRAIN / VAL / TEST), seeded by `config.split_seed`; negatives follow their parent."""
    n = len(is_sc)
    rng = np.random.default_rng(config.split_seed)
    split = np.empty(n, dtype=np.int8)
    f_tr, f_val = config.fractions[0], config.fractions[1]
    no_test = (f_tr / (f_tr + f_val), f_val / (f_tr + f_val), 0.0)  # train/val shares when the test set is fixed
    if config.split == "random":
        split[is_sc] = assign_split(int(is_sc.sum()), config.fractions, rng)
    else:
        held_out = is_sc & (year >= config.time_split_year) if config.split == "time" else np.zeros(n, bool)
        held_out[: len(file_test)] |= file_test
        split[held_out] = TEST
        split[is_sc & ~held_out] = assign_split(int((is_sc & ~held_out).sum()), no_test, rng)
    other_fractions = no_test if config.split == "jarvis" else config.fractions
    is_neg = np.arange(n) >= n_base
    split[~is_sc & ~is_neg] = assign_split(int((~is_sc & ~is_neg).sum()), other_fractions, rng)
    if neg is not None:  # a negative shares its parent's split, so test parents do not leak into train
        has_parent = neg.parent >= 0
        split[n_base:][has_parent] = split[neg.parent[has_parent]]
        split[n_base:][~has_parent] = assign_split(int((~has_parent).sum()), other_fractions, rng)
    return split


def _repaired(
    sc: pd.DataFrame, x_sc: np.ndarray, data_dir: Path, checksums: dict[str, str]
) -> tuple[pd.DataFrame, np.ndarray, dict[str, str]]:
    """SuperCon rows kept by `gdmcd_core.data.repair` (flags kept), with their (N, 118) vectors."""
    raw = None
    if (data_dir / SUPERCON_ROWS_FILE).is_file():
        raw = load_raw_formulas(data_dir / SUPERCON_ROWS_FILE)
        checksums = {**checksums, SUPERCON_ROWS_FILE: sha256_file(data_dir / SUPERCON_ROWS_FILE)}
    repaired, _, _ = repair_supercon(sc, raw)
    keep = sc.index.isin(repaired.index)  # no rule changes formulas, so the cached vectors stay valid
    return sc[keep].reset_index(drop=True), x_sc[keep], checksums


def _negatives(formulas: np.ndarray, tc: np.ndarray, known_keys: set[str]):
    """`gdmcd_core.data.negatives` rows (parent = row of `formulas`), minus compositions already in the data."""
    neg = physical_negatives(list(formulas), tc)
    keys = pd.Series([composition_key(parse_formula(f)) for f in neg.formula])
    keep = (~keys.isin(known_keys) & ~keys.duplicated()).to_numpy()
    return Negatives(x=neg.x[keep], formula=neg.formula[keep], reason=neg.reason[keep], parent=neg.parent[keep])


def training_compositions(data_dir: str | Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SuperCon compositions for initialization and novelty checks: (x (N,118), tc_k (N,), formula (N,))."""
    ds = build_dataset(DataConfig(include_cod=False, physical_negatives=False), data_dir)
    return ds.x, ds.tc_k, ds.formula


__all__ = [
    "N_ELEMENTS",
    "DataConfig",
    "Dataset",
    "build_dataset",
    "find_data_dir",
    "load_table",
    "sha256_file",
]
