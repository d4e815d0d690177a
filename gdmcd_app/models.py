"""Which Tc model produced a number, said on every page that shows one; the model card as tables.

No Streamlit here. A model is named by its checkpoint file stem and the first 8 hex digits of its
SHA-256 ("tc_default · 61bc315d"). The hydride model (card kind "tc_regressor_hydride") is trained on a
hydride-balanced set whose hydrides were measured under high pressure: its values are labelled as
high-pressure estimates.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gdmcd_core.model.kinds import HYDRIDE_KIND

HYDRIDE_STEM = "tc_hydride"
SHORT_HASH = 8
HIGH_PRESSURE_NOTE = (
    "hydride model: its Tc values are high-pressure estimates (its hydride training data are mostly "
    "high-pressure measurements such as H3S and LaH10, and pressure is not an input of the model)"
)
NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class ModelRef:
    """A Tc model as the pages name it."""

    name: str  # checkpoint stem
    sha256: str
    kind: str = "tc_regressor"

    @property
    def short_hash(self) -> str:
        return self.sha256[:SHORT_HASH] if self.sha256 else "?"

    @property
    def high_pressure(self) -> bool:
        return is_hydride_card({"kind": self.kind}) or self.name == HYDRIDE_STEM

    @property
    def label(self) -> str:
        return f"{self.name} · {self.short_hash}"


def is_hydride_card(card: Mapping[str, Any] | None) -> bool:
    return str((card or {}).get("kind", "")).startswith(HYDRIDE_KIND)


def model_ref(path: str | Path, sha256: str = "", card: Mapping[str, Any] | None = None) -> ModelRef:
    """ModelRef of a checkpoint; its card is read (JSON only) when not given."""
    card = card if card is not None else _read_card(path)
    return ModelRef(
        Path(str(path)).stem or "?", str(sha256 or card.get("sha256", "")), str(card.get("kind", "tc_regressor"))
    )


def model_ref_of(model: Any) -> ModelRef:
    """ModelRef of a loaded TcEnsemble."""
    return model_ref(getattr(model, "path", "") or "model", getattr(model, "sha256", ""), getattr(model, "card", {}))


def run_model_ref(run_config: Mapping[str, Any]) -> ModelRef | None:
    """The model a design run used (its config.json records checkpoint_path and checkpoint_sha256)."""
    path = run_config.get("checkpoint_path")
    if not path:
        return None
    card = _read_card(path)
    return model_ref(path, str(run_config.get("checkpoint_sha256") or ""), card)


def _read_card(path: str | Path) -> dict[str, Any]:
    try:
        card = json.loads(Path(str(path)).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return {}
    return card if isinstance(card, dict) else {}


def read_card(path: str | Path) -> dict[str, Any]:
    """A checkpoint's card ({} when missing or unreadable)."""
    return _read_card(path)


def trees_card(path: str | Path) -> dict[str, Any]:
    """The card of the trees beside a checkpoint (model/trees.py; {} when there are none)."""
    from gdmcd_core.model.trees import trees_path

    return _read_card(trees_path(path))


def model_caption(ref: ModelRef | None) -> str:
    """'Tc predicted by model `tc_default` (SHA-256 61bc315d…)' plus the high-pressure note for the hydride model."""
    if ref is None:
        return "Tc predicted by a model this run did not record"
    text = f"Tc predicted by model `{ref.name}` (SHA-256 {ref.short_hash}…)"
    return f"{text} — {HIGH_PRESSURE_NOTE}" if ref.high_pressure else text


def hydride_checkpoint(options: Iterable[str | Path]) -> tuple[str | None, str]:
    """(the hydride model among `options`, or None; a one-line note saying which model the hydride preset uses)."""
    opts = [str(o) for o in options]
    for o in opts:
        if is_hydride_card(_read_card(o)) or Path(o).stem == HYDRIDE_STEM:
            return o, f"Tc model switched to the hydride model `{Path(o).stem}` ({HIGH_PRESSURE_NOTE})"
    return None, (
        f"The hydride model (checkpoints/{HYDRIDE_STEM}.pt) is not present, so the general model stays in use: "
        "it saw few hydrides, and its Tc for H-rich compositions is a rough extrapolation. Train it with "
        "`gdmcd train --task hydride --out checkpoints/tc_hydride.pt`."
    )


# -- the model card ----------------------------------------------------------------------------------

COUNT_LABELS = {"supercon": "SuperCon", "nonsc": "non-superconductors"}


def dataset_counts_table(counts: Mapping[str, Any] | None) -> pd.DataFrame:
    """Card dataset_counts -> one row per split (SuperCon, non-superconductors, total), then one row per other
    count (e.g. 'train rows after replication') with its number under 'total'."""
    counts = counts or {}
    rows: dict[str, dict[str, Any]] = {}
    other = []
    for key, v in counts.items():
        part, _, kind = str(key).partition("_")
        if part in ("train", "val", "test") and kind in COUNT_LABELS:
            rows.setdefault(part, {})[COUNT_LABELS[kind]] = v
        else:
            other.append({"split": str(key).replace("_", " "), "total": v})
    names = {"train": "train", "val": "validation", "test": "test"}
    out = [{"split": names[p], **rows[p], "total": sum(rows[p].values())} for p in names if p in rows]
    table = pd.DataFrame(out + other, columns=["split", *COUNT_LABELS.values(), "total"])
    for c in table.columns[1:]:
        table[c] = pd.array(table[c], dtype="Int64")
    return table


def training_summary(card: Mapping[str, Any]) -> str:
    """'trained 2026-12-01T16:05:44Z on CPU (…) in 21.9 min'; a missing field reads 'not recorded'."""
    created = card.get("created") or NOT_RECORDED
    hw = card.get("hardware") or f"hardware {NOT_RECORDED}"
    secs = card.get("train_seconds")
    dur = f"{secs / 60:.1f} min" if isinstance(secs, (int, float)) else f"a time {NOT_RECORDED}"
    return f"trained {created} on {hw} in {dur}"


def headline_mae(card: Mapping[str, Any]) -> tuple[str, str]:
    """(label, value) of the card's SuperCon test MAE, or the closest metric it records, or 'not recorded'."""
    m = card.get("metrics_test") or card.get("metrics") or {}
    v = m.get("supercon_test_mae_k")
    if isinstance(v, (int, float)):
        return "SuperCon test MAE", f"{v:.2f} K"
    v = m.get("supercon_nonhydride_test_mae_k")
    if isinstance(v, (int, float)):
        return "SuperCon non-hydride test MAE", f"{v:.2f} K"
    return "SuperCon test MAE", NOT_RECORDED


def missing_card_fields(card: Mapping[str, Any]) -> list[str]:
    """The card fields the Model page shows that this card lacks."""
    want = {
        "created": "training date",
        "hardware": "hardware",
        "train_seconds": "training time",
        "dataset_counts": "dataset counts",
        "data_config": "data split",
    }
    out = [label for k, label in want.items() if not card.get(k)]
    if headline_mae(card)[1] == NOT_RECORDED:
        out.append("SuperCon test MAE")
    return out
