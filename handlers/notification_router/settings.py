"""The router's environment: channels' secrets and topic, routes by severity, dedup and retries.

ROUTER_ROUTES maps each kind of alert to channels, e.g.
`critical=pagerduty+slack+email,warning=slack+email,info=email,resolved=pagerduty+slack+email`.
The kinds are the three severities plus `resolved` (a CloudWatch alarm back to OK, which must
reach PagerDuty to close the incident its ALARM opened); a kind left out falls back to `info`.
Channel names must be in the channel registry, so a typo fails at cold start, naming the variable.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, PositiveInt
from handlers.notification_router.channels import CHANNELS

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
RESOLVED = "resolved"
KINDS = ("critical", "warning", "info", RESOLVED)
DEFAULT_ROUTES = (
    "critical=pagerduty+slack+email,warning=slack+email,info=email,resolved=pagerduty+slack+email"
)


def _split_patterns(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _parse_routes(value: object) -> object:
    """`kind=a+b,kind=c` -> {kind: (a, b), ...}; structural problems are reported here."""
    if not isinstance(value, str):
        return value
    routes: dict[str, tuple[str, ...]] = {}
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        kind, separator, channels = entry.partition("=")
        if not separator:
            raise ValueError(f"expected kind=channel+channel, got {entry!r}")
        routes[kind.strip()] = tuple(name.strip() for name in channels.split("+") if name.strip())
    return routes


PatternList = Annotated[tuple[str, ...], BeforeValidator(_split_patterns)]
Routes = Annotated[dict[str, tuple[str, ...]], BeforeValidator(_parse_routes)]


class RouterEnvironment(FunctionEnvironment):
    """Variables of notification_router; see the module docstring of `app` for their meaning."""

    state_table_name: str
    email_topic_arn: Arn | None = None
    slack_webhook_secret: str | None = None
    pagerduty_routing_key_secret: str | None = None
    pagerduty_events_url: str = Field(default=PAGERDUTY_EVENTS_URL, pattern=r"^https?://")

    router_routes: Routes = Field(default_factory=lambda: _parse_routes(DEFAULT_ROUTES))
    router_critical_alarm_patterns: PatternList = ("*-critical", "*-Errors")
    router_dedup_window_seconds: PositiveInt = 900
    router_max_attempts: PositiveInt = 3
    router_backoff_seconds: float = Field(default=0.5, ge=0)
    router_http_timeout_seconds: float = Field(default=5.0, gt=0)
    router_secret_ttl_seconds: int = Field(default=300, ge=0)
    router_in_progress_seconds: PositiveInt = 120

    @field_validator("router_routes")
    @classmethod
    def _known_kinds_and_channels(
        cls, routes: dict[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        for kind, channels in routes.items():
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
            unknown = [name for name in channels if name not in CHANNELS]
            if unknown:
                raise ValueError(
                    f"unknown channel(s) {', '.join(unknown)} for {kind}; expected "
                    f"{', '.join(sorted(CHANNELS))}"
                )
        return routes

    def channels_for(self, kind: str) -> tuple[str, ...]:
        """The channels an alert of `kind` goes to (`info`'s when the kind has no route)."""
        return self.router_routes.get(kind, self.router_routes.get("info", ()))
