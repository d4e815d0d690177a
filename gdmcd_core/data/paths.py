"""Where the data files are: `$GDMCD_DATA_DIR`, then `../shared/data` beside the checkout (or the working
directory), then a per-user cache that `download.fetch_all` fills from the original public files
(SHA-256 checked). Data files are never part of the repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from gdmcd_core.data.download import DownloadError, fetch_all
from gdmcd_core.util import REPO_ROOT

ENV_VAR = "GDMCD_DATA_DIR"
SUPERCON_FILE = "supercon_nims_unique.csv"
COD_FILE = "cod_nonsc_inorganic_konno2009.csv"
HYDRIDE_FILE = "hydrides_from_public_files.csv"
JARVIS_FILE = "raw/jarvis_dft_3d_subset.csv"
JARVIS_SPLIT_FILE = "jarvis_supercon_chem_split.csv"
SUPERCON_ROWS_FILE = "supercon_nims_primary_clean.csv"


class DataNotFoundError(FileNotFoundError):
    """The data files are in none of the places looked at (the message lists them)."""


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gdmcd" / "data"


def search_dirs() -> list[Path]:
    """The folders looked at, in order."""
    dirs: list[Path] = []
    if os.environ.get(ENV_VAR):
        dirs.append(Path(os.environ[ENV_VAR]).expanduser())
    return dirs + [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", user_cache_dir()]


def find_data_dir(required: tuple[str, ...] = (SUPERCON_FILE, COD_FILE), download: bool = True) -> Path:
    """The first folder of `search_dirs()` holding every file in `required`; downloads into the cache if none does."""
    dirs = search_dirs()
    for d in dirs:
        if all((d / r).is_file() for r in required):
            return d
    if download:
        try:
            fetch_all(user_cache_dir())
        except DownloadError as exc:
            raise DataNotFoundError(f"data files {required} not found locally and the download failed: {exc}") from exc
        if all((user_cache_dir() / r).is_file() for r in required):
            return user_cache_dir()
    raise DataNotFoundError(
        f"data files {required} not found; set ${ENV_VAR} to a folder holding them "
        f"(looked in: {', '.join(str(d) for d in dirs)})"
    )
