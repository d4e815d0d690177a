"""`open_design`: everything a design run needs before its first step, opened one way for the CLI and the app.

    opened = open_design(config, checkpoint=None, *, model=None, fe_model=None, reference=None, new_run=True)
    opened.engine.run(run_dir, start=opened.start)

In order: the device (config.device), the Tc model (`model` as given, else the checkpoint loaded onto that device,
hash-checked), the memory check with the model's size, the formation-energy model (`fe_model` as given, else
checkpoints/formation_energy.pt when it is there; required when config.formation_energy_weight > 0), the reference
data (SuperCon + COD from the data folder), the DesignEngine and its start compositions. `new_run=False` (resuming or
finalizing a saved run) skips the memory check and the start compositions.

Whatever the user can fix raises ValueError with one line: `DesignOpenError` for the device, the checkpoint, the
formation-energy model and the data folder (its `option` is "device" when the message names the device's value
only: the CLI puts its flag in front), and the engine's own errors (InsufficientMemoryError, constraints that
contradict the data, no start compositions) as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch
    from torch import nn

    from gdmcd_core.data.reference import ReferenceData
    from gdmcd_core.design.config.config import DesignConfig
    from gdmcd_core.design.engine import DesignEngine
    from gdmcd_core.design.loop.starts import StartPoints

FORMATION_ENERGY_NEEDED = (
    "--formation-energy-weight needs the formation-energy checkpoint (checkpoints/formation_energy.pt)"
)


class DesignOpenError(ValueError):
    """A design that cannot be opened: one line; `option`: the config field whose value alone the message names."""

    def __init__(self, message: str, option: str = "") -> None:
        super().__init__(message)
        self.option = option


@dataclass(frozen=True)
class OpenDesign:
    """A design ready to run: the engine on its device, with its models, reference data and start compositions.

    checkpoint: the Tc model's file (None when the model was given); start: None for new_run=False; warnings:
    what was left out and why (a damaged formation-energy checkpoint the run does not need), and data files that
    differ from the ones the model was trained on.
    """

    engine: DesignEngine
    model: nn.Module
    device: torch.device
    checkpoint: Path | None
    fe_model: nn.Module | None
    reference: ReferenceData
    start: StartPoints | None
    warnings: tuple[str, ...] = ()

    @property
    def config(self) -> DesignConfig:
        return self.engine.config


def one_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none)."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def open_device(config: DesignConfig) -> torch.device:
    """config.device as a torch device ('auto': CUDA when present). DesignOpenError when it cannot be used."""
    from gdmcd_core.util import resolve_device

    try:
        return resolve_device(config.device)
    except ValueError as exc:
        raise DesignOpenError(str(exc), option="device") from None


def open_model(checkpoint: str | Path | None, device: torch.device) -> tuple[nn.Module, Path]:
    """(the Tc model, its file): `checkpoint` (default checkpoints/tc_default.pt) hash-checked onto `device`."""
    from gdmcd_core.model.checkpoint import DEFAULT_CHECKPOINT, CheckpointError, load_checkpoint

    path = Path(checkpoint) if checkpoint else DEFAULT_CHECKPOINT
    try:
        return load_checkpoint(path, device=device), path
    except CheckpointError as exc:
        raise DesignOpenError(str(exc)) from None


def check_memory(config: DesignConfig, model: nn.Module) -> None:
    """InsufficientMemoryError (a ValueError, one line) for a run too big for this machine, counting the model."""
    from gdmcd_core.design.config.resources import check_design_request, count_n_values

    m = count_n_values(config.n_values, config.n_min, config.n_max)
    check_design_request(config.n_candidates, m, config.total_steps, config.record_every, model)


def open_formation_energy_model(config: DesignConfig, device: torch.device) -> tuple[nn.Module | None, str]:
    """(checkpoints/formation_energy.pt or None when absent, a warning when it could not be loaded).

    DesignOpenError when config.formation_energy_weight > 0 and there is no model to weigh E_f with."""
    from gdmcd_core.model.checkpoint import CheckpointError
    from gdmcd_core.model.formation_energy import load_formation_energy_model

    needed = config.formation_energy_weight > 0
    try:
        fe_model = load_formation_energy_model(device=device)
    except (ImportError, CheckpointError) as exc:
        if needed:
            raise DesignOpenError(f"formation-energy model unavailable: {exc}") from None
        return None, f"formation-energy model not loaded: {one_line(exc)}"
    if needed and fe_model is None:
        raise DesignOpenError(FORMATION_ENERGY_NEEDED)
    return fe_model, ""


def open_reference() -> ReferenceData:
    """SuperCon + COD from the data folder; DesignOpenError naming the folder when the files are not there, or the
    file when one cannot be read (a missing column: data.paths.DataFileError)."""
    from gdmcd_core.data.reference import load_reference

    try:
        return load_reference()
    except (FileNotFoundError, ValueError) as exc:  # DataNotFoundError names $GDMCD_DATA_DIR when it is bad
        what = "not found" if isinstance(exc, FileNotFoundError) else "unusable"
        raise DesignOpenError(f"training data {what}: {one_line(exc)}") from None


def data_warning(model: nn.Module) -> str:
    """'' or one line naming the data files (in the data folder load_reference reads) whose SHA-256 differs from
    the one the model's card records: the same check as `gdmcd evaluate`'s."""
    from gdmcd_core.data.dataset import folder_mismatch
    from gdmcd_core.data.paths import find_data_dir

    card = getattr(model, "card", None) or {}
    if not card.get("data_checksums"):
        return ""
    try:
        folder = find_data_dir()
    except (FileNotFoundError, ValueError):
        return ""  # open_reference has said why
    return folder_mismatch(
        card, folder, "the reference data (starts, nearest known superconductors, unseen elements) is not the model's"
    )


def open_design(
    config: DesignConfig,
    checkpoint: str | Path | None = None,
    *,
    model: nn.Module | None = None,
    fe_model: nn.Module | None = None,
    reference: ReferenceData | None = None,
    new_run: bool = True,
) -> OpenDesign:
    """The design of `config`, opened (see the module docstring); ValueError (one line) for what the user can fix.

    model / fe_model / reference: already loaded (the app keeps one copy per process), else loaded here;
    checkpoint: the Tc model's file when `model` is None (default checkpoints/tc_default.pt).
    """
    from gdmcd_core.design.engine import DesignEngine

    device = open_device(config)
    path = None
    if model is None:
        model, path = open_model(checkpoint, device)
    if new_run:
        check_memory(config, model)
    warnings: tuple[str, ...] = ()
    if fe_model is None:
        fe_model, warning = open_formation_energy_model(config, device)
        warnings = (warning,) if warning else ()
    if reference is None:
        reference = open_reference()
        warnings += tuple(w for w in (data_warning(model),) if w)
    if config.pressure_gpa > 0:
        warnings += (
            f"pressure_gpa {config.pressure_gpa:g}: the Tc model has no pressure input, so every Tc of this run is a "
            "high-pressure value, out of the model's scope (the pressure is recorded with the run)",
        )
    engine = DesignEngine(model, config, fe_model, reference=reference)
    start = engine.start_points() if new_run else None
    return OpenDesign(engine, model, device, path, fe_model, reference, start, warnings)


__all__ = ["DesignOpenError", "OpenDesign", "one_line", "open_design"]
