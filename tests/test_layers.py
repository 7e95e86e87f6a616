"""The library's data flow has no back edge (DESIGN.md: files -> data -> engine + methods +
losses + models -> run folder -> report -> notebook -> book).

Every import in ``dycon/`` is read from the source (lazy imports inside functions too) and
mapped to the top-level part of the package it comes from and the one it reaches.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "dycon"

# What the lower layers may never import, by the rule.
LOWER = ("data", "losses", "models", "metrics", "methods")
UPPER = ("engine", "experiments", "report", "figures")
# Only the entry points above the figures may import them.
ABOVE_FIGURES = ("figures", "reproduce", "cli", "__main__")


def _part(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 else rel.stem


def _imported_parts(path: Path, root: Path = PACKAGE) -> set[str]:
    """Top-level parts of the package at ``root`` that ``path`` imports, absolute or relative."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = path.relative_to(root.parent).parts[:-1]  # e.g. ("dycon", "engine")
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            names = [module] if node.module else [[*base, a.name] for a in node.names]
        for name in names:
            if len(name) > 1 and name[0] == "dycon":
                found.add(name[1])
    return found


EDGES = sorted(
    (_part(p), target, str(p.relative_to(PACKAGE.parent)))
    for p in PACKAGE.rglob("*.py")
    for target in _imported_parts(p)
)


def test_the_walk_sees_the_imports():
    pairs = {(a, b) for a, b, _ in EDGES}
    assert {("engine", "methods"), ("methods", "losses"), ("figures", "experiments")} <= pairs
    assert ("reproduce", "figures") in pairs  # an entry point above the figures


@pytest.mark.parametrize("lower", LOWER)
def test_lower_layers_never_import_upper_ones(lower):
    back = [(f, t) for part, t, f in EDGES if part == lower and t in UPPER]
    assert not back, f"back edges from {lower}: {back}"


def test_nothing_below_the_figures_imports_them():
    back = [(f, t) for part, t, f in EDGES if t == "figures" and part not in ABOVE_FIGURES]
    assert not back, f"imports of figures from below: {back}"


def test_the_relative_import_resolution_on_a_known_file():
    assert {"config", "methods", "models"} <= _imported_parts(PACKAGE / "engine" / "schema.py")
    assert _imported_parts(PACKAGE / "methods" / "__init__.py") == {"methods"}  # its modules


def test_a_back_edge_is_seen(tmp_path):
    module = tmp_path / "dycon" / "losses" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text("def f():\n    from ..engine.trainer import train\n    import dycon.report\n")
    assert _imported_parts(module, root=tmp_path / "dycon") == {"engine", "report"}


# The whole order, lowest first (dycon/__init__.py): a part imports only its own rank or lower.
RANK = {
    **dict.fromkeys(("__init__", "config", "paper"), 0),
    "data": 1,
    **dict.fromkeys(("losses", "models", "metrics"), 2),
    "methods": 3,
    "engine": 4,
    "analysis": 5,
    "experiments": 6,
    **dict.fromkeys(("report", "claims"), 7),
    "figures": 8,
    "reproduce": 9,
    "cli": 10,
    "__main__": 11,
}


def test_every_part_has_a_rank_and_imports_only_downwards():
    parts = {a for a, _, _ in EDGES} | {b for _, b, _ in EDGES}
    assert parts <= set(RANK), f"give these a rank: {sorted(parts - set(RANK))}"
    up = [(f, t) for part, t, f in EDGES if RANK[t] > RANK[part]]
    assert not up, f"imports that go up the layers: {up}"


def _private_imports(path: Path, root: Path = PACKAGE) -> list[str]:
    """Modules ``dycon.<part>._<name>`` that ``path`` imports from another part."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = path.relative_to(root.parent).parts[:-1]
    own = _part(path) if root == PACKAGE else package[1] if len(package) > 1 else ""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = [*base, *(node.module.split(".") if node.module else [])]
            names = [module] + [[*module, a.name] for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name.split(".") for a in node.names]
        else:
            continue
        for name in names:
            private = [i for i, n in enumerate(name) if n.startswith("_") and n[1:2] != "_"]
            if len(name) > 2 and name[0] == "dycon" and name[1] != own and private:
                out.append(".".join(name[: private[0] + 1]))  # up to the private module
    return sorted(set(out))


def test_no_private_module_is_imported_from_another_part():
    """``losses._checks`` and ``metrics._checks`` are their packages' own; other parts use what
    the package exports (``dycon.losses.compute_dtype``)."""
    found = {str(p.relative_to(PACKAGE.parent)): _private_imports(p) for p in PACKAGE.rglob("*.py")}
    assert not {f: m for f, m in found.items() if m}


def test_a_private_import_across_parts_is_seen(tmp_path):
    module = tmp_path / "dycon" / "methods" / "bad.py"
    module.parent.mkdir(parents=True)
    module.write_text("from ..losses._checks import compute_dtype\nfrom ._own import x\n")
    assert _private_imports(module, root=tmp_path / "dycon") == ["dycon.losses._checks"]
