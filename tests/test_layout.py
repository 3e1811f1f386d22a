"""The house rules of docs/ARCHITECTURE.md, checked on the source itself: a newcomer finds one
concern per module, so modules stay small, function bodies short, and Gradio stays out of
`explorer/`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("explorer", "ui")
MAX_MODULE_LINES = 400
MAX_BODY_LINES = 60
MAX_APP_LINES = 150
# argparse tables read best as one long list of add_argument calls
LONG_ON_PURPOSE = {("explorer/cli.py", "build_parser")}


def _modules():
    return sorted(path for package in PACKAGES for path in (ROOT / package).glob("*.py"))


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


@pytest.mark.parametrize("path", sorted((ROOT / "explorer").glob("*.py")), ids=lambda p: p.name)
def test_explorer_never_imports_the_ui(path):
    assert not _imports(path) & {"gradio", "gradio_client", "ui", "app"}
