"""Campaigns: the SQLite store, the lab-results import, the diverse batch and the `gdmcd campaign` commands, on a
hand-written run folder in a temporary campaigns folder."""

from __future__ import annotations

import csv
import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from gdmcd_core.campaign import lab_csv, store
from gdmcd_core.campaign.propose import NOT_FORMED_RADIUS
from gdmcd_core.chem.composition import to_vector
from gdmcd_core.cli.main import main

REPO = Path(__file__).resolve().parents[1]
# (formula, Tc K, σ K, parent phase): two families and a few loners; Nb3Sn1.01 is 0.004 (L1) from Nb3Sn.
CANDIDATES = [
    ("Ba2Ca2Cu3HgO8", 130.0, 5.0, "HgBa2Ca2Cu3O8"),
    ("Ba2Ca2Cu3HgO9", 129.0, 5.0, "HgBa2Ca2Cu3O8"),
    ("Ba2SrCa2Cu3HgO9", 128.0, 5.0, "HgBa2Ca2Cu3O8"),
    ("YBa2Cu3O7", 115.0, 3.0, "YBa2Cu3O7"),
    ("YBa2Cu3O6.9", 114.0, 3.0, "YBa2Cu3O7"),
    ("LaFeAsO0.9F0.1", 40.0, 6.0, "LaFeAsO"),
    ("MgB2", 39.0, 2.0, "MgB2"),
    ("Nb3Sn", 18.0, 1.0, "Nb3Sn"),
    ("Nb3Sn1.01", 17.9, 1.0, "Nb3Sn"),
    ("Nb3Ge", 23.0, 1.5, "Nb3Ge"),
    ("V3Si", 17.0, 1.0, "V3Si"),
    ("NbN", 16.0, 1.0, "NbN"),
    ("MoC", 14.0, 2.0, ""),
    ("PbMo6S8", 14.5, 2.0, ""),
]
SHA = "ab" * 32


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "runs" / "run-a"
    folder.mkdir(parents=True)
    with open(folder / "candidates.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["rank", "integer_formula", "integer_tc_k", "integer_tc_std_k", "parent_formula", "is_mixture"])
        for i, (f, tc, sd, parent) in enumerate(CANDIDATES, 1):
            w.writerow([i, f, tc, sd, parent, "False"])
    (folder / "config.json").write_text(json.dumps({"checkpoint_sha256": SHA}))
    return folder


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "campaigns"
    monkeypatch.setenv(store.CAMPAIGNS_ENV, str(folder))
    return folder


def gdmcd(capsys, *argv: str) -> tuple[int, str, list[str]]:
    code = main(["campaign", *argv])
    out, err = capsys.readouterr()
    return code, out, [line for line in err.splitlines() if line]


def write_results(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", newline="") as fh:
        csv.writer(fh).writerows([list(lab_csv.COLUMNS) + ["furnace"], *rows])
    return path


def db_rows(root: Path) -> dict[str, int]:
    with sqlite3.connect(root / store.DB_FILE) as conn:
        return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in store.TABLES}


def status(capsys) -> dict:
    code, out, _ = gdmcd(capsys, "status", "lab", "--json")
    assert code == 0
    return json.loads(out)


def test_the_schema_is_created_versioned_and_migrated_once(root: Path):
    conn = store.connect()
    assert store.schema_version(conn) == store.SCHEMA_VERSION == len(store.MIGRATIONS)
    names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(store.TABLES) | {"schema_version"} <= names
    conn.close()
    conn = store.connect()  # a second open applies nothing again
    assert conn.execute("SELECT COUNT(*) FROM schema_version").fetchone()[0] == store.SCHEMA_VERSION
    assert (root / store.DB_FILE).is_file()


def test_the_loop_from_the_command_line(root: Path, run_dir: Path, tmp_path: Path, capsys):
    assert gdmcd(capsys, "new", "lab")[0] == 0
    assert gdmcd(capsys, "add-run", "lab", str(run_dir))[0] == 0
    code, out, _ = gdmcd(capsys, "propose", "lab", "--n", "10", "--json")
    batch = json.loads(out)
    assert code == 0 and len(batch) == 10
    assert len({b["formula"] for b in batch}) == 10 and {b["run_id"] for b in batch} == {"run-a"}
    assert {b["formula"] for b in batch} <= {c[0] for c in CANDIDATES}
    assert all(set(b) >= {"formula", "tc_k", "sigma_k", "reason"} for b in batch)

    good = [
        [batch[0]["formula"], "superconducting", "35.5", "onset", "", "", "s1", "2026-01-05", "", "A"],
        [batch[1]["formula"], "no_transition", "", "", "1.8", "", "s2", "", "", ""],
        ["Nb3Sn", "not_formed", "", "", "", "", "s3", "", "two phases", ""],
        ["CaC6", "superconducting", "11.5", "", "", "0", "s4", "", "", ""],  # never proposed
    ]
    bad = [
        ["Xq2O3", "pending", "", "", "", "", "", "", "", ""],
        ["MgB2", "superconducting", "", "", "", "", "", "", ""],
    ]
    results = write_results(tmp_path / "results.csv", [good[0], bad[0], good[1], good[2], bad[1], good[3]])
    code, out, err = gdmcd(capsys, "import", "lab", str(results))
    assert code == 0 and len(err) == 2, err
    assert "row 3: formula" in err[0] and "row 6: tc_k" in err[1]
    counts = status(capsys)
    assert counts["measurements"] == 4 and counts["model_versions"] == 0
    assert (counts["proposals"], counts["batches"], counts["runs"]) == (len(CANDIDATES), 1, 1)

    before = db_rows(root)
    code, _, err = gdmcd(capsys, "import", "lab", str(results))
    assert code == 0 and len(err) == 2 and db_rows(root) == before  # the same file again changes nothing

    corrected = write_results(tmp_path / "fix.csv", [[*good[0][:2], "36.0", *good[0][3:]]])
    assert gdmcd(capsys, "import", "lab", str(corrected))[0] == 0
    conn = store.connect()
    rows = conn.execute("SELECT id, tc_k, supersedes, unproposed, extra_json FROM measurements ORDER BY id").fetchall()
    assert len(rows) == 5 and status(capsys)["measurements"] == 4
    assert rows[-1]["supersedes"] == rows[0]["id"] and rows[-1]["tc_k"] == 36.0 and rows[0]["tc_k"] == 35.5
    assert [r["unproposed"] for r in rows] == [0, 0, 0, 1, 0]
    assert json.loads(rows[0]["extra_json"]) == {"furnace": "A"}

    code, out, _ = gdmcd(capsys, "propose", "lab", "--n", "10", "--json")
    again = {b["formula"] for b in json.loads(out)}
    assert again and not again & {g[0] for g in good} and not again & {b["formula"] for b in batch}
    assert "Nb3Sn1.01" not in again  # within NOT_FORMED_RADIUS of Nb3Sn, which failed to form
    assert abs(to_vector("Nb3Sn1.01") - to_vector("Nb3Sn")).sum() < NOT_FORMED_RADIUS


def test_the_batch_is_diverse(root: Path, run_dir: Path):
    """Three members of one family lead on Tc − σ; the second pick is from another family."""
    conn = store.connect()
    store.new_campaign(conn, "lab")
    from gdmcd_core.campaign.propose import Settings, add_run, propose

    add_run(conn, "lab", run_dir)
    picks = [b["formula"] for b in propose(conn, "lab", 3)]
    assert picks[:2] == ["Ba2Ca2Cu3HgO8", "YBa2Cu3O7"], picks
    store.new_campaign(conn, "plain")
    add_run(conn, "plain", run_dir)
    plain = [b["formula"] for b in propose(conn, "plain", 3, Settings(diversity_k=0.0, parent_k=0.0))]
    assert plain == ["Ba2Ca2Cu3HgO8", "Ba2Ca2Cu3HgO9", "Ba2SrCa2Cu3HgO9"]  # without the penalties: one family


def test_each_strategy_scores_as_documented():
    """greedy: Tc − κσ without diversity, from the very first slot; ucb: Tc + κσ; thompson: seeded draws."""
    import numpy as np

    from gdmcd_core.campaign.propose import Settings, choose

    pool = [
        {"formula": f, "x": to_vector(f), "tc_k": tc, "sigma_k": sd, "parent_formula": p}
        for f, tc, sd, p in reversed(CANDIDATES)  # the best last: no pick by position
    ]
    empty = {"measured": [], "failed": [], "sent": []}
    greedy = [c["formula"] for c in choose(pool, empty, 3, Settings(strategy="greedy"))]
    assert greedy == ["Ba2Ca2Cu3HgO8", "Ba2Ca2Cu3HgO9", "Ba2SrCa2Cu3HgO9"]  # 125, 124, 123 K: one family
    ucb = choose(pool, empty, 1, Settings(strategy="ucb", kappa=10.0))[0]
    assert ucb["formula"] == "Ba2Ca2Cu3HgO8" and "Tc + κσ" in ucb["reason"]
    draws = [
        [c["formula"] for c in choose(pool, empty, 4, Settings(strategy="thompson"), np.random.default_rng(s))]
        for s in (1, 1, 2)
    ]
    assert draws[0] == draws[1] and len(set(draws[0])) == 4  # seeded: the same draw twice


def test_bad_input_is_one_line(root: Path, run_dir: Path, tmp_path: Path, capsys):
    assert gdmcd(capsys, "new", "lab")[0] == 0
    assert gdmcd(capsys, "new", "lab")[0] == 2  # exists already
    code, _, err = gdmcd(capsys, "status", "nope")
    assert code == 2 and len(err) == 1 and "no campaign named 'nope'" in err[0]
    big = tmp_path / "big.csv"
    big.write_bytes(b"formula,outcome\n" + b"MgB2,pending\n" * (lab_csv.MAX_FILE_BYTES // 12))
    code, _, err = gdmcd(capsys, "import", "lab", str(big))
    assert code == 2 and len(err) == 1 and "limit" in err[0]
    code, _, err = gdmcd(capsys, "add-run", "lab", str(tmp_path))
    assert code == 2 and len(err) == 1 and "candidates.csv" in err[0]
    code, _, err = gdmcd(capsys, "update", "lab")
    assert code == 2 and len(err) == 1 and "no measurement to learn from" in err[0]
    code, _, err = gdmcd(capsys, "new", "other", "--checkpoint", str(tmp_path / "missing.pt"))
    assert code == 2 and len(err) == 1 and "no such file" in err[0]


def test_the_template_is_importable(root: Path, tmp_path: Path, capsys):
    template = tmp_path / "template.csv"
    assert gdmcd(capsys, "template", str(template))[0] == 0
    assert template.read_text().strip().split(",") == list(lab_csv.COLUMNS)
    with open(template, "a") as fh:
        fh.write("MgB2,superconducting,39,,,,,,\n")
    gdmcd(capsys, "new", "lab")
    code, out, _ = gdmcd(capsys, "import", "lab", str(template))
    assert code == 0 and "1 rows stored (0 corrections, 1 never proposed)" in out
    export = tmp_path / "export.json"
    assert gdmcd(capsys, "export", "lab", str(export))[0] == 0
    dumped = json.loads(export.read_text())
    assert dumped["schema_version"] == store.SCHEMA_VERSION and len(dumped["measurements"]) == 1


KILL_AT = 2 * lab_csv.CHUNK_ROWS + 50  # the third chunk's transaction is open when the process dies


def test_a_kill_during_import_keeps_only_whole_committed_rows(root: Path, tmp_path: Path):
    n = 4 * lab_csv.CHUNK_ROWS
    results = write_results(
        tmp_path / "many.csv", [["Nb3Sn", "superconducting", "18", *[""] * 3, f"s{i}"] for i in range(n)]
    )
    store.new_campaign(store.connect(), "lab")
    child = (
        "import os, signal, sys\n"
        "import gdmcd_core.campaign.lab_csv as L\n"
        "from gdmcd_core.cli.main import main\n"
        "store_row, seen = L._store_row, [0]\n"
        "def dying(*a):\n"
        "    seen[0] += 1\n"
        f"    if seen[0] > {KILL_AT}:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    store_row(*a)\n"
        "L._store_row = dying\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", child, "campaign", "import", "lab", str(results)], cwd=REPO, capture_output=True
    )
    assert proc.returncode == -9
    conn = store.connect()
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    rows = conn.execute("SELECT formula, outcome, tc_k, sample_id, row_hash FROM measurements").fetchall()
    assert len(rows) == 2 * lab_csv.CHUNK_ROWS  # the two committed chunks, nothing of the third
    assert all(r["formula"] == "Nb3Sn" and r["tc_k"] == 18.0 and r["row_hash"] for r in rows)
    r = lab_csv.import_results(conn, "lab", results)  # the rest, once
    assert (r.stored, r.unchanged) == (n - len(rows), len(rows))
    assert store.counts(conn, 1)["measurements"] == n
