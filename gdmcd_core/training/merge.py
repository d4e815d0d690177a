"""Merge ensembles trained apart (other seeds, another machine, another day) into one checkpoint.

The sources must share the model config, the data config and the data checksums: members of one
ensemble are different draws of the same model on the same split. Their members are concatenated,
σ is calibrated afresh on the validation split and the test metrics are evaluated, exactly as at the
end of `gdmcd train` (training/run.py: save_ensemble). The card keeps each source's training record
(train config, validation MAE and epochs per member, training time) and its SHA-256.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gdmcd_core.model.checkpoint import load_checkpoint
from gdmcd_core.training.evaluate import dataset_for
from gdmcd_core.training.run import save_ensemble

SAME = ("model_config", "data_config", "data_checksums", "hydride_config")  # card fields every source must share


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def merge_checkpoints(paths: list[str | Path], out: str | Path, data_dir: str | None = None) -> dict:
    """Load the checkpoints at `paths` (hash-checked), check they are members of one kind of ensemble, and save
    all their members at `out` with a freshly calibrated and evaluated card. Returns the card."""
    if len(paths) < 2:
        raise ValueError(f"merge needs at least two checkpoints, got {len(paths)}")
    out = Path(out)
    if any(Path(p).resolve() == out.resolve() for p in paths):
        raise ValueError(f"--out {out} is one of the sources; write the merged ensemble elsewhere")
    ensembles = [load_checkpoint(p) for p in paths]
    first = ensembles[0].card
    for path, ens in zip(paths[1:], ensembles[1:], strict=True):
        for key in SAME:
            if ens.card.get(key) != first.get(key):
                raise ValueError(f"checkpoint {path}: its {key} differs from {paths[0]}'s; only like ensembles merge")
    members = [m for ens in ensembles for m in ens.members]
    for i, a in enumerate(members):
        for j in range(i):
            if _same_weights(a, members[j]):
                raise ValueError(f"members {j} and {i} have identical weights (the same seed trained twice?)")
    sources = [
        {
            "path": str(path),
            "sha256": ens.sha256,
            "n_members": ens.n_members,
            "train_config": ens.card.get("train_config"),
            "train_seconds": ens.card.get("train_seconds"),
        }
        for path, ens in zip(paths, ensembles, strict=True)
    ]
    fields = {
        "complete": all(ens.card.get("complete", True) for ens in ensembles),
        "members_planned": len(members),
        "model_config": first.get("model_config"),
        "train_config": first.get("train_config"),
        "data_config": first.get("data_config"),
        "best_val_mae_supercon_k": [v for ens in ensembles for v in ens.card.get("best_val_mae_supercon_k") or []],
        "epochs_trained": [v for ens in ensembles for v in ens.card.get("epochs_trained") or []],
        "train_seconds": sum(float(ens.card.get("train_seconds") or 0.0) for ens in ensembles),
        "hardware": first.get("hardware"),
        "merged_from": sources,
        **({"hydride_config": first["hydride_config"]} if first.get("hydride_config") else {}),
    }
    ds = dataset_for(ensembles[0], data_dir)
    return save_ensemble(out, members, ds, fields)


__all__ = ["merge_checkpoints"]
