"""The lab-results file: a CSV with one measured sample per row, checked row by row and stored in the campaign.

Columns (header names, any order; extra columns are kept, as JSON, with the row):
    formula       required; the project's strict formula grammar (chem.composition.parse_formula)
    outcome       required; superconducting | no_transition | not_formed | pending
    tc_k          K; required when superconducting (the onset unless tc_criterion says otherwise), else empty
    tc_criterion  onset | midpoint | zero_resistance | susceptibility (default onset when superconducting)
    t_min_k       K; the lowest temperature measured (for no_transition: Tc < t_min_k)
    pressure_gpa  GPa; default 0
    sample_id     the lab's id; a row with the sample_id of a stored measurement and other content corrects it
    date          YYYY-MM-DD
    notes         free text
A bad row gets one message naming its row (as a spreadsheet numbers it: the header is row 1) and field and is skipped; the good rows are stored, in transactions of
CHUNK_ROWS rows, so a killed import keeps whole rows only and a second import of the file stores the rest.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import math
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path

from gdmcd_core.campaign import store
from gdmcd_core.chem.composition import FormulaError, composition_key, parse_formula

MAX_FILE_BYTES = 5 * 1024 * 1024
CHUNK_ROWS = 100
OUTCOMES = ("superconducting", "no_transition", "not_formed", "pending")
CRITERIA = ("onset", "midpoint", "zero_resistance", "susceptibility")
COLUMNS = ("formula", "outcome", "tc_k", "tc_criterion", "t_min_k", "pressure_gpa", "sample_id", "date", "notes")
MAX_TEMPERATURE_K = 1000.0
MAX_PRESSURE_GPA = 1000.0


@dataclass
class ImportResult:
    stored: int = 0
    unchanged: int = 0
    superseded: int = 0
    unproposed: int = 0
    errors: list[str] = field(default_factory=list)


class RowError(ValueError):
    """A bad field: (field name, what is wrong)."""


def write_template(path: str | Path) -> None:
    """The header row of a results file (see the module docstring for each column)."""
    Path(path).write_text(",".join(COLUMNS) + "\n", encoding="utf-8")


def formula_key(formula: str) -> str:
    """The composition's key (atomic fractions, 4 decimals): 'MgB2' and 'Mg2B4' share it."""
    return composition_key(parse_formula(formula))


def _number(row: dict, name: str, low: float, high: float) -> float | None:
    text = (row.get(name) or "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise RowError(name, f"{text!r} is not a number") from None
    if not math.isfinite(value) or not low <= value <= high:
        raise RowError(name, f"{text} is outside {low:g}..{high:g}")
    return value


def _formula(row: dict) -> str:
    text = (row.get("formula") or "").strip()
    if not text:
        raise RowError("formula", "empty")
    try:
        parse_formula(text)
    except FormulaError as exc:
        raise RowError("formula", str(exc)) from None
    return text


def _outcome_fields(row: dict) -> dict:
    outcome = (row.get("outcome") or "").strip().lower()
    if outcome not in OUTCOMES:
        raise RowError("outcome", f"{outcome!r} is not one of {', '.join(OUTCOMES)}")
    tc = _number(row, "tc_k", 0.0, MAX_TEMPERATURE_K)
    if outcome == "superconducting" and tc is None:
        raise RowError("tc_k", "required when outcome is superconducting")
    if outcome != "superconducting" and tc is not None:
        raise RowError("tc_k", f"given for outcome {outcome}; leave it empty")
    criterion = (row.get("tc_criterion") or "").strip().lower().replace(" ", "_")
    if criterion and criterion not in CRITERIA:
        raise RowError("tc_criterion", f"{criterion!r} is not one of {', '.join(CRITERIA)}")
    criterion = criterion or ("onset" if outcome == "superconducting" else "")
    return {"outcome": outcome, "tc_k": tc, "tc_criterion": criterion or None}


def _date(row: dict) -> str | None:
    text = (row.get("date") or "").strip()
    if not text:
        return None
    try:
        return datetime.date.fromisoformat(text).isoformat()
    except ValueError:
        raise RowError("date", f"{text!r} is not a date YYYY-MM-DD") from None


def check_row(row: dict) -> dict:
    """A row's stored fields, or RowError naming the bad field."""
    if None in row:
        raise RowError("columns", "more values than header columns")
    values = {"formula": _formula(row), **_outcome_fields(row)}
    values["t_min_k"] = _number(row, "t_min_k", 0.0, MAX_TEMPERATURE_K)
    values["pressure_gpa"] = _number(row, "pressure_gpa", 0.0, MAX_PRESSURE_GPA) or 0.0
    values["date"] = _date(row)
    for name in ("sample_id", "notes"):
        values[name] = (row.get(name) or "").strip() or None
    extra = {k: v for k, v in row.items() if k not in COLUMNS and k is not None and (v or "").strip()}
    values["extra_json"] = json.dumps(extra, sort_keys=True)
    return values


def read_rows(path: str | Path) -> list[tuple[int, dict]]:
    """(line number, row) for every data row of the file. Raises store.CampaignError (one line) for a file that
    is missing, too large, not UTF-8 text or has no formula/outcome columns."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise store.CampaignError(f"{path} is {size / 2**20:.1f} MB; the limit is {MAX_FILE_BYTES / 2**20:g} MB")
        text = path.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise store.CampaignError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise store.CampaignError(f"{path} is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in ("formula", "outcome") if c not in header]
    if missing:
        raise store.CampaignError(
            f"{path}: no column {', '.join(missing)} in the header (see `gdmcd campaign template`)"
        )
    reader.fieldnames = header
    return [(reader.line_num, row) for row in reader]


def _proposed_keys(conn: sqlite3.Connection, cid: int) -> set[str]:
    keys = set()
    for (formula,) in conn.execute("SELECT DISTINCT formula FROM proposals WHERE campaign_id = ?", (cid,)):
        try:
            keys.add(formula_key(formula))
        except FormulaError:
            continue
    return keys


def _store_row(conn: sqlite3.Connection, cid: int, values: dict, context: dict, result: ImportResult) -> None:
    digest = store.row_hash(values)
    if conn.execute("SELECT 1 FROM measurements WHERE campaign_id = ? AND row_hash = ?", (cid, digest)).fetchone():
        result.unchanged += 1
        return
    old = None
    if values["sample_id"]:
        sql = store.CURRENT_MEASUREMENTS + " AND m.sample_id = ? ORDER BY m.id DESC"
        old = conn.execute(sql, (cid, values["sample_id"])).fetchone()
    unproposed = formula_key(values["formula"]) not in context["proposed"]
    row = {"campaign_id": cid, **values, "unproposed": int(unproposed), "row_hash": digest, "created": time.time()}
    row.update(round_id=context["round_id"], source_file=context["file"], source_row=context["line"])
    store.insert(conn, "measurements", {**row, "supersedes": old["id"] if old else None})
    result.stored += 1
    result.superseded += old is not None
    result.unproposed += unproposed


def import_results(conn: sqlite3.Connection, name: str, path: str | Path) -> ImportResult:
    """Check and store the rows of a results file in campaign `name`; see the module docstring."""
    cid = store.campaign_id(conn, name)
    rows = read_rows(path)
    result = ImportResult()
    last_round = conn.execute("SELECT MAX(id) FROM rounds WHERE campaign_id = ?", (cid,)).fetchone()[0]
    context = {"proposed": _proposed_keys(conn, cid), "round_id": last_round, "file": Path(path).name}
    good = []
    for line, row in rows:
        try:
            good.append((line, check_row(row)))
        except RowError as exc:
            field_name, why = exc.args
            result.errors.append(f"{Path(path).name}: row {line}: {field_name}: {why}")
    for start in range(0, len(good), CHUNK_ROWS):
        with conn:
            for line, values in good[start : start + CHUNK_ROWS]:
                _store_row(conn, cid, values, {**context, "line": line}, result)
    return result
