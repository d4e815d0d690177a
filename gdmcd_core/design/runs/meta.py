"""A run's name and tags: `meta.json` in its run folder, written atomically, editable at any time.

    {"name": "hydrides, N <= 12", "tags": ["hydride", "paper"]}

The file is optional (a run without it has no name and no tags) and separate from config.json, so
renaming or tagging a run never touches what the run was made with. A file that cannot be read
gives an empty RunMeta, never an exception (a listing must not fail on one bad folder).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from gdmcd_core.util import atomic_write_text

META_FILE = "meta.json"
MAX_NAME = 80
MAX_TAGS = 20
MAX_TAG = 32
TAG_RE = re.compile(r"^[\w.+-]+( [\w.+-]+)*$")  # words of letters, digits, _ . + -, single spaces between


@dataclass(frozen=True)
class RunMeta:
    name: str = ""
    tags: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "tags": list(self.tags)}


def clean_name(name: str | None) -> str:
    """A run name: one line, trimmed, at most MAX_NAME characters (ValueError otherwise)."""
    text = " ".join(str(name or "").split())
    if len(text) > MAX_NAME:
        raise ValueError(f"a run name has at most {MAX_NAME} characters (got {len(text)})")
    return text


def parse_tags(tags: str | Iterable[str] | None) -> tuple[str, ...]:
    """Tags from "a, b c" text (commas separate) or a list: trimmed, lower-cased, de-duplicated, in order.

    ValueError (one line naming the tag) for a tag with other characters, a too-long tag or too many."""
    items = tags.split(",") if isinstance(tags, str) else list(tags or ())
    out: list[str] = []
    for raw in items:
        tag = " ".join(str(raw).split()).lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG or not TAG_RE.match(tag):
            raise ValueError(
                f"tag {tag[:40]!r}: use letters, digits, spaces and _ . + - only, at most {MAX_TAG} characters"
            )
        if tag not in out:
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ValueError(f"at most {MAX_TAGS} tags per run (got {len(out)})")
    return tuple(out)


def read_meta(run_dir: str | Path) -> RunMeta:
    """The run's name and tags; an empty RunMeta when meta.json is missing or unreadable."""
    p = Path(run_dir) / META_FILE
    try:
        if p.is_symlink() or not p.is_file():
            return RunMeta()
        d = json.loads(p.read_text())
        return RunMeta(clean_name(d.get("name")), parse_tags(d.get("tags") or ()))
    except (OSError, ValueError, TypeError, AttributeError):
        return RunMeta()


def write_meta(run_dir: str | Path, name: str | None = None, tags: str | Iterable[str] | None = None) -> RunMeta:
    """Set the run's name and tags (validated; ValueError with a one-line message) and write meta.json
    atomically. Returns what was written."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"no run folder {run_dir}")
    meta = RunMeta(clean_name(name), parse_tags(tags))
    atomic_write_text(run_dir / META_FILE, json.dumps(meta.to_dict(), indent=2))
    return meta
