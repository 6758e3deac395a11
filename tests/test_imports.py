"""The project's modules import each other without loops, the layers import downwards only, and the installed
package names cannot collide with another project's (module-level imports)."""

from __future__ import annotations

import ast

import tomllib

from tests.conftest import ROOT

# repository folder -> installed package (pyproject.toml's package-dir)
PACKAGES = {"distortion": "distortion", "datamodules": "distortion.datamodules", "callbacks": "distortion.callbacks"}
# the top layer: the verbs and the entry points; nothing below them imports them
TOP = ("distortion.cli", "distortion.lightning_cli", "distortion.commands", "distortion.bench", "distortion.__main__")


def _module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    parts[0] = PACKAGES[parts[0]]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    paths = [p for folder in PACKAGES for p in (ROOT / folder).rglob("*.py")]
    modules = {_module_name(p): p for p in paths}
    return {name: _imports(path, set(modules)) - {name} for name, path in modules.items()}


def _within(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _imports(path, modules: set[str]) -> set[str]:
    """Project modules imported at the top level of ``path`` (not inside functions)."""
    found = set()
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rsplit(".", 1)[0]
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else [])
                )
            found.add(base)
            found |= {f"{base}.{a.name}" for a in node.names}
    return {m for m in found if m in modules}


def test_no_import_loops() -> None:
    graph = _graph()
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            assert state.get(nxt) != 1, "import loop: " + " -> ".join(stack[stack.index(nxt) :] + [nxt])
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert "distortion.commands.sweep" in graph and "distortion.cli" in graph


def test_the_library_imports_neither_the_verbs_nor_datamodules_nor_callbacks() -> None:
    """Only the verbs (and the entry points) import ``commands``; the library below them imports no datamodule and
    no callback, which import the library: no loop between the three packages."""
    graph = _graph()
    for name, imported in graph.items():
        if not _within(name, ("distortion.cli",)):
            assert not {m for m in imported if _within(m, ("distortion.commands",))} - {name}, name
        if not _within(name, TOP):
            lower = {m for m in imported if _within(m, ("distortion.datamodules", "distortion.callbacks"))}
            if _within(name, ("distortion.datamodules",)):
                lower = {m for m in lower if _within(m, ("distortion.callbacks",))}
            elif _within(name, ("distortion.callbacks",)):
                lower = {m for m in lower if _within(m, ("distortion.datamodules",))}
            assert not lower, f"{name} imports {sorted(lower)}"


def test_every_package_folder_is_installed_under_distortion() -> None:
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    inits = [p for folder in PACKAGES for p in (ROOT / folder).rglob("__init__.py")]
    folders = {_module_name(p) for p in inits}
    assert set(setuptools["packages"]) == folders
    assert all(name == "distortion" or name.startswith("distortion.") for name in setuptools["packages"])
    assert setuptools["package-dir"] == {v: k for k, v in PACKAGES.items() if k != "distortion"}
