"""Shared fixtures: seeded torch, a tiny synthetic data folder, a tiny trained checkpoint, and the Chromium the
browser tests drive (Playwright's own when installed, else Debian's; without one they are skipped, or fail under CI)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from gdmcd_core.chem.composition import reduced_key, to_vector

TINY_SC = [
    ("MgB2", 39.0, 2001),
    ("Nb3Sn", 18.0, 1954),
    ("NbTi", 9.5, 1962),
    ("YBa2Cu3O7", 92.0, 1987),
    ("La1.85Sr0.15CuO4", 38.0, 1986),
    ("Pb", 7.2, 1913),
    ("Nb", 9.2, 1930),
    ("HgBa2Ca2Cu3O8", 133.0, 1993),
    ("Bi2Sr2CaCu2O8", 85.0, 1988),
    ("LaFeAsO0.9F0.1", 26.0, 2008),
    ("FeSe", 8.0, 2008),
    ("K3C60", 19.0, 1991),
    ("LaH10", 250.0, 2019),
    ("H3S", 203.0, 2015),
    ("NbN", 16.0, 1941),
    ("V3Si", 17.0, 1953),
    ("Ba0.6K0.4Fe2As2", 38.0, 2008),
    ("CaC6", 11.5, 2005),
    ("Sn", 3.7, 1913),
    ("Al", 1.2, 1933),
    ("MgB1.9C0.1", 36.0, 2012),
    ("YNi2B2C", 15.0, 1994),
    ("Tl2Ba2CaCu2O8", 110.0, 1988),
    ("SmFeAsO0.8F0.2", 55.0, 2011),
]
TINY_COD = [
    "NaCl",
    "SiO2",
    "Al2O3",
    "CaCO3",
    "KBr",
    "MgO",
    "TiO2",
    "Fe2O3",
    "ZnS",
    "CuSO4",
    "BaTiO3",
    "LiF",
    "CaF2",
    "Na2SO4",
    "K2O",
    "SrTiO3",
    "ZrO2",
    "CeO2",
    "GaN",
    "AlN",
]


DEBIAN_CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ENV = "GDMCD_CHROMIUM"  # a Chromium binary to use instead
BROWSER_HOWTO = (
    "no Chromium for the browser tests: install Playwright's (.venv/bin/python -m playwright install chromium) "
    f"or Debian's (sudo apt-get install chromium), or set ${CHROMIUM_ENV} to a Chromium binary"
)


def _playwright_chromium() -> str | None:
    """Playwright's own Chromium when it is installed (`playwright install chromium`), else None."""
    try:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            path = p.chromium.executable_path
    except Exception:  # playwright missing, or its driver does not start: no browser of its own
        return None
    return path if Path(path).is_file() else None


@functools.cache
def chromium_executable() -> str | None:
    """The Chromium the browser tests launch: $GDMCD_CHROMIUM when set, else Playwright's own when installed,
    else Debian's /usr/bin/chromium; None when there is none."""
    chosen = os.environ.get(CHROMIUM_ENV, "").strip()
    if chosen:
        return chosen if Path(chosen).is_file() else None
    return _playwright_chromium() or (DEBIAN_CHROMIUM if Path(DEBIAN_CHROMIUM).is_file() else None)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


@pytest.fixture(autouse=True)
def _chromium_for_browser_tests(request: pytest.FixtureRequest) -> None:
    """A browser test without a Chromium is skipped with one line saying how to get one; under CI it fails."""
    if request.node.get_closest_marker("browser") is None or chromium_executable() is not None:
        return
    if in_ci():
        pytest.fail(f"{BROWSER_HOWTO} (CI=true: the browser tests must run)", pytrace=False)
    pytest.skip(BROWSER_HOWTO)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="session")
def _test_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("test_log")


# Design jobs of the app run in a thread of the test process (monkeypatches and fakes reach them), for fixtures of
# every scope; the tests of the worker process (test_jobs.py) ask for it, and the browser tests' servers use it, as
# the app does.
os.environ["GDMCD_JOB_WORKER"] = "thread"


@pytest.fixture(autouse=True)
def _own_test_log(_test_log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Test figures computed by the tests go to a log of their own, never to bench/results/test_log.md."""
    monkeypatch.setenv("GDMCD_TEST_LOG", str(_test_log_dir / "test_log.md"))


def write_tiny_data(folder: Path) -> Path:
    """Write tiny SuperCon/COD files in the shared data schema into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    sc = pd.DataFrame(
        {
            "formula": [f for f, _, _ in TINY_SC],
            "tc_k": [t for _, t, _ in TINY_SC],
            "tc_k_mean": [t for _, t, _ in TINY_SC],
            "first_year": [y for _, _, y in TINY_SC],
            "comp_key": [reduced_key(to_vector(f)) for f, _, _ in TINY_SC],
        }
    )
    sc.to_csv(folder / "supercon_nims_unique.csv", index=False)
    cod = pd.DataFrame({"formula": TINY_COD, "tc_k": 0.0, "comp_key": [reduced_key(to_vector(f)) for f in TINY_COD]})
    cod.to_csv(folder / "cod_nonsc_inorganic_konno2009.csv", index=False)
    return folder


@pytest.fixture
def tiny_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = write_tiny_data(tmp_path / "data")
    monkeypatch.setenv("GDMCD_DATA_DIR", str(folder))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return folder


@pytest.fixture
def tiny_checkpoint(tiny_data_dir: Path, tmp_path: Path) -> Path:
    """A 2-member ensemble of tiny models trained for 2 epochs on the tiny data."""
    from gdmcd_core.data.dataset import DataConfig
    from gdmcd_core.model.resnet import ModelConfig
    from gdmcd_core.training.loop import TrainConfig
    from gdmcd_core.training.run import RunSpec
    from gdmcd_core.training.tasks import TC, train

    spec = RunSpec(
        model=ModelConfig(width=4, layers=(1,)),
        train=TrainConfig(epochs=2, batch_size=16, device="cpu"),
        data=DataConfig(fractions=(0.6, 0.2, 0.2)),
        members=2,
    )
    out = tmp_path / "ckpt" / "tiny.pt"
    out.parent.mkdir()
    train(TC, spec, out, data_dir=str(tiny_data_dir), progress=False, log=lambda s: None)
    return out


@pytest.fixture()
def ckpt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A tiny untrained checkpoint, with $GDMCD_DATA_DIR on tiny data and a private cache (the CLI fault tests)."""
    from _app_helpers import make_tiny_checkpoint

    from gdmcd_core.data.reference import load_reference

    monkeypatch.setenv("GDMCD_DATA_DIR", str(write_tiny_data(tmp_path / "data")))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    load_reference.cache_clear()
    yield make_tiny_checkpoint(tmp_path / "ckpt" / "tiny.pt")
    load_reference.cache_clear()
