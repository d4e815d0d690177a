"""Checkpoints: save atomically with a recorded SHA-256; load with weights_only=True after checking it.

A checkpoint `NAME.pt` holds the model config and one state dict per ensemble member (float16
storage; or "int8": each conv/linear weight as int8 with one float32 scale per output channel, the rest
float16, half the size, `quantize_int8`); its card `NAME.json` holds the metadata (data checksums, split,
metrics, training time, code version, the `weights` storage) and the SHA-256 of the .pt file. Loading
refuses a file whose hash differs. Metrics on a card are computed with the weights as stored.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from gdmcd_core.model.ensemble import TcEnsemble
from gdmcd_core.model.kinds import FORMATION_ENERGY_KIND, TC_KIND
from gdmcd_core.model.resnet import ModelConfig, TcResNet
from gdmcd_core.util import REPO_ROOT, atomic_torch_save, atomic_write_text, sha256_file

FORMAT_VERSION = 1
CHECKPOINT_DIR = REPO_ROOT / "checkpoints"
DEFAULT_CHECKPOINT = CHECKPOINT_DIR / "tc_default.pt"
MAX_WIDTH, MAX_BLOCKS = 4096, 64  # beyond these a "model config" is damage, not a model: refused before allocating


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, or does not match its recorded hash."""


def card_path(path: str | Path) -> Path:
    return Path(path).with_suffix(".json")


WEIGHT_FORMATS = ("float16", "int8")
SCALE_SUFFIX = ".__int8_scale"  # the per-output-channel scale stored beside an int8 weight


def quantize_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(q int8, scale float32 (out,)): symmetric per-output-channel quantization, w ≈ q * scale."""
    flat = w.detach().float().reshape(w.shape[0], -1)
    scale = (flat.abs().amax(1) / 127.0).clamp_min(1e-12)
    q = torch.round(flat / scale[:, None]).clamp(-127, 127).to(torch.int8).reshape(w.shape)
    return q, scale


def dequantize_int8(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return (q.float().reshape(q.shape[0], -1) * scale.float()[:, None]).reshape(q.shape)


def _stored(sd: dict[str, torch.Tensor], weights: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for k, v in sd.items():
        if weights == "int8" and v.is_floating_point() and v.ndim >= 2:
            out[k], out[k + SCALE_SUFFIX] = quantize_int8(v)
        else:
            out[k] = v.half() if v.is_floating_point() else v
    return out


def _restored(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A stored state dict as float32 weights (int8 entries dequantized with their scales)."""
    out = {}
    for k, v in sd.items():
        if k.endswith(SCALE_SUFFIX):
            continue
        scale = sd.get(k + SCALE_SUFFIX)
        out[k] = dequantize_int8(v, scale) if scale is not None else v.float() if v.is_floating_point() else v
    return out


def save_checkpoint(path: str | Path, members: list[TcResNet], card: dict[str, Any], weights: str = "float16") -> str:
    """Save members (same config) and the card, the weights stored as `weights` (WEIGHT_FORMATS); returns the
    SHA-256 recorded in the card."""
    if not members:
        raise ValueError("need at least one model to save")
    if weights not in WEIGHT_FORMATS:
        raise ValueError(f"weights must be one of {WEIGHT_FORMATS}, got {weights!r}")
    config = members[0].config
    states = [_stored({k: v.detach().cpu() for k, v in m.state_dict().items()}, weights) for m in members]
    blob = {"format": FORMAT_VERSION, "model_config": config.to_dict(), "members": states}
    path = Path(path)
    atomic_torch_save(path, blob)
    digest = sha256_file(path)
    full_card = {**card, "model_config": config.to_dict(), "n_members": len(members), "sha256": digest}
    full_card["weights"] = weights
    atomic_write_text(card_path(path), json.dumps(full_card, indent=2, sort_keys=True))
    return digest


def read_card(path: str | Path) -> dict[str, Any]:
    cp = card_path(path)
    if not cp.is_file():
        raise CheckpointError(f"checkpoint card {cp} is missing; it records the hash the checkpoint is checked against")
    try:
        card = json.loads(cp.read_text())
    except (ValueError, OSError) as exc:
        raise CheckpointError(f"checkpoint card {cp} is not valid JSON ({exc})") from None
    if not isinstance(card, dict):
        raise CheckpointError(f"checkpoint card {cp} is a JSON {type(card).__name__}, not an object")
    if not isinstance(card.get("sha256"), str):
        raise CheckpointError(f"checkpoint card {cp} lacks the field 'sha256' (the checkpoint's hash)")
    return card


def update_card(path: str | Path, updates: dict[str, Any]) -> dict[str, Any]:
    """Merge `updates` into a checkpoint's card and write it; the .pt file is not touched.

    Refuses (CheckpointError) when the .pt file no longer matches the card's SHA-256, and never changes
    the fields that describe the weights (sha256, model_config, n_members). Returns the new card."""
    path = Path(path)
    card = read_card(path)
    if sha256_file(path) != card["sha256"]:
        raise CheckpointError(f"checkpoint {path} does not match the SHA-256 its card records; card not updated")
    frozen = {"sha256", "model_config", "n_members"} & set(updates)
    if frozen:
        raise ValueError(f"update_card does not change {', '.join(sorted(frozen))} (they describe the weights)")
    new = {**card, **updates}
    atomic_write_text(card_path(path), json.dumps(new, indent=2, sort_keys=True))
    return new


def _model_config(d: Any, path: Path) -> ModelConfig:
    """ModelConfig from a checkpoint, refusing damaged or absurd values (CheckpointError, one line)."""
    try:
        config = ModelConfig.from_dict(d)
        width, layers = int(config.width), tuple(int(n) for n in config.layers)
        if not 0 <= int(config.features) <= MAX_WIDTH:
            raise ValueError(f"features={config.features} is outside 0..{MAX_WIDTH}")
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        raise CheckpointError(f"checkpoint {path}: model config {d!r} is invalid ({exc})") from None
    if not 1 <= width <= MAX_WIDTH or not 1 <= len(layers) <= 8 or not all(1 <= n <= MAX_BLOCKS for n in layers):
        raise CheckpointError(
            f"checkpoint {path}: model config width={width}, layers={layers} is outside what a Tc model can be "
            f"(width 1..{MAX_WIDTH}, 1..8 stages of 1..{MAX_BLOCKS} blocks)"
        )
    return config


def _check_kind(config: ModelConfig, card: dict[str, Any], path: Path, kind: str | None) -> None:
    """CheckpointError when the card's kind (else the `kind` asked for) contradicts the weights: the .pt's own
    (hash-checked) model config says whether the output is ReLU (a Tc model: Tc >= 0) or signed (a
    formation-energy model, eV/atom), so a relabelled card cannot make one pass for the other."""
    declared = str(card.get("kind", kind or TC_KIND))
    if declared.startswith(TC_KIND) and not config.output_relu:
        raise CheckpointError(
            f"checkpoint {path}: its card says a {declared!r} model, but its weights have a signed output "
            "(output_relu false in the .pt's model config), as a formation-energy model has; a Tc model's is ReLU"
        )
    if declared == FORMATION_ENERGY_KIND and config.output_relu:
        raise CheckpointError(
            f"checkpoint {path}: its card says a {declared!r} model, but its weights have a ReLU output "
            "(Tc >= 0), as a Tc model has; a formation-energy model's output is signed"
        )


def verified_blob(path: Path, kind: str | None) -> tuple[dict[str, Any], dict[str, Any], str]:
    """(contents, card, SHA-256) of a saved file whose card kind starts with `kind` (None: any; a card
    without "kind" passes) and whose bytes match the card's SHA-256; read with weights_only=True."""
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} not found (train one with `gdmcd train`)")
    card = read_card(path)
    if kind is not None and not str(card.get("kind", kind)).startswith(kind):
        raise CheckpointError(f"checkpoint {path} is a {card.get('kind')!r} model, not a {kind!r} model")
    digest = sha256_file(path)
    if digest != card.get("sha256"):
        raise CheckpointError(
            f"checkpoint {path} has SHA-256 {digest[:12]}…, its card records {str(card.get('sha256'))[:12]}…"
        )
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CheckpointError(f"checkpoint {path} could not be read: {exc}") from None
    if not isinstance(blob, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(blob).__name__}, not a dict")
    return blob, card, digest


def load_checkpoint(
    path: str | Path = DEFAULT_CHECKPOINT, device: str | torch.device = "cpu", kind: str | None = TC_KIND
) -> TcEnsemble:
    """Load an ensemble (K >= 1 members) for inference: eval mode, frozen weights, on `device`.

    kind: the card "kind" required, as a prefix (default: Tc models, tc_regressor*; a card without "kind"
    passes); None: any kind."""
    path = Path(path)
    blob, card, digest = verified_blob(path, kind)
    if "model_config" not in blob or not blob.get("members"):
        raise CheckpointError(f"checkpoint {path} lacks its model config or members")
    config = _model_config(blob["model_config"], path)
    _check_kind(config, card, path, kind)
    members = []
    try:
        for sd in blob["members"]:
            m = TcResNet(config)
            m.load_state_dict(_restored(sd))
            members.append(m)
    except (RuntimeError, AttributeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {path}: weights do not fit the model config ({str(exc)[:200]})") from None
    ens = TcEnsemble(members, card=card, sha256=digest, path=str(path))
    return ens.to(device).eval().requires_grad_(False)
