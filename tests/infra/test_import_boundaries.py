"""The program's side imports no handler code: of `handlers/` only the shared layer's pure model
modules; and no handler code imports pulumi (README, Repository layout, contributing and license;
CONTRIBUTING, Code style)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from fleetctl.mocked_program import REPO_ROOT

# Imports every module of the program's packages, then runs every absolute import statement
# found in them (read from stdin), nested ones included, and lists what was loaded.
_LOADED_BY_THE_PROGRAMS_PACKAGES = """
import importlib, json, pkgutil, sys
sys.path[:0] = [".", "handlers"]
for package in ("catalog", "components"):
    for module in pkgutil.iter_modules(importlib.import_module(package).__path__):
        importlib.import_module(f"{package}.{module.name}")
for statement in json.load(sys.stdin):
    exec(statement, {})
print(json.dumps(sorted(sys.modules)))
"""
PROGRAM_PACKAGES = ("catalog", "components")

# What only handler code may load: AWS calls, Powertools' runtime utilities.
AWS_RUNTIME_MODULES = ("boto3", "botocore", "aws_lambda_powertools")
# What only the program's side may load: the Pulumi SDK and its provider SDKs (pulumi_aws, ...).
PULUMI_PACKAGE = "pulumi"


def _is_pulumi(module: str) -> bool:
    top_level = module.split(".", 1)[0]
    return top_level == PULUMI_PACKAGE or top_level.startswith(f"{PULUMI_PACKAGE}_")


def _pulumi_imports(path: Path) -> list[str]:
    """`file:line: statement` of every import of pulumi in a module, at any depth (inside a
    function, a class, a `try` or an `if TYPE_CHECKING:` too)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
        else:
            continue
        if any(_is_pulumi(module) for module in modules):
            found.append(f"{path.relative_to(REPO_ROOT)}:{node.lineno}: {ast.unparse(node)}")
    return found


def _import_statements(path: Path) -> list[str]:
    """Every absolute import statement of a module, at any depth (one inside a function runs
    only when that code path does, so importing the module misses it)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        ast.unparse(node)
        for node in ast.walk(tree)
        if isinstance(node, ast.Import) or (isinstance(node, ast.ImportFrom) and node.level == 0)
    ]


def _function_packages() -> set[str]:
    """The function folders of handlers/: importable by their own name too, since the program
    puts handlers/ on the import path for the shared layer (`components/__init__.py`)."""
    return {
        path.name
        for path in (REPO_ROOT / "handlers").iterdir()
        if path.is_dir() and (path / "__init__.py").is_file() and path.name != "fleet_shared"
    }


def test_components_and_catalog_load_no_handler_and_no_aws_client_code():
    # GIVEN every module of components/ and catalog/, imported in a fresh interpreter that sees
    # handlers/ as Lambda's layer path, and every import statement in them run there too
    statements = [
        statement
        for package in PROGRAM_PACKAGES
        for module in sorted((REPO_ROOT / package).rglob("*.py"))
        for statement in _import_statements(module)
    ]
    loaded = json.loads(
        subprocess.run(
            [sys.executable, "-c", _LOADED_BY_THE_PROGRAMS_PACKAGES],
            input=json.dumps(statements),
            cwd=REPO_ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    )
    # WHEN the loaded modules are listed
    top_level = {name.split(".", 1)[0] for name in loaded}
    # THEN no handler package is among them, under `handlers.` or under its own name, and of
    # the shared layer only modules that need no AWS client (nothing loaded boto3, botocore or
    # Powertools)
    assert sorted(top_level & {"handlers", *_function_packages()}) == []
    assert sorted(top_level & set(AWS_RUNTIME_MODULES)) == []
    assert "fleet_shared.inventory" in loaded


def test_no_handler_module_imports_pulumi_anywhere_in_it():
    # GIVEN every Python module under handlers/ (functions and the shared layer)
    modules = sorted((REPO_ROOT / "handlers").rglob("*.py"))
    assert len(modules) > 50
    # WHEN each is parsed and every import statement in it is read, nested ones included (an
    # import inside a function runs only when that code path does, so importing the entry
    # module, as the packaging test does, misses it)
    imports = [found for module in modules for found in _pulumi_imports(module)]
    # THEN none imports pulumi: Lambda has no Pulumi SDK, the archives carry none
    assert not imports, "handler code imports pulumi:\n" + "\n".join(imports)
