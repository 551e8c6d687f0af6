"""No import cycles between the modules of one package under handlers/.

Every import statement of a module is read from its syntax tree: top-level ones, those under
`if TYPE_CHECKING:` (the router's settings <-> channels cycle) and those deferred into a function
(the scanner's registry <-> checks cycle), since each is a dependency all the same. An import of a
module of the same package is an edge; any cycle of edges fails the test, naming the modules in
order. Every module must also import on its own.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

HANDLERS = Path(__file__).resolve().parents[2] / "handlers"
SHARED_LAYER = "fleet_shared"
"""Imported as a top-level package, as it is from /opt/python in Lambda."""


def module_name(path: Path, root: Path) -> str:
    """`handlers/x/checks/__init__.py` -> `handlers.x.checks`; the layer without `handlers.`."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    if parts and parts[0] == SHARED_LAYER:
        return ".".join(parts)
    return ".".join([root.name, *parts])


def package_modules(root: Path) -> dict[str, dict[str, Path]]:
    """The modules under `root`, grouped by their package: `handlers.<function>` or the layer."""
    packages: dict[str, dict[str, Path]] = {}
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        parts = name.split(".")
        package = SHARED_LAYER if parts[0] == SHARED_LAYER else ".".join(parts[:2])
        packages.setdefault(package, {})[name] = path
    return packages


def imported_modules(name: str, path: Path, known: set[str]) -> set[str]:
    """The modules of `known` that module `name` (at `path`) imports anywhere in its code."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
            continue
        if not isinstance(node, ast.ImportFrom):
            continue
        base = node.module or ""
        if node.level:
            anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
            base = f"{anchor}.{base}" if base else anchor
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            found.add(submodule if submodule in known else base)
    return (found & known) - {name}


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every cycle a depth-first walk of `graph` closes, each as the modules along it."""
    cycles: list[list[str]] = []
    finished: set[str] = set()
    path: list[str] = []

    def visit(module: str) -> None:
        path.append(module)
        for imported in sorted(graph.get(module, ())):
            if imported in path:
                cycles.append([*path[path.index(imported) :], imported])
            elif imported not in finished:
                visit(imported)
        path.pop()
        finished.add(module)

    for module in sorted(graph):
        if module not in finished:
            visit(module)
    return cycles


def package_cycles(root: Path) -> list[list[str]]:
    """The import cycles inside each package under `root`."""
    cycles: list[list[str]] = []
    for modules in package_modules(root).values():
        known = set(modules)
        graph = {name: imported_modules(name, path, known) for name, path in modules.items()}
        cycles += find_cycles(graph)
    return cycles


def test_no_package_under_handlers_has_an_import_cycle() -> None:
    # GIVEN every module under handlers/ WHEN the top-level imports of each package are walked
    cycles = package_cycles(HANDLERS)
    # THEN no module reaches itself again
    assert cycles == [], "\n".join(" -> ".join(cycle) for cycle in cycles)


@pytest.mark.parametrize(
    "name",
    sorted(name for modules in package_modules(HANDLERS).values() for name in modules),
)
def test_every_module_under_handlers_imports(name: str) -> None:
    # GIVEN a module under handlers/ WHEN it is imported THEN it loads (and names itself)
    assert importlib.import_module(name).__name__ == name


@pytest.mark.parametrize(
    "channels_source",
    [
        "import typing\nif typing.TYPE_CHECKING:\n    from handlers.router import settings\n",
        "def load():\n    from handlers.router.settings import ROUTES\n    return ROUTES\n",
    ],
    ids=["type-checking import", "import deferred into a function"],
)
def test_a_cycle_is_found_however_the_import_is_written(
    tmp_path: Path, channels_source: str
) -> None:
    # GIVEN a package whose settings import channels, and whose channels import settings for
    # type checking only or inside a function (the two cycles the fleet had)
    package = tmp_path / "handlers" / "router"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "settings.py").write_text("from handlers.router.channels import CHANNELS\n")
    (package / "channels.py").write_text(channels_source)
    # WHEN its cycles are looked for THEN the cycle is reported in import order
    assert package_cycles(tmp_path / "handlers") == [
        ["handlers.router.channels", "handlers.router.settings", "handlers.router.channels"]
    ]


def test_a_package_importing_its_own_plugins_is_no_cycle(tmp_path: Path) -> None:
    # GIVEN a plugin package that imports its plugins, which import a sibling helper and the
    # registry (the shape of the security scanner's checks)
    package = tmp_path / "handlers" / "scanner"
    (package / "checks").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "registry.py").write_text("REGISTRY = {}\n")
    (package / "checks" / "__init__.py").write_text("from . import storage\n")
    (package / "checks" / "_aws.py").write_text("from handlers.scanner import registry\n")
    (package / "checks" / "storage.py").write_text(
        "from handlers.scanner.checks._aws import registry\n"
    )
    # WHEN its cycles are looked for THEN there are none
    assert package_cycles(tmp_path / "handlers") == []
