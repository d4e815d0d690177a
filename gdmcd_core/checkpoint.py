"""Checkpoints: save atomically with a recorded SHA-256; load with weights_only=True after checking it.

A checkpoint `NAME.pt` holds the model config and one state dict per ensemble member (float16
storage); its card `NAME.json` holds the metadata (data checksums, split, metrics, training time,
code version) and the SHA-256 of the .pt file. Loading refuses a file whose hash differs.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from gdmcd_core.data import sha256_file
from gdmcd_core.ensemble import TcEnsemble
from gdmcd_core.model import ModelConfig, TcResNet

FORMAT_VERSION = 1
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "tc_default.pt"


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not match its recorded hash."""


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


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
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(blob, tmp)
    os.replace(tmp, path)
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
        raise CheckpointError(f"checkpoint {path} has SHA-256 {digest[:12]}…, its card records {str(card.get('sha256'))[:12]}…")
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


def update_card(path: str | Path, **fields: Any) -> dict[str, Any]:
    """Add or replace fields of a checkpoint's card (the weights and their hash are unchanged)."""
    card = read_card(path)
    if sha256_file(path) != card.get("sha256"):
        raise CheckpointError(f"checkpoint {path} does not match its card; refusing to update the card")
    card.update(fields)
    atomic_write_text(card_path(path), json.dumps(card, indent=2, sort_keys=True))
    return card
