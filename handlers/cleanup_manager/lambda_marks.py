"""The Lambda version marks of one target, kept in the state table in parts.

Lambda versions cannot be tagged one by one, so their marks (`<function>:<version>` -> date and
the version's LastModified, candidates.lambda_mark) live in the state table under the target's
key. Thousands of them take more than DynamoDB's
400 KB item, so a save writes them in parts of MARKS_PER_PART, named after the digest of the
whole set (`lambda_marks#<digest>#<index>`), and only then the value `lambda_marks`, which names
that digest and how many parts it has: a save that fails between leaves the marks read before in
force (a mark not saved is made again by the next run, with a later date, so nothing is deleted
sooner than announced). The parts of other sets are deleted after. Earlier versions kept the
marks themselves in `lambda_marks`; they are read until the first save replaces them.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from fleet_shared.exceptions import UnreadableStateValueError
from fleet_shared.state_table import StateTable

_logger = logging.getLogger(__name__)

LAMBDA_MARKS = "lambda_marks"
MARKS_PER_PART = 2_000
"""Marks per item: about 90 bytes each at most (a 64-character function name), so a part stays
under half of DynamoDB's 400 KB item."""


@dataclass(frozen=True)
class SavedMarks:
    """The marks in force, and the names of every item of the record as read (for the next
    save to delete the parts it no longer uses)."""

    marks: dict[str, str]
    item_names: frozenset[str]


def _part_name(digest: str, index: int) -> str:
    return f"{LAMBDA_MARKS}#{digest}#{index:06d}"


_NOT_MARKS = "it is no Lambda marks record"


def read_marks(state: StateTable, key: str) -> SavedMarks:
    """The marks in force under `key` (none when nothing was saved). Raises
    UnreadableStateValueError, naming the item, for one not shaped as save_marks (or an earlier
    version) writes it: a hand edit or corruption (a part count that is no number, or more parts
    than were saved, marks that are not texts) ended the whole run, every target unhandled, or
    read parts for as long as Lambda let it."""
    saved = state.values_named(key, LAMBDA_MARKS)
    if LAMBDA_MARKS not in saved:
        return SavedMarks({}, frozenset(saved))
    head = saved[LAMBDA_MARKS]
    if "marks" in head:
        return SavedMarks(_marks_of(key, LAMBDA_MARKS, head), frozenset(saved))
    parts, digest = head.get("parts", 0), head.get("digest", "")
    if type(parts) is not int or not 0 <= parts < len(saved) or not isinstance(digest, str):
        raise UnreadableStateValueError(key, LAMBDA_MARKS, _NOT_MARKS)
    marks: dict[str, str] = {}
    for index in range(parts):
        name = _part_name(digest, index)
        marks.update(_marks_of(key, name, saved.get(name, {"marks": {}})))
    return SavedMarks(marks, frozenset(saved))


def _marks_of(key: str, name: str, value: dict[str, Any]) -> dict[str, str]:
    """The marks of the item `name` of `key`, `<function>:<version>` -> text each; raises
    UnreadableStateValueError when they are not."""
    marks = value.get("marks")
    if not isinstance(marks, dict) or not all(
        isinstance(identifier, str) and isinstance(mark, str) for identifier, mark in marks.items()
    ):
        raise UnreadableStateValueError(key, name, _NOT_MARKS)
    return marks


def save_marks(state: StateTable, key: str, marks: dict[str, str], read: SavedMarks) -> None:
    """Replace the marks in force under `key` by `marks` (see the module docstring); raises
    ClientError or BotoCoreError when they are not in force (the previous ones still are)."""
    ordered = sorted(marks.items())
    digest = hashlib.sha256(repr(ordered).encode("utf-8")).hexdigest()[:16]
    parts = [
        dict(ordered[start : start + MARKS_PER_PART])
        for start in range(0, len(ordered), MARKS_PER_PART)
    ]
    for index, part in enumerate(parts):
        state.put_value(key, _part_name(digest, index), {"marks": part})
    state.put_value(key, LAMBDA_MARKS, {"digest": digest, "parts": len(parts)})
    in_use = {LAMBDA_MARKS, *(_part_name(digest, index) for index in range(len(parts)))}
    for name in sorted(read.item_names - in_use):
        try:
            state.delete_value(key, name)
        except (ClientError, BotoCoreError) as error:
            # The new marks are in force; a part left over is never read, and the next save
            # deletes it.
            _logger.warning("unused Lambda marks %s of %s not deleted (%s)", name, key, error)
