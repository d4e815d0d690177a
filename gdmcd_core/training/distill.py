"""Distillation: the trees teach the network on compositions one substitution away from its training superconductors.

The trees (model/trees.py) see how elements differ (element statistics, mat2vec vectors); the ResNet sees only where
they sit on the periodic table. On superconductors newer than their training rows the trees extrapolate better, and
they are not differentiable, so the design loop cannot climb them. Distillation hands their view to the network:

1. `similar_elements`: for each element, its k nearest elements by the cosine of their mat2vec vectors (the same
   vectors the trees use, from the elementembeddings wheel), among the elements of at least `min_count` training
   superconductors (no exotic substitute).
2. `substitutions`: a training superconductor (hydrides left out) with one of its elements replaced, at the same
   amount, by one of that element's k nearest (one not already in the formula): La2CuO4 -> Pr2CuO4, FeSe -> FeTe.
3. `distill_rows`: those compositions labelled by the teacher trees' Tc, added once each to the training rows.
   The teacher must have been fitted on the same split's training rows (`check_teacher`): its labels then carry
   nothing from the validation or test rows. The trees say how high Tc is *if* the composition superconducts (they
   fit superconductors only), so their label calls every substitution a superconductor; with a classifier
   (`DistillConfig.classifier`, a NAME.sc.pt fitted on the same split) the label is P(SC) × Tc_trees instead, the
   expected Tc, which is what a squared-error loss on Tc estimates.

`gdmcd train --distill-trees T.trees.pt --distill-rows N` trains with them (training/tasks.py `distill_task`); the
card records the settings and the teacher's SHA-256 under `distill`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gdmcd_core.chem.embeddings import embedding_table
from gdmcd_core.data.dataset import TRAIN, DataConfig, Dataset
from gdmcd_core.model.sc_classifier import load_classifier
from gdmcd_core.model.trees import load_trees

# the data settings that decide which superconductors are training rows: teacher and student must share them
SPLIT_KEYS = ("split", "split_seed", "fractions", "time_split_year", "repair", "tc_column")
EMBEDDING = "mat2vec"  # the element vectors substitutes are chosen by


@dataclass(frozen=True)
class DistillConfig:
    trees: str  # the teacher: a NAME.trees.pt fitted on the same split's training superconductors
    rows: int = 30000  # substituted compositions added to the training rows (each once)
    neighbours: int = 4  # k: an element's substitutes are its k nearest by mat2vec cosine
    min_count: int = 20  # substitutes: elements of at least this many training superconductors
    seed: int = 0
    classifier: str = ""  # "" or a NAME.sc.pt on the same split: labels P(SC) x Tc_trees (module docstring)

    def __post_init__(self) -> None:
        if not self.trees:
            raise ValueError("distillation needs a teacher: --distill-trees PATH (a .trees.pt file)")
        if self.rows < 1 or self.neighbours < 1 or self.min_count < 1:
            raise ValueError("--distill-rows, the neighbours and the minimum count must be >= 1")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_teacher(teacher_card: dict, data: DataConfig) -> None:
    """ValueError (one line) unless the teacher trees were fitted on the same split as `data` (SPLIT_KEYS)."""
    theirs = teacher_card.get("data_config") or {}
    ours = data.to_dict()
    keys = [k for k in SPLIT_KEYS if k != "time_split_year" or ours.get("split") == "time"]  # else unused
    differ = [k for k in keys if theirs.get(k) != ours.get(k)]  # both as JSON values (fractions: lists)
    if differ:
        shown = ", ".join(f"{k} {theirs.get(k)!r} vs {ours.get(k)!r}" for k in differ)
        raise ValueError(f"the teacher trees were fitted on another split than this run's ({shown})")


def similar_elements(x_sc: np.ndarray, k: int, min_count: int) -> np.ndarray:
    """(118, k) element indices: row i holds the k elements nearest to element i by mat2vec cosine among those
    present in >= min_count rows of x_sc (N, 118); -1 where fewer than k qualify."""
    e = embedding_table(EMBEDDING)
    unit = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    sim = unit @ unit.T
    np.fill_diagonal(sim, -np.inf)
    sim[:, (x_sc > 0).sum(0) < min_count] = -np.inf
    sim[:, ~np.any(unit != 0, axis=1)] = -np.inf  # no vector in the embedding
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]
    return np.where(np.take_along_axis(sim, order, 1) > -np.inf, order, -1)


def substitutions(x_sc: np.ndarray, n: int, near: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n, 118) float32: rows of x_sc, each with one element replaced at the same amount by one of its `near`
    elements not already present. ValueError when no row of x_sc has such a substitute."""
    out = np.empty((n, x_sc.shape[1]), np.float32)
    made, tries = 0, 0
    while made < n:
        tries += 1
        if tries > 50 * n + 1000:
            raise ValueError("no substitution is possible: too few training superconductors or substitutes")
        v = x_sc[rng.integers(len(x_sc))]
        present = np.flatnonzero(v > 0)
        el = present[rng.integers(len(present))]
        options = [c for c in near[el] if c >= 0 and v[c] == 0]
        if not options:
            continue
        new = v.copy()
        new[options[rng.integers(len(options))]], new[el] = v[el], 0.0
        out[made] = new
        made += 1
    return out


def distill_rows(ds: Dataset, config: DistillConfig) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    """(x (R, 118) float32, Tc (R,) float32 from the teacher, a record for the card) for `ds`'s training rows."""
    trees, card = load_trees(config.trees)  # CheckpointError (one line) for a missing or damaged file
    check_teacher(card, ds.config)
    idx = ds.indices(TRAIN)
    x_sc = ds.x[idx[ds.is_supercon[idx] & ~ds.is_hydride[idx]]]
    if len(x_sc) == 0:
        raise ValueError("distillation needs training superconductors; this split has none")
    near = similar_elements(x_sc, config.neighbours, config.min_count)
    x = substitutions(x_sc, config.rows, near, np.random.default_rng(config.seed))
    y = trees.predict(x)
    record: dict[str, Any] = {}
    if config.classifier:
        clf, clf_card = load_classifier(config.classifier)  # CheckpointError (one line) for a missing or bad file
        check_teacher(clf_card, ds.config)
        p = clf.probability(x)
        y = p * y
        record = {"classifier_sha256": clf_card.get("sha256", ""), "label_mean_p_superconductor": float(p.mean())}
    y = y.astype(np.float32)
    record = {
        **config.to_dict(),
        "teacher_sha256": card.get("sha256", ""),
        "embedding": EMBEDDING,
        "label_mean_k": float(y.mean()),
        "label_positive_share": float(np.mean(y > 0)),
        **record,
    }
    return x, y, record


__all__ = ["DistillConfig", "check_teacher", "distill_rows", "similar_elements", "substitutions"]
