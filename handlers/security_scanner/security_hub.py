"""Writes findings to Security Hub in the hub account, 100 per BatchImportFindings call."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from fleet_shared.aws_answers import UnreadableAnswerError, answer_field
from fleet_shared.validation_errors import escaped_echo
from handlers.security_scanner.exceptions import SecurityHubImportError
from handlers.security_scanner.findings import Finding

BATCH_LIMIT = 100
"""BatchImportFindings accepts at most 100 findings per call."""


def import_findings(
    client: Any,
    *,
    hub_account_id: str,
    hub_region: str,
    now: datetime,
    findings: list[Finding],
    new_ids: set[str],
) -> int:
    """Import `findings` (active and resolved); returns how many Security Hub accepted.

    Raises SecurityHubImportError when Security Hub refused some (after importing the others;
    each refusal's reason cut to `ECHO_LIMIT` characters, control characters escaped), and
    UnreadableAnswerError for an
    answer without SuccessCount (always sent): a proxy's page must not pass for an import, after
    which the scan would save its findings as imported and a fix would never reach Security Hub;
    or with a refusal that is not an object.
    """
    documents = [
        finding.to_asff(hub_account_id, hub_region, now, new=finding.id in new_ids)
        for finding in findings
    ]
    accepted = 0
    failures: list[str] = []
    refused_ids: dict[str, str] = {}
    for start in range(0, len(documents), BATCH_LIMIT):
        response = client.batch_import_findings(Findings=documents[start : start + BATCH_LIMIT])
        accepted += int(answer_field(response, "BatchImportFindings", "SuccessCount"))
        refused = response.get("FailedFindings", [])
        # botocore keeps a null among a JSON list's items: a refusal that names no finding is
        # the target's failed import, not an AttributeError ending the whole scan.
        if not all(isinstance(failed, Mapping) for failed in refused):
            raise UnreadableAnswerError(
                "BatchImportFindings", "an object for each of FailedFindings", refused
            )
        for failed in refused:
            # Security Hub's (or a proxy's) text reaches a refused finding's error in the
            # target's `errors` and the report: cut and kept on one line, whatever its length
            # and line breaks (the exception's message is, as a whole).
            reason = escaped_echo(f"{failed.get('ErrorCode')} {failed.get('ErrorMessage')}")
            failures.append(f"{failed.get('Id')}: {reason}")
            if isinstance(failed.get("Id"), str):
                refused_ids[failed["Id"]] = reason
    if failures:
        raise SecurityHubImportError(
            f"{len(failures)} findings refused: {failures[0]}", refused_ids
        )
    return accepted
