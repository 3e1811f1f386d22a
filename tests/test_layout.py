"""The house rules of docs/ARCHITECTURE.md, checked on the source itself: a newcomer finds one
concern per module, so modules stay small, function bodies short, the map names every module,
the layers of `explorer/` point down (`lint-imports`), Gradio stays out of them, no import
cycle joins two modules and an import inside a function says why it is there."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_MODULE_LINES = 400
MAX_BODY_LINES = 60
MAX_APP_LINES = 150
# argparse tables read best as one long list of add_argument calls
LONG_ON_PURPOSE = {("explorer/cli/commands.py", "build_parser")}
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
NOT_MAPPED = {"__init__.py", "__main__.py"}  # a folder's docstring, `python -m explorer`


def _modules():
    """Every module of explorer/ (its subpackages included) and of ui/."""
    return sorted([*(ROOT / "explorer").rglob("*.py"), *(ROOT / "ui").glob("*.py")])


def _body_lines(node) -> int:
    """Lines of a function's body, its docstring left out."""
    body = node.body
    if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
            and isinstance(body[0].value.value, str):
        body = body[1:]
    if not body:
        return 0
    return body[-1].end_lineno - body[0].lineno + 1


def test_app_is_an_assembler():
    assert len((ROOT / "app.py").read_text().splitlines()) <= MAX_APP_LINES


def test_one_module_per_tab():
    for tab in ("architecture", "train", "gradients", "classify", "insight", "paths", "tour"):
        assert (ROOT / "ui" / f"{tab}.py").is_file(), tab


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_size_and_function_bodies(path):
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE_LINES, f"{path.name}: over {MAX_MODULE_LINES} lines"
    relative = str(path.relative_to(ROOT))
    long = [f"{node.name} ({_body_lines(node)} lines)" for node in ast.walk(ast.parse(source))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and _body_lines(node) > MAX_BODY_LINES and (relative, node.name) not in LONG_ON_PURPOSE]
    assert not long, f"{relative}: function bodies over {MAX_BODY_LINES} lines: {long}"


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return names


def test_import_contracts_hold():
    """The layers of explorer/ and the Gradio ban, as pyproject.toml's [tool.importlinter] says."""
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("path", sorted((ROOT / "explorer").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_explorer_never_imports_the_app(path):
    # app.py is a top-level script, outside import-linter's packages
    assert "app" not in _imports(path)


def _inner_imports_without_reason(path: Path) -> list[str]:
    """Imports inside functions of `path` with no comment on their lines or the line above:
    each is there to keep a heavy dependency out of a light module (or command) and says so."""
    source = path.read_text()
    lines = source.splitlines()
    comments = {token.start[0] for token in tokenize.generate_tokens(io.StringIO(source).readline)
                if token.type == tokenize.COMMENT}
    bare = set()
    for function in ast.walk(ast.parse(source)):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                above = node.lineno - 1
                said = comments & set(range(node.lineno, node.end_lineno + 1)) or (
                    above >= 1 and lines[above - 1].lstrip().startswith("#"))
                if not said:
                    bare.add(f"{node.lineno}: {lines[node.lineno - 1].strip()}")
    return sorted(bare, key=lambda line: int(line.split(":")[0]))


def test_inner_imports_without_reason_finds_one(tmp_path):
    module = tmp_path / "module.py"
    module.write_text("import json\n\n\ndef f():\n    import math\n    import os  # why\n\n\n"
                      "def g():\n    # why\n    import re\n"
                      "    from sys import (\n        argv,  # why\n    )\n    import time\n")
    assert _inner_imports_without_reason(module) == ["5: import math", "15: import time"]


@pytest.mark.parametrize("path", sorted((ROOT / "explorer").rglob("*.py")),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_inside_functions_say_why(path):
    """An import inside a function keeps a heavy dependency (TensorFlow, Keras, PIL, Plotly, Dask)
    out of a module that is light at import (or TensorFlow out of a Keras run on JAX), or breaks
    a cycle, and a comment says which; any other import belongs at the module's top."""
    bare = _inner_imports_without_reason(path)
    assert not bare, f"{path.relative_to(ROOT)}: imports inside functions with no comment saying why: {bare}"


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (Tarjan, without recursion)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    for root in sorted(edges):
        if root in index:
            continue
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        work = [(root, iter(sorted(edges[root])))]
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
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
    return found


def test_cycles_finds_a_cycle():
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(edges) == [["a", "b", "c"]]


def test_no_import_cycle_in_explorer():
    """Modules of explorer/ import one another without a cycle, imports inside functions counted."""
    import grimp

    graph = grimp.build_graph("explorer", cache_dir=None)  # nothing written into the repo
    modules = {name for name in graph.modules if name.split(".")[0] == "explorer"}
    edges = {name: graph.find_modules_directly_imported_by(name) & modules for name in modules}
    assert not _cycles(edges), f"import cycles: {_cycles(edges)}"


def _mapped() -> set[str]:
    """Every module that must be named in docs/ARCHITECTURE.md, by its repo-relative path."""
    return {str(path.relative_to(ROOT)) for path in _modules() if path.name not in NOT_MAPPED}


def test_architecture_names_every_module():
    named = set(re.findall(r"(?<![\w/.])((?:explorer|ui)/[\w/]*\.py)\b", ARCHITECTURE.read_text()))
    missing = sorted(_mapped() - named)
    assert not missing, f"modules docs/ARCHITECTURE.md does not name: {missing}"
    stale = sorted(path for path in named if not (ROOT / path).is_file())
    assert not stale, f"docs/ARCHITECTURE.md names modules that do not exist: {stale}"


def test_no_module_directly_under_explorer():
    """explorer/ holds its subpackages; a module belongs in the folder of its concern."""
    loose = sorted(path.name for path in (ROOT / "explorer").glob("*.py") if path.name not in NOT_MAPPED)
    assert not loose, f"modules directly under explorer/: {loose}"
