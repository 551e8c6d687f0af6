"""The router's environment: channels' secrets and topic, routes by kind, dedup and retries
(docs/functions/notification_router.md is generated from these descriptions).

ROUTER_ROUTES maps each kind of alert to channels. The kinds are the three severities plus
`resolved` (a CloudWatch alarm back to OK, which must reach PagerDuty to close the incident its
ALARM opened); a kind left out falls back to `info`. Channel names must be in `channel_names`, so
a typo fails at cold start, naming the variable.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, field_validator

from fleet_shared.environment import FunctionEnvironment
from fleet_shared.field_types import Arn, DynamoDbTableName, PositiveInt
from handlers.notification_router.channel_names import CHANNEL_NAMES
from handlers.notification_router.delivery_policy import DEADLINE_MARGIN_SECONDS, RECORDING_SECONDS

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
RESOLVED = "resolved"
KINDS = ("critical", "warning", "info", RESOLVED)
ROUTER_TIMEOUT_SECONDS = 60
"""The router's Lambda timeout (its catalog entry's `timeout_seconds`; a test ties both)."""
LONGEST_HTTP_TIMEOUT_SECONDS = ROUTER_TIMEOUT_SECONDS - RECORDING_SECONDS - DEADLINE_MARGIN_SECONDS
"""ROUTER_HTTP_TIMEOUT_SECONDS is less than this (45 s): a message or attempt starts only with the
HTTP timeout plus the time to record a send and return left, so with a longer one none would
start in a whole invocation, and every alert would go back to its queue until its dead-letter
queue."""
MIN_DEDUP_WINDOW_SECONDS = 420
"""The shortest dedup window: the router queue's visibility timeout (6 x the router's 60 s
timeout, 360 s: `components/fleet_function.py`), after which SQS redelivers a message a channel
did not take, plus one invocation, during which the redelivered message may wait its turn in its
batch. The channels that took an alert are recorded for the window from the latest attempt: a
shorter one lets that record expire before the redelivery, which sends them the alert again
(`tests/infra/test_hub_triggers.py` ties it to the queue the program creates)."""
DEFAULT_ROUTES = (
    "critical=pagerduty+slack+email,warning=slack+email,info=email,resolved=pagerduty+slack+email"
)


def _split_patterns(value: object) -> object:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


def _parse_routes(value: object) -> object:
    """`kind=a+b,kind=c` -> {kind: (a, b), ...}; structural problems are reported here. A kind
    listed twice, or a channel twice in one route, is refused: the second entry of a kind would
    replace the first unseen, and a channel listed twice would get each alert twice."""
    if not isinstance(value, str):
        return value
    routes: dict[str, tuple[str, ...]] = {}
    for entry in (part.strip() for part in value.split(",")):
        if not entry:
            continue
        kind, separator, channels = entry.partition("=")
        if not separator:
            raise ValueError(f"expected kind=channel+channel, got {entry!r}")
        kind = kind.strip()
        if kind in routes:
            raise ValueError(f"kind {kind!r} is listed twice")
        names = tuple(name.strip() for name in channels.split("+") if name.strip())
        repeated = next((name for index, name in enumerate(names) if name in names[:index]), None)
        if repeated is not None:
            raise ValueError(f"channel {repeated!r} is listed twice for {kind!r}")
        routes[kind] = names
    return routes


PatternList = Annotated[tuple[str, ...], BeforeValidator(_split_patterns)]
Routes = Annotated[dict[str, tuple[str, ...]], BeforeValidator(_parse_routes)]


class RouterEnvironment(FunctionEnvironment):
    """What the notification router needs; a channel whose variable is unset is skipped."""

    state_table_name: DynamoDbTableName = Field(
        description="Dedup claims and the counters of suppressed duplicates."
    )
    email_topic_arn: Arn | None = Field(
        default=None, description="The e-mail topic; unset disables the `email` channel."
    )
    slack_webhook_secret: str | None = Field(
        default=None,
        description=(
            "Secrets Manager name or ARN of the Slack incoming-webhook URL (the URL, or JSON "
            '`{"url": ...}`); unset disables the `slack` channel.'
        ),
    )
    pagerduty_routing_key_secret: str | None = Field(
        default=None,
        description=(
            "Secrets Manager name or ARN of the PagerDuty Events v2 routing key (plain, or JSON "
            '`{"routing_key": ...}`); unset disables the `pagerduty` channel.'
        ),
    )
    pagerduty_events_url: str = Field(
        default=PAGERDUTY_EVENTS_URL,
        pattern=r"^https?://",
        description="The PagerDuty Events API v2 endpoint.",
    )
    router_queue_url: str | None = Field(
        default=None,
        description=(
            "The router's own queue, where a message a channel asked to wait for (Retry-After) "
            "is made visible again after that wait; unset, it comes back after the queue's "
            "visibility timeout."
        ),
    )
    router_dead_letter_queue_url: str | None = Field(
        default=None,
        description=(
            "The dead-letter queue of the router's own queue, where an SNS message the router "
            "cannot read is kept for people to inspect and redrive (its alarm tells them); "
            "unset, such a message fails the invocation, naming this variable, so Lambda keeps it."
        ),
    )
    router_routes: Routes = Field(
        default_factory=lambda: _parse_routes(DEFAULT_ROUTES),
        description=(
            "Channels per kind (`critical`, `warning`, `info`, `resolved`), e.g. "
            f"`{DEFAULT_ROUTES}` (the default); a kind left out gets the `info` route, and "
            "every kind must get at least one channel."
        ),
    )
    router_critical_alarm_patterns: PatternList = Field(
        default=("*-critical", "*-Errors"),
        description=(
            "Comma-separated fnmatch patterns of CloudWatch alarm names whose ALARM is critical "
            "(others are warnings)."
        ),
    )
    router_dedup_window_seconds: int = Field(
        default=900,
        ge=MIN_DEDUP_WINDOW_SECONDS,
        description=(
            "The same alert is sent once in this window (seconds); at least "
            f"{MIN_DEDUP_WINDOW_SECONDS}, the router queue's redelivery interval plus one "
            "invocation, so the record of the channels that took an alert outlasts a redelivery."
        ),
    )
    router_redelivery_seconds: PositiveInt | None = Field(
        default=None,
        description=(
            "How long after the router handled a message the platform may hand it the same "
            "message again (seconds): Lambda's maximum event age for an alert topic's event, the "
            "queue's receives for its own, and a redrive from the queue's dead-letter queue (as "
            "late as the queue and then its dead-letter queue keep a message, 14 days each, after "
            "an alert topic's event that failed reached the queue as its failure record within "
            "its event age), plus one invocation; set by the program from what it deploys. A "
            "message handled already is answered `redelivered` for this long (the dedup window "
            "when unset), and one "
            "handed back because a channel did not take it goes, when it comes again, only to the "
            "channels that did not: its retry or redrive neither reaches a channel again nor "
            "counts as a suppressed duplicate."
        ),
    )
    router_max_attempts: PositiveInt = Field(
        default=3, description="Delivery attempts per channel."
    )
    router_backoff_seconds: float = Field(
        default=0.5,
        ge=0,
        description="Wait before the second attempt on a channel, doubled for each further one.",
    )
    router_http_timeout_seconds: float = Field(
        default=5.0,
        gt=0,
        lt=LONGEST_HTTP_TIMEOUT_SECONDS,
        description=(
            "Timeout of every outbound call (Slack, PagerDuty, the e-mail topic, the secrets), in "
            "seconds; no message or attempt is started with less than this plus "
            f"{RECORDING_SECONDS + DEADLINE_MARGIN_SECONDS:g} s left (the state table's "
            f"{RECORDING_SECONDS} s to record what a channel took, and {DEADLINE_MARGIN_SECONDS:g}"
            f" s to return), so it is less than {LONGEST_HTTP_TIMEOUT_SECONDS:g}, for the "
            f"router's {ROUTER_TIMEOUT_SECONDS} s timeout."
        ),
    )
    router_secret_ttl_seconds: int = Field(
        default=300,
        ge=0,
        description="How long a secret value is cached in the container (seconds; 0 disables).",
    )
    router_in_progress_seconds: PositiveInt = Field(
        default=120,
        description=(
            "The longest a claim blocks a concurrent copy of the same alert (seconds); a claim "
            "also ends when Lambda ends its invocation, so the retry of one that Lambda ended or "
            "that could not release its claims finds them free."
        ),
    )

    @field_validator("router_routes")
    @classmethod
    def _known_kinds_and_channels(
        cls, routes: dict[str, tuple[str, ...]]
    ) -> dict[str, tuple[str, ...]]:
        for kind, channels in routes.items():
            if kind not in KINDS:
                raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
            unknown = [name for name in channels if name not in CHANNEL_NAMES]
            if unknown:
                raise ValueError(
                    f"unknown channel(s) {', '.join(unknown)} for {kind}; expected "
                    f"{', '.join(sorted(CHANNEL_NAMES))}"
                )
        # An alert of a kind with no channel would be answered `skipped` and dropped: the
        # resolutions of a route left out with no info route, too, leaving incidents open.
        for kind in KINDS:
            if not _route_of(routes, kind):
                how = "its route is empty" if kind in routes else "it is left out, and so is info"
                raise ValueError(f"kind {kind!r} has no channel ({how}): its alerts would be lost")
        return routes

    def alert_topics(self) -> frozenset[str]:
        """The alert topics the router is subscribed to: the only topics whose messages it takes
        from the record of one of its invocations that failed (`records.failed_sns_records`)."""
        topics = (self.alert_topic_arn, self.alert_topic_critical_arn, self.alert_topic_info_arn)
        return frozenset(topic for topic in topics if topic)

    def channels_for(self, kind: str) -> tuple[str, ...]:
        """The channels an alert of `kind` goes to (`info`'s when the kind has no route)."""
        return _route_of(self.router_routes, kind)


def _route_of(routes: dict[str, tuple[str, ...]], kind: str) -> tuple[str, ...]:
    """The channels of `kind` in `routes`: its own route, or `info`'s when it is left out."""
    return routes.get(kind, routes.get("info", ()))
