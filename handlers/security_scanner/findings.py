"""A finding, its JSON report form and its ASFF form for Security Hub.

Security Hub accepts findings under the default product ARN only when `AwsAccountId` is the
calling account (BatchImportFindings documentation), so findings are imported by the hub with
`AwsAccountId` = hub; the member account and region are in the resource ARN, in
`Resources[].Region` and in `ProductFields` (`lambda-fleet/MemberAccountId`, `.../MemberRegion`).
After creation, BatchImportFindings may not change `Workflow` (that belongs to the analysts), so
`Workflow.Status = NEW` is sent only with a new finding; a fixed finding is sent again with
`Compliance.Status = PASSED` and `RecordState = ARCHIVED`, and a finding of an account that left
the inventory with `Compliance.Status = NOT_AVAILABLE` (no longer checked, not fixed) and
`RecordState = ARCHIVED`.

Security Hub refuses a finding over its published lengths (moto does not): `Id` and
`GeneratorId` 512 characters, `Title` 256, `Description` 1024, `Remediation.Recommendation.Text`
512. An id built from a long resource ARN (an IAM path alone may take 512) ends in a digest of
the whole id instead; the texts are cut.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, replace
from datetime import datetime
from typing import Any

from fleet_shared.timestamps import iso_z, parse_iso
from handlers.security_scanner.registry import SEVERITY_NORMALIZED, FindingSeverity

SCHEMA_VERSION = "2018-10-08"
FINDING_TYPES = ["Software and Configuration Checks/AWS Security Best Practices"]
FAILED = "FAILED"
RESOLVED = "RESOLVED"
ACCOUNT_LEFT = "ACCOUNT_LEFT"
COMPLIANCE_STATUS = {FAILED: "FAILED", RESOLVED: "PASSED", ACCOUNT_LEFT: "NOT_AVAILABLE"}
ID_MAX_LENGTH = 512
_ID_DIGEST_SEPARATOR = "/sha256-"
_TITLE_MAX = 256
_DESCRIPTION_MAX = 1024
_REMEDIATION_MAX = 512


@dataclass(frozen=True)
class Finding:
    """A resource failing (or no longer failing) one control in one member account and region."""

    control_id: str
    title: str
    severity: FindingSeverity
    resource_arn: str
    resource_type: str
    account_id: str
    region: str
    remediation: str
    detail: str
    first_seen: str
    status: str = FAILED

    @property
    def id(self) -> str:
        """Stable across scans, so re-importing updates the same Security Hub finding.

        Readable when it fits Security Hub's 512 characters (the ids of earlier scans, so they
        still match); otherwise its start and a digest of the whole, which keeps it unique.
        """
        readable = (
            f"lambda-fleet/{self.account_id}/{self.region}/{self.control_id}/{self.resource_arn}"
        )
        if len(readable) <= ID_MAX_LENGTH:
            return readable
        digest = hashlib.sha256(readable.encode("utf-8")).hexdigest()
        kept = ID_MAX_LENGTH - len(_ID_DIGEST_SEPARATOR) - len(digest)
        return f"{readable[:kept]}{_ID_DIGEST_SEPARATOR}{digest}"

    def to_report(self) -> dict[str, Any]:
        """The finding as written to the JSON report."""
        return {"id": self.id, **asdict(self), "severity": self.severity.value}

    def to_state(self) -> dict[str, Any]:
        """What the state table keeps to recognise the finding in the next scan."""
        return self.to_report()

    @classmethod
    def from_state(cls, record: dict[str, Any]) -> Finding:
        """The finding as remembered from the previous scan.

        Raises KeyError, TypeError or ValueError for a record not as `to_state` wrote it:
        besides its fields' names, each a text, its status one of COMPLIANCE_STATUS and its
        `first_seen` a time (`CreatedAt` in Security Hub). A number in place of an ARN, or a
        time past the calendar, would otherwise go into the next import as it is: refused there,
        it failed the target with Security Hub's message naming no saved state, scan after scan.
        """
        fields = {k: v for k, v in record.items() if k != "id"}
        fields["severity"] = FindingSeverity(fields["severity"])
        finding = cls(**fields)
        texts = {k: v for k, v in fields.items() if k != "severity"}
        if not all(isinstance(value, str) for value in texts.values()):
            raise TypeError("a field of the finding record is not text")
        if finding.status not in COMPLIANCE_STATUS:
            raise ValueError("the finding record's status is not one this version saves")
        parse_iso(finding.first_seen)
        return finding

    def resolved(self) -> Finding:
        """The same finding, marked fixed."""
        return replace(self, status=RESOLVED)

    def account_left(self) -> Finding:
        """The same finding, archived because its account left the inventory."""
        return replace(self, status=ACCOUNT_LEFT)

    def to_asff(self, hub_account_id: str, hub_region: str, now: datetime, *, new: bool) -> dict:
        """The finding in the AWS Security Finding Format, imported by the hub account."""
        updated_at = iso_timestamp(now)
        severity = {
            "Label": self.severity.value,
            "Normalized": SEVERITY_NORMALIZED[self.severity],
            "Original": self.severity.value,
        }
        active = self.status == FAILED
        asff: dict[str, Any] = {
            "SchemaVersion": SCHEMA_VERSION,
            "Id": self.id,
            "ProductArn": (
                f"arn:aws:securityhub:{hub_region}:{hub_account_id}:product/"
                f"{hub_account_id}/default"
            ),
            "GeneratorId": f"lambda-fleet-security-scanner/{self.control_id}",
            "AwsAccountId": hub_account_id,
            "Types": FINDING_TYPES,
            "CreatedAt": self.first_seen,
            "UpdatedAt": updated_at,
            "FirstObservedAt": self.first_seen,
            "LastObservedAt": updated_at,
            "Severity": severity,
            "FindingProviderFields": {
                "Severity": {"Label": self.severity.value, "Original": self.severity.value},
                "Types": FINDING_TYPES,
            },
            "Title": f"{self.control_id} {self.title}"[:_TITLE_MAX],
            "Description": (self.detail or self.title)[:_DESCRIPTION_MAX],
            "Remediation": {"Recommendation": {"Text": self.remediation[:_REMEDIATION_MAX]}},
            "ProductFields": {
                "lambda-fleet/ControlId": self.control_id,
                "lambda-fleet/MemberAccountId": self.account_id,
                "lambda-fleet/MemberRegion": self.region,
            },
            "Resources": [
                {
                    "Type": self.resource_type,
                    "Id": self.resource_arn,
                    "Partition": "aws",
                    "Region": self.region,
                }
            ],
            "Compliance": {"Status": COMPLIANCE_STATUS[self.status]},
            "RecordState": "ACTIVE" if active else "ARCHIVED",
        }
        if new:
            asff["Workflow"] = {"Status": "NEW"}
        return asff


def iso_timestamp(moment: datetime) -> str:
    """The ASFF timestamp form: UTC with milliseconds and `Z`, as Security Hub writes its own."""
    return iso_z(moment, "milliseconds")
