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


class DataFileError(ValueError):
    """A data file that is there but cannot be read as one: a missing column or a row that does not parse
    (the message names the file)."""


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gdmcd" / "data"


def env_data_dir() -> Path | None:
    """$GDMCD_DATA_DIR as a folder, None when unset. A value that is blank, not a folder, or a folder
    holding none of the data files is an error naming it (DataNotFoundError): never a silent fallback."""
    if ENV_VAR not in os.environ:
        return None
    text = os.environ[ENV_VAR]
    d = Path(text.strip()).expanduser()
    if not text.strip():
        raise DataNotFoundError(f"${ENV_VAR} is set but empty; unset it or point it to the data folder")
    if not d.is_dir():
        raise DataNotFoundError(f"${ENV_VAR}={text} is not a folder")
    if not any((d / f).is_file() for f in (SUPERCON_FILE, COD_FILE, HYDRIDE_FILE, JARVIS_FILE, SUPERCON_ROWS_FILE)):
        raise DataNotFoundError(f"${ENV_VAR}={text} holds none of the data files ({SUPERCON_FILE}, {COD_FILE}, ...)")
    return d


def search_dirs() -> list[Path]:
    """The folders looked at, in order."""
    env = env_data_dir()
    dirs: list[Path] = [env] if env is not None else []
    return dirs + [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data", user_cache_dir()]


def find_data_dir(required: tuple[str, ...] = (SUPERCON_FILE, COD_FILE), download: bool = True) -> Path:
    """The first folder of `search_dirs()` holding every file in `required`; downloads into the cache if none does."""
    dirs = search_dirs()
    env = env_data_dir()
    if env is not None and set(required) & {SUPERCON_FILE, COD_FILE} and not all((env / r).is_file() for r in required):
        missing = [r for r in required if not (env / r).is_file()]
        raise DataNotFoundError(f"${ENV_VAR}={env} lacks {', '.join(missing)}")
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
