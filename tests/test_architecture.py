"""The package's architecture, checked from its source: layers import downwards only (the packages of gdmcd_core,
and the sub-layers of design/), no import cycles, package `__init__`s import nothing eagerly, the science never
imports the UI, and the core imports without the app's packages installed.

Every import counts as an edge: at module level, inside functions, and under `if TYPE_CHECKING`; a lazy package
`__init__` (PEP 562) counts the modules its names come from.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
CORE = REPO / "gdmcd_core"
# Rank of each layer: a module may import modules of a lower rank, or of its own subpackage.
LAYERS = {
    "util": 0,
    "util_ray": 0,
    "util_io": 0,
    "chem": 1,
    "data": 2,
    "model": 3,
    "training": 4,
    "design": 4,
    "campaign": 5,
    "cli": 6,
}
# The sub-layers of design/, bottom first. A module may import design modules of an earlier entry or of its own
# subpackage; the subpackages of one entry are independent of each other. run.py, engine.py and session.py are
# modules.
DESIGN_LAYERS = (
    ("objective",),
    ("stability",),
    ("config",),
    ("loop",),
    ("search", "distributed", "evidence"),
    ("runs",),
    ("run",),
    ("engine",),
    ("session",),
)
DESIGN_RANK = {name: rank for rank, names in enumerate(DESIGN_LAYERS) for name in names}
UI_PACKAGES = ("streamlit", "plotly", "gdmcd_app")
MAX_MODULE_LINES = 500  # a backstop; ruff's complexity and statement limits shape the functions


def module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module imported anywhere in the file: at module level, inside functions, under `if TYPE_CHECKING`.

    `from pkg import sub` counts as importing pkg.sub when sub is a module, else as importing pkg. In a package
    `__init__`, a string naming a module (a lazy export's home) counts as importing it.
    """
    out: set[str] = set()
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            subs = [f"{node.module}.{a.name}" for a in node.names if _is_module(f"{node.module}.{a.name}")]
            out.update(subs)
            if len(subs) < len(node.names):
                out.add(node.module)
        elif path.name == "__init__.py" and isinstance(node, ast.Constant) and isinstance(node.value, str):
            if node.value.startswith("gdmcd_core.") and _is_module(node.value):
                out.add(node.value)
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


def design_layer(module: str) -> tuple[str, float]:
    """(sub-layer name, rank) of a module under gdmcd_core.design; the package itself ranks above everything."""
    parts = module.split(".")
    if len(parts) == 2:
        return "design", float("inf")
    return parts[2], DESIGN_RANK.get(parts[2], -1)


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


def test_every_design_module_has_a_sub_layer():
    unplaced = [m for m in core_graph() if m.startswith("gdmcd_core.design.") and design_layer(m)[1] < 0]
    assert not unplaced, f"add these to DESIGN_LAYERS or move them into a subpackage: {unplaced}"


def test_design_sub_layers_import_downwards_only():
    bad = []
    for mod, deps in core_graph().items():
        if not mod.startswith("gdmcd_core.design"):
            continue
        sub, rank = design_layer(mod)
        for dep in deps:
            if not dep.startswith("gdmcd_core.design"):
                continue
            dsub, drank = design_layer(dep)
            if dsub != sub and drank >= rank:
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


def test_package_inits_import_nothing_eagerly():
    """A package `__init__` is empty or lazy (PEP 562): no module-level import of gdmcd_core outside TYPE_CHECKING."""
    bad = []
    for init in CORE.rglob("__init__.py"):
        for node in ast.parse(init.read_text()).body:
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            bad += [f"{module_name(init)} imports {n}" for n in names if n.startswith("gdmcd_core")]
    assert not bad, bad


def _modules_after(code: str) -> set[str]:
    run = f"import sys\n{code}\nprint(' '.join(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", run], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return set(proc.stdout.split())


def test_a_design_module_imports_only_what_it_needs():
    loaded = {m for m in _modules_after("import gdmcd_core.design.objective.simplex") if m.startswith("gdmcd_core")}
    assert loaded == {
        "gdmcd_core",
        "gdmcd_core.design",
        "gdmcd_core.design.objective",
        "gdmcd_core.design.objective.simplex",
    }


def test_the_commands_help_imports_neither_torch_nor_pandas():
    """`gdmcd --help` builds no sub-command's options, so it answers at once."""
    code = "from gdmcd_core.cli.main import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass"
    loaded = _modules_after(code)
    assert not {"torch", "pandas", "gdmcd_core.design"} & loaded


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
