"""How closely `gdmcd_core.data.cleaning` reproduces the shared cleaned CSVs from the shared raw copies.

    PYTHONPATH=. .venv/bin/python bench/cleaning_reproduction.py [--rules shared_2025|strict] [--data DIR] [--json]

Cleans `<data>/raw/` into a temporary folder (the shared folder is only read), then compares
each cleaned file with the shared one: byte identity (SHA-256), row counts, the share of
comp_keys found in both, and on matched rows the share of identical formula strings (and, for
the unique file, Tc and first_year).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.common import add_doc_option, printed, write_doc
from gdmcd_core.data.clean_files import build_clean_files
from gdmcd_core.data.cleaning import CLEAN_NAMES, SHARED_2025, STRICT, Rules
from gdmcd_core.util import sha256_file

RULES = {"shared_2025": SHARED_2025, "strict": STRICT}


def _key_overlap(ours: pd.DataFrame, theirs: pd.DataFrame) -> dict:
    a, b = set(ours["comp_key"]), set(theirs["comp_key"])
    both = a & b
    return {
        "rows_ours": len(ours),
        "rows_shared": len(theirs),
        "unique_keys_ours": len(a),
        "unique_keys_shared": len(b),
        "keys_in_both": len(both),
        "share_of_shared_keys_reproduced": round(len(both) / max(len(b), 1), 5),
        "share_of_our_keys_in_shared": round(len(both) / max(len(a), 1), 5),
        "only_ours_examples": sorted(a - b)[:5],
        "only_shared_examples": sorted(b - a)[:5],
    }


def _row_match(ours: pd.DataFrame, theirs: pd.DataFrame, on: list[str], cols: list[str]) -> dict:
    """Rows aligned on `on` (+ occurrence number); share of identical values per column."""
    a, b = ours.copy(), theirs.copy()
    a["_n"] = a.groupby(on).cumcount()
    b["_n"] = b.groupby(on).cumcount()
    m = a.merge(b, on=on + ["_n"], suffixes=("_ours", "_shared"))
    out: dict = {"rows_aligned": len(m)}
    for c in cols:
        x, y = m[f"{c}_ours"], m[f"{c}_shared"]
        if pd.api.types.is_numeric_dtype(x) and pd.api.types.is_numeric_dtype(y):
            same = np.isclose(x.to_numpy(float), y.to_numpy(float), atol=1e-9, equal_nan=True)
        else:
            same = x.fillna("").astype(str).to_numpy() == y.fillna("").astype(str).to_numpy()
        out[f"identical_{c}"] = round(float(same.mean()), 5) if len(m) else None
    return out


def compare(data_dir: Path, rules: Rules) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        reports = build_clean_files(data_dir / "raw", tmp, rules=rules, log=lambda s: None)
        ours = {k: pd.read_csv(Path(tmp) / n, keep_default_na=False, na_values=[""]) for k, n in CLEAN_NAMES.items()}
        identical = {n: sha256_file(Path(tmp) / n) == sha256_file(data_dir / n) for n in CLEAN_NAMES.values()}
    shared = {k: pd.read_csv(data_dir / n, keep_default_na=False, na_values=[""]) for k, n in CLEAN_NAMES.items()}
    result: dict = {"cleaning": {k: r.line() for k, r in reports.items()}, "byte_identical": identical}
    for k in ("nims_rows", "nims_unique", "stanev", "cod"):
        result[k] = _key_overlap(ours[k], shared[k])
    result["nims_rows"].update(
        _row_match(
            ours["nims_rows"], shared["nims_rows"], ["formula_raw", "journal"], ["formula", "comp_key", "year", "tc_k"]
        )
    )
    result["nims_unique"].update(
        _row_match(
            ours["nims_unique"],
            shared["nims_unique"],
            ["comp_key"],
            ["formula", "tc_k", "tc_k_mean", "n_entries", "first_year", "high_pressure_hydride"],
        )
    )
    result["stanev"].update(_row_match(ours["stanev"], shared["stanev"], ["formula_raw"], ["formula", "comp_key"]))
    result["cod"].update(
        _row_match(ours["cod"], shared["cod"], ["comp_key"], ["formula", "formula_raw", "elemset_in_supercon"])
    )
    result["hydrides"] = {"rows_ours": len(ours["hydrides"]), "rows_shared": len(shared["hydrides"])}
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    p.add_argument("--rules", choices=sorted(RULES), default="shared_2025", help="cleaning rules to compare")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_doc_option(p, "cleaning_reproduction")
    args = p.parse_args(argv)
    res = compare(args.data, RULES[args.rules])
    if args.json:
        print(json.dumps(res, indent=2, default=str))
        return 0
    with printed() as tables:
        print(f"rules: {args.rules} {RULES[args.rules]}")
        for line in res["cleaning"].values():
            print(line)
        print()
        print(
            "| file | byte-identical | rows ours | rows shared | shared keys reproduced | our keys in shared | identical formula |"
        )
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
        for k in ("nims_rows", "nims_unique", "stanev", "cod"):
            r = res[k]
            print(
                f"| {CLEAN_NAMES[k]} | {res['byte_identical'][CLEAN_NAMES[k]]} | {r['rows_ours']} | {r['rows_shared']} "
                f"| {r['share_of_shared_keys_reproduced']:.4f} | {r['share_of_our_keys_in_shared']:.4f} "
                f"| {r['identical_formula']:.4f} |"
            )
        u = res["nims_unique"]
        print(
            f"\nunique file, on shared comp_keys: identical tc_k {u['identical_tc_k']:.4f}, tc_k_mean {u['identical_tc_k_mean']:.4f}, "
            f"n_entries {u['identical_n_entries']:.4f}, first_year {u['identical_first_year']:.4f}"
        )
        print(f"row file, aligned on (formula_raw, journal): identical year {res['nims_rows']['identical_year']:.4f}")
        h = CLEAN_NAMES["hydrides"]
        print(
            f"{h}: {res['hydrides']['rows_ours']} rows (shared {res['hydrides']['rows_shared']}), byte-identical {res['byte_identical'][h]}"
        )
    if args.doc:
        write_doc(args.doc, tables.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
