"""Numbers written with a leading 0 in a stack file, refused where their text can still be read.

The Pulumi CLI's YAML reads an unquoted `010` as the octal number 8 (`0` then digits 0-7) and
`09` as the number 9.0, and hands the program the number alone: `min_size: 010` reaches it as 8,
indistinguishable from `min_size: 8`, where a platform engineer meant 10. Only the stack file's
text tells them apart, so the local tools (`fleetctl plan`, `demo`, `invoke`, and the offline
plan of every pull request) read it and refuse such a number naming the field; `pulumi up`
cannot (docs/architecture.md). Account ids are left to the settings' own message, which quotes
the id as YAML read it and as it was probably written.
"""

from __future__ import annotations

import re

import yaml

from components.settings import PROJECT
from components.settings.value_checks import shown_key
from fleet_shared.validation_errors import cut_echo

YAML_INT_TAG = "tag:yaml.org,2002:int"
YAML_FLOAT_TAG = "tag:yaml.org,2002:float"
YAML_MERGE_TAG = "tag:yaml.org,2002:merge"
_LEADING_ZERO = re.compile(r"[-+]?0[0-9_]*[0-9][0-9_]*")
_OCTAL_DIGITS = re.compile(r"[-+]?[0-7_]+")
_LIST_INDEXES = re.compile(r"(\[\d+\])+$")
_ACCOUNT_ID_KEYS = ("account_id", "account_ids")
SHOWN_CHARACTERS = 20
"""The longest number quoted and converted in the message (Python converts at most 4,300 decimal
digits; a longer one is refused by its length)."""


def leading_zero_number(root: yaml.Node | None) -> tuple[str, str] | None:
    """The first plain number written with a leading 0 among the project's settings of the
    composed stack file `root` (in file order), as (field, problem); None when there is none.
    The field is named as the settings' messages name it (`members[0].clusters[0]...`)."""
    config = _value_of(root, "config") if isinstance(root, yaml.MappingNode) else None
    if not isinstance(config, yaml.MappingNode):
        return None
    for key_node, value_node in config.value:
        key = str(key_node.value)
        namespace, _, setting = key.partition(":") if ":" in key else (PROJECT, "", key)
        if namespace != PROJECT:
            continue
        found = _first_in(value_node, shown_key(setting))
        if found is not None:
            return found
    return None


def _value_of(mapping: yaml.MappingNode, key: str) -> yaml.Node | None:
    return next((value for k, value in mapping.value if k.value == key), None)


def _first_in(node: yaml.Node, path: str) -> tuple[str, str] | None:
    """Depth first, in file order, without recursion (an alias may make a node hold itself)."""
    pending: list[tuple[yaml.Node, str]] = [(node, path)]
    seen: set[int] = set()
    while pending:
        current, at = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, yaml.ScalarNode):
            problem = _problem(current, at)
            if problem is not None:
                return at, problem
        elif isinstance(current, yaml.SequenceNode):
            pending.extend(
                (item, f"{at}[{index}]") for index, item in reversed(list(enumerate(current.value)))
            )
        elif isinstance(current, yaml.MappingNode):
            children = [
                (value, at if key.tag == YAML_MERGE_TAG else f"{at}.{shown_key(str(key.value))}")
                for key, value in current.value
            ]
            pending.extend(reversed(children))
    return None


def _problem(node: yaml.ScalarNode, at: str) -> str | None:
    """Why the plain scalar `node` at `at` is refused: a number with a leading 0."""
    # A plain scalar: libyaml gives it the style "", the pure-Python parser None.
    if node.style not in (None, "") or node.tag not in (YAML_INT_TAG, YAML_FLOAT_TAG):
        return None
    text = str(node.value)
    key = _LIST_INDEXES.sub("", at).rsplit(".", 1)[-1]
    if not _LEADING_ZERO.fullmatch(text) or key.endswith(_ACCOUNT_ID_KEYS):
        return None
    shown = cut_echo(text, SHOWN_CHARACTERS)
    digits = text.replace("_", "")
    if len(digits) > SHOWN_CHARACTERS:
        return f"{shown} has a leading 0, which YAML reads as another number; quote it for the text"
    if _OCTAL_DIGITS.fullmatch(digits):
        read = f"the octal number {int(digits, 8)}"
    else:
        read = f"the number {float(digits)}"
    return (
        f"{shown} has a leading 0, which YAML reads as {read} (so would `pulumi up`); write "
        f'{int(digits)} for the number, or "{shown}" in quotes for the text'
    )
