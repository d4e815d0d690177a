"""Merge ensembles trained apart (other seeds, another machine, another day) into one checkpoint; or store one
again with int8 weights (`--weights int8`, half the size).

The sources must share the model config, the data config and the data checksums: members of one
ensemble are different draws of the same model on the same split. Their members are concatenated,
σ is calibrated afresh on the validation split and the test metrics are evaluated, exactly as at the
end of `gdmcd train` (training/run.py: save_ensemble). The card keeps each source's training record
(train config, validation MAE and epochs per member, training time) and its SHA-256.
"""

from __future__ import annotations

from pathlib import Path

import torch

from gdmcd_core.model.checkpoint import WEIGHT_FORMATS, dequantize_int8, load_checkpoint, quantize_int8
from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.kinds import HYDRIDE_KIND, TC_KIND
from gdmcd_core.training.evaluate import dataset_for
from gdmcd_core.training.hydrides import non_hydride_test_mae
from gdmcd_core.training.run import save_ensemble

SAME = ("model_config", "data_config", "data_checksums", "hydride_config")  # card fields every source must share
# card fields of the first source the merged card keeps (the hydride model's training set)
CARRIED = ("hydride_config", "hydrides_in_train", "hydride_negatives_in_train", "hydride_share_of_training_rows")
CARRIED += ("init_from", "configs_from")


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def as_int8(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A state dict with its conv/linear weights rounded as int8 storage rounds them (checkpoint.quantize_int8)."""
    return {
        k: dequantize_int8(*quantize_int8(v)) if v.is_floating_point() and v.ndim >= 2 else v for k, v in sd.items()
    }


def _members(paths: list[str | Path], ensembles: list) -> list[torch.nn.Module]:
    """All members of the sources, checked: the same SAME card fields, no two with identical weights."""
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
    return members


def merge_checkpoints(
    paths: list[str | Path], out: str | Path, data_dir: str | None = None, weights: str = "float16"
) -> dict:
    """Load the checkpoints at `paths` (hash-checked), check they are members of one kind of ensemble, and save
    all their members at `out` with a freshly calibrated and evaluated card. Returns the card.

    weights: how the members are stored (checkpoint.WEIGHT_FORMATS); with "int8" the members are quantized
    first, so that σ is calibrated and the test metrics are evaluated with the weights as stored. One source is
    enough to store it again in another format."""
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"--weights must be one of {WEIGHT_FORMATS}, got {weights!r}")
    if len(paths) < 2 and weights == "float16":
        raise ValueError(f"merge needs at least two checkpoints (or one with --weights int8), got {len(paths)}")
    out = Path(out)
    if any(Path(p).resolve() == out.resolve() for p in paths):
        raise ValueError(f"--out {out} is one of the sources; write the merged ensemble elsewhere")
    ensembles = [load_checkpoint(p) for p in paths]
    first = ensembles[0].card
    members = _members(paths, ensembles)
    if weights == "int8":
        for m in members:
            m.load_state_dict(as_int8(m.state_dict()))
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
        "kind": first.get("kind", TC_KIND),
        **{k: first[k] for k in CARRIED if first.get(k) is not None},
    }
    ds = dataset_for(ensembles[0], data_dir)
    extra = None
    if fields["kind"] == HYDRIDE_KIND:  # as training/tasks.py records it: the Tc MAE on non-hydride test rows
        mae, n_test = non_hydride_test_mae(TcEnsemble(members).eval(), ds)
        extra = {"supercon_nonhydride_test_mae_k": mae, "n_test_supercon_nonhydride": n_test}
    return save_ensemble(out, members, ds, fields, extra, weights=weights)


__all__ = ["merge_checkpoints"]
