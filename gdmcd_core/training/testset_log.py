"""The test log: one line each time a figure on a checkpoint's held-out test split is computed.

Every choice (architecture, training rounds, calibration, tree settings, the classifier) must be made on
validation rows. A test figure, once seen, can still steer the next choice; the log makes that visible: it
records when test figures were computed, by which command, for which weights, so a reader can tell whether a
choice came after them. It lives in the repository (bench/results/test_log.md), is append-only, and is written by
`evaluate.evaluate_checkpoint` for the test part (so by `gdmcd evaluate`, `gdmcd train`, `gdmcd merge`,
`gdmcd trees` and the benches that call it) and by `bench/model_card.py` for the figures it computes itself.

$GDMCD_TEST_LOG names another file (the tests use one of their own); without it, and outside a checkout that has
bench/results/, nothing is written.
"""

from __future__ import annotations

import os
import shlex
import sys
import time
from pathlib import Path

from gdmcd_core.util import REPO_ROOT

LOG_ENV = "GDMCD_TEST_LOG"
DEFAULT_LOG = REPO_ROOT / "bench" / "results" / "test_log.md"
HEADER = (
    "# Test log\n\n"
    "One line each time a figure on a held-out test split was computed (append-only; written by\n"
    "`gdmcd_core/training/testset_log.py`). Choices are made on validation rows; a choice made after a line here\n"
    "has seen that line's figures.\n\n"
    "| date (UTC) | command | checkpoint SHA-256 | figures |\n|---|---|---|---|\n"
)
MAX_COMMAND = 200  # characters of the command line kept


def log_path() -> Path | None:
    """$GDMCD_TEST_LOG when set, else bench/results/test_log.md of this checkout (None outside one)."""
    env = os.environ.get(LOG_ENV, "").strip()
    if env:
        return Path(env)
    return DEFAULT_LOG if DEFAULT_LOG.parent.is_dir() else None


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def current_command() -> str:
    """The command line of this process (its program relative to the checkout, else without its folder),
    shortened."""
    argv = [_program(sys.argv[0]) if sys.argv else "python", *sys.argv[1:]]
    text = shlex.join(argv)
    return text if len(text) <= MAX_COMMAND else text[: MAX_COMMAND - 1] + "…"


def _program(path: str) -> str:
    """'bench/model_card.py' for a script of this checkout (`python -m bench.model_card`), else the file name."""
    try:
        return Path(path).resolve().relative_to(REPO_ROOT).as_posix() if Path(path).suffix == ".py" else Path(path).name
    except ValueError:
        return Path(path).name


def log_test_figures(checkpoint_sha256: str, figures: str, command: str | None = None) -> None:
    """Append one line: now (UTC), the command (default: this process's), the checkpoint's SHA-256 (first 12
    characters) and what was computed. A log that cannot be written is skipped with one warning line (a figure
    is never withheld for it)."""
    path = log_path()
    if path is None:
        return
    stamp = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    line = (
        f"| {stamp} | `{_cell(command or current_command())}` | {_cell(checkpoint_sha256[:12])} | {_cell(figures)} |\n"
    )
    try:
        new = not path.is_file() or path.stat().st_size == 0
        with path.open("a", encoding="utf-8") as fh:
            fh.write((HEADER if new else "") + line)
    except OSError as exc:
        print(f"gdmcd: warning: test log {path} not written ({exc})", file=sys.stderr)


__all__ = ["DEFAULT_LOG", "LOG_ENV", "current_command", "log_path", "log_test_figures"]
