"""Resource limits checked before work starts: memory of a design run, and the job-count setting.

`estimate_design_memory_bytes` counts what `DesignLoop.optimize` (loop/optimize.py) allocates for B
candidates (see its docstring for the formula); `check_memory` compares that with the memory
this machine has available and raises `InsufficientMemoryError` with one line the user can act
on. `parse_max_jobs` reads $GDMCD_MAX_JOBS.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path

from gdmcd_core.chem.elements import N_ELEMENTS

# Allowed cell sizes N of the default design (n_min..n_max = 4..24): 21 values.
DEFAULT_N_VALUES = 21
# Keep the composition snapshots of a run under this many float16 entries (~40 MB): the design loop
# (loop/optimize.py) widens its snapshot stride for very large runs, and merging shards thins theirs.
MAX_SNAPSHOT_ENTRIES = 20_000_000
# Bytes per (candidate, N, element) entry of the integer-loss tables at their peak: grid_distance
# keeps ~5 float32 (B, M, D) tensors in the stage-3 forward plus gradients in the backward (~6 x 4),
# integerize's float64 pass keeps ~4 (B, M, D) float64 arrays (4 x 8): take the larger, 32.
INT_LOSS_BYTES_PER_ENTRY = 32
# Autograd keeps every conv/BN output for the backward; gradients add about half again at the peak.
ACTIVATION_OVERHEAD = 1.5
# Per-candidate float arrays besides those: x_start/x_stage2/x_final (float64), param, grad and two
# Adam moments (float32), the composed x and its projection copies: ~12 float64-sized rows of D.
STATE_ROWS_PER_CANDIDATE = 12
# Leave this share of the available memory free (page cache, the app, other users).
MEMORY_HEADROOM = 0.9
BYTES_PER_GB = 1e9
# Jobs running at once on one server when $GDMCD_MAX_JOBS is unset (as jobs.DEFAULT_MAX_ACTIVE).
DEFAULT_MAX_JOBS = 2
MAX_JOBS_ENV = "GDMCD_MAX_JOBS"


class InsufficientMemoryError(ValueError, MemoryError):
    """A run would need more memory than this machine has available (catch as ValueError or MemoryError)."""


def resnet_activation_floats(
    width: int = 32, layers: Sequence[int] = (1, 1, 1, 1), stem: str = "keep", height: int = 7, columns: int = 32
) -> int:
    """Floats of activations one candidate leaves for the backward pass in one TcResNet member.

    Counts the input image (4 x 7 x 32), the stem's conv and BN outputs (plus the max-pool for the
    "stock" stem), and per BasicBlock 5 tensors (conv1, bn1, conv2, bn2, residual sum; ReLUs are
    in place) and 2 more for a projection shortcut. The default ModelConfig gives 101,248 floats
    (~405 kB per candidate per member).
    """
    h, w = height, columns
    floats = 4 * h * w
    c = width
    if stem == "stock":
        h, w = (h + 1) // 2, (w + 1) // 2  # 7x7 stride-2 conv, padding 3
        floats += 2 * c * h * w
        h, w = (h + 1) // 2, (w + 1) // 2  # 3x3 stride-2 max-pool, padding 1
        floats += c * h * w
    else:
        floats += 2 * c * h * w
    cin = c
    for k, n_blocks in enumerate(layers):
        cout = width * 2**k
        for b in range(n_blocks):
            if k > 0 and b == 0:
                h, w = (h + 1) // 2, (w + 1) // 2  # stride-2 3x3 conv, padding 1
            floats += 5 * cout * h * w
            if b == 0 and (k > 0 or cin != cout):
                floats += 2 * cout * h * w
        cin = cout
    return floats


def snapshot_stride(total_steps: int, n_candidates: int, record_every: int) -> int:
    """Steps between a run's composition snapshots: record_every, widened so that the T = total_steps steps of
    n_candidates candidates keep at most MAX_SNAPSHOT_ENTRIES entries (ceil(T * B * 118 / MAX_SNAPSHOT_ENTRIES))."""
    entries = max(int(total_steps), 1) * int(n_candidates) * N_ELEMENTS
    return max(int(record_every), 1, math.ceil(entries / MAX_SNAPSHOT_ENTRIES))


def estimate_design_memory_bytes(
    n_candidates: int,
    n_values_of_N: int = DEFAULT_N_VALUES,
    n_elements: int = N_ELEMENTS,
    n_members: int = 1,
    total_steps: int = 2000,
    record_every: int = 10,
    activation_floats: int | None = None,
) -> int:
    """Peak bytes a design run allocates for its candidates (the model weights not counted).

    With B = n_candidates, M = n_values_of_N (allowed cell sizes), D = n_elements, K = n_members,
    A = activation_floats (per candidate per member; default: the default TcResNet,
    `resnet_activation_floats()`), T = total_steps:

        model      = K * B * A * 4 * ACTIVATION_OVERHEAD       forward + backward through every member
        int_loss   = B * M * D * INT_LOSS_BYTES_PER_ENTRY       L_integer over every N (grid_distance,
                                                                integerize)
        snapshots  = 2 * S * B * (2 * D + 8)                    float16 compositions + float32 Tc and
                                                                L_int per snapshot, S = T // stride + 2,
                                                                stride = snapshot_stride(T, B, record_every);
                                                                x2: the lists and the stacked copy
        state      = B * D * 8 * STATE_ROWS_PER_CANDIDATE       start/stage-2/final compositions, Adam
    """
    B, M, D, K = int(n_candidates), int(n_values_of_N), int(n_elements), int(n_members)
    if min(B, M, D, K) < 1:
        raise ValueError(f"counts must be >= 1, got n_candidates={B}, N values={M}, elements={D}, members={K}")
    A = resnet_activation_floats() if activation_floats is None else int(activation_floats)
    snaps = max(int(total_steps), 1) // snapshot_stride(total_steps, B, record_every) + 2
    model = K * B * A * 4 * ACTIVATION_OVERHEAD
    int_loss = B * M * D * INT_LOSS_BYTES_PER_ENTRY
    snapshots = 2 * snaps * B * (2 * D + 8)
    state = B * D * 8 * STATE_ROWS_PER_CANDIDATE
    return int(model + int_loss + snapshots + state)


def _cgroup_available() -> int | None:
    """memory.max - memory.current of this process's cgroup (v2), if it sets a limit."""
    try:
        rel = Path("/proc/self/cgroup").read_text().strip().splitlines()[0].split(":", 2)[2]
        base = Path("/sys/fs/cgroup") / rel.lstrip("/")
        limit = (base / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return max(0, int(limit) - int((base / "memory.current").read_text().strip()))
    except (OSError, IndexError, ValueError):
        return None


def available_memory_bytes() -> int | None:
    """Memory available to this process: /proc/meminfo MemAvailable (else psutil, else sysconf),
    capped by a cgroup limit when one is set. None when nothing can tell."""
    avail: int | None = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                avail = int(line.split()[1]) * 1024
                break
    except (OSError, ValueError, IndexError):
        pass
    if avail is None:
        try:
            import psutil

            avail = int(psutil.virtual_memory().available)
        except Exception:  # not installed, or no answer on this platform
            avail = None
    if avail is None:
        try:
            avail = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            avail = None
    cg = _cgroup_available()
    if cg is not None:
        avail = cg if avail is None else min(avail, cg)
    return avail


def _gb(n: float) -> str:
    return f"{n / BYTES_PER_GB:.3g}"


def check_memory(bytes_needed: int, limit: int | None = None, what: str = "this design run") -> None:
    """Raise InsufficientMemoryError if `bytes_needed` exceeds MEMORY_HEADROOM of the available memory.

    limit: available bytes to compare with (default: available_memory_bytes(); when that is
    unknown the check passes)."""
    avail = available_memory_bytes() if limit is None else int(limit)
    if avail is None or bytes_needed <= MEMORY_HEADROOM * avail:
        return
    raise InsufficientMemoryError(
        f"{what} needs ~{_gb(bytes_needed)} GB, this machine has {_gb(avail)} GB available; "
        "use fewer candidates or fewer cell sizes N"
    )


def parse_max_jobs(env_value: str | None, default: int = DEFAULT_MAX_JOBS) -> int:
    """$GDMCD_MAX_JOBS as an int >= 1 (`default` when unset or blank). Raises ValueError (one line)."""
    if env_value is None or not str(env_value).strip():
        return default
    text = str(env_value).strip()
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{MAX_JOBS_ENV} must be a whole number >= 1, got {env_value!r}") from None
    if value < 1:
        raise ValueError(f"{MAX_JOBS_ENV} must be a whole number >= 1, got {env_value!r}")
    return value


def count_n_values(n_values: Sequence[int] = (), n_min: int = 4, n_max: int = 24) -> int:
    """How many cell sizes N a config allows, without building the range (n_max may be huge)."""
    return len(set(n_values)) if n_values else max(0, int(n_max) - int(n_min) + 1)


def model_activation_floats(model: object) -> int | None:
    """`resnet_activation_floats` of a TcEnsemble's / TcResNet's config; None for other modules."""
    cfg = getattr(model, "config", None)
    try:
        return resnet_activation_floats(int(cfg.width), tuple(cfg.layers), str(cfg.stem))  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        return None


def check_design_request(
    n_candidates: int,
    n_values_of_N: int,
    total_steps: int = 2000,
    record_every: int = 10,
    model: object | None = None,
    limit: int | None = None,
) -> int:
    """Refuse (InsufficientMemoryError, one line naming the request) a run that cannot fit in memory,
    before anything is allocated. Without `model` only the model-independent part is counted (a
    lower bound: checked again once the model is known). Returns the estimate in bytes."""
    acts = model_activation_floats(model) if model is not None else 0
    members = int(getattr(model, "n_members", 1) or 1) if model is not None else 1
    need = estimate_design_memory_bytes(
        max(int(n_candidates), 1), max(int(n_values_of_N), 1), N_ELEMENTS, members, total_steps, record_every, acts
    )
    what = f"{int(n_candidates):,} candidates x {int(n_values_of_N):,} cell sizes N"
    check_memory(need, limit, what=what)
    return need
