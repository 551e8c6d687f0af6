"""Security Hub's published length limits of an ASFF finding, which moto does not enforce.

botocore's model of `AwsSecurityFinding` carries no `max` for its strings (and botocore's
`ParamValidator` would not check one): AWS publishes the limits in the members' documentation
("Length Constraints: Minimum length of 1. Maximum length of 512.", "the key can contain up to
128 characters, and the value can contain up to 2048 characters"), so they are read from there.
`refuse_findings_over_the_limits` makes a client's BatchImportFindings answer as Security Hub
does: the findings within the limits are imported, each other one is listed in `FailedFindings`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import botocore.session
from botocore.awsrequest import AWSResponse

_MAX_LENGTH = re.compile(r"Maximum (?:length of (\d+)|of (\d+) length)")
_MAP_LIMITS = re.compile(
    r"key can contain up to (\d+) characters, and the value can contain up to (\d+) characters"
)
_REFUSED = "refused_findings"
_NONE_ACCEPTED = "no_finding_accepted"


@dataclass(frozen=True)
class Limits:
    """The longest string allowed at each path of a finding (`Resources[].Id`, `Title`...);
    a map's keys and values are at `<map>{key}` and `<map>{value}`."""

    max_length: dict[str, int]


def _documented_max(shape: Any) -> int | None:
    match = _MAX_LENGTH.search(shape.documentation or "")
    return int(match.group(1) or match.group(2)) if match else None


def _collect(shape: Any, path: str, found: dict[str, int], depth: int) -> None:
    # The finding's own fields and their first levels are what the scanner writes.
    if depth > 3:
        return
    for name, member in shape.members.items():
        member_path = f"{path}.{name}" if path else name
        limit = member.metadata.get("max") or _documented_max(member)
        if member.type_name == "string" and limit is not None:
            found[member_path] = limit
        elif member.type_name == "map":
            pair = _MAP_LIMITS.search(member.documentation or "")
            if pair:
                found[f"{member_path}{{key}}"] = int(pair.group(1))
                found[f"{member_path}{{value}}"] = int(pair.group(2))
        elif member.type_name == "structure":
            _collect(member, member_path, found, depth + 1)
        elif member.type_name == "list" and member.member.type_name == "structure":
            _collect(member.member, f"{member_path}[]", found, depth + 1)


@cache
def published_limits() -> Limits:
    """The limits AWS publishes for `AwsSecurityFinding`, from botocore's Security Hub model."""
    model = botocore.session.get_session().get_service_model("securityhub")
    found: dict[str, int] = {}
    _collect(model.shape_for("AwsSecurityFinding"), "", found, 0)
    return Limits(found)


def _values(document: Any, path: str) -> list[tuple[str, str]]:
    """(path, string) for every string of `document` under `path`; a map's keys and values
    are also listed under `<map>{key}` and `<map>{value}`."""
    if isinstance(document, str):
        return [(path, document)]
    if isinstance(document, list):
        return [pair for item in document for pair in _values(item, f"{path}[]")]
    if not isinstance(document, dict):
        return []
    pairs = [(f"{path}{{key}}", key) for key in document]
    pairs += [(f"{path}{{value}}", v) for v in document.values() if isinstance(v, str)]
    for key, value in document.items():
        pairs += _values(value, f"{path}.{key}" if path else key)
    return pairs


def limit_problems(finding: dict[str, Any]) -> list[str]:
    """What in `finding` is longer than Security Hub accepts, one sentence per field."""
    limits = published_limits().max_length
    return [
        f"{path} has {len(value)} characters, more than {limits[path]}"
        for path, value in _values(finding, "")
        if path in limits and len(value) > limits[path]
    ]


@dataclass
class LimitEnforcement:
    """What the emulated Security Hub refused: (finding id, problems) per refused finding."""

    refused: list[tuple[str, list[str]]] = field(default_factory=list)

    def keep_findings_within_limits(self, params: dict[str, Any], context: dict, **_: Any) -> None:
        accepted, refused = [], []
        for finding in params.get("Findings", []):
            problems = limit_problems(finding)
            (refused if problems else accepted).append((finding, problems))
        context[_REFUSED] = [(finding.get("Id", ""), problems) for finding, problems in refused]
        self.refused += context[_REFUSED]
        if refused and not accepted:
            # The request must still carry a finding to pass botocore's own validation; it is
            # answered below without reaching moto.
            context[_NONE_ACCEPTED] = True
        elif refused:
            params["Findings"] = [finding for finding, _ in accepted]

    def answer_when_none_accepted(self, context: dict, **_: Any) -> tuple[Any, dict] | None:
        if not context.get(_NONE_ACCEPTED):
            return None
        http = AWSResponse("https://securityhub.invalid/findings/import", 200, {}, None)
        return http, {"SuccessCount": 0, "FailedCount": 0, "FailedFindings": []}

    def list_refused_findings(self, parsed: dict[str, Any], context: dict, **_: Any) -> None:
        refused = context.get(_REFUSED, [])
        if not refused:
            return
        parsed["FailedCount"] = int(parsed.get("FailedCount", 0)) + len(refused)
        parsed["FailedFindings"] = [
            *parsed.get("FailedFindings", []),
            *(
                {"Id": finding_id, "ErrorCode": "InvalidInput", "ErrorMessage": problems[0]}
                for finding_id, problems in refused
            ),
        ]


def refuse_findings_over_the_limits(client: Any) -> LimitEnforcement:
    """Make `client`'s BatchImportFindings refuse, finding by finding, what is over the limits."""
    enforcement = LimitEnforcement()
    events = client.meta.events
    operation = "securityhub.BatchImportFindings"
    events.register_first(
        f"before-parameter-build.{operation}", enforcement.keep_findings_within_limits
    )
    events.register_first(f"before-call.{operation}", enforcement.answer_when_none_accepted)
    events.register_first(f"after-call.{operation}", enforcement.list_refused_findings)
    return enforcement
