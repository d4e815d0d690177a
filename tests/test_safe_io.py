"""CSV formula injection, paths that stay in the runs folder, memory estimates, the job setting."""

from __future__ import annotations

import io
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gdmcd_core.design.config import resources
from gdmcd_core.design.config.resources import (
    InsufficientMemoryError,
    available_memory_bytes,
    check_memory,
    estimate_design_memory_bytes,
    parse_max_jobs,
    resnet_activation_floats,
)
from gdmcd_core.util_io import UnsafePathError, safe_child, sanitize_csv_cell, sanitize_table

# -- CSV injection ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A2)", "\t=1", "\r=1", '=HYPERLINK("http://x","y")', "-"],
)
def test_formula_cells_get_a_text_prefix(cell: str) -> None:
    assert sanitize_csv_cell(cell) == "'" + cell


@pytest.mark.parametrize("cell", ["MgB2", "", "a=b", "Tc > 30 K", "'=already", "NaN", " MgB2"])
def test_ordinary_text_is_unchanged(cell: str) -> None:
    assert sanitize_csv_cell(cell) == cell


@pytest.mark.parametrize("cell", ["-3.2", "+1", "-1e-5", "-.5", "+2.", "-12E+3"])
def test_numeric_strings_stay_numbers(cell: str) -> None:
    assert sanitize_csv_cell(cell) == cell


@pytest.mark.parametrize("value", [-3.2, -1, 0, np.float32(-2.5), np.int64(-7), None, math.nan, True])
def test_non_strings_are_untouched(value: object) -> None:
    out = sanitize_csv_cell(value)
    assert out is value


def test_sanitize_table_keeps_numbers_and_dtypes() -> None:
    df = pd.DataFrame(
        {
            "formula": ["MgB2", "=1+2", "@x", None],
            "tc_k": [39.0, -3.2, 0.0, np.nan],
            "n": [1, -2, 3, 4],
            "ok": [True, False, True, False],
            "note": pd.array(["-3.2", "+x", "fine", pd.NA], dtype="string"),
        }
    )
    out = sanitize_table(df)
    for col, expected in (("formula", ["MgB2", "'=1+2", "'@x"]), ("note", ["-3.2", "'+x", "fine"])):
        assert list(out[col][:3]) == expected
        assert out[col].isna().iloc[3] and out[col].dtype == df[col].dtype  # missing stays missing
    for col in ("tc_k", "n", "ok"):
        assert out[col].dtype == df[col].dtype
        pd.testing.assert_series_equal(out[col], df[col])
    assert df.loc[1, "formula"] == "=1+2"  # the input is not modified
    text = out.to_csv(index=False)
    assert "\n'=1+2," in text and ",-3.2," in text


def test_sanitize_table_covers_the_header() -> None:
    out = sanitize_table(pd.DataFrame({"=evil": [1], "formula": ["x"]}))
    assert list(out.columns) == ["'=evil", "formula"]
    assert pd.read_csv(io.StringIO(out.to_csv(index=False))).columns[0] == "'=evil"


# -- safe paths --------------------------------------------------------------------------------------


@pytest.fixture
def root(tmp_path: Path) -> Path:
    r = tmp_path / "runs"
    (r / "run-a").mkdir(parents=True)
    (r / "run-a" / "candidates.csv").write_text("x\n")
    (tmp_path / "secret.txt").write_text("secret\n")
    return r


def test_names_inside_the_root_resolve(root: Path) -> None:
    assert safe_child(root, "run-a/candidates.csv") == (root / "run-a" / "candidates.csv").resolve()
    assert safe_child(root, Path("run-a")) == (root / "run-a").resolve()
    assert safe_child(root, "run-a/not-yet.csv").name == "not-yet.csv"  # need not exist
    assert safe_child(root, "run-a/../run-a/candidates.csv").name == "candidates.csv"


@pytest.mark.parametrize("name", ["../secret.txt", "run-a/../../secret.txt", "..", "/etc/passwd", "", "a\x00b"])
def test_names_leaving_the_root_are_refused(root: Path, name: str) -> None:
    with pytest.raises(UnsafePathError) as info:
        safe_child(root, name)
    assert isinstance(info.value, ValueError) and "\n" not in str(info.value)


def test_symlinked_file_pointing_outside_is_refused(root: Path) -> None:
    (root / "run-a" / "leak.csv").symlink_to(root.parent / "secret.txt")
    with pytest.raises(UnsafePathError, match="outside"):
        safe_child(root, "run-a/leak.csv")


def test_symlinked_folder_pointing_outside_is_refused(root: Path) -> None:
    (root.parent / "elsewhere").mkdir()
    (root / "run-b").symlink_to(root.parent / "elsewhere", target_is_directory=True)
    with pytest.raises(UnsafePathError, match="outside"):
        safe_child(root, "run-b/candidates.csv")


def test_symlink_staying_inside_is_allowed(root: Path) -> None:
    (root / "run-a" / "latest.csv").symlink_to(root / "run-a" / "candidates.csv")
    assert safe_child(root, "run-a/latest.csv") == (root / "run-a" / "candidates.csv").resolve()


def test_root_itself_through_a_symlink(tmp_path: Path, root: Path) -> None:
    link = tmp_path / "runs-link"
    link.symlink_to(root, target_is_directory=True)
    assert safe_child(link, "run-a/candidates.csv") == (root / "run-a" / "candidates.csv").resolve()


# -- memory ------------------------------------------------------------------------------------------


def test_activation_count_of_the_default_model() -> None:
    # image 896 + stem 2*32*224 + 5*32*224 + (5+2)*(64*64 + 128*16 + 256*4)
    assert resnet_activation_floats() == 101_248
    assert resnet_activation_floats(64, (2, 2, 2, 2), "stock") < resnet_activation_floats()  # stride-4 stem


def test_estimate_follows_the_documented_formula() -> None:
    B, M, D, K = 256, 21, 118, 5
    got = estimate_design_memory_bytes(B, M, D, n_members=K, total_steps=2000, record_every=10)
    snaps = 2000 // 10 + 2
    expected = (
        K * B * 101_248 * 4 * resources.ACTIVATION_OVERHEAD
        + B * M * D * resources.INT_LOSS_BYTES_PER_ENTRY
        + 2 * snaps * B * (2 * D + 8)
        + B * D * 8 * resources.STATE_ROWS_PER_CANDIDATE
    )
    assert got == int(expected)
    assert 0.5e9 < got < 2e9  # the paper's search size is ~1 GB with 5 members


def test_estimate_grows_with_candidates_and_n_values() -> None:
    base = estimate_design_memory_bytes(100, 21)
    assert estimate_design_memory_bytes(200, 21) > 1.9 * base
    assert estimate_design_memory_bytes(100, 200) > estimate_design_memory_bytes(100, 21)
    assert estimate_design_memory_bytes(100, 21, n_members=4) > 3 * base


def test_snapshots_are_capped_like_the_engine() -> None:
    # a huge run: the snapshot stride widens so snapshots stay ~2 x 40 MB, not T * B * D * 2 bytes
    big = estimate_design_memory_bytes(100_000, 1, activation_floats=1, total_steps=100_000)
    uncapped_snapshots = 100_000 * 100_000 * 118 * 2
    assert big < uncapped_snapshots / 100


@pytest.mark.parametrize("args", [(0, 21), (10, 0), (-1, 5)])
def test_estimate_refuses_bad_counts(args: tuple[int, int]) -> None:
    with pytest.raises(ValueError, match="must be >= 1"):
        estimate_design_memory_bytes(*args)


def test_check_memory_passes_and_fails_with_one_line() -> None:
    check_memory(1_000, limit=10_000)
    check_memory(10**15, limit=None) if available_memory_bytes() is None else None
    with pytest.raises(InsufficientMemoryError, match=r"needs ~50 GB, this machine has 8 GB available") as info:
        check_memory(50 * 10**9, limit=8 * 10**9)
    assert isinstance(info.value, ValueError) and isinstance(info.value, MemoryError)
    assert "\n" not in str(info.value)
    with pytest.raises(InsufficientMemoryError):  # within the headroom is not enough
        check_memory(int(9.5e9), limit=10**10)


def test_available_memory_is_plausible() -> None:
    avail = available_memory_bytes()
    assert avail is None or 0 <= avail < 2**50
    with pytest.raises(MemoryError):
        check_memory(2**60)  # no machine has an exbibyte free


def test_available_memory_falls_back_without_proc(monkeypatch: pytest.MonkeyPatch) -> None:
    real = Path.read_text

    def no_proc(self: Path, *a: object, **k: object) -> str:
        if str(self).startswith("/proc/meminfo"):
            raise OSError("no /proc")
        return real(self, *a, **k)  # type: ignore[arg-type]

    monkeypatch.setattr(Path, "read_text", no_proc)
    avail = available_memory_bytes()
    if hasattr(os, "sysconf"):
        assert avail is not None and avail > 0


# -- the job setting -----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, expected", [(None, 2), ("", 2), ("  ", 2), ("1", 1), (" 8 ", 8), ("+3", 3)])
def test_parse_max_jobs_accepts(value: str | None, expected: int) -> None:
    assert parse_max_jobs(value) == expected


@pytest.mark.parametrize("value", ["0", "-2", "two", "1.5", "1e2", "inf"])
def test_parse_max_jobs_refuses_with_one_line(value: str) -> None:
    with pytest.raises(ValueError, match=f"GDMCD_MAX_JOBS must be a whole number >= 1, got '{value}'") as info:
        parse_max_jobs(value)
    assert "\n" not in str(info.value)
