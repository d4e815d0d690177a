"""A campaign's model versions: which ensemble it proposes with, and the update that makes the next one.

Version 0 is the committed checkpoint the campaign started from (checkpoints/tc_default.pt unless named);
it is never changed. `update` fine-tunes the campaign's latest version on its current measurements
(campaign/update.py), refits the trees and σ, and writes version n as files under
`<campaigns folder>/<name>/models/` (checkpoint, card, trees; each written atomically) and only then records it in
the database in one transaction. A process killed before that transaction leaves at most files no row points to
(they are overwritten by the next update); a version in the database always has whole, hash-checked files.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from gdmcd_core.campaign import store
from gdmcd_core.campaign.propose import open_pool
from gdmcd_core.campaign.update import UpdateConfig, labels, learn
from gdmcd_core.chem.composition import to_vector

ProgressFn = Callable[[float, str], None]


def models_dir(root: Path, name: str) -> Path:
    return Path(root) / store.validate_name(name) / "models"


def latest_version(conn: sqlite3.Connection, cid: int) -> sqlite3.Row | None:
    return conn.execute(
        "SELECT * FROM model_versions WHERE campaign_id = ? ORDER BY id DESC LIMIT 1", (cid,)
    ).fetchone()


def current_model(conn: sqlite3.Connection, cid: int, root: Path, base: str | Path | None = None):
    """(ensemble, trees or None, version id or None): the campaign's latest version, else the base checkpoint."""
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, load_checkpoint
    from gdmcd_core.model.trees import second_opinion

    row = latest_version(conn, cid)
    if base is None:
        base = conn.execute("SELECT base_checkpoint FROM campaigns WHERE id = ?", (cid,)).fetchone()[0]
    path = Path(root) / row["checkpoint_path"] if row is not None else Path(base or DEFAULT_CHECKPOINT)
    ens = load_checkpoint(path)
    if row is not None and ens.sha256 != row["sha256"]:
        raise store.CampaignError(f"model version {row['id']}: {path} does not match the SHA-256 the campaign recorded")
    trees, _ = second_opinion(ens)
    return ens, trees, (int(row["id"]) if row is not None else None)


def replay_rows(ens: Any, data_dir: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The training rows of `ens`'s own data and split: (x (N, 118), Tc (N,) K, is superconductor (N,))."""
    from gdmcd_core.data.dataset import TRAIN
    from gdmcd_core.training.evaluate import dataset_for

    ds = dataset_for(ens, data_dir)
    idx = ds.indices(TRAIN)
    return ds.x[idx], ds.tc_k[idx].astype(np.float64), ds.is_supercon[idx]


def _measured_predictions(ens: Any, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if not len(x):
        return np.zeros(0), np.zeros(0)
    mean, std = ens.predict(x)
    return mean.astype(np.float64), std.astype(np.float64)


def rank_moves(before: np.ndarray, after: np.ndarray, formulas: list[str], top: int = 10) -> list[dict]:
    """The `top` candidates after the update with their rank before and after (1 = highest predicted Tc)."""
    rb = np.empty(len(before), int)
    rb[np.argsort(-before, kind="stable")] = np.arange(1, len(before) + 1)
    order = np.argsort(-after, kind="stable")[:top]
    return [
        {
            "formula": formulas[i],
            "rank_before": int(rb[i]),
            "rank_after": k + 1,
            "tc_before_k": float(before[i]),
            "tc_after_k": float(after[i]),
        }
        for k, i in enumerate(order)
    ]


def update(
    conn: sqlite3.Connection,
    name: str,
    root: Path,
    config: UpdateConfig = UpdateConfig(),
    progress: ProgressFn | None = None,
    data_dir: str | None = None,
) -> dict[str, Any]:
    """Fine-tune campaign `name`'s latest model on its measurements and record the new version; returns the report
    (version, measured rows before/after, ranking moves, σ factor and leave-one-out coverage, seconds)."""
    from gdmcd_core.model.checkpoint import save_checkpoint
    from gdmcd_core.model.trees import save_trees, trees_path

    t0 = time.perf_counter()
    say = progress or (lambda f, msg: None)
    cid = store.campaign_id(conn, name)
    rows = [dict(r) for r in store.current_measurements(conn, cid)]
    lab = labels(rows, to_vector)
    if not len(lab):
        raise store.CampaignError(
            f"campaign {name!r} has no measurement to learn from (superconducting or no_transition at 0 GPa)"
        )
    ens, trees, parent_id = current_model(conn, cid, root)
    say(0.02, "reading the training rows to replay")
    replay = replay_rows(ens, data_dir)
    before_mean, before_std = _measured_predictions(ens, lab.x)
    sc = lab.is_sc
    pool = open_pool(conn, cid)
    pool_x = np.stack([c["x"] for c in pool]) if pool else np.zeros((0, 118), np.float32)
    pool_before, _ = _measured_predictions(ens, pool_x)
    note = {"campaign": name, "parent_sha256": ens.sha256, "measurement_ids": lab.ids, "update_config": config.__dict__}
    new, boosted, cal = learn(
        ens, trees, lab, replay, (before_mean, before_std), config, note, lambda f, msg: say(0.05 + 0.8 * f, msg)
    )
    after_mean, after_std = _measured_predictions(new, lab.x)
    pool_after, _ = _measured_predictions(new, pool_x)
    moves = rank_moves(pool_before, pool_after, [c["formula"] for c in pool]) if pool else []
    number = int(conn.execute("SELECT COUNT(*) FROM model_versions WHERE campaign_id = ?", (cid,)).fetchone()[0]) + 1
    folder = models_dir(root, name)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"v{number}.pt"
    say(0.88, "saving the new model version")
    sha = save_checkpoint(path, list(new.members), new.card)
    if boosted is not None:
        tree_card = {k: new.card.get(k) for k in ("data_config", "hydride_config", "data_checksums")}
        save_trees(trees_path(path), boosted, {**tree_card, "campaign_update": new.card["campaign_update"]})
    measured = [
        {
            "measurement_id": mid,
            "tc_k": None if not np.isfinite(lab.tc[i]) else float(lab.tc[i]),
            "t_min_k": None if not np.isfinite(lab.t_min[i]) else float(lab.t_min[i]),
            "before_k": float(before_mean[i]),
            "before_sigma_k": float(before_std[i]),
            "after_k": float(after_mean[i]),
            "after_sigma_k": float(after_std[i]),
        }
        for i, mid in enumerate(lab.ids)
    ]
    metrics = {
        "measured": measured,
        "open_candidates": len(pool),
        "ranking_moves": moves,
        "sigma_recalibration": cal,
        "mae_before_k": float(np.abs(before_mean[sc] - lab.tc[sc]).mean()) if sc.any() else None,
        "mae_after_k": float(np.abs(after_mean[sc] - lab.tc[sc]).mean()) if sc.any() else None,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    with conn:
        vid = store.insert(
            conn,
            "model_versions",
            {
                "campaign_id": cid,
                "checkpoint_path": str(path.relative_to(root)),
                "sha256": sha,
                "parent_id": parent_id,
                "measurement_ids_json": json.dumps(lab.ids),
                "metrics_json": json.dumps(metrics),
                "created": time.time(),
            },
        )
    say(1.0, f"model version {number} recorded")
    return {"version": number, "version_id": vid, "checkpoint": str(path), "sha256": sha, **metrics}


__all__ = ["current_model", "latest_version", "models_dir", "rank_moves", "replay_rows", "update"]
