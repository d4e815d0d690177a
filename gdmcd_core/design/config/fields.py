"""The plumbing of `DesignConfig` (config.py): field metadata for the CLI and the form, and TOML text."""

from __future__ import annotations

import json
import math
from dataclasses import field, fields
from typing import Any


def as_tuple(v: Any) -> tuple:
    if v is None:
        return ()
    if isinstance(v, str):
        return tuple(s for s in v.replace(",", " ").split() if s)
    return tuple(v)


GROUPS = ("start", "constraints", "optimization", "run")  # option groups of the CLI and sections of the form


def opt(
    default: Any,
    help: str,
    group: str,
    *,
    choices: tuple | None = None,
    choice_labels: dict[str, str] | None = None,
    lo: float | None = None,
    hi: float | None = None,
    label: str = "",
    generic: bool = True,
) -> Any:
    """A DesignConfig field with what the CLI and the app need to offer it.

    help: one line for --help and the form's tooltip; choices: allowed values; choice_labels: {value: label} of the
    choices, in the order the form offers them (default: the values themselves, in the order of `choices`);
    lo/hi: the range the form offers (the config's own checks are in `validate`); label: the form's label
    (default: from the name); generic=False: the CLI and the form handle the field with their own widgets (pins,
    N range, ...).
    """
    if choice_labels is not None and set(choice_labels) != set(choices or ()):
        raise ValueError(f"choice_labels {tuple(choice_labels)} must label exactly the choices {choices}")
    meta = {
        "help": help,
        "group": group,
        "choices": choices,
        "choice_labels": choice_labels,
        "lo": lo,
        "hi": hi,
        "label": label,
        "generic": generic,
    }
    return field(default=default, metadata=meta)


def toml_text(d: dict[str, Any], pins: tuple) -> str:
    """A config's dict (DesignConfig.to_dict) as TOML: flat keys; pins as an array of inline tables."""
    lines = []
    for k, v in d.items():
        if k == "pins":
            items = []
            for p in pins:
                mode = f', mode = "{p.mode}"' if p.mode else ""
                items.append(f'{{ symbol = "{p.symbol}", fraction = {p.fraction!r}{mode} }}')
            lines.append(f"pins = [{', '.join(items)}]")
        else:
            lines.append(f"{k} = {_toml_value(v)}")
    return "\n".join(lines) + "\n"


def parse_toml(text: str) -> dict[str, Any]:
    """TOML text -> a config dict (a single [design] table is unwrapped)."""
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]
    d = tomllib.loads(text)
    if "design" in d and isinstance(d["design"], dict) and len(d) == 1:
        d = d["design"]
    if "pins" in d:
        d["pins"] = [{k: v for k, v in p.items()} if isinstance(p, dict) else p for p in d["pins"]]
    return d


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v) if not (isinstance(v, float) and math.isinf(v)) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def check_field_types(cfg: Any) -> None:
    """ValueError (one line naming the field) for a value of the wrong type, a float that is not finite, or a
    value outside the field's choices."""
    for f in fields(cfg):
        v, d = getattr(cfg, f.name), f.default
        if isinstance(d, bool):
            ok = isinstance(v, bool)
        elif isinstance(d, (int, float)):
            ok = isinstance(v, (int, float) if isinstance(d, float) else int) and not isinstance(v, bool)
            if ok and isinstance(d, float) and not math.isfinite(v):
                raise ValueError(f"{f.name} must be a finite number, got {v}")
        else:
            ok = isinstance(v, type(d)) if isinstance(d, (str, tuple)) else True
        if not ok:
            raise ValueError(f"{f.name} must be {type(d).__name__}, got {type(v).__name__} {v!r}")
        choices = f.metadata.get("choices")
        if choices and v not in choices:
            raise ValueError(f"{f.name} must be one of {tuple(choices)}, got {v!r}")
