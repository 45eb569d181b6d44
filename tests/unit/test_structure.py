"""The shape of include/: the application's import graph has no circle, the product never needs the dev harness
(lectern_dev) or Airflow, and the harness is reached only lazily, from the CLI's dev commands."""

import ast
from pathlib import Path

INCLUDE = Path(__file__).resolve().parents[2] / "include"


def modules() -> dict[str, Path]:
    found = {}
    for path in INCLUDE.rglob("*.py"):
        if "migrations" in path.parts:  # Alembic's scripts, run by Alembic
            continue
        parts = path.relative_to(INCLUDE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path) -> list[tuple[str, bool]]:
    """(imported module or name, at module level) for every import in the file, function-level ones included."""
    tree = ast.parse(path.read_text())
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    top = {id(node) for node in tree.body}
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, id(node) in top) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            found += [(base, id(node) in top)] + [(f"{base}.{alias.name}", id(node) in top) for alias in node.names]
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: {m for m, _ in imports(name, path) if m in known and m != name} for name, path in known.items()}


def test_the_import_graph_has_no_circle():
    edges, state, cycles = graph(), {}, []

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for successor in sorted(edges[node]):
            if state.get(successor) == "open":
                cycles.append(" -> ".join(path[path.index(successor):] + [node, successor]))
            elif successor not in state:
                visit(successor, path + [node])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert not cycles


def test_the_product_needs_neither_the_harness_nor_airflow():
    """lectern.* never imports lectern_dev at module level, and only the CLI's dev commands do at all; it never
    imports Airflow (the DAGs and lectern_airflow do)."""
    lazily = set()
    for name, path in modules().items():
        if not name.startswith("lectern."):
            continue
        for module, at_top in imports(name, path):
            assert not module.startswith(("airflow", "lectern_airflow")), f"{name} imports {module}"
            if module.startswith("lectern_dev"):
                assert not at_top, f"{name} imports {module} at module level"
                lazily.add(name)
    assert lazily <= {"lectern.cli"}
