"""The package's architecture, checked from its source: layers import downwards only, no import cycles,
the science never imports the UI, and the core imports without the app's packages installed."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "gdmcd_core"
# Rank of each layer: a module may import modules of a lower rank, or of its own subpackage.
LAYERS = {"util": 0, "util_io": 0, "util_ray": 0, "chem": 1, "data": 2, "model": 3, "training": 4, "design": 4, "cli": 5}  # fmt: skip
UI_PACKAGES = ("streamlit", "plotly", "gdmcd_app")
MAX_MODULE_LINES = 400


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imports_of(path: Path) -> set[str]:
    """Every module imported anywhere in the file (inside functions too; not under `if TYPE_CHECKING`).

    `from pkg import sub` counts as importing pkg.sub when sub is a module, else as importing pkg.
    """
    out: set[str] = set()
    stack: list[ast.AST] = [ast.parse(path.read_text())]
    while stack:
        node = stack.pop()
        if _is_type_checking(node):
            continue
        stack.extend(ast.iter_child_nodes(node))
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            subs = [f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")]
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(node.module)
    return out


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    return (REPO / rel).with_suffix(".py").is_file() or (REPO / rel / "__init__.py").is_file()


def core_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in CORE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        graph[name] = {m for m in imports_of(path) if m in modules and m != name}
    return graph


def layer(module: str) -> tuple[str, int]:
    part = module.split(".")[1] if module.count(".") >= 1 else ""
    return part, LAYERS.get(part, -1)


def test_layers_import_downwards_only():
    bad = []
    for mod, deps in core_graph().items():
        sub, rank = layer(mod)
        for dep in deps:
            dsub, drank = layer(dep)
            if dep == "gdmcd_core" or dsub == sub:
                continue
            if drank < 0 or rank < 0 or drank >= rank:
                bad.append(f"{mod} ({sub}) imports {dep} ({dsub})")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = core_graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(stack[stack.index(dep) :] + [dep] if dep in stack else [node, dep])
            elif dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for n in sorted(graph):
        if n not in state:
            visit(n, [n])
    assert not cycles, cycles


def test_core_never_imports_the_ui():
    bad = [
        f"{module_name(p)} imports {m}"
        for p in CORE.rglob("*.py")
        for m in imports_of(p)
        if m.split(".")[0] in UI_PACKAGES
    ]
    assert not bad, bad


def test_modules_stay_small():
    files = [*CORE.rglob("*.py"), *(REPO / "gdmcd_app").rglob("*.py")]
    big = {module_name(p): n for p in files if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not big, big


@pytest.mark.slow
def test_core_imports_without_the_app_packages():
    """Every gdmcd_core module imports in a process where streamlit cannot be imported.

    (plotly is not blocked here: pymatgen's phase_diagram, which the hull uses, imports it itself, and
    pymatgen installs it. That gdmcd_core never imports plotly is checked from the source above.)
    """
    names = sorted(module_name(p) for p in CORE.rglob("*.py"))
    code = (
        "import sys\n"
        "sys.modules['streamlit'] = None\n"
        f"import importlib\nfor n in {names!r}: importlib.import_module(n)\n"
        "print('ok')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
