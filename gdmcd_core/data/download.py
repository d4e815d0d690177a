"""Download the original public raw files, verify them by SHA-256, and clean them.

For users without a local copy of the data folder: `fetch_all(dest)` fetches each file of
`RAW_FILES` from GitHub at the exact commit named in the data README, into `dest/raw/`, checks
its SHA-256 against the pinned digest (a mismatch deletes the download and raises
`ChecksumError`), then writes the cleaned CSVs into `dest` with `gdmcd_core.data.cleaning`.

Every file is written atomically (temp file in the same folder + rename), so an interrupted
run never leaves a half file under a final name. Files already present with the right digest
are not downloaded again.

The base URL defaults to https://raw.githubusercontent.com; a mirror with the same layout
(`<base>/<owner>/<repo>/<commit>/<path>`) can be set with `$GDMCD_DATA_URL` or `base_url=`.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from gdmcd_core.data import clean_files, cleaning
from gdmcd_core.util import FILE_MODE, atomic_write_text, sha256_file

URL_ENV_VAR = "GDMCD_DATA_URL"
DEFAULT_BASE_URL = "https://raw.githubusercontent.com"
TIMEOUT_S = 60.0  # per network operation (connect / read), not for the whole file
CHUNK_BYTES = 1 << 16
MANIFEST = "SOURCES.json"


class DownloadError(FileNotFoundError):
    """A raw file could not be fetched (network, HTTP status). A `FileNotFoundError`, so the
    CLI's one-line error handling for missing data covers it."""


class ChecksumError(DownloadError):
    """A fetched file's SHA-256 differs from the pinned digest (the file has been deleted)."""


@dataclass(frozen=True)
class RawFile:
    """One public raw file, pinned by commit and SHA-256."""

    name: str  # file name under <data>/raw/
    repo: str  # GitHub owner/name
    commit: str  # commit the file is read at (40 hex digits)
    path: str  # path inside the repository
    sha256: str  # hex digest of the exact bytes
    size: int  # bytes, for the progress bar (0 = unknown)

    def url(self, base_url: str) -> str:
        return f"{base_url.rstrip('/')}/{self.repo}/{self.commit}/{urllib.parse.quote(self.path)}"


# Commits and digests from shared/data/README.md and its raw copies (shared/data/raw/).
RAW_FILES: tuple[RawFile, ...] = (
    RawFile(
        cleaning.RAW_NAMES["nims"],
        "jamesconde/superconductor-vae",
        "eb3af5fbbb01973ab2ddce03ed24779de12a2e28",
        "data/raw/raw.tsv",
        "66cb67af1d1914f8f28e4aae5a0377992755c6cc166bc3f0a160f8c59cc77320",
        1_968_352,
    ),
    RawFile(
        cleaning.RAW_NAMES["stanev"],
        "aimat-lab/3DSC",
        "cd71d3a46cbab204198c0f923112a1295cca0fdd",
        "superconductors_3D/data/source/SuperCon/raw/Supercon_data_by_2018_Stanev.csv",
        "b34a955cc59f7a1556bc92c4b9db559bfd634c03227b7e95337a2e5d69227dd6",
        357_918,
    ),
    RawFile(
        cleaning.RAW_NAMES["cod"],
        "tomo835g/Deep-Learning-to-find-Superconductors",
        "8e3147dc96368085fb42235d5af79e6714f704fc",
        "2009/cod_data/chemical_formula_sum_overlap_removed_2.csv",
        "804e8ab6b900a16889ed891ed099f1235ea1b34cf0f3c1609e50cc3f0a49c56c",
        2_447_437,
    ),
    RawFile(
        cleaning.RAW_NAMES["konno_hydride"],
        "tomo835g/Deep-Learning-to-find-Superconductors",
        "8e3147dc96368085fb42235d5af79e6714f704fc",
        "2018/hydride.csv",
        "b2ea85d3de21b5023d1ff577c770e0ffce9dc4bd5fe69758e2f9ce286c11e6b7",
        99,
    ),
    RawFile(
        "konno2009_first_concat_list_dup_over_training_removed.csv",
        "tomo835g/Deep-Learning-to-find-Superconductors",
        "8e3147dc96368085fb42235d5af79e6714f704fc",
        "2009/first_data/first_concat_list_dup_over_training_removed.csv",
        "a58ea9f50bfb350fd123545e70d37d5ce07ddae223b7ce9fd80f6722626190e4",
        4_115,
    ),
    RawFile(
        "konno2018_first_concat_list_dup_over_training_removed.csv",
        "tomo835g/Deep-Learning-to-find-Superconductors",
        "8e3147dc96368085fb42235d5af79e6714f704fc",
        "2018/first_data/first_concat_list_dup_over_training_removed.csv",
        "3ec25ac4870673021eb6fde12cfc38bb01d197a09d32d247da11d0eafdafae34",
        3_353,
    ),
    RawFile(
        "jarvis_dft_3d_subset.csv",  # read as-is by gdmcd_core.training.formation_energy (data.JARVIS_FILE)
        "jamesconde/superconductor-vae",
        "8820aa60fa14d7a363cbcb2195691a50fcb9e6c9",
        "data/raw/jarvis_dft_3d.csv",
        "3716783feb93252474428379982d8840c433309c4438cdf5e1425e00bd69b19d",
        3_682_748,
    ),
)


def resolve_base_url(base_url: str | None = None) -> str:
    """`base_url`, else `$GDMCD_DATA_URL`, else GitHub raw. Only http(s) URLs are accepted."""
    url = base_url or os.environ.get(URL_ENV_VAR) or DEFAULT_BASE_URL
    scheme = urllib.parse.urlparse(url).scheme
    if scheme not in ("http", "https"):
        raise ValueError(f"data base URL must start with http:// or https://, got {url!r} (from ${URL_ENV_VAR}?)")
    return url


def _progress_bar(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total or None,
        desc=desc,
        unit="B",
        unit_scale=True,
        unit_divisor=1024,
        disable=not enabled,
        file=sys.stderr,
        leave=False,
    )


def fetch_file(spec: RawFile, raw_dir: str | Path, base_url: str | None = None, progress: bool = True) -> Path:
    """Download one file into `raw_dir/spec.name`, verified by SHA-256; returns its path.

    A file already there with the right digest is kept as is. The download goes to a temp file
    in `raw_dir` and is renamed only once its digest matches; on a mismatch or any error the
    temp file is deleted and `ChecksumError` / `DownloadError` is raised.
    """
    raw_dir = Path(raw_dir)
    target = raw_dir / spec.name
    if target.is_file() and sha256_file(target) == spec.sha256:
        return target
    url = spec.url(resolve_base_url(base_url))
    raw_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=raw_dir, prefix=f".{spec.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=TIMEOUT_S) as resp:
                total = int(resp.headers.get("Content-Length") or spec.size or 0)
                with _progress_bar(total, spec.name, progress) as bar:
                    for chunk in iter(lambda: resp.read(CHUNK_BYTES), b""):
                        out.write(chunk)
                        digest.update(chunk)
                        bar.update(len(chunk))
        except (urllib.error.URLError, OSError, ValueError) as exc:
            raise DownloadError(
                f"could not download {spec.name} from {url}: {exc}. Check the connection, set ${URL_ENV_VAR} to a "
                f"mirror, or set $GDMCD_DATA_DIR to a folder that already holds the data files"
            ) from exc
        got = digest.hexdigest()
        if got != spec.sha256:
            raise ChecksumError(
                f"SHA-256 mismatch for {spec.name} from {url}: expected {spec.sha256}, got {got}. "
                f"The download was deleted; the file is corrupted or differs from the pinned version"
            )
        os.chmod(tmp, FILE_MODE)
        os.replace(tmp, target)
        return target
    finally:
        tmp.unlink(missing_ok=True)


def fetch_all(
    dest: str | Path,
    base_url: str | None = None,
    files: tuple[RawFile, ...] = RAW_FILES,
    progress: bool = True,
    clean: bool = True,
    rules: cleaning.Rules = cleaning.SHARED_2025,
    log: Callable[[str], None] | None = None,
) -> Path:
    """Fetch every raw file into `dest/raw/`, then (if `clean`) write the cleaned CSVs into `dest`.

    Args:
        dest: the data folder to fill (e.g. `data.user_cache_dir()`).
        base_url: mirror of raw.githubusercontent.com; default `$GDMCD_DATA_URL` or GitHub.
        files: the pinned files to fetch (tests pass their own).
        progress: show a progress bar per file on stderr.
        clean: run `clean_files.build_clean_files(dest/raw, dest)` after the downloads.
        rules: cleaning rules; the default reproduces the shared data folder byte for byte
            (`cleaning.STRICT` also drops the SuperCon `...OY` variable-oxygen rows).
        log: one-line messages (default: print to stderr).

    Returns:
        `dest`. Raises `DownloadError` / `ChecksumError` naming the file and URL on failure.
    """
    dest = Path(dest)
    say = log or (lambda s: print(s, file=sys.stderr))
    base = resolve_base_url(base_url)
    raw_dir = dest / "raw"
    say(f"fetching {len(files)} public data files from {base} into {raw_dir}")
    for spec in files:
        fetch_file(spec, raw_dir, base, progress)
        say(f"  ok {spec.name} (sha256 {spec.sha256[:12]}…)")
    manifest = {"base_url": base, "rules": asdict(rules), "files": [dict(asdict(s), url=s.url(base)) for s in files]}
    atomic_write_text(dest / MANIFEST, json.dumps(manifest, indent=2) + "\n")
    if clean:
        say(f"cleaning into {dest}")
        clean_files.build_clean_files(raw_dir, dest, rules=rules, log=lambda s: say(f"  {s}"))
    return dest


__all__ = ["RAW_FILES", "ChecksumError", "DownloadError", "RawFile", "fetch_all", "fetch_file", "resolve_base_url"]
