"""keyadmin's imports point one way: no module imports, directly or through others, itself.

What this checks is the absence of cycles, which is what the layering (keyadmin/sso/__init__.py,
README "How it is built") exists for; the order of the layers itself is documented, not
enforced here. An import inside a function counts the same as one at the top, so a cycle cannot
hide in one, and none is allowed anywhere.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "keyadmin"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, known: set[str]) -> list[tuple[str, int, bool]]:
    """(imported keyadmin module, line, inside a function) for each import in `path`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    inside: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside.update(id(sub) for sub in ast.walk(node))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from keyadmin.sso import roles` imports the module keyadmin.sso.roles;
            # `from keyadmin.sso.roles import ROLES` the module keyadmin.sso.roles. A package's
            # __init__ runs first either way, as Python's doing, not a dependency of ours.
            submodules = [f"{node.module}.{alias.name}" for alias in node.names]
            names = [name for name in submodules if name in known] or [node.module]
        else:
            continue
        for name in names:
            if name in known:
                found.append((name, node.lineno, id(node) in inside))
    return found


def import_graph(package: Path = PACKAGE) -> tuple[dict[str, set[str]], list[str]]:
    paths = {
        module_name(path): path for path in package.rglob("*.py") if "migrations" not in path.parts
    }
    known = set(paths)
    graph: dict[str, set[str]] = {name: set() for name in known}
    in_functions = []
    for name, path in paths.items():
        for target, line, in_function in imports_of(path, known):
            if target != name:
                graph[name].add(target)
            if in_function:
                in_functions.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return graph, in_functions


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_keyadmin_module_imports_itself_through_others():
    graph, _ = import_graph()

    assert cycles(graph) == []


def test_no_keyadmin_module_is_imported_inside_a_function():
    _, in_functions = import_graph()

    assert in_functions == []


def test_the_scan_sees_a_cycle_and_an_import_inside_a_function(tmp_path):
    package = tmp_path / "keyadmin"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "low.py").write_text("def later():\n    from keyadmin.sub import high\n")
    (package / "sub" / "high.py").write_text("from keyadmin import low\n")
    global ROOT
    saved, ROOT = ROOT, tmp_path
    try:
        graph, in_functions = import_graph(package)
    finally:
        ROOT = saved

    assert cycles(graph) == [["keyadmin.low", "keyadmin.sub.high"]]
    assert in_functions == ["keyadmin/low.py:2 imports keyadmin.sub.high"]


def test_the_emulator_imports_nothing_of_the_product():
    graph, _ = import_graph()

    for name, targets in graph.items():
        if name.startswith("keyadmin.emulator"):
            assert {t for t in targets if not t.startswith("keyadmin.emulator")} <= {"keyadmin"}
