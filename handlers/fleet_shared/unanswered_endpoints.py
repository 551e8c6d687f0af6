"""Member endpoints that did not answer, given up for the rest of an invocation.

A member client bounds each call (its config's timeouts and attempts), but a run that asks the
same hung endpoint once per node group pays that bound once per node group, and a dozen of them
outlast the function's timeout. So a watched client counts, per (service, account, region), the
calls that got no answer in any of their attempts (a connection or a read timing out); from the
`GIVEN_UP_AFTER`-th on, every later call of that endpoint fails at once with
`MemberEndpointNotAnsweringError`, without being sent, until `forget` (the start of the next
invocation, through `AccountSessions.forget_unanswered_members`).

Two calls, not one: a call whose attempts all hung may be that call's own (one node group's
update stuck), and the next node group is still asked; a second one is the endpoint.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from functools import partial
from typing import Any

from botocore.exceptions import BotoCoreError, ConnectTimeoutError, ReadTimeoutError

GIVEN_UP_AFTER = 2
"""Unanswered calls after which an endpoint is not asked again in the invocation."""
NO_ANSWER = (ConnectTimeoutError, ReadTimeoutError)
"""What botocore raises for a call whose every attempt waited out a timeout."""
CAUSE_CHARS = 200
"""The most of the first unanswered call's error a refusal repeats."""

EndpointKey = tuple[str, str, str]
"""(service, account id, region)."""


class MemberEndpointNotAnsweringError(BotoCoreError):
    """A member call refused without being sent: its endpoint did not answer earlier calls of
    this invocation. A `BotoCoreError`, so every caller handles it as the timeout it stands
    for."""

    fmt = (
        "{service} in account {account_id} region {region} did not answer {calls} calls earlier "
        "in this invocation ({cause}); not asked again"
    )


@dataclass
class _Unanswered:
    calls: int
    cause: str


class UnansweredEndpoints:
    """The member endpoints that did not answer in this invocation, and the hooks on their
    clients that count those calls and refuse the calls after them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unanswered: dict[EndpointKey, _Unanswered] = {}

    def watch(self, client: Any, account_id: str, region: str) -> Any:
        """`client` (of one member account and region), whose calls are refused once its
        endpoint is given up; the hooks are registered once per client."""
        service = client.meta.service_model.service_id.hyphenize()
        key = (service, account_id, region)
        events = client.meta.events
        events.register(
            f"before-call.{service}",
            partial(self._refuse_given_up, key),
            unique_id=f"{__name__}.refuse",
        )
        events.register(
            f"after-call-error.{service}",
            partial(self._note_no_answer, key),
            unique_id=f"{__name__}.note",
        )
        return client

    def forget(self) -> None:
        """Ask every endpoint again: for the start of an invocation."""
        with self._lock:
            self._unanswered.clear()

    def _refuse_given_up(self, key: EndpointKey, **_: Any) -> None:
        with self._lock:
            unanswered = self._unanswered.get(key)
        if unanswered is not None and unanswered.calls >= GIVEN_UP_AFTER:
            service, account_id, region = key
            raise MemberEndpointNotAnsweringError(
                service=service,
                account_id=account_id,
                region=region,
                calls=unanswered.calls,
                cause=unanswered.cause,
            )

    def _note_no_answer(self, key: EndpointKey, exception: Exception, **_: Any) -> None:
        if not isinstance(exception, NO_ANSWER):
            return
        with self._lock:
            unanswered = self._unanswered.setdefault(
                key, _Unanswered(0, str(exception)[:CAUSE_CHARS])
            )
            unanswered.calls += 1
