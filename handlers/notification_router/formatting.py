"""How an alert reads in a channel: one-line summary, plain-text body and a console link."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote

from fleet_shared.alerts import SUBJECT_MAX_LENGTH
from fleet_shared.timestamps import iso_z
from handlers.notification_router.channel_text import fit, one_line
from handlers.notification_router.messages import Notification

EMAIL_DETAIL_MAX_CHARS = 60_000
EMAIL_FIELD_MAX_CHARS = 1_000
"""An e-mail body's detail and each of its other texts are cut to these many characters: at
four UTF-8 bytes a character the body stays under SNS's 256 KB message limit, which refused an
alert sent by direct invocation (no SNS or SQS limit before the router) on every retry."""

# ARN parts that go into a console link's host and path unquoted: anything else gets no link.
_LINK_PART = re.compile(r"^[a-z0-9-]+$")
CONSOLE_LINK_MAX_CHARS = 2_000
"""The longest console link made: a longer deep link gives way to the service's console, and a
longer link of that or of the region's console home to none. The names and the region come from
the event, and no channel cuts the link: an alarm name or a region of thousands of characters would
make it longer than a Slack text object (3,000 characters), an SNS message or a PagerDuty event
takes, and the alert would reach none of them."""


@dataclass(frozen=True)
class OutgoingMessage:
    """A notification as sent: `suppressed_duplicates` counts the copies of it that were not
    sent since the last one that was (the correlation a reader needs: "this is the 7th time")."""

    notification: Notification
    suppressed_duplicates: int = 0

    @property
    def label(self) -> str:
        """`CRITICAL`, `WARNING`, `INFO`, or `RESOLVED` for a resolution."""
        alert = self.notification.alert
        return "RESOLVED" if self.notification.resolves else alert.severity.value.upper()

    @property
    def headline(self) -> str:
        """`[CRITICAL] title` or `[RESOLVED] title`, on one line."""
        return f"[{self.label}] {one_line(self.notification.alert.title)}"

    def subject(self) -> str:
        """The e-mail subject: the headline within the fewer than 100 characters SNS takes, cut on
        a word boundary (the alert's `subject()` makes it one ASCII line, so the ellipsis is ASCII
        too)."""
        alert = self.notification.alert
        title = fit(alert.title, SUBJECT_MAX_LENGTH - len(f"[{self.label}] "), ellipsis="...")
        return alert.model_copy(update={"title": title}).subject()

    @property
    def where(self) -> str:
        """`account 222222222222, ap-south-1`, or `fleet-wide` for alerts about no account."""
        alert = self.notification.alert
        parts = [f"account {alert.account_id}" if alert.account_id else "", alert.region or ""]
        return one_line(", ".join(part for part in parts if part) or "fleet-wide")

    @property
    def console_url(self) -> str | None:
        """A link to the resource in the AWS console, when the resource or region allows one."""
        return console_url(self.notification.alert.resource, self.notification.alert.region)

    def text(self) -> str:
        """A plain-text body (e-mail): the headline, every fact on one line of its own (line
        breaks in a fact's value become spaces), then the detail under `Detail:`, each of its
        lines indented: a line of the detail (an alarm reason anyone allowed SetAlarmState
        writes) cannot read as one of the facts, which all start at the margin."""
        alert = self.notification.alert
        lines = [
            fit(self.headline, EMAIL_FIELD_MAX_CHARS),
            "",
            f"Severity: {alert.severity.value}"
            + (" (resolved)" if self.notification.resolves else ""),
            f"Resource: {fit(one_line(alert.resource), EMAIL_FIELD_MAX_CHARS)}",
            f"Where: {fit(self.where, EMAIL_FIELD_MAX_CHARS)}",
            f"Source: {fit(one_line(alert.source), EMAIL_FIELD_MAX_CHARS)}",
            f"Time: {iso_z(alert.timestamp)}",
            f"Alert id: {one_line(alert.id)}",
        ]
        if self.suppressed_duplicates:
            lines.append(
                f"Duplicates suppressed since the last notice: {self.suppressed_duplicates}"
            )
        if self.console_url:
            lines.append(f"Console: {self.console_url}")
        detail = fit(alert.detail, EMAIL_DETAIL_MAX_CHARS)
        lines += ["", "Detail:", *(f"  {line}" if line else "" for line in detail.splitlines())]
        return "\n".join(lines)


def console_url(resource: str, region: str | None) -> str | None:
    """Deep links for CloudWatch alarms and EKS clusters, the service's console for other ARNs,
    the region's console home for other resources with a region: the first of those of at most
    CONSOLE_LINK_MAX_CHARS. No link when the service or region is not a plain AWS name (the
    resource comes from the event), or when every link would be longer."""
    links = _console_links(resource, region)
    return next((link for link in links if len(link) <= CONSOLE_LINK_MAX_CHARS), None)


def _console_links(resource: str, region: str | None) -> list[str]:
    """The console links to `resource`, the most precise first."""
    parts = resource.split(":", 5)
    if region and not _LINK_PART.match(region):
        return []
    if len(parts) == 6 and parts[0] == "arn":
        service, arn_region, rest = parts[2], parts[3] or region, parts[5]
        if not _LINK_PART.match(service) or (arn_region and not _LINK_PART.match(arn_region)):
            return []
        host = (
            f"https://{arn_region}.console.aws.amazon.com"
            if arn_region
            else "https://console.aws.amazon.com"
        )
        query = f"?region={arn_region}" if arn_region else ""
        service_home = f"{host}/{service}/home{query}"
        if service == "cloudwatch" and rest.startswith("alarm:"):
            name = quote(rest.removeprefix("alarm:"), safe="")
            return [f"{service_home}#alarmsV2:alarm/{name}", service_home]
        if service == "eks" and rest.startswith("cluster/"):
            name = quote(rest.removeprefix("cluster/"), safe="")
            return [f"{service_home}#/clusters/{name}", service_home]
        return [service_home]
    if region:
        return [f"https://{region}.console.aws.amazon.com/console/home?region={region}"]
    return []
