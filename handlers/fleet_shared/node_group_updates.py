"""UpdateNodegroupConfig of desiredSize: the one call eks_scaler and spot_optimizer's fallback
change a node group's size with, telling an update EKS may have made from one it did not.

An update that fails after any of its attempts reached EKS without an answer, or with a server
failure's (whatever the last attempt met: `fleet_shared.lost_answers`), or that EKS took with an
answer that cannot be read,
raises `AnswerLostError`; each caller decides what a change that may have been made means for
it (the scaler keeps what it wrote for the change, for its request's retry; the spot fallback
keeps the hour's claim and reads the node group's size).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from botocore.parsers import ResponseParserError

from fleet_shared.exceptions import AnswerLostError
from fleet_shared.lost_answers import watched_attempts


def update_desired_size(eks: Any, cluster: str, name: str, desired_size: int) -> dict[str, Any]:
    """Start the update of the node group's desiredSize, and return it (EKS's `update`).

    Raises AnswerLostError when it failed after an attempt that reached EKS got no answer (or a
    server failure: `fleet_shared.lost_answers`), or succeeded with an answer that cannot be
    read, and the call's own error otherwise (every attempt refused, throttled, or unsent).
    """
    call = f"UpdateNodegroupConfig of {name}"
    with watched_attempts(eks) as attempts:
        try:
            # desiredSize only: the stack file owns minSize and maxSize, and pulumi-eks
            # ignoreScalingChanges ignores desiredSize alone, so `pulumi up` never undoes this.
            answer = eks.update_nodegroup_config(
                clusterName=cluster,
                nodegroupName=name,
                scalingConfig={"desiredSize": desired_size},
            )
        except ResponseParserError as error:
            # EKS, or a gateway in front of it, answered with success a page that is not the
            # update (`foreign_answers`): the request may have reached EKS, so as good as lost.
            raise AnswerLostError(call, error) from error
        except (ClientError, BotoCoreError) as error:
            if attempts.answer_lost:
                raise AnswerLostError(call, attempts.unanswered[-1]) from error
            raise
    update = answer.get("update")
    if not isinstance(update, dict):
        # EKS answered with success, so it took the request, but the answer cannot be read
        # (botocore parses a body that is not JSON into a bare `message`): as good as lost.
        body = {key: value for key, value in answer.items() if key != "ResponseMetadata"}
        raise AnswerLostError(call, ResponseParserError(f"an answer without its update: {body}"))
    return update
