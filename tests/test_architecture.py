"""Layering rules that keep the library usable without Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_ONLY = ("streamlit", "streamlit_authenticator")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def test_only_tracker_ui_imports_streamlit():
    offenders = []
    files = [*ROOT.joinpath("tracker").rglob("*.py"), ROOT / "worker.py"]
    assert len(files) > 10
    for path in files:
        if (
            "ui" in path.relative_to(ROOT / "tracker").parts
            if path.is_relative_to(ROOT / "tracker")
            else False
        ):
            continue
        for module in imported_modules(path):
            if module.split(".")[0] in UI_ONLY:
                offenders.append(f"{path.relative_to(ROOT)} imports {module}")
    assert offenders == []


def test_no_print_in_library_outside_cli():
    offenders = []
    for path in ROOT.joinpath("tracker").rglob("*.py"):
        if "cli" in path.relative_to(ROOT / "tracker").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []
