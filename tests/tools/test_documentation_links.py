"""The links of the README and the docs: each one is relative and leads to a file of this
repository, and an anchor to one of its headings. A reader offline or on a fork follows every
link to what it names; nothing may send them outside the repository."""

from __future__ import annotations

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
