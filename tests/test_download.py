"""Download path against a local HTTP server on 127.0.0.1 serving tiny files (never the internet)."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest

from gdmcd_core.data import cleaning
from gdmcd_core.data.dataset import DataConfig, build_dataset
from gdmcd_core.data.download import (
    MANIFEST,
    RAW_FILES,
    URL_ENV_VAR,
    ChecksumError,
    DownloadError,
    RawFile,
    fetch_all,
    fetch_file,
    resolve_base_url,
)
from gdmcd_core.data.paths import COD_FILE, SUPERCON_FILE

COMMIT = "0" * 40


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - signature of the base class
        pass


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, folder it serves) for a throwaway HTTP server on a free port of 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


def _publish(root: Path, name: str, content: bytes, path: str | None = None) -> RawFile:
    """Serve `content` at the GitHub-raw layout and return its pinned spec."""
    spec = RawFile(
        name, "owner/repo", COMMIT, path or f"data/{name}", hashlib.sha256(content).hexdigest(), len(content)
    )
    target = root / spec.repo / spec.commit / spec.path
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(content)
    return spec


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_good_file_is_fetched_and_verified(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    spec = _publish(root, "tiny.csv", b"name,Tc\nMgB2,39\n", path="dir with space/tiny.csv")
    dest = tmp_path / "raw"
    out = fetch_file(spec, dest, base_url=base, progress=False)
    assert out == dest / "tiny.csv"
    assert out.read_bytes() == b"name,Tc\nMgB2,39\n"
    assert _leftovers(dest) == ["tiny.csv"]  # no temp file left behind


def test_tampered_file_is_rejected_and_deleted(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    spec = _publish(root, "tiny.csv", b"name,Tc\nMgB2,39\n")
    (root / spec.repo / spec.commit / spec.path).write_bytes(b"name,Tc\nMgB2,390\n")  # tampered on the server
    dest = tmp_path / "raw"
    with pytest.raises(
        ChecksumError, match=r"SHA-256 mismatch for tiny\.csv .*expected [0-9a-f]{64}, got [0-9a-f]{64}"
    ):
        fetch_file(spec, dest, base_url=base, progress=False)
    assert _leftovers(dest) == []


def test_corrupt_local_copy_is_replaced(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    spec = _publish(root, "tiny.csv", b"good\n")
    dest = tmp_path / "raw"
    dest.mkdir()
    (dest / "tiny.csv").write_bytes(b"half a fi")
    fetch_file(spec, dest, base_url=base, progress=False)
    assert (dest / "tiny.csv").read_bytes() == b"good\n"


def test_verified_local_copy_is_not_downloaded_again(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    spec = _publish(root, "tiny.csv", b"good\n")
    dest = tmp_path / "raw"
    fetch_file(spec, dest, base_url=base, progress=False)
    (root / spec.repo / spec.commit / spec.path).unlink()  # the server no longer has it
    assert fetch_file(spec, dest, base_url=base, progress=False).read_bytes() == b"good\n"


def test_missing_file_gives_a_clear_error(server: tuple[str, Path], tmp_path: Path) -> None:
    base, _ = server
    spec = RawFile("absent.csv", "owner/repo", COMMIT, "absent.csv", "0" * 64, 0)
    with pytest.raises(
        DownloadError, match=r"could not download absent\.csv from http://127\.0\.0\.1:\d+/owner/repo/0+/absent\.csv"
    ):
        fetch_file(spec, tmp_path / "raw", base_url=base, progress=False)
    assert _leftovers(tmp_path / "raw") == []
    assert issubclass(DownloadError, FileNotFoundError)  # the CLI turns it into a one-line error


def test_base_url_from_environment(monkeypatch: pytest.MonkeyPatch, server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    spec = _publish(root, "tiny.csv", b"env\n")
    monkeypatch.setenv(URL_ENV_VAR, base)
    assert resolve_base_url() == base
    assert fetch_file(spec, tmp_path / "raw", progress=False).read_bytes() == b"env\n"
    monkeypatch.delenv(URL_ENV_VAR)
    assert resolve_base_url().startswith("https://raw.githubusercontent.com")


@pytest.mark.parametrize("url", ["file:///etc", "ftp://host/x", "127.0.0.1:8000"])
def test_non_http_base_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError, match="http:// or https://"):
        resolve_base_url(url)


def test_pinned_files_are_well_formed() -> None:
    names = [f.name for f in RAW_FILES]
    assert len(set(names)) == len(names)
    assert set(cleaning.RAW_NAMES.values()) <= set(names)
    for f in RAW_FILES:
        assert len(f.commit) == 40 and int(f.commit, 16) >= 0
        assert len(f.sha256) == 64 and int(f.sha256, 16) >= 0
        assert f.url("https://raw.githubusercontent.com").startswith(
            f"https://raw.githubusercontent.com/{f.repo}/{f.commit}/"
        )


# Tiny raw files in the layouts of the real sources.
TINY_NIMS = (
    "1\t4\t6\t67\t85\t92\t198\n"
    "data number\tcommon formula of materials\tchemical formula\tcommon name of structure\tunit of Tc\tTc\tjournal\n"
    "num\tname\telement\tstr3\tutc\ttc\tjournal\n"
    + "".join(
        f"{i}\tx\t{f}\tT\tK\t{tc}\t{j}\n"
        for i, (f, tc, j) in enumerate(
            [
                ("Ba0.2La1.8Cu1O4-Y", 29, "Jpn.J.Appl.Phys., 26(1987)L223"),
                ("Y1Ba2Cu3O7-X", 92, "Phys.Rev.Lett., 58(1987)908"),
                ("Y1Ba2Cu3Oz", 90, "Phys.Rev.Lett., 58(1987)908"),
                ("Mg1B2", 39, "Nature, 410(2001)63"),
                ("Mg1B2", 38, "Nature, 411(2001)1"),
                ("Nb3Sn1", 18, "Phys.Rev., 95(1954)1435"),
                ("Nb1Ti1", 9.5, "J.Appl.Phys., 33(1962)1"),
                ("La1Fe1As1O0.9F0.1", 26, "J.Am.Chem.Soc., 130(2008)3296"),
                ("Fe1Se1", 8, "PNAS, 105(2008)14262"),
                ("La1H10", 250, "Nature 569(2019)528"),
                ("D2S1", 53, "Nature, 525(2015)73"),
                ("Sm1Fe1As1O0.8F0.2", 55, "Chin.Phys.Lett., 25(2008)2215"),
                ("Mg1B1.9C0.1", 36, "Physica C, 480(2012)1"),
                ("Ca1C6", 11.5, "Nature Phys., 1(2005)39"),
                ("Pb1", 7.2, "unpublished"),
                ("Cs1Eu1Fe4As4", 287, "Phys.Rev.B, 98(2018)014518"),
            ],
            start=2,
        )
    )
)
TINY_STANEV = "name,Tc\nNb3Sn,18\nV3Si,17\nY1Ba2Cu3OY,90\n"
TINY_COD = "matter \n" + "".join(
    f"{f} \n"
    for f in ["NaCl", "SiO2", "Al2O3", "CaCO3", "KBr", "MgO", "TiO2", "C6H6", "SiV3", "Mg2B4", "ZnS", "LiF", "GaN"]
)
TINY_HYDRIDE = "\ufeffnum,element,str3,Tc,tcn,tcfig,refno\n,H3S,,205,,,\n,La1H10,,280,,,\n"


def test_fetch_all_downloads_verifies_and_cleans(
    server: tuple[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))  # build_dataset caches vectors there
    base, root = server
    contents = {
        cleaning.RAW_NAMES["nims"]: TINY_NIMS,
        cleaning.RAW_NAMES["stanev"]: TINY_STANEV,
        cleaning.RAW_NAMES["cod"]: TINY_COD,
        cleaning.RAW_NAMES["konno_hydride"]: TINY_HYDRIDE,
    }
    files = tuple(_publish(root, n, c.encode("utf-8")) for n, c in contents.items())
    dest = tmp_path / "cache"
    messages: list[str] = []
    assert fetch_all(dest, base_url=base, files=files, progress=False, log=messages.append) == dest
    for n, c in contents.items():
        assert (dest / "raw" / n).read_text(encoding="utf-8") == c
    assert (dest / MANIFEST).is_file() and any("cleaning" in m for m in messages)

    sc = pd.read_csv(dest / SUPERCON_FILE)
    assert {"formula", "tc_k", "tc_k_mean", "first_year", "high_pressure_hydride", "comp_key", "n_entries"} <= set(
        sc.columns
    )
    assert "Y1Ba2Cu3O7" in set(sc["formula"]) and "H2S1" in set(sc["formula"])
    assert not sc["formula"].str.contains("Eu").any()  # the suspect CsEuFe4As4 287 K row is excluded
    mgb2 = sc[sc["formula"] == "Mg1B2"].iloc[0]
    assert (mgb2["n_entries"], mgb2["tc_k"], mgb2["first_year"]) == (2, 38.5, 2001)
    cod = pd.read_csv(dest / COD_FILE)
    assert {"formula", "tc_k", "comp_key", "elemset_in_supercon"} <= set(cod.columns)
    assert "C6H6" not in set(cod["formula_raw"])  # organic
    assert "Mg2B4" not in set(cod["formula_raw"])  # same composition as MgB2 in SuperCon
    assert "SiV3" not in set(cod["formula_raw"])  # same composition as V3Si in the Stanev copy
    assert (dest / cleaning.CLEAN_NAMES["hydrides"]).is_file()
    assert not [p for p in dest.rglob("*") if p.name.endswith((".tmp", ".part"))]

    cfg = DataConfig(fractions=(0.6, 0.2, 0.2), repair=False, physical_negatives=False)
    ds = build_dataset(cfg, data_dir=dest)  # the loader reads what was written
    assert ds.is_supercon.sum() == len(sc) and (~ds.is_supercon).sum() == len(cod)


def test_fetch_all_stops_on_a_bad_file_without_cleaning(server: tuple[str, Path], tmp_path: Path) -> None:
    base, root = server
    good = _publish(root, "a.csv", b"a\n")
    bad = _publish(root, "b.csv", b"b\n")
    (root / bad.repo / bad.commit / bad.path).write_bytes(b"B\n")
    dest = tmp_path / "cache"
    with pytest.raises(ChecksumError, match="b.csv"):
        fetch_all(dest, base_url=base, files=(good, bad), progress=False, log=lambda s: None)
    assert _leftovers(dest / "raw") == ["a.csv"]
    assert not (dest / SUPERCON_FILE).exists()
