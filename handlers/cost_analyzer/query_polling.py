"""Waiting for a query the run started (Logs Insights, Athena), and stopping one it gave up.

A query is polled with a pause of 0.25 s doubling up to 5 s, while the invocation has time for
it and within a budget of polls. One this run stops waiting for (too little time left, the poll
budget spent, a poll that failed) is stopped, best-effort: it would otherwise run on, holding one
of the account's concurrent queries. It is left running, and logged, when the call that failed
went unanswered (asking that endpoint to stop it would most likely cost as long again, for no
answer either) or when too little time is left for the stop.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Generic, TypeVar

from fleet_shared.aws_answers import AWS_CALL_ERRORS
from fleet_shared.unanswered_endpoints import left_unanswered

FIRST_PAUSE_SECONDS = 0.25
LONGEST_PAUSE_SECONDS = 5.0

AnswerT = TypeVar("AnswerT")

_logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PolledQuery(Generic[AnswerT]):
    """What tells one kind of query from another: how logs name it (`Athena query <id>`), its
    status call and the state an answer gives, the states in which it has ended, its poll
    budget, its stop (True when the service says it stopped it), and the errors that give it up,
    from its last state: for lack of time, and after `max_polls` polls."""

    name: str
    poll: Callable[[], AnswerT]
    state: Callable[[AnswerT], str]
    ended: Collection[str]
    max_polls: int
    stop: Callable[[], bool]
    out_of_time: Callable[[str], Exception]
    out_of_polls: Callable[[str], Exception]


def ended_answer(
    query: PolledQuery[AnswerT],
    *,
    sleep: Callable[[float], None],
    keep_waiting: Callable[[], bool],
    can_stop: Callable[[], bool],
) -> AnswerT:
    """The answer of the poll that found `query` ended. It is polled while `keep_waiting()` says
    there is time, at most `query.max_polls` times; else it is given up (raises), and stopped first
    (`stop_query`), as after a poll that failed, unless that poll's endpoint left it unanswered."""
    try:
        return _polled_until_ended(query, sleep, keep_waiting)
    except Exception as error:
        if left_unanswered(error):
            log_left_running_unanswered(query.name, error)
        else:
            stop_query(query.name, query.stop, can_stop)
        raise


def _polled_until_ended(
    query: PolledQuery[AnswerT],
    sleep: Callable[[float], None],
    keep_waiting: Callable[[], bool],
) -> AnswerT:
    answer = query.poll()
    polls = 1
    pause = FIRST_PAUSE_SECONDS
    while (state := query.state(answer)) not in query.ended:
        # No pause after the last poll: it would only delay the stop of a query given up.
        if polls >= query.max_polls:
            raise query.out_of_polls(state)
        if not keep_waiting():
            raise query.out_of_time(state)
        sleep(pause)
        pause = min(pause * 2, LONGEST_PAUSE_SECONDS)
        answer = query.poll()
        polls += 1
    return answer


def stop_query(name: str, stop: Callable[[], bool], can_stop: Callable[[], bool]) -> None:
    """Stop the query `name` this run no longer waits for, best-effort: a stop that fails or is
    not confirmed, or no time left for it (`can_stop()`), is logged, and the error that gave the
    query up stays the caller's error."""
    if not can_stop():
        _logger.warning("%s left running: too little time left to stop it", name)
        return
    try:
        stopped = stop()
    except AWS_CALL_ERRORS as error:
        _logger.warning("%s not stopped: %s", name, error)
        return
    if not stopped:
        _logger.warning("%s not stopped", name)


def log_left_running_unanswered(name: str, error: BaseException) -> None:
    """Log that `name` is left running, unasked: its endpoint left the call that failed
    unanswered, so a stop (or a listing) would most likely cost as long again, for no answer
    either."""
    _logger.warning("%s left running: its endpoint did not answer (%s)", name, error)
