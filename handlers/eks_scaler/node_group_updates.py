"""UpdateNodegroupConfig of desiredSize, telling an update EKS may have made from one it did not.

botocore retries a call whose attempt got no answer, and raises the last attempt's error: an
update whose first attempt reached EKS (which made the change, its answer lost on the way back)
and whose second could not connect ends in a connection error, as one EKS never received. So
every attempt's error is noted (botocore's `needs-retry` event, emitted after each attempt), and
an update that fails after any attempt reached EKS without an answer raises
`UpdateAnswerLostError`: the caller keeps what it wrote for the change, and the request's retry
finds out whether it was made.
"""

from __future__ import annotations

from contextvars import ContextVar
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ConnectionClosedError, ReadTimeoutError

from handlers.eks_scaler.exceptions import UpdateAnswerLostError

ANSWER_LOST = (ReadTimeoutError, ConnectionClosedError)
"""An attempt that was sent and got no answer back: EKS may have acted on it (a connection that
failed or timed out, or a call refused unsent, was not)."""

_LOST_ANSWERS: ContextVar[list[Exception] | None] = ContextVar("lost_update_answers", default=None)
"""The attempts of the update in progress in this thread that got no answer."""


def update_desired_size(eks: Any, cluster: str, name: str, desired_size: int) -> dict[str, Any]:
    """Start the update of the node group's desiredSize, and return it (EKS's `update`).

    Raises UpdateAnswerLostError when it failed after an attempt that reached EKS got no answer
    (whatever the last attempt met), and the call's own error otherwise.
    """
    eks.meta.events.register(
        "needs-retry.eks.UpdateNodegroupConfig", _note_lost_answer, unique_id=f"{__name__}.note"
    )
    lost: list[Exception] = []
    token = _LOST_ANSWERS.set(lost)
    try:
        # desiredSize only: the stack file owns minSize and maxSize, and pulumi-eks
        # ignoreScalingChanges ignores desiredSize alone, so `pulumi up` never undoes this.
        update: dict[str, Any] = eks.update_nodegroup_config(
            clusterName=cluster,
            nodegroupName=name,
            scalingConfig={"desiredSize": desired_size},
        )["update"]
    except (ClientError, BotoCoreError) as error:
        if lost:
            raise UpdateAnswerLostError(name, lost[-1]) from error
        raise
    finally:
        _LOST_ANSWERS.reset(token)
    return update


def _note_lost_answer(caught_exception: Exception | None = None, **_: Any) -> None:
    lost = _LOST_ANSWERS.get()
    if lost is not None and isinstance(caught_exception, ANSWER_LOST):
        lost.append(caught_exception)
