"""Infrastructure used by every layer, written once: atomic writes, SHA-256, code version, device
choice, batched prediction and terminal-safe text.

Nothing here knows about chemistry or models beyond "a module that maps (B, 118) to (B,)".
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import subprocess
import tempfile
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent  # the checkout (or site-packages parent when installed)
FILE_MODE = 0o644  # written files are world-readable data (mkstemp alone would leave them 0600)
PREDICT_BATCH = 4096  # rows per forward pass in batched prediction: ~20 MB of activations for the compact model
HASH_CHUNK = 1 << 20  # bytes read per step when hashing
# Characters that reorder the text shown around them (bidirectional marks, embeddings, overrides, isolates).
BIDI_CONTROLS = frozenset("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def printable(text: object) -> str:
    """`text` safe to print on a terminal, on one line: control characters (C0 such as ESC and line breaks,
    DEL, C1), line/paragraph separators and bidirectional controls are shown as escapes (\\x1b, \\u202e), so a
    name read from a file can neither run terminal escape sequences nor break or reorder the line.

    >>> printable("run\\x1b]0;owned\\x07")
    'run\\\\x1b]0;owned\\\\x07'
    """
    s = str(text)
    if s.isprintable():
        return s
    return "".join(_escaped(c) if _is_control(c) else c for c in s)


def _is_control(c: str) -> bool:
    return c in BIDI_CONTROLS or unicodedata.category(c) in ("Cc", "Zl", "Zp")


def _escaped(c: str) -> str:
    return f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}"


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder, fsync and an atomic rename.

    A reader sees either the old file or the whole new one, never a truncated file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | Path, text: str) -> None:
    """UTF-8 text, written atomically (see `atomic_write_bytes`)."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path: str | Path, df: pd.DataFrame) -> None:
    """A DataFrame as CSV (no index), written atomically."""
    buf = io.StringIO()
    df.to_csv(buf, index=False, quoting=csv.QUOTE_MINIMAL)
    atomic_write_text(path, buf.getvalue())


def atomic_torch_save(path: str | Path, obj: object) -> None:
    """`torch.save` through a temp file and an atomic rename."""
    buf = io.BytesIO()
    torch.save(obj, buf)
    atomic_write_bytes(path, buf.getvalue())


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(HASH_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def code_version() -> str:
    """Git commit of the code (with '+dirty' if gdmcd_core is modified), or 'unknown' outside a checkout."""
    try:
        run = lambda *a: subprocess.run(["git", *a], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)  # noqa: E731
        rev, dirty = run("rev-parse", "--short", "HEAD"), run("status", "--porcelain", "gdmcd_core")
        if rev.returncode != 0:
            return "unknown"
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance() -> dict[str, str]:
    """What every checkpoint card and run record states about the code that made it."""
    return {
        "code_version": code_version(),
        "torch_version": torch.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """'auto' -> CUDA when present, else CPU. Raises ValueError naming the value when it cannot be used."""
    if isinstance(device, torch.device):
        return device
    text = str(device).strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise ValueError(f"device {device!r} is not a device name; use {DEVICE_HELP}") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"device {device!r} is not supported; use {DEVICE_HELP}")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but CUDA is not available; use 'cpu' or 'auto'")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r} requested but MPS is not available; use 'cpu' or 'auto'")
    return dev


def module_device(module: torch.nn.Module) -> torch.device:
    """Device of a module's first parameter (CPU for a module without parameters)."""
    p = next(module.parameters(), None)
    return p.device if p is not None else torch.device("cpu")


@torch.no_grad()
def batched(
    fn: Callable[[torch.Tensor], torch.Tensor | tuple[torch.Tensor, ...]],
    x: np.ndarray,
    device: torch.device | str = "cpu",
    batch_size: int = PREDICT_BATCH,
) -> tuple[np.ndarray, ...]:
    """Apply `fn` to x (N, D) in batches on `device`; returns a tuple of (N, ...) float32 arrays.

    `fn` returns one tensor or a tuple of tensors whose first dimension is the batch.
    """
    x = np.asarray(x, dtype=np.float32)
    parts: list[list[np.ndarray]] = []
    for i in range(0, len(x), batch_size):
        out = fn(torch.as_tensor(x[i : i + batch_size], device=device))
        outs = out if isinstance(out, tuple) else (out,)
        if not parts:
            parts = [[] for _ in outs]
        for acc, o in zip(parts, outs, strict=True):
            acc.append(o.detach().float().cpu().numpy())
    if not parts:
        probe = fn(torch.zeros(1, x.shape[1] if x.ndim == 2 else 118, device=device))
        n_out = len(probe) if isinstance(probe, tuple) else 1
        return tuple(np.zeros(0, np.float32) for _ in range(n_out))
    return tuple(np.concatenate(acc) for acc in parts)


@torch.no_grad()
def predict_array(model: torch.nn.Module, x: np.ndarray, batch_size: int = PREDICT_BATCH) -> np.ndarray:
    """Eval-mode output of `model` for x (N, 118), on the model's device; restores train/eval mode."""
    was_training = model.training
    model.eval()
    try:
        (out,) = batched(model, x, module_device(model), batch_size)
    finally:
        model.train(was_training)
    return out
