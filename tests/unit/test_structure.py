"""The shape of include/: the application's import graph has no circle, the product never needs the dev harness
(lectern_dev) or Airflow, and the harness is reached only lazily, from the CLI's dev commands."""

import ast
from pathlib import Path

from lectern.pipeline import SPECS

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


def reachable(start: str, edges: dict[str, set[str]]) -> set[str]:
    """Every module `start` imports, directly or through others, lazy imports included."""
    seen, todo = set(), [start]
    while todo:
        for successor in edges[todo.pop()] - seen:
            seen.add(successor)
            todo.append(successor)
    return seen


def test_the_state_layer_knows_no_stage():
    """lectern.state orders stages by name (lectern.recipes) and shares only data-only types with them
    (lectern.stage_types): nothing it imports, however indirectly, is a stage's module."""
    edges = graph()
    state = [name for name in edges if name == "lectern.state" or name.startswith("lectern.state.")]
    assert {"lectern.state.transitions", "lectern.state.reports", "lectern.state.catalog"} <= set(state)
    for name in state:
        stages = sorted(m for m in reachable(name, edges) if m.startswith("lectern.stages"))
        assert not stages, f"{name} reaches {stages}"


def test_a_stage_runs_code_only_where_it_runs():
    """The pipeline reads every stage's spec and no stage's code: a DAG file, the CLI's parser or a pod's
    settings never import WhisperX or PyAV to learn what a stage is. Each stage is a folder with its spec and
    its run."""
    edges = graph()
    stage_folders = {p.name for p in (INCLUDE / "lectern/stages").iterdir() if (p / "__init__.py").exists()}
    assert stage_folders == set(SPECS)
    for name in SPECS:
        assert {f"lectern.stages.{name}.spec", f"lectern.stages.{name}.run"} <= set(edges)
    for name in ("lectern.pipeline", "lectern.recipes", "lectern.config", "lectern_airflow.assets",
                 "lectern_airflow.params"):
        code = sorted(m for m in reachable(name, edges)
                      if m.startswith("lectern.stages.") and not m.endswith(".spec") and m.count(".") > 2)
        assert not code, f"{name} reaches stage code: {code}"


def test_only_transitions_write_a_status():
    """A video-stage's status is assigned (row.status = ..., VideoStage(status=...)) in lectern.state.transitions
    alone: the catalog opens a new video's first stage through it."""
    writers = set()
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            assigned = [t for t in getattr(node, "targets", []) if isinstance(t, (ast.Attribute, ast.Tuple))]
            fields = [e for t in assigned for e in (t.elts if isinstance(t, ast.Tuple) else [t])]
            if any(isinstance(f, ast.Attribute) and f.attr == "status" for f in fields):
                writers.add(name)
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "VideoStage" and \
                    any(k.arg == "status" for k in node.keywords):
                writers.add(name)
    assert writers == {"lectern.state.transitions"}
