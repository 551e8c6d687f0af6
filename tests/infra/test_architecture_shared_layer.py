"""docs/architecture.md's lists of the handler code built on a shared module name the code that
is: the page loops `fleet_shared.page_tokens.pages` guards, and the functions whose member
clients are watched, with the number of unanswered calls after which each gives an endpoint up.
A reader asking "does this apply to my function's calls?" gets the code's answer."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

from catalog import FUNCTIONS
from fleet_shared.function_services import WatchedMemberServices
from fleet_shared.unanswered_endpoints import MEMBER_CALLS_GIVEN_UP_AFTER
from fleetctl.mocked_program import REPO_ROOT

HANDLERS = REPO_ROOT / "handlers"
PAGE_LOOPS = re.compile(r"`page_tokens\.py` \(a page loop without a boto3 paginator, (.*?), fails")
WATCHED_MEMBER_CLIENTS = re.compile(
    r"a watched member client after two such calls \(([^)]*)\) or one \(([^)]*)\)"
)
CALLS_BY_WORD = {"two": 2, "one": 1}


def _architecture() -> str:
    """docs/architecture.md with its lines joined, so a sentence reads whole."""
    return " ".join((REPO_ROOT / "docs" / "architecture.md").read_text().split())


def _handler_sources(*mentioning: str) -> list[tuple[Path, ast.Module]]:
    """The parsed handler modules whose text mentions one of `mentioning` (only those are
    parsed)."""
    sources = ((path, path.read_text()) for path in sorted(HANDLERS.rglob("*.py")))
    return [
        (path, ast.parse(text))
        for path, text in sources
        if any(word in text for word in mentioning)
    ]


def _module(path: Path) -> object:
    """The handler module of `path` (`handlers.<function>....`), imported as the tests do."""
    return importlib.import_module(".".join(path.relative_to(REPO_ROOT).with_suffix("").parts))


def _calls(tree: ast.Module, name: str) -> list[ast.Call]:
    """The calls of `name`, as a function or as a method."""
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == name)
            or (isinstance(node.func, ast.Attribute) and node.func.attr == name)
        )
    ]


def _text_of(node: ast.expr, tree: ast.Module) -> str | None:
    """The text `node` stands for: a string literal, or a module-level name bound to one."""
    if isinstance(node, ast.Name):
        bound = [
            statement.value
            for statement in tree.body
            if isinstance(statement, ast.Assign)
            and any(
                isinstance(target, ast.Name) and target.id == node.id
                for target in statement.targets
            )
        ]
        node = bound[-1] if bound else node
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def _given_up_after(call: ast.Call, module: object) -> int:
    """The `given_up_after` a `watched_member_client` call passes, or its default."""
    for keyword in call.keywords:
        if keyword.arg == "given_up_after":
            if isinstance(keyword.value, ast.Name):
                return int(getattr(module, keyword.value.id))
            return int(ast.literal_eval(keyword.value))
    return MEMBER_CALLS_GIVEN_UP_AFTER


def _watched_member_calls() -> dict[str, int]:
    """Function -> the unanswered calls after which its watched member clients give an endpoint
    up, from its `WatchedMemberServices` subclass or its own `watched_member_client` calls."""
    given_up: dict[str, int] = {}
    for path, tree in _handler_sources("watched_member_client", "WatchedMemberServices"):
        function = path.relative_to(HANDLERS).parts[0]
        if function == "fleet_shared" or len(path.relative_to(HANDLERS).parts) == 1:
            continue
        calls = _calls(tree, "watched_member_client")
        if not calls and "WatchedMemberServices" not in path.read_text():
            continue
        module = _module(path)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, WatchedMemberServices)
                and value.__module__ == getattr(module, "__name__", "")
            ):
                given_up[function] = value.member_calls_given_up_after
        for call in calls:
            given_up[function] = _given_up_after(call, module)
    return given_up


def test_the_page_loops_the_architecture_names_are_those_built_on_page_tokens() -> None:
    # GIVEN the operations the architecture says page_tokens guards
    found = PAGE_LOOPS.search(_architecture())
    assert found, "docs/architecture.md no longer lists the page loops of page_tokens.py"
    named = set(re.findall(r"([A-Z]\w+)'", found[1]))
    # WHEN the handler code's calls of `pages` are read
    looped = {
        operation
        for _, tree in _handler_sources("pages(")
        for call in _calls(tree, "pages")
        if len(call.args) > 1
        for operation in [_text_of(call.args[1], tree)]
        if operation is not None
    }
    # THEN the list is the operations the code pages through it
    assert looped, "no call of fleet_shared.page_tokens.pages found"
    assert named == looped


def test_the_functions_with_watched_member_clients_are_those_the_architecture_names() -> None:
    # GIVEN the architecture's two lists: functions that give an endpoint up after two
    # unanswered calls, and after one
    found = WATCHED_MEMBER_CLIENTS.search(_architecture())
    assert found, "docs/architecture.md no longer lists the watched member clients"
    names = [spec.name for spec in FUNCTIONS]
    named = {
        name: CALLS_BY_WORD[word]
        for word, group in zip(CALLS_BY_WORD, found.groups(), strict=True)
        for name in names
        if f"{name}'s" in group
    }
    # WHEN the handlers' watched member clients are read
    watched = _watched_member_calls()
    # THEN each function is in the list of its number
    assert named == watched
