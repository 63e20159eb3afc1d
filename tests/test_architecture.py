"""Layering rules that keep the library usable without Streamlit."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
UI_ONLY = ("streamlit", "starlette", "authlib")


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


# The one print outside the CLI: the server shows the one-time first-admin link to whoever
# started it (on its terminal, not in a log that others read).
SPEAKS_TO_THE_OPERATOR = {"tracker/ui/web.py"}


def test_no_print_in_library_outside_cli():
    offenders = []
    for path in ROOT.joinpath("tracker").rglob("*.py"):
        if "cli" in path.relative_to(ROOT / "tracker").parts:
            continue
        if str(path.relative_to(ROOT)) in SPEAKS_TO_THE_OPERATOR:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(str(path.relative_to(ROOT)))
    assert offenders == []


# --- the layers -------------------------------------------------------------------------------

# Each package of tracker/ may import only the packages of lower layers (and itself); two
# packages of one layer do not import each other. docs/architecture.md draws the same map.
LAYERS: tuple[frozenset[str], ...] = (
    frozenset({"models"}),
    frozenset({"core"}),
    frozenset({"providers", "identity"}),
    frozenset({"costs"}),
    frozenset({"attribution"}),
    frozenset({"ingest", "planning", "closing"}),
    frozenset({"alerts"}),
    frozenset({"reporting"}),
    frozenset({"exports"}),
    frozenset({"jobs"}),
    frozenset({"cli", "migrations"}),
    frozenset({"ui", "__main__"}),
)
MAX_MODULE_LINES = 600


def _tracker_modules() -> list[Path]:
    return [p for p in ROOT.joinpath("tracker").rglob("*.py") if "versions" not in p.parts]


def _package_of(path: Path) -> str:
    return path.relative_to(ROOT / "tracker").parts[0].removesuffix(".py")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _tracker_imports(path: Path) -> set[str]:
    """The tracker modules `path` imports at run time (not those under TYPE_CHECKING)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "tracker" or node.module.startswith("tracker."):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("tracker."))
    return found


def _layer(package: str) -> int:
    return next(i for i, members in enumerate(LAYERS) if package in members)


def test_every_package_has_a_layer():
    packages = {_package_of(p) for p in _tracker_modules()} - {"__init__"}
    assert packages == set().union(*LAYERS)


def test_packages_import_only_lower_layers():
    offenders = []
    for path in _tracker_modules():
        own = _package_of(path)
        if own == "__init__":
            continue
        for module in _tracker_imports(path):
            parts = module.split(".")
            if len(parts) < 2 or parts[1] == own:
                continue
            other = parts[1]
            if _layer(other) >= _layer(own):
                offenders.append(f"{path.relative_to(ROOT)} ({own}) imports {module} ({other})")
    assert offenders == []


def test_core_imports_no_domain_package_and_reporting_no_streamlit():
    offenders = []
    for path in _tracker_modules():
        package = _package_of(path)
        imported = imported_modules(path)
        if package == "core":
            offenders += [
                f"{path.relative_to(ROOT)} imports {m}"
                for m in imported
                if m.startswith("tracker.") and m.split(".")[1] not in ("core", "models")
            ]
        if package == "reporting":
            offenders += [
                f"{path.relative_to(ROOT)} imports {m}"
                for m in imported
                if m.split(".")[0] in UI_ONLY
            ]
    assert offenders == []


def test_no_import_circle():
    modules = {_module_name(p): p for p in _tracker_modules()}
    graph = {
        name: {m for m in _tracker_imports(path) if m in modules and m != name}
        for name, path in modules.items()
    }
    # Tarjan's strongly connected components: a component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for name in graph:
        if name not in index:
            visit(name)
    assert circles == []


def test_no_module_is_over_600_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in _tracker_modules()
        if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert long == {}


# --- pages and the router ---------------------------------------------------------------------


def _statements(path: Path) -> list[str]:
    """The module's top-level statements after its docstring, as source."""
    body = ast.parse(path.read_text()).body
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    return [ast.unparse(node) for node in body]


def test_top_level_matches_the_design_card():
    for name in ("app.py", "pages", "tracker", "worker.py", "tests", "requirements.txt"):
        assert (ROOT / name).exists(), name
    for name in ("Dockerfile", "docker-compose.yml", "README.md", "Makefile", ".ci/run"):
        assert (ROOT / name).exists(), name
    assert not (ROOT / "app_pages").exists()


def test_app_py_only_calls_the_router():
    """Run as the script, app.py calls the router; imported to serve, it is the ASGI app."""
    assert _statements(ROOT / "app.py") == [
        "import streamlit as st",
        "if __name__ == '__main__':\n    from tracker.ui import router\n    router.run()\n"
        "else:\n    from tracker.ui import web\n"
        "    app = st.App(__file__, routes=web.routes(), lifespan=web.lifespan)",
    ]


def test_every_page_goes_through_the_router_first():
    pages = sorted(ROOT.joinpath("pages").glob("*.py"))
    assert len(pages) >= 9
    for page in pages:
        assert _statements(page)[:2] == ["from tracker.ui import router", "router.gate()"], page


def test_the_router_registers_every_page_file():
    from tracker.ui.router import PAGES, PAGES_DIR

    assert PAGES_DIR == ROOT / "pages"
    assert sorted(p.file for p in PAGES) == sorted(p.name for p in PAGES_DIR.glob("*.py"))
