"""Checkpoints: save atomically with a recorded SHA-256; load with weights_only=True after checking it.

A checkpoint `NAME.pt` holds the model config and one state dict per ensemble member (float16
storage); its card `NAME.json` holds the metadata (data checksums, split, metrics, training time,
code version) and the SHA-256 of the .pt file. Loading refuses a file whose hash differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.util import REPO_ROOT, atomic_torch_save, atomic_write_text, sha256_file

FORMAT_VERSION = 1
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "tc_default.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not match its recorded hash."""


def card_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


def save_checkpoint(path: str | Path, members: list[TcResNet], card: dict[str, Any], half: bool = True) -> str:
    """Save members (same config) and the card; returns the SHA-256 recorded in the card."""
    if not members:
        raise ValueError("need at least one model to save")
    config = members[0].config
    states = []
    for m in members:
        sd = {k: v.detach().cpu() for k, v in m.state_dict().items()}
        if half:
            sd = {k: v.half() if v.is_floating_point() else v for k, v in sd.items()}
        states.append(sd)
    blob = {"format": FORMAT_VERSION, "model_config": config.to_dict(), "members": states}
    path = Path(path)
    atomic_torch_save(path, blob)
    digest = sha256_file(path)
    full_card = {**card, "model_config": config.to_dict(), "n_members": len(members), "sha256": digest}
    atomic_write_text(card_path(path), json.dumps(full_card, indent=2, sort_keys=True))
    return digest


def read_card(path: str | Path) -> dict[str, Any]:
    cp = card_path(path)
    if not cp.is_file():
        raise CheckpointError(f"checkpoint card {cp} is missing; it records the hash the checkpoint is checked against")
    return json.loads(cp.read_text())


def load_checkpoint(path: str | Path = DEFAULT_CHECKPOINT, device: str | torch.device = "cpu") -> TcEnsemble:
    """Load an ensemble (K >= 1 members) for inference: eval mode, frozen weights, on `device`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found (train one with `gdmcd train`)")
    card = read_card(path)
    digest = sha256_file(path)
    if digest != card.get("sha256"):
        raise CheckpointError(
            f"checkpoint {path} has SHA-256 {digest[:12]}…, its card records {str(card.get('sha256'))[:12]}…"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} could not be read: {exc}") from None
    config = ModelConfig.from_dict(blob["model_config"])
    members = []
    for sd in blob["members"]:
        m = TcResNet(config)
        m.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in sd.items()})
        members.append(m)
    ens = TcEnsemble(members, card=card, sha256=digest, path=str(path))
    return ens.to(device).eval().requires_grad_(False)
