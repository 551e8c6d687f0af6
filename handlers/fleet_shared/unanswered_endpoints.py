"""Endpoints that did not answer, not asked again for the rest of an invocation.

Every bounded client gives a call up after its config's timeouts and attempts, but a run asks the
same endpoint many times (once per node group, check or cluster), and one that hangs would cost
each of those calls the whole bound, past the function's timeout. So the container keeps one
record (`AccountSessions.unanswered_endpoints`) of the calls, per endpoint, left unanswered: those
that got no answer in any of their attempts (a connection or a read timing out: `NO_ANSWER`), and
those that ran to their bound on error answers botocore retries (`call_bounds.ran_to_bound`: an
endpoint that throttles each attempt as its timeouts run out costs a call as much as one that never
answers); from the endpoint's `given_up_after`-th such call on, every later call of it fails at
once with `EndpointNotAnsweringError`, without being sent. A call so counted fails with its own
error, as before. A refused connection, or error answers that end a call before its bound, cost
the call less than the bound, so the endpoint is asked again.

`FleetFunction.invoke` forgets the record as each invocation starts
(`FunctionServices.forget_unanswered_calls`): the next invocation may be the platform's retry of
this one, a minute later at the soonest, so no time on a clock bounds it.

An endpoint is watched in one of two ways: every call of a client (`watch`: a member's EKS, the
hub's SNS and S3 of every function), or one call through a client that serves more than the
endpoint (`ask`: the members' AssumeRole through the hub's STS client, one table of the hub's
DynamoDB).

The record holds the other way too, forgotten with it: the calls of each member a member's own
endpoint answered with success or IAM refused in this invocation (`member_calls`,
`fleet_shared.member_calls`), the evidence a member access episode is opened and resolved on
(`fleet_shared.access_episodes`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from botocore.exceptions import ClientError, ConnectTimeoutError, HTTPClientError, ReadTimeoutError

from fleet_shared.aws_answers import call_error_text
from fleet_shared.call_bounds import ran_to_bound
from fleet_shared.member_calls import MemberCalls

MEMBER_CALLS_GIVEN_UP_AFTER = 2
"""Unanswered calls after which a member endpoint (`AccountSessions.watched_member_client`) is
given up: two, not one, since a member call whose attempts all hung may be that call's own (one
node group's update stuck), and the next node group is still asked; a second one is the
endpoint."""
HUB_CALLS_GIVEN_UP_AFTER = 1
"""Unanswered calls after which a hub endpoint (the members' AssumeRole, the state table, the
hub's SNS and S3, every other `watched_hub_client`) is given up: its calls are alike and small (an
AssumeRole, for every node group of every member, an item or a page of one table, a publish, an
object of the data bucket), so one left unanswered is the endpoint's, not the call's."""
NO_ANSWER = (ConnectTimeoutError, ReadTimeoutError)
"""What botocore raises for a call whose every attempt waited out a timeout (a call that ran to
its bound on error answers raises its last answer's `ClientError`, told by `ran_to_bound`)."""

ResultT = TypeVar("ResultT")


def left_unanswered(error: BaseException) -> bool:
    """Whether `error` ended a call the record counts as unanswered: no attempt answered
    (`NO_ANSWER`), or the last error answer of a call that ran to its bound
    (`call_bounds.ran_to_bound`)."""
    if isinstance(error, NO_ANSWER):
        return True
    return isinstance(error, ClientError) and ran_to_bound(error.response)


class EndpointNotAnsweringError(HTTPClientError):
    """A call refused without being sent: its endpoint did not answer earlier calls of this
    invocation. An `HTTPClientError`, as botocore's read timeout is, so every caller handles it
    as the timeout it stands for (a `BotoCoreError`, and a failure a later retry may pass:
    `later_answers.may_pass_on_retry`); not a `ReadTimeoutError`, since nothing was sent that could
    have taken effect."""

    fmt = "{endpoint} did not answer{calls} earlier in this invocation ({cause}); not asked again"

    @property
    def cause(self) -> str:
        """The error of the first call the endpoint did not answer, the text its answer brought
        cut and escaped (`aws_answers.call_error_text`): a proxy's page throttling every attempt
        stays one short line in each refusal, result and log that repeats it."""
        return str(self.kwargs["cause"])


@dataclass
class _Unanswered:
    calls: int
    cause: str


class UnansweredEndpoints:
    """The endpoints that did not answer in this invocation, keyed by the name a refusal gives
    them; safe to share between threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._unanswered: dict[str, _Unanswered] = {}
        self.member_calls = MemberCalls()
        """The calls of each member answered and refused in this invocation."""

    def watch(
        self,
        client: Any,
        account_id: str,
        region: str,
        *,
        given_up_after: int,
        member: bool = False,
    ) -> Any:
        """`client` (of one account and region), whose calls are refused once its endpoint left
        `given_up_after` calls unanswered (timed out, or run to their bound on error answers);
        the hooks are registered once per client, so a client is watched with the threshold of
        its first `watch`. A `member` client's calls answered with success or refused by IAM are
        noted (`member_calls`); a hub client's never are, though the hub be a member too."""
        service = client.meta.service_model.service_id.hyphenize()
        endpoint = f"{service} in account {account_id} region {region}"
        events = client.meta.events
        events.register(
            f"before-call.{service}",
            partial(self._refuse_hook, endpoint, given_up_after),
            unique_id=f"{__name__}.refuse",
        )
        events.register(
            f"after-call-error.{service}",
            partial(self._note_hook, endpoint),
            unique_id=f"{__name__}.note",
        )
        events.register(
            f"after-call.{service}",
            partial(self._note_answer_hook, endpoint),
            unique_id=f"{__name__}.note-answer",
        )
        if member:
            self.member_calls.watch(client, account_id)
        return client

    def ask(self, endpoint: str, given_up_after: int, call: Callable[[], ResultT]) -> ResultT:
        """`call()`, refused once `endpoint` left `given_up_after` calls unanswered, and counted
        when it gets no answer or runs to its bound on error answers."""
        self._refuse_if_given_up(endpoint, given_up_after)
        try:
            return call()
        except (*NO_ANSWER, ClientError) as error:
            if left_unanswered(error):
                self._note_no_answer(endpoint, error)
            raise

    def forget(self) -> None:
        """Ask every endpoint again, and forget the members' calls: for the start of an
        invocation."""
        with self._lock:
            self._unanswered.clear()
        self.member_calls.forget()

    def _refuse_if_given_up(self, endpoint: str, given_up_after: int) -> None:
        with self._lock:
            unanswered = self._unanswered.get(endpoint)
        if unanswered is not None and unanswered.calls >= given_up_after:
            raise EndpointNotAnsweringError(
                endpoint=endpoint,
                # An endpoint given up after one call did not answer "earlier", not "1 calls".
                calls=f" {unanswered.calls} calls" if unanswered.calls > 1 else "",
                cause=unanswered.cause,
            )

    def _note_no_answer(self, endpoint: str, error: Exception) -> None:
        with self._lock:
            unanswered = self._unanswered.setdefault(
                endpoint, _Unanswered(0, call_error_text(error))
            )
            unanswered.calls += 1

    def _refuse_hook(self, endpoint: str, given_up_after: int, **_: Any) -> None:
        self._refuse_if_given_up(endpoint, given_up_after)

    def _note_hook(self, endpoint: str, exception: Exception, **_: Any) -> None:
        if isinstance(exception, NO_ANSWER):
            self._note_no_answer(endpoint, exception)

    def _note_answer_hook(
        self, endpoint: str, parsed: dict[str, Any], model: Any, **_: Any
    ) -> None:
        if ran_to_bound(parsed):
            # The error botocore raises next from this answer: the cause a refusal repeats.
            self._note_no_answer(endpoint, ClientError(parsed, model.name))
