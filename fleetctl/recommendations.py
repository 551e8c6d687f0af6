"""`fleetctl recommendations`: the scaling optimizer's latest recommendations as a patch.

The optimizer writes what it recommends (each stack file value, with its evidence) to the data
bucket; the stack file itself lives here, in the repository. This module renders the
recommendations as a unified diff of `Pulumi.<stack>.yaml` that `git apply` (or `patch -p1`)
applies: each changed value is replaced where it stands, with its evidence as a comment at the
end of its line; a key the file does not have yet (a function's `memory_mb`) is added at the end
of the mapping that should hold it. Comments and layout of the rest of the file are untouched.
A patch after which the program's settings validation would refuse the file is not printed.
Scaler settings, which are not stack file values, are listed above the diff, where `git apply`
ignores them.
"""

from __future__ import annotations

import difflib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import is_valid_endpoint_url, is_valid_ipv6_endpoint_url
from pydantic import ValidationError

from catalog.functions import function_spec
from components.settings import PROJECT
from fleet_shared.performance_documents import (
    LATEST_RECOMMENDATIONS_KEY,
    NAMED_LISTS,
    PathSegment,
    Recommendations,
    StackFileChange,
)
from fleet_shared.validation_errors import shown_value
from fleetctl.exceptions import PlanError, RecommendationsError
from fleetctl.handler_environment import FAKE_CREDENTIALS, deployed_environment
from fleetctl.local_world import settings_of, stack_settings
from fleetctl.mocked_program import REPO_ROOT, run_program, stack_config

OPTIMIZER = "scaling_optimizer"
NAMESPACE = f"{PROJECT}:"
INDENT_STEP = 2


def parse_recommendations(text: str | bytes, source: str) -> Recommendations:
    """The recommendations document in `text`; one-line error naming `source` otherwise."""
    try:
        return Recommendations.model_validate(json.loads(text))
    except json.JSONDecodeError as error:
        raise RecommendationsError(f"{source} is not JSON: {error.msg}") from None
    except UnicodeDecodeError as error:
        raise RecommendationsError(f"{source} is not JSON text: {error.reason}") from None
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "document"
        raise RecommendationsError(
            f"{source} is not a recommendations document: {where}: {first['msg']}"
        ) from None
    except ValueError:
        # After ValidationError, a ValueError too: json.loads' own (an integer of more than
        # 4,300 digits, which Python refuses to read).
        raise RecommendationsError(f"{source} is not JSON: a number too long to read") from None
    except RecursionError:
        raise RecommendationsError(f"{source} is not JSON: nested too deeply") from None


def read_file(path: Path) -> Recommendations:
    """The recommendations saved in `path`."""
    try:
        return parse_recommendations(path.read_bytes(), str(path))
    except OSError as error:
        raise RecommendationsError(f"cannot read {path}: {error.strerror}") from None


def read_bucket(stack: str, endpoint_url: str) -> Recommendations:
    """The latest recommendations in the stack's data bucket at `endpoint_url` (a moto server,
    LocalStack), read with fake credentials."""
    # botocore refuses such a URL with a ValueError when the client is made; checked first,
    # before the stack's program runs.
    if not (is_valid_endpoint_url(endpoint_url) or is_valid_ipv6_endpoint_url(endpoint_url)):
        raise RecommendationsError(
            f"--endpoint-url {shown_value(endpoint_url)} is not an endpoint URL (such as "
            "http://127.0.0.1:5000)"
        )
    bucket = deployed_environment(run_program(stack), function_spec(OPTIMIZER))["DATA_BUCKET_NAME"]
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        region_name=stack_settings(stack).hub.region,
        **FAKE_CREDENTIALS,
    )
    try:
        body = s3.get_object(Bucket=bucket, Key=LATEST_RECOMMENDATIONS_KEY)["Body"].read()
    except (BotoCoreError, ClientError) as error:
        raise RecommendationsError(
            f"cannot read s3://{bucket}/{LATEST_RECOMMENDATIONS_KEY} at {endpoint_url}: {error}"
        ) from None
    return parse_recommendations(body, f"s3://{bucket}/{LATEST_RECOMMENDATIONS_KEY}")


def render(recommendations: Recommendations, stack_text: str, file_name: str) -> str:
    """The preamble (scaler settings, notes) and the unified diff of the stack file."""
    new_text = patched_text(stack_text, recommendations.changes)
    problem = _validation_problem(recommendations.stack, new_text, file_name)
    if (
        problem is not None
        and _validation_problem(recommendations.stack, stack_text, file_name) is None
    ):
        # The optimizer keeps its sizes within the settings' rules, but the document may have
        # been edited since: a patch `git apply` takes must leave a file the program takes.
        raise RecommendationsError(
            f"the patched stack file would not pass the program's validation: {problem}"
        )
    diff = "".join(
        _patch_line(line)
        for line in difflib.unified_diff(
            stack_text.splitlines(keepends=True),
            new_text.splitlines(keepends=True),
            fromfile=f"a/{file_name}",
            tofile=f"b/{file_name}",
        )
    )
    preamble = [
        f"Recommendations for stack {recommendations.stack}, generated at "
        f"{_utc(recommendations.generated_at):%Y-%m-%dT%H:%M:%SZ} from "
        f"{recommendations.analyses_read} analyses over {recommendations.history_days} days. "
        "Review, then apply with "
        "`git apply`; nothing was changed.",
    ]
    preamble.extend(
        f"Scaler setting {advice.variable}: {advice.current:g} -> {advice.recommended:g} "
        f"({advice.evidence})"
        for advice in recommendations.scaler_settings
    )
    preamble.extend(f"Note: {note}" for note in recommendations.notes)
    if not diff:
        preamble.append("The stack file already has every recommended value.")
    return "\n".join(preamble) + "\n\n" + diff


def _utc(moment: datetime) -> datetime:
    """`moment` in UTC, as the preamble names it (`...Z`): a document edited by hand may give
    another offset. One without an offset is taken as UTC, as the optimizer writes it."""
    return moment.astimezone(UTC) if moment.tzinfo is not None else moment


def _validation_problem(stack: str, text: str, file_name: str) -> str | None:
    """What the program's settings validation says of the stack file `text`, in one line; None
    when it passes."""
    try:
        settings_of(stack, stack_config(text, file_name))
    except PlanError as error:
        return _one_line(str(error))
    return None


def patched_text(text: str, changes: list[StackFileChange]) -> str:
    """`text` with every change made in place (or added), evidence as end-of-line comments."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError as error:
        raise RecommendationsError(f"the stack file is not YAML: {error}") from None
    config = _value(root, "config") if isinstance(root, yaml.MappingNode) else None
    if not isinstance(config, yaml.MappingNode):
        raise RecommendationsError("the stack file has no `config:` mapping")
    lines = _lines(text)
    newline = _line_ending(lines[0]) or "\n"
    shared = _shared_nodes(root)
    replacements: dict[int, list[tuple[int, int, str, str]]] = {}
    insertions: list[tuple[int, list[str]]] = []
    for change in changes:
        node, found = _walk(config, change.path)
        if any(id(_walk(config, change.path[:depth])[0]) in shared for depth in range(found + 1)):
            # An anchored node is written once and read wherever it is aliased: editing its
            # text changes every place that reads it, and writing over `&name` leaves its
            # aliases undefined (the file is no YAML any more).
            raise RecommendationsError(
                f"{change.dotted()}: the stack file shares this value through a YAML anchor "
                "(&name, *name) with other places; set it by hand where it is written"
            )
        if found == len(change.path):
            if not isinstance(node, yaml.ScalarNode) or node.start_mark.line != node.end_mark.line:
                raise RecommendationsError(f"{change.dotted()} is not a one-line value")
            if node.value == str(change.recommended):
                continue
            if node.value != str(change.current):
                # The file moved on since the stack the optimizer measured: a value set by hand,
                # or (in an index path) another entry at that place.
                read = "none" if change.current is None else change.current
                raise RecommendationsError(
                    f"{change.dotted()}: the stack file has {shown_value(node.value)} where the "
                    f"optimizer read {read}; deploy the file and let the optimizer run again, or "
                    "set this value by hand"
                )
            replacements.setdefault(node.start_mark.line, []).append(
                (node.start_mark.column, node.end_mark.column, str(change.recommended),
                 change.evidence)
            )  # fmt: skip
            continue
        if (
            isinstance(node, yaml.SequenceNode)
            and found > 0
            and change.path[found - 1] in NAMED_LISTS
        ):
            raise RecommendationsError(
                f"{change.dotted()}: the stack file has no {change.path[found - 1]} entry named "
                f"{shown_value(change.path[found])} (renamed or removed since the optimizer's run)"
            )
        if any(segment in NAMED_LISTS for segment in change.path[:found]):
            # What the optimizer recommends for a cluster or node group it read from the
            # stack's settings: missing now, it was removed since, not left to a default.
            raise RecommendationsError(
                f"{change.dotted()}: the stack file has no {change.path[found]} here, where the "
                f"optimizer read {change.current}; deploy the file and let the optimizer run "
                "again, or set this value by hand"
            )
        insertions.append(_insertion(node, change, found))
    for line_number, edits in replacements.items():
        # The line keeps its own ending (a CRLF file stays CRLF, a last line without one stays
        # so): a patch whose lines end otherwise does not apply to the file.
        ending = _line_ending(lines[line_number])
        line = lines[line_number].removesuffix(ending)
        for start, end, value, _ in sorted(edits, reverse=True):
            line = line[:start] + value + line[end:]
        evidence = "; ".join(edit[3] for edit in sorted(edits))
        lines[line_number] = f"{line}  # {_one_line(evidence)}{ending}"
    for after, new_lines in sorted(insertions, key=lambda item: item[0], reverse=True):
        if after > 0 and not lines[after - 1].endswith("\n"):
            lines[after - 1] += newline
        lines[after:after] = [f"{new_line}{newline}" for new_line in new_lines]
    return "".join(lines)


def _lines(text: str) -> list[str]:
    """`text`'s lines with their endings, as YAML counts them; one-line error when a line
    breaks on what git does not (a CR alone, U+2028): the patch would not apply."""
    lines = text.splitlines(keepends=True) or [""]
    for number, line in enumerate(lines[:-1], start=1):
        if not line.endswith("\n"):
            raise RecommendationsError(
                f"the stack file's line {number} ends with {line[-1]!r}, not a newline; "
                "save it with LF or CRLF line endings"
            )
    return lines


def _line_ending(line: str) -> str:
    """How `line` ends: CRLF, LF, or (a last line) with nothing."""
    return line[len(line.rstrip("\r\n")) :]


def _patch_line(line: str) -> str:
    """A line of the unified diff as `git apply` reads it: a file's last line without a newline
    is followed by the marker that says so, not run into the next line of the patch."""
    return line if line.endswith("\n") else f"{line}\n\\ No newline at end of file\n"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _shared_nodes(root: Any) -> set[int]:
    """The ids of the nodes reached through more than one place (an anchor and its aliases)."""
    seen: set[int] = set()
    shared: set[int] = set()
    pending = [root]
    while pending:
        node = pending.pop()
        if id(node) in seen:
            shared.add(id(node))
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            pending.extend(part for pair in node.value for part in pair)
        elif isinstance(node, yaml.SequenceNode):
            pending.extend(node.value)
    return shared


def _value(mapping: Any, key: str) -> Any:
    for key_node, value_node in mapping.value:
        if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
            return value_node
    return None


def _entry_named(sequence: yaml.SequenceNode, name: str) -> Any:
    """The mapping of `sequence` whose `name` is `name`, or None."""
    for entry in sequence.value:
        if isinstance(entry, yaml.MappingNode):
            named = _value(entry, "name")
            if isinstance(named, yaml.ScalarNode) and named.value == name:
                return entry
    return None


def _walk(node: Any, path: list[PathSegment]) -> tuple[Any, int]:
    """The deepest node of `path` the file has, and how many segments led to it."""
    for depth, segment in enumerate(path):
        if isinstance(segment, int):
            child = (
                node.value[segment]
                if isinstance(node, yaml.SequenceNode) and 0 <= segment < len(node.value)
                else None
            )
        elif isinstance(node, yaml.SequenceNode):
            child = _entry_named(node, segment)
        elif isinstance(node, yaml.MappingNode):
            child = _value(node, segment)
            if child is None and depth == 0:
                # A key written without the namespace is the project's, as the CLI reads it.
                child = _value(node, segment.removeprefix(NAMESPACE))
        else:
            child = None
        if child is None:
            return node, depth
        node = child
    return node, len(path)


def _last_line(node: Any) -> int:
    """The 0-based line of the last character of `node`'s content."""
    # An alias (`*name`) is composed into the node its anchor wrote earlier in the file, whose
    # marks are the anchor's: a value that starts before its own key is one, written on its
    # key's line, not where those marks are.
    if isinstance(node, yaml.MappingNode) and node.value and not node.flow_style:
        key, value = node.value[-1]
        if value.start_mark.index < key.end_mark.index:
            return int(key.end_mark.line)
        return _last_line(value)
    if isinstance(node, yaml.SequenceNode) and node.value and not node.flow_style:
        return _last_line(node.value[-1])
    return int(node.end_mark.line)


def _insertion(node: Any, change: StackFileChange, found: int) -> tuple[int, list[str]]:
    """Lines (without their endings) that add the missing keys of `change` at the end of
    mapping `node`."""
    missing = change.path[found:]
    if (
        not isinstance(node, yaml.MappingNode)
        or node.flow_style
        or not node.value
        or any(isinstance(segment, int) for segment in missing)
        # A list's entries are named, not added as keys of a mapping.
        or any(segment in NAMED_LISTS for segment in missing[:-1])
    ):
        raise RecommendationsError(
            f"{change.dotted()}: the stack file has no block mapping to add it to"
        )
    indent = node.value[0][0].start_mark.column
    new_lines = [
        f"{' ' * (indent + INDENT_STEP * depth)}{segment}:"
        for depth, segment in enumerate(missing[:-1])
    ]
    new_lines.append(
        f"{' ' * (indent + INDENT_STEP * (len(missing) - 1))}{missing[-1]}: "
        f"{change.recommended}  # {_one_line(change.evidence)}"
    )
    return _last_line(node) + 1, new_lines


def stack_file(stack: str) -> Path:
    """`Pulumi.<stack>.yaml` of the repository; one-line error when there is none."""
    path = REPO_ROOT / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        raise RecommendationsError(f"there is no stack file {path.name}")
    return path


def recommendations_patch(stack: str, *, file: Path | None, endpoint_url: str | None) -> str:
    """The patch of `stack`'s latest recommendations, from `file` or the bucket."""
    path = stack_file(stack)
    if file is not None:
        recommendations = read_file(file)
    elif endpoint_url is not None:
        recommendations = read_bucket(stack, endpoint_url)
    else:
        raise RecommendationsError("give --file or --endpoint-url")
    if recommendations.stack != stack:
        raise RecommendationsError(
            f"the recommendations are for stack {recommendations.stack}, not {stack}"
        )
    try:
        # Read as saved, CRLF line endings and all (text mode would make them LF): the patch's
        # lines must be the file's to apply.
        with path.open(encoding="utf-8", newline="") as saved:
            stack_text = saved.read()
    except UnicodeDecodeError as error:
        raise RecommendationsError(f"{path.name} is not UTF-8 text: {error.reason}") from None
    return render(recommendations, stack_text, path.name)
