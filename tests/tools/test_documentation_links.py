"""The links of the README and the docs: each one is relative and leads to a file of this
repository, and an anchor to one of its headings. A reader offline or on a fork follows every
link to what it names; nothing may send them outside the repository. Likewise every file, folder
and module their code spans name is one of this repository: a reader looks for the code where
the docs say it is."""

from __future__ import annotations

import ast
import functools
import os
import re
from pathlib import Path

from fleetctl.mocked_program import REPO_ROOT

DOCUMENTS = sorted(
    [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", *(REPO_ROOT / "docs").rglob("*.md")]
)
# A Markdown inline link's target: `[text](target)`.
LINK_TARGET = re.compile(r"\]\(([^)\s]*)\)")
FENCED_BLOCK = re.compile(r"^```.*?^```", flags=re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"`[^`\n]*`")
# A code span of prose, which a line break may cut in two.
PROSE_CODE_SPAN = re.compile(r"`([^`]+)`")
# A repository file named without its folder, `checks/_aws.py` or `app.py`.
FILE_NAME = re.compile(r"[\w./-]+\.(?:py|toml|ya?ml|txt|md|cfg)")
# A module of the program, the tools or the shared layer, perhaps followed by a name it defines.
MODULE_NAME = re.compile(r"(?:fleet_shared|components|catalog|fleetctl|benchmarks)(?:\.\w+)+")
# What makes a code span a pattern rather than one name: `handlers/<function>/app.py`.
PLACEHOLDER = re.compile(r"[\s<>*{}$]")


def _prose(text: str) -> str:
    """`text` without code blocks and code spans, whose brackets are no links."""
    return CODE_SPAN.sub("", FENCED_BLOCK.sub("", text))


def _heading_anchors(document: Path) -> set[str]:
    """The anchors GitHub gives the headings of a Markdown file: lower case, punctuation but
    dashes and underscores dropped, spaces made dashes."""
    anchors = set()
    for heading in re.findall(r"^#+ (.+)$", FENCED_BLOCK.sub("", document.read_text()), re.M):
        anchors.add(re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-"))
    return anchors


def _link_problem(document: Path, target: str) -> str | None:
    """Why a link of `document` to `target` does not lead into the repository, or None."""
    if re.match(r"[a-zA-Z][a-zA-Z0-9+.-]*:", target) or target.startswith(("/", "//")):
        return "not relative: it leads outside the repository"
    path, _, anchor = target.partition("#")
    linked = (document.parent / path).resolve() if path else document
    if not linked.is_relative_to(REPO_ROOT.resolve()):
        return "leads outside the repository"
    if not linked.exists():
        return "no such file in the repository"
    if anchor and linked.suffix == ".md" and anchor not in _heading_anchors(linked):
        return f"{linked.name} has no heading #{anchor}"
    return None


def test_every_link_of_the_readme_and_docs_is_relative_and_leads_into_the_repository() -> None:
    # GIVEN the README, CONTRIBUTING.md and every page under docs/
    assert len(DOCUMENTS) > 3
    # WHEN each link target of their prose is followed from the file that holds it
    problems = [
        f"{document.relative_to(REPO_ROOT)}: ({target}) {problem}"
        for document in DOCUMENTS
        for target in LINK_TARGET.findall(_prose(document.read_text()))
        if (problem := _link_problem(document, target)) is not None
    ]
    # THEN each one is relative and leads to a file here (and a heading of it, when it names one)
    assert not problems, "\n".join(problems)


def test_a_link_out_of_the_repository_or_to_a_missing_heading_is_a_problem() -> None:
    # GIVEN the README WHEN links of each kind the rule refuses are judged
    readme = REPO_ROOT / "README.md"
    # THEN each is refused, and the README's own kinds of link pass
    assert _link_problem(readme, "https://example.com/docs") is not None
    assert _link_problem(readme, "/etc/passwd") is not None
    assert _link_problem(readme, "../outside.md") is not None
    assert _link_problem(readme, "docs/missing.md") is not None
    assert _link_problem(readme, "docs/benchmarks.md#no-such-section") is not None
    assert _link_problem(readme, "docs/benchmarks.md#demo") is None
    assert _link_problem(readme, "#local-tools") is None
    assert _link_problem(readme, "LICENSE") is None


@functools.cache
def _repository_files() -> tuple[str, ...]:
    """The repository's files, relative to its root: git's folder and the folders .gitignore
    names (the venv, tool caches, build output, bytecode) left out, as a clone has them."""
    ignored = {".git"} | {
        line.strip().rstrip("/")
        for line in (REPO_ROOT / ".gitignore").read_text().splitlines()
        if line.strip() and "*" not in line
    }
    files = []
    for folder, subfolders, names in os.walk(REPO_ROOT):
        subfolders[:] = [name for name in subfolders if name not in ignored]
        base = Path(folder).relative_to(REPO_ROOT)
        files += [(base / name).as_posix() for name in names]
    return tuple(files)


@functools.cache
def _top_folders() -> frozenset[str]:
    """The folders at the repository's root that hold its files."""
    return frozenset(path.split("/", 1)[0] for path in _repository_files() if "/" in path)


def _module_file(parts: list[str]) -> Path | None:
    """The source of the module `parts` names (the shared layer's package lives under
    handlers/), or None."""
    base = REPO_ROOT / "handlers" if parts[0] == "fleet_shared" else REPO_ROOT
    path = base.joinpath(*parts)
    return next(
        (source for source in (path.with_suffix(".py"), path / "__init__.py") if source.is_file()),
        None,
    )


def _module_problem(name: str) -> str | None:
    """Why the dotted `name` is no module of the repository, nor a module and a top-level name
    it defines, or None. The module is parsed, not imported."""
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        source = _module_file(parts[:cut])
        if source is None:
            continue
        rest = parts[cut:]
        if not rest:
            return None
        defined = {
            target.id if isinstance(target, ast.Name) else getattr(target, "name", "")
            for node in ast.parse(source.read_text()).body
            for target in (
                node.targets
                if isinstance(node, ast.Assign)
                else [node.target]
                if isinstance(node, ast.AnnAssign)
                else [node]
            )
        }
        return None if rest[0] in defined else f"{'.'.join(parts[:cut])} defines no {rest[0]}"
    return "no such module"


def _path_problem(span: str) -> str | None:
    """Why the code span `span`, when it names a path or module of the repository, names none
    that exists, or None (also for a span that names no such thing: a key, a value, a pattern)."""
    if PLACEHOLDER.search(span):
        return None
    if "/" in span and span.split("/", 1)[0] in _top_folders():
        return None if (REPO_ROOT / span).exists() else "no such path in the repository"
    if FILE_NAME.fullmatch(span):
        found = any(path == span or path.endswith(f"/{span}") for path in _repository_files())
        return None if found else "no file of the repository has this name"
    if MODULE_NAME.fullmatch(span):
        return _module_problem(span)
    return None


def test_every_path_and_module_the_readme_and_docs_name_exists() -> None:
    # GIVEN the code spans of the README, CONTRIBUTING.md and every page under docs/ (a span cut
    # by a line break read whole)
    spans = {
        (document, " ".join(span.split()))
        for document in DOCUMENTS
        for span in PROSE_CODE_SPAN.findall(FENCED_BLOCK.sub("", document.read_text()))
    }
    # WHEN each one that names a path, a file or a module of the repository is looked up
    problems = [
        f"{document.relative_to(REPO_ROOT)}: `{span}` {problem}"
        for document, span in sorted(spans)
        if (problem := _path_problem(span)) is not None
    ]
    # THEN each one exists
    assert not problems, "\n".join(problems)


def test_a_missing_path_file_or_module_is_a_problem_and_a_key_or_pattern_is_not() -> None:
    # GIVEN the repository's files WHEN spans of each kind are judged
    # THEN a path, file or module that is not here is refused
    assert _path_problem("handlers/fleet_shared/missing.py") is not None
    assert _path_problem("tests/handlers/missing/") is not None
    assert _path_problem("missing_module.py") is not None
    assert _path_problem("fleet_shared.missing") is not None
    assert _path_problem("fleet_shared.sessions.MISSING_BOUND") is not None
    # AND the docs' kinds of name that are here pass, as do S3 keys and patterns
    assert _path_problem("handlers/fleet_shared/sessions.py") is None
    assert _path_problem("checks/_aws.py") is None
    assert _path_problem("fleet_shared.sessions.HUB_CALL_SECONDS") is None
    assert _path_problem("components.fleet.Fleet") is None
    assert _path_problem("raw/rejected/") is None
    assert _path_problem("handlers/<function>/app.py") is None
