"""Download buttons for tables: CSV bytes with spreadsheet formulas neutralized (shared.csv_download_bytes)."""

from __future__ import annotations

from typing import Any

from gdmcd_app.shared import csv_download_bytes

# the tooltip of a candidate's path as CSV (data.candidate_path), on the Candidate and Trajectories pages
PATH_CSV_HELP = "step, stage, Tc, σ, integer loss and atomic fractions; the last row is the integer formula"


def csv_download(
    container: Any, label: str, table: Any, file_name: str, key: str | None = None, help: str | None = None
) -> None:
    """A button in `container` (st, a column) that downloads `table` as CSV file `file_name`; a click does not
    rerun the page. `help`: the button's tooltip."""
    container.download_button(
        label,
        csv_download_bytes(table),
        file_name=file_name,
        mime="text/csv",
        key=key,
        on_click="ignore",
        help=help,
    )
