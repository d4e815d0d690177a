"""How long a design run takes on this machine, for `gdmcd design --help`: a tiny measurement, cached.

A run costs about n_candidates × (steps2 + steps3) "candidate-steps" (one forward and backward pass of
every ensemble member for one composition). `measure()` times such passes of the Tc model on a batch of
MEASURE_BATCH compositions for at most MEASURE_SECONDS (model load included, < 2 s in all) and caches the
seconds per candidate-step in ~/.cache/gdmcd/speed.json (`$XDG_CACHE_HOME`), keyed by device, torch threads
and checkpoint hash. The estimate counts the model passes only: the rest of each step (projection, integer
loss, chemistry terms, snapshots) and the final candidate table come on top, so a run takes longer; and a
measurement taken while the machine was busy stays until the file is deleted. Under pytest nothing is
measured unless GDMCD_SPEED_PROBE=1; GDMCD_SPEED_PROBE=0 switches the measurement off anywhere.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

SPEED_FILE = "speed.json"
PROBE_ENV = "GDMCD_SPEED_PROBE"
MEASURE_BATCH = 64
MEASURE_SECONDS = 0.8  # timed passes stop after this; loading the model comes on top


def cache_path() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gdmcd" / SPEED_FILE


def probe_allowed() -> bool:
    """False under pytest (unless GDMCD_SPEED_PROBE=1) and wherever GDMCD_SPEED_PROBE=0."""
    flag = os.environ.get(PROBE_ENV, "").strip()
    if flag in ("0", "1"):
        return flag == "1"
    return "PYTEST_CURRENT_TEST" not in os.environ


def cache_key(device: str, threads: int, sha256: str) -> str:
    return f"{device}|threads={threads}|model={sha256[:12]}"


def _read_cache(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def measure(checkpoint: str | Path, device: str = "cpu") -> tuple[str, float]:
    """(cache key, seconds per candidate-step) from timed forward+backward passes of the checkpoint's model."""
    import torch

    from gdmcd_core.model.checkpoint import load_checkpoint

    model = load_checkpoint(checkpoint, device)
    x = torch.rand(MEASURE_BATCH, 118, device=model.device)
    x = (x / x.sum(1, keepdim=True)).requires_grad_(True)

    def one_pass() -> None:
        mean, _ = model.mean_std(x)
        mean.sum().backward()
        x.grad = None

    one_pass()  # warm-up
    n, start = 0, time.perf_counter()
    while n < 2 or (time.perf_counter() - start < MEASURE_SECONDS and n < 200):
        one_pass()
        n += 1
    per = (time.perf_counter() - start) / (n * MEASURE_BATCH)
    return cache_key(str(model.device.type), torch.get_num_threads(), model.sha256), per


def seconds_per_candidate_step(checkpoint: str | Path, sha256: str, device: str = "cpu") -> float | None:
    """The cached figure for this machine, else a fresh measurement (cached), else None (probe not allowed,
    or the checkpoint cannot be loaded)."""
    import torch

    path = cache_path()
    key = cache_key(device, torch.get_num_threads(), sha256)
    cached = _read_cache(path).get(key)
    if isinstance(cached, dict) and isinstance(cached.get("s_per_candidate_step"), (int, float)):
        return float(cached["s_per_candidate_step"])
    if not probe_allowed():
        return None
    try:
        key, per = measure(checkpoint, device)
    except Exception:  # an estimate is a courtesy: never let it break --help
        return None
    data = _read_cache(path)
    data[key] = {"s_per_candidate_step": per, "measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(data, indent=1, sort_keys=True))
    except OSError:
        pass
    return per


def estimate_line(n_candidates: int, steps: int, per: float | None, where: str) -> str:
    """'At these defaults: 256 candidates × 2,000 steps = 512,000 candidate-steps; the model passes alone take
    about 9 min on this machine (…)'."""
    cs = int(n_candidates) * int(steps)
    head = f"At these defaults: {n_candidates:,} candidates × {steps:,} steps = {cs:,} candidate-steps"
    if per is None:
        return f"{head}; time on this machine not measured ({PROBE_ENV}=0 or under tests)."
    secs = cs * per
    when = f"{secs / 60:.0f} min" if secs >= 90 else f"{secs:.0f} s"
    return (
        f"{head}; the model passes alone take about {when} on this machine ({where}), the whole run longer "
        f"(measured once and cached in {cache_path()}; delete it to measure again)."
    )


def time_estimate() -> str:
    """The `gdmcd design --help` epilog: candidate-steps at the DesignConfig defaults and the time here."""
    import torch

    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, read_card

    cfg = DesignConfig()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        per = seconds_per_candidate_step(DEFAULT_CHECKPOINT, read_card(DEFAULT_CHECKPOINT)["sha256"], device)
    except CheckpointError:
        per = None
    where = f"{device}, {torch.get_num_threads()} torch thread(s), {DEFAULT_CHECKPOINT.name}"
    return estimate_line(cfg.n_candidates, cfg.total_steps, per, where)
