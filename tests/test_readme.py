"""The README keeps its promises: its notebook snippet runs, and its layout block matches the tree."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

import gdmcd_core.design as design
import gdmcd_core.model.checkpoint as checkpoint
from gdmcd_core.chem.composition import to_vector
from gdmcd_core.model.trees import TreeConfig, fit_trees, save_trees, trees_path

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
INDENT = 2  # spaces per level in the layout block
# The snippet, not a search: a few candidates and steps, no hull (it reads the JARVIS phases).
FAST = {"n_candidates": 4, "steps2": 3, "steps3": 3, "refine_steps": 0, "hull_columns": False}


def fenced(lang: str, after: str = "") -> list[str]:
    """The README's code blocks tagged `lang`, from the heading `after` on."""
    text = README[README.index(after) :] if after else README
    return [body for tag, body in FENCE.findall(text) if tag == lang]


def layout_paths() -> list[str]:
    """Every path the layout block lists, built from its indentation: 'gdmcd_core/design/loop/', 'app.py', …"""
    stack: list[str] = []
    paths = []
    for line in fenced("text", "## Layout")[0].splitlines():
        if not line.strip():
            continue
        depth = (len(line) - len(line.lstrip(" "))) // INDENT
        stack[depth:] = [line.split()[0]]
        paths.append("".join(stack))
    return paths


def package_dirs(root: str) -> set[str]:
    """Every folder of modules under `root` ('gdmcd_core/design/loop/'), as the layout block writes them."""
    return {f"{p.parent.relative_to(REPO).as_posix()}/" for p in (REPO / root).rglob("*.py")}


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def broken_links(page: Path) -> list[str]:
    """Relative links of a markdown page whose file, or heading anchor, does not exist."""
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text()):
        if re.match(r"[a-z]+://", target):
            continue
        file, _, anchor = target.partition("#")
        path = (page.parent / file).resolve() if file else page
        headings = (
            re.findall(r"^#+ (.+)$", path.read_text(), re.MULTILINE) if path.suffix == ".md" and path.is_file() else []
        )
        if not path.exists() or (anchor and anchor not in {slug(h) for h in headings}):
            broken.append(target)
    return broken


def with_trees(ckpt: Path) -> Path:
    """Fit tiny trees beside a checkpoint, as `gdmcd trees` does for the committed ones (the snippet reads their Tc)."""
    formulas, tcs = ["MgB2", "YBa2Cu3O7", "Nb3Sn", "NaCl", "LaH10", "FeSe"], [39.0, 92.0, 18.0, 0.0, 250.0, 8.0]
    trees = fit_trees(np.stack([to_vector(f) for f in formulas]), np.array(tcs), TreeConfig(max_iter=5))
    card = checkpoint.read_card(ckpt)
    save_trees(trees_path(ckpt), trees, {k: card[k] for k in ("data_config", "hydride_config") if k in card})
    return ckpt


def test_notebook_snippet_runs(tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The snippet as written, with the tiny checkpoint (and its trees) for the default one and a few steps."""
    tiny_checkpoint = with_trees(tiny_checkpoint)
    load, config = checkpoint.load_checkpoint, design.DesignConfig
    monkeypatch.setattr(checkpoint, "load_checkpoint", lambda *a, **kw: load(tiny_checkpoint, **kw))
    monkeypatch.setattr(design, "DesignConfig", lambda **kw: config(**{**kw, **FAST}))
    monkeypatch.chdir(tmp_path)
    (snippet,) = fenced("python")
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    assert "from gdmcd_core.design import DesignConfig, DesignEngine" in snippet
    assert len(scope["result"].candidates) > 0
    assert (tmp_path / "runs" / "notebook" / "candidates.csv").is_file()


def test_layout_block_lists_only_paths_that_exist() -> None:
    missing = [p for p in layout_paths() if not (REPO / p).exists()]
    assert not missing, f"the README's layout block lists paths that do not exist: {missing}"
    assert all((REPO / p).is_dir() == p.endswith("/") for p in layout_paths()), "folders end with '/', files do not"


@pytest.mark.parametrize("root", ["gdmcd_core", "gdmcd_app"])
def test_layout_block_lists_every_package(root: str) -> None:
    listed = set(layout_paths())
    unlisted = sorted(package_dirs(root) - listed)
    assert not unlisted, f"packages missing from the README's layout block: {unlisted}"


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").rglob("*.md"))]
)
def test_links_between_the_pages_resolve(page: str) -> None:
    assert not broken_links(REPO / page), f"{page} links to missing files or headings"


def missing_modules(page: Path) -> list[str]:
    """Python files a page names in backquotes (`design/loop/refine.py`, `adam.py`) that are nowhere in the tree:
    a path is read from the repository or from gdmcd_core/, a bare file name anywhere in the packages, bench or tests."""
    missing = []
    for name in sorted(set(re.findall(r"`([\w./-]+\.py)\b", page.read_text()))):
        places = [REPO / name, REPO / "gdmcd_core" / name]
        if "/" not in name:
            places += [q for root in ("gdmcd_core", "gdmcd_app", "bench", "tests") for q in (REPO / root).rglob(name)]
        if not any(q.is_file() for q in places):
            missing.append(name)
    return missing


@pytest.mark.parametrize(
    "page", ["README.md", *sorted(p.relative_to(REPO).as_posix() for p in (REPO / "docs").glob("*.md"))]
)
def test_modules_named_in_the_pages_exist(page: str) -> None:
    assert not missing_modules(REPO / page), f"{page} names modules that are not in the tree"
