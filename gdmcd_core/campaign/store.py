"""The campaign database: one SQLite file, `campaigns.sqlite`, in $GDMCD_CAMPAIGNS_DIR or ./campaigns.

Append-only: rows are inserted, never updated or deleted. A corrected measurement is a new row whose `supersedes`
names the row it corrects; every row carries a content hash (`row_hash`), unique per campaign, so storing the same
content twice stores it once. Every write is a transaction (`with conn:`); the schema's version is in
`schema_version`, and `MIGRATIONS` lists the SQL that brings a database from each version to the next.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import time
from collections.abc import Iterable
from pathlib import Path

CAMPAIGNS_ENV = "GDMCD_CAMPAIGNS_DIR"
DEFAULT_CAMPAIGNS_DIR = "campaigns"
DB_FILE = "campaigns.sqlite"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")

SCHEMA_V1 = """
CREATE TABLE campaigns (
    id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created REAL NOT NULL);
CREATE TABLE campaign_runs (
    id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL REFERENCES campaigns(id), run_id TEXT NOT NULL,
    run_dir TEXT NOT NULL, checkpoint_sha256 TEXT, n_candidates INTEGER NOT NULL, added REAL NOT NULL,
    UNIQUE (campaign_id, run_dir));
CREATE TABLE rounds (
    id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL REFERENCES campaigns(id), number INTEGER NOT NULL,
    created REAL NOT NULL, UNIQUE (campaign_id, number));
CREATE TABLE proposals (
    id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL REFERENCES campaigns(id), run_id TEXT NOT NULL,
    formula TEXT NOT NULL, tc_k REAL, sigma_k REAL, checkpoint_sha256 TEXT, parent_formula TEXT,
    is_mixture INTEGER, is_known INTEGER, row_hash TEXT NOT NULL, created REAL NOT NULL,
    UNIQUE (campaign_id, row_hash));
CREATE TABLE batches (
    id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    round_id INTEGER NOT NULL REFERENCES rounds(id), strategy TEXT NOT NULL, settings_json TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE batch_items (
    id INTEGER PRIMARY KEY, batch_id INTEGER NOT NULL REFERENCES batches(id),
    proposal_id INTEGER NOT NULL REFERENCES proposals(id), slot INTEGER NOT NULL, score_k REAL, reason TEXT,
    UNIQUE (batch_id, slot));
CREATE TABLE measurements (
    id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL REFERENCES campaigns(id),
    round_id INTEGER REFERENCES rounds(id), formula TEXT NOT NULL, outcome TEXT NOT NULL, tc_k REAL,
    tc_criterion TEXT, t_min_k REAL, pressure_gpa REAL NOT NULL, sample_id TEXT, date TEXT, notes TEXT,
    extra_json TEXT NOT NULL, unproposed INTEGER NOT NULL, source_file TEXT, source_row INTEGER,
    supersedes INTEGER REFERENCES measurements(id), row_hash TEXT NOT NULL, created REAL NOT NULL,
    UNIQUE (campaign_id, row_hash));
CREATE TABLE model_versions (
    id INTEGER PRIMARY KEY, campaign_id INTEGER NOT NULL REFERENCES campaigns(id), checkpoint_path TEXT NOT NULL,
    sha256 TEXT NOT NULL, parent_id INTEGER REFERENCES model_versions(id), measurement_ids_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX measurements_by_sample ON measurements (campaign_id, sample_id);
CREATE INDEX measurements_by_supersedes ON measurements (supersedes);
CREATE INDEX proposals_by_campaign ON proposals (campaign_id);
"""
# version 2: the checkpoint a campaign starts from (NULL: checkpoints/tc_default.pt), its model version 0
SCHEMA_V2 = "ALTER TABLE campaigns ADD COLUMN base_checkpoint TEXT"
# MIGRATIONS[i] brings a database at version i to version i + 1 (version 0: empty file).
MIGRATIONS: tuple[str, ...] = (SCHEMA_V1, SCHEMA_V2)
SCHEMA_VERSION = len(MIGRATIONS)
TABLES = (
    "campaigns",
    "campaign_runs",
    "rounds",
    "proposals",
    "batches",
    "batch_items",
    "measurements",
    "model_versions",
)


class CampaignError(ValueError):
    """Bad input for a campaign operation (its message is one line)."""


def campaigns_dir(root: str | Path | None = None) -> Path:
    """The campaigns folder: `root`, else $GDMCD_CAMPAIGNS_DIR, else ./campaigns (beside ./runs); resolved."""
    return Path(root or os.environ.get(CAMPAIGNS_ENV) or DEFAULT_CAMPAIGNS_DIR).expanduser().resolve()


def row_hash(values: dict) -> str:
    """SHA-256 (hex) of a row's content: its fields as canonical JSON."""
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()


def connect(root: str | Path | None = None) -> sqlite3.Connection:
    """Open (creating folder and schema when missing) the campaign database, migrated to SCHEMA_VERSION."""
    folder = campaigns_dir(root)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(folder / DB_FILE, timeout=30.0)
    except (OSError, sqlite3.Error) as exc:
        raise CampaignError(f"cannot open the campaign database in {folder}: {exc}") from None
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute("PRAGMA journal_mode = WAL")
    migrate(conn)
    return conn


def schema_version(conn: sqlite3.Connection) -> int:
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not has:
        return 0
    row = conn.execute("SELECT MAX(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> int:
    """Apply the missing migrations, each in one transaction; returns the version reached."""
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER PRIMARY KEY, applied REAL NOT NULL)")
    version = schema_version(conn)
    if version > SCHEMA_VERSION:
        raise CampaignError(f"the campaign database has schema {version}, newer than this code's {SCHEMA_VERSION}")
    for v in range(version, SCHEMA_VERSION):
        with conn:
            for statement in filter(str.strip, MIGRATIONS[v].split(";")):
                conn.execute(statement)
            conn.execute("INSERT INTO schema_version (version, applied) VALUES (?, ?)", (v + 1, time.time()))
    return SCHEMA_VERSION


def insert(conn: sqlite3.Connection, table: str, values: dict) -> int:
    """Insert one row (inside the caller's transaction); returns its id."""
    cols = ", ".join(values)
    marks = ", ".join("?" for _ in values)
    cur = conn.execute(f"INSERT INTO {table} ({cols}) VALUES ({marks})", tuple(values.values()))
    return int(cur.lastrowid)


# -- campaigns ---------------------------------------------------------------------------------


def validate_name(name: str) -> str:
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise CampaignError(f"invalid campaign name {name!r}: letters, digits, '.', '-' and '_' only (max 80)")
    return name


def new_campaign(conn: sqlite3.Connection, name: str, base_checkpoint: str | None = None) -> int:
    """Create campaign `name`, starting from `base_checkpoint` (None: checkpoints/tc_default.pt); returns its id."""
    validate_name(name)
    try:
        with conn:
            values = {"name": name, "created": time.time(), "base_checkpoint": base_checkpoint}
            return insert(conn, "campaigns", values)
    except sqlite3.IntegrityError:
        raise CampaignError(f"campaign {name!r} exists already") from None


def campaign_id(conn: sqlite3.Connection, name: str) -> int:
    row = conn.execute("SELECT id FROM campaigns WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise CampaignError(f"no campaign named {name!r} (create it with `gdmcd campaign new {name}`)")
    return int(row["id"])


def add_proposals(conn: sqlite3.Connection, cid: int, run: dict, rows: Iterable[dict]) -> int:
    """Record a run and its candidate rows in one transaction; returns how many rows were new."""
    rows = list(rows)
    now = time.time()
    with conn:
        try:
            insert(conn, "campaign_runs", {"campaign_id": cid, **run, "n_candidates": len(rows), "added": now})
        except sqlite3.IntegrityError:
            raise CampaignError(f"run {run['run_dir']} is in this campaign already") from None
        before = conn.total_changes
        for r in rows:
            values = {"campaign_id": cid, "run_id": run["run_id"], "checkpoint_sha256": run["checkpoint_sha256"], **r}
            values["row_hash"] = row_hash(values)
            cols = ", ".join([*values, "created"])
            marks = ", ".join("?" for _ in range(len(values) + 1))
            conn.execute(f"INSERT OR IGNORE INTO proposals ({cols}) VALUES ({marks})", (*values.values(), now))
        return conn.total_changes - before


def counts(conn: sqlite3.Connection, cid: int) -> dict[str, int]:
    """How many rows of each kind the campaign holds; `measurements` counts the current ones (not superseded)."""
    one = lambda sql: int(conn.execute(sql, (cid,)).fetchone()[0])  # noqa: E731
    return {
        "runs": one("SELECT COUNT(*) FROM campaign_runs WHERE campaign_id = ?"),
        "proposals": one("SELECT COUNT(*) FROM proposals WHERE campaign_id = ?"),
        "rounds": one("SELECT COUNT(*) FROM rounds WHERE campaign_id = ?"),
        "batches": one("SELECT COUNT(*) FROM batches WHERE campaign_id = ?"),
        "measurements": one(f"SELECT COUNT(*) FROM ({CURRENT_MEASUREMENTS})"),
        "measurement_rows": one("SELECT COUNT(*) FROM measurements WHERE campaign_id = ?"),
        "model_versions": one("SELECT COUNT(*) FROM model_versions WHERE campaign_id = ?"),
    }


# The campaign's measurements that no later row supersedes (one `?`: the campaign id).
CURRENT_MEASUREMENTS = (
    "SELECT * FROM measurements m WHERE m.campaign_id = ? "
    "AND NOT EXISTS (SELECT 1 FROM measurements s WHERE s.supersedes = m.id)"
)


def current_measurements(conn: sqlite3.Connection, cid: int) -> list[sqlite3.Row]:
    return conn.execute(CURRENT_MEASUREMENTS + " ORDER BY m.id", (cid,)).fetchall()


def table_rows(conn: sqlite3.Connection, table: str, cid: int) -> list[dict]:
    """Every row of `table` (one of TABLES) belonging to the campaign, oldest first."""
    if table == "campaigns":
        sql = "SELECT * FROM campaigns WHERE id = ?"
    elif table == "batch_items":
        sql = "SELECT i.* FROM batch_items i JOIN batches b ON b.id = i.batch_id WHERE b.campaign_id = ? ORDER BY i.id"
    else:
        sql = f"SELECT * FROM {table} WHERE campaign_id = ? ORDER BY id"
    return [dict(r) for r in conn.execute(sql, (cid,)).fetchall()]
