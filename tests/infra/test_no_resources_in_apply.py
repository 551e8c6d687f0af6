"""No resource is created inside an `apply` callback: a preview runs a callback only once its
inputs are known, so a resource created there would be missing from `pulumi preview` (and from
`fleetctl plan`, whose mocks know every value) and appear only at `pulumi up`."""

from __future__ import annotations

import ast
import importlib
import inspect
import textwrap
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pulumi

from fleetctl.mocked_program import REPO_ROOT

PROGRAM_PACKAGES = ("components",)


def _program_modules() -> list[ModuleType]:
    return [
        importlib.import_module(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts))
        for package in PROGRAM_PACKAGES
        for path in sorted((REPO_ROOT / package).rglob("*.py"))
        if path.name != "__init__.py"
    ]


def _resolved(expression: ast.expr, module: ModuleType) -> Any:
    """What a name or dotted name means in `module`; None when it starts from no module-level
    name (a local, or a method through `self`, which this search does not follow)."""
    if isinstance(expression, ast.Name):
        return vars(module).get(expression.id)
    if isinstance(expression, ast.Attribute):
        base = _resolved(expression.value, module)
        return getattr(base, expression.attr, None) if base is not None else None
    return None


def _is_repository_function(value: Any) -> bool:
    if not inspect.isfunction(value):
        return False
    source_file = inspect.getsourcefile(value)
    return source_file is not None and Path(source_file).resolve().is_relative_to(REPO_ROOT)


def _resources_reached(callee: Any, visited: set[Any], path: str) -> Iterator[str]:
    """`path -> resource class` when `callee` is a resource class, or a function of the
    repository that calls a resource constructor, directly or through its own calls."""
    if inspect.isclass(callee) and issubclass(callee, pulumi.Resource):
        yield f"{path} -> {callee.__module__}.{callee.__qualname__}"
    elif _is_repository_function(callee) and callee not in visited:
        visited.add(callee)
        body = ast.parse(textwrap.dedent(inspect.getsource(callee)))
        yield from _resources_called(
            body, inspect.getmodule(callee), visited, f"{path} -> {callee.__qualname__}"
        )


def _resources_called(
    node: ast.AST, module: ModuleType | None, visited: set[Any], path: str
) -> Iterator[str]:
    if module is None:
        return
    for call in (found for found in ast.walk(node) if isinstance(found, ast.Call)):
        yield from _resources_reached(_resolved(call.func, module), visited, path)


def _apply_callbacks(module: ModuleType) -> Iterator[tuple[str, ast.AST]]:
    """`(file:line, callback)` of every `.apply(...)` call in the module."""
    tree = ast.parse(inspect.getsource(module))
    for call in ast.walk(tree):
        if (
            isinstance(call, ast.Call)
            and isinstance(call.func, ast.Attribute)
            and call.func.attr == "apply"
            and call.args
        ):
            yield f"{module.__name__}:{call.lineno}", call.args[0]


def test_no_apply_callback_of_the_program_creates_a_resource():
    # GIVEN every `.apply(...)` callback of the program's components
    callbacks = [
        (where, callback, module)
        for module in _program_modules()
        for where, callback in _apply_callbacks(module)
    ]
    assert callbacks, "no apply callback found: the search is broken"
    # WHEN each callback's calls are followed into the repository's functions
    created = [
        found
        for where, callback, module in callbacks
        for found in (
            _resources_called(callback, module, set(), where)
            if isinstance(callback, ast.Lambda)
            else _resources_reached(_resolved(callback, module), set(), where)
        )
    ]
    # THEN none reaches a resource constructor
    assert created == []
