"""Safe output and paths: CSV cells a spreadsheet will not execute, paths that stay in the runs folder.

CSV formula injection (OWASP "CSV Injection"): a cell starting with '=', '+', '-', '@', tab or
carriage return may be run as a formula when the file is opened in a spreadsheet. Such cells
get a leading "'" so they show as text.

Decisions:
* Only `str` cells are touched. Numbers (int, float, numpy numbers, including -3.2) stay numbers,
  so numeric columns keep their dtype and values.
* A cell that starts with a control character (tab, carriage return, line feed, ...), or whose
  first character after leading whitespace and control characters is '=', '+', '-' or '@'
  (" =1", "\r=1+1"), gets the prefix too: spreadsheets strip such leading characters.
* A `str` cell that is exactly a plain number ("-3.2", "+1", "-1e-5") is left as is: a
  spreadsheet reads it as that number, not as a formula, and prefixing would change the data.
* Column names are cells too (the header row) and are sanitized the same way.
* `csv_bytes` writes the sanitized table with every cell that holds a control character in
  quotes: pandas quotes only a line feed, and a bare carriage return would start a new row
  whose first cell a spreadsheet runs as a formula.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

# First characters that make a spreadsheet treat a cell as a formula (OWASP CSV Injection list).
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
# Prefix that makes a spreadsheet show the cell as text (not part of the displayed value).
TEXT_PREFIX = "'"
_PLAIN_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LEADING_BLANK = re.compile(r"[\s\x00-\x1f\x7f]*")


class UnsafePathError(ValueError):
    """A path that would leave its root folder (.., absolute path, or a symlink pointing out)."""


def sanitize_csv_cell(value: Any) -> Any:
    """`value` with a leading "'" if it is a str a spreadsheet would run as a formula; else unchanged.

    >>> sanitize_csv_cell("=HYPERLINK(\\"http://x\\")"), sanitize_csv_cell(-3.2), sanitize_csv_cell("-3.2")
    ('\\'=HYPERLINK("http://x")', -3.2, '-3.2')
    """
    if not isinstance(value, str) or not value:
        return value
    if _CONTROL.match(value):
        return TEXT_PREFIX + value
    rest = value[_LEADING_BLANK.match(value).end() :]
    if not rest.startswith(FORMULA_TRIGGERS) or _PLAIN_NUMBER.fullmatch(rest.rstrip()):
        return value
    return TEXT_PREFIX + value


def _map_text(df: pd.DataFrame, fn: Callable[[Any], Any]) -> pd.DataFrame:
    """A copy of `df` with `fn` applied to every cell of its text columns and to its column names."""
    out = df.copy()
    for col in out.columns:
        s = out[col]
        if pd.api.types.is_object_dtype(s.dtype) or pd.api.types.is_string_dtype(s.dtype):
            # a list, not Series.map: map turns None into NaN; the dtype (object or string) is kept
            out[col] = pd.Series([fn(v) for v in s], index=s.index, dtype=s.dtype)
    out.columns = [fn(c) for c in out.columns]
    return out


def sanitize_table(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of `df` safe to write as CSV for spreadsheets: text cells and column names sanitized.

    Numeric, boolean and datetime columns are returned unchanged (same dtype and values)."""
    return _map_text(df, sanitize_csv_cell)


def csv_bytes(df: pd.DataFrame) -> bytes:
    """`df` as UTF-8 CSV (no index) for a spreadsheet: cells sanitized (`sanitize_table`), and every cell that
    holds a control character in quotes, so that none starts a new row or column where a spreadsheet would read
    it. Every other cell is written as pandas writes it."""
    held: dict[str, str] = {}
    tag = f"q{secrets.token_hex(8)}n"  # a placeholder pandas writes unquoted, replaced by the quoted cell

    def hold(value: Any) -> Any:
        if not isinstance(value, str) or not _CONTROL.search(value):
            return value
        key = f"{tag}{len(held)}z"
        held[key] = '"' + value.replace('"', '""') + '"'
        return key

    text = _map_text(sanitize_table(df), hold).to_csv(index=False)
    if held:
        text = re.sub(re.escape(tag) + r"\d+z", lambda m: held.get(m.group(), m.group()), text)
    return text.encode()


def safe_child(root: str | Path, name: str | Path) -> Path:
    """The resolved path of `name` inside `root`, refusing anything that leaves `root`.

    `name` is relative ("run-id/candidates.csv"). Refused with UnsafePathError (a ValueError, one
    line): empty or NUL-containing names, absolute paths, '..' that climbs out, and symlinks
    (the file itself or any folder on the way) that resolve outside root. A symlink that stays
    inside root is allowed. The path need not exist.
    """
    text = str(name)
    if not text or "\x00" in text:
        raise UnsafePathError(f"invalid file name {text!r}")
    if Path(text).is_absolute():
        raise UnsafePathError(f"{text!r} is an absolute path; expected a name inside {root}")
    base = Path(root).expanduser().resolve()
    target = (base / text).resolve()
    if target != base and not target.is_relative_to(base):
        raise UnsafePathError(f"{text!r} resolves to {target}, outside {base}")
    return target
